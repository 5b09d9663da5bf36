"""Glue for one TCP connection that carries DCE/RPC: TCP halves -> framing -> association.

`TcpFlow` owns the TCP side (two `TcpHalf` reassemblers, SYN/FIN/RST, counters); subclasses say
what the reassembled bytes are. `CoTcpFlow` is DCE/RPC straight on TCP (ncacn_ip_tcp): each
direction is framed by a `CoStream` and both feed one `Association`. `HttpTcpFlow` is one TCP
connection of RPC over HTTP ([MS-RPCH]): a v1 connection on 593, or the IN or OUT channel of a v2
virtual connection, whose association it shares with the other channel. The pipeline creates flows,
hands them packets, and closes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analyzer.capture.decode import ACK, FIN, RST, SYN, Packet
from analyzer.dcerpc.association import Association, InterfaceHint, RecordSink
from analyzer.dcerpc.constants import BIND, RTS
from analyzer.dcerpc.pdu import CoPdu, OtherPdu
from analyzer.dcerpc.stream import CoStream
from analyzer.dcerpc.wire import Malformed
from analyzer.http import HttpPreamble, parse_rts
from analyzer.limits import Limits
from analyzer.model import ConnectionRecord, Flow
from analyzer.tcp import StreamSink, TcpHalf


class EpmLink:
    """The endpoint-mapper answer that announced a connection's server port."""

    __slots__ = ("capture", "client_ip", "frame", "hint", "ts")

    def __init__(self, capture: str, frame: int, ts: int, client_ip: str, hint: InterfaceHint | None) -> None:
        self.capture = capture  # another file of the run when ring-buffer captures are read together
        self.frame = frame
        self.ts = ts
        self.client_ip = client_ip
        self.hint = hint


class TcpFlow:
    """One TCP connection: reassembly of both directions and the connection's record."""

    def __init__(
        self,
        flow: Flow,
        client: tuple[bytes, int],
        identified_by: str,
        sink: RecordSink,
        limits: Limits,
        frame: int,
        ts: int,
        epm_link: EpmLink | None = None,
    ) -> None:
        self.flow = flow
        self.client = client
        self.identified_by = identified_by
        self.sink = sink
        self.limits = limits
        self.epm_link = epm_link
        self.first_frame = self.last_frame = frame
        self.first_ts = self.last_ts = ts
        self.packets = 0
        self.server_packets = 0
        self.client_bytes = 0
        self.server_bytes = 0
        self.client_isn: int | None = None
        self.reset = False
        self.closed = False
        self._setup()
        self.c2s = TcpHalf(self._half_sink(True), limits)
        self.s2c = TcpHalf(self._half_sink(False), limits)

    def _setup(self) -> None:
        """Subclasses build their parsers here: the halves' sinks need them."""

    def _half_sink(self, from_client: bool) -> StreamSink:  # pragma: no cover - abstract
        raise NotImplementedError

    def is_new_connection(self, pkt: Packet) -> bool:
        """A SYN from the client that starts a new connection on the same addresses and ports."""
        if not pkt.flags & SYN or pkt.flags & ACK:
            return False
        if self.reset or (self.c2s.finished and self.s2c.finished):
            return True
        return self.client_isn is not None and pkt.seq != self.client_isn

    @property
    def finished(self) -> bool:
        return self.reset or (self.c2s.finished and self.s2c.finished)

    def packet(self, pkt: Packet, from_client: bool, frame: int, ts: int) -> None:
        self.packets += 1
        self.server_packets += not from_client
        self.last_frame = frame
        self.last_ts = ts
        half, other = (self.c2s, self.s2c) if from_client else (self.s2c, self.c2s)
        flags = pkt.flags
        seq = pkt.seq
        if flags & SYN:
            half.syn(seq)
            if from_client and not flags & ACK:
                self.client_isn = seq
            seq = (seq + 1) & 0xFFFFFFFF
        if flags & ACK:
            other.peer_ack(pkt.ack, frame, ts)
        if pkt.payload:
            if from_client:
                self.client_bytes += len(pkt.payload)
            else:
                self.server_bytes += len(pkt.payload)
        if pkt.payload or flags & FIN:
            half.segment(seq, pkt.payload, bool(flags & FIN), frame, ts)
        if flags & RST:
            self.reset = True

    def detail(self) -> str | None:
        """A line for the connection's `detail` column (subclasses say what they know)."""
        return None

    def close(self, end: str) -> ConnectionRecord:
        """Flush both directions, report what is pending, and return the connection's record."""
        if not self.closed:
            self.closed = True
            self.c2s.flush(self.last_frame, self.last_ts)
            self.s2c.flush(self.last_frame, self.last_ts)
            self._close_payload()
            self._detach()
        link = self.epm_link
        return ConnectionRecord(
            flow=self.flow,
            identified_by=self.identified_by,
            first_frame=self.first_frame,
            first_ts=self.first_ts,
            last_frame=self.last_frame,
            last_ts=self.last_ts,
            epm_capture=link.capture if link else None,
            epm_frame=link.frame if link else None,
            epm_client_ip=link.client_ip if link else None,
            epm_delay_s=round((self.first_ts - link.ts) / 1e9, 6) if link and link.ts and self.first_ts else None,
            packets=self.packets,
            client_bytes=self.client_bytes,
            server_bytes=self.server_bytes,
            pdus=self._pdus(),
            gaps=self.c2s.gaps + self.s2c.gaps,
            end=end,
            detail=self.detail(),
            midstream=self.midstream(),
        )

    def midstream(self) -> bool | None:
        """Did the conversation begin before the capture (its first PDU not a bind)? None without PDUs."""
        return None

    def _close_payload(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _pdus(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def violation(self, frame: int | None, layer: str, what: str, detail: str) -> None:
        self.sink.violation(self.flow, frame, layer, what, detail)

    def _detach(self) -> None:
        """Closed: cut the parsers' references back to this flow. A flow and its parsers call each
        other, and such cycles wait for the cyclic collector, which under a flood of short
        connections held about as much garbage as there was live state; cut, a closed connection
        is freed at once. Its counters stay readable for its record."""
        for half in (self.c2s, self.s2c):
            if isinstance(half._sink, _GapReporter):
                half._sink.detach()


_CLOSED: Any = object()  # what a closed flow's gap reporter points at instead of the flow


def _began_before(assoc: Association | None) -> bool | None:
    """An association whose first PDU was not a bind began before the capture ([C706] 12.6.4.3: a
    bind starts an association); None when it carried no PDU."""
    if assoc is None or assoc.first_ptype is None:
        return None
    return assoc.first_ptype != BIND


class _GapReporter:
    """A TCP half's sink that reports gaps before passing everything on."""

    __slots__ = ("_flow", "_next", "_side")

    def __init__(self, flow: TcpFlow, side: str, nxt: StreamSink) -> None:
        self._flow = flow
        self._side = side
        self._next = nxt

    def data(self, data: bytes, frame: int, ts: int) -> None:
        self._next.data(data, frame, ts)

    def detach(self) -> None:
        """The flow is closed: nothing more is reported (see `TcpFlow._detach`)."""
        self._flow = _CLOSED

    def gap(self, missing: int, frame: int, ts: int) -> None:
        if self._flow is _CLOSED:
            return
        half = self._flow.c2s if self._side == "client" else self._flow.s2c
        if half.given_up is not None:  # captured, but the out-of-order buffer gave up on the hole
            detail = f"{missing} {self._side} bytes skipped: the out-of-order buffer was full"
            self._flow.violation(frame, "limits", half.given_up, detail)
        else:
            self._flow.violation(frame, "tcp", "tcp_gap", f"{missing} {self._side} bytes missing from the capture")
        self._next.gap(missing, frame, ts)


class _FramedFlow(TcpFlow):
    """DCE/RPC connection-oriented PDUs framed from both directions by a `CoStream` each: what
    ncacn_ip_tcp and ncacn_http share. Subclasses say where a PDU goes."""

    def _setup(self) -> None:
        self.c_stream = CoStream(self._on_client_pdu, self._on_client_violation, self.limits)
        self.s_stream = CoStream(self._on_server_pdu, self._on_server_violation, self.limits)

    def _stream_sink(self, from_client: bool) -> StreamSink:
        """What a direction's reassembled bytes go into first (the framer, here)."""
        return self.c_stream if from_client else self.s_stream

    def _half_sink(self, from_client: bool) -> StreamSink:
        return _GapReporter(self, "client" if from_client else "server", self._stream_sink(from_client))

    def _pdu(self, from_client: bool, pdu: CoPdu, frame: int, ts: int, first_frame: int) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    def _on_client_pdu(self, pdu: CoPdu, frame: int, ts: int, first_frame: int) -> None:
        self._pdu(True, pdu, frame, ts, first_frame)

    def _on_server_pdu(self, pdu: CoPdu, frame: int, ts: int, first_frame: int) -> None:
        self._pdu(False, pdu, frame, ts, first_frame)

    def _on_client_violation(self, frame: int, what: str, detail: str) -> None:
        self.violation(frame, "dcerpc", what, "client: " + detail)

    def _on_server_violation(self, frame: int, what: str, detail: str) -> None:
        self.violation(frame, "dcerpc", what, "server: " + detail)

    def _pdus(self) -> int:
        return self.c_stream.pdus + self.s_stream.pdus

    def _detach(self) -> None:
        super()._detach()
        self.c_stream.detach()
        self.s_stream.detach()


class CoTcpFlow(_FramedFlow):
    """DCE/RPC connection-oriented PDUs straight on TCP ([MS-RPCE] 2.1.1.1 ncacn_ip_tcp)."""

    def _setup(self) -> None:
        super()._setup()
        hint = self.epm_link.hint if self.epm_link else None
        self.assoc = Association(self.flow, self.identified_by, self.sink, self.limits, hint)

    def _pdu(self, from_client: bool, pdu: CoPdu, frame: int, ts: int, first_frame: int) -> None:
        self.assoc.pdu(from_client, pdu, frame, ts, first_frame)

    def _close_payload(self) -> None:
        self.assoc.close()

    def midstream(self) -> bool | None:
        return _began_before(self.assoc)


class VirtualConnection:
    """An RPC-over-HTTP v2 virtual connection ([MS-RPCH] 1.3.1): the IN and OUT channels that
    carry the same cookie, and the one association they share. Owned by the pipeline."""

    __slots__ = ("assoc", "channels", "cookie")

    def __init__(self, cookie: str) -> None:
        self.cookie = cookie
        self.channels: list[HttpTcpFlow] = []
        self.assoc: Association | None = None


# cookie, channel -> the virtual connection (the pipeline's table)
VcLookup = Callable[[str, "HttpTcpFlow"], VirtualConnection]


class HttpTcpFlow(_FramedFlow):
    """One TCP connection of RPC over HTTP. v1 (the `ncacn_http/1.0` banner, then PDUs) has its own
    association; a v2 channel (`RPC_IN_DATA` / `RPC_OUT_DATA`) joins its virtual connection by the
    cookie of its CONN/A1 or CONN/B1 RTS PDU and feeds that association: client PDUs come on the IN
    channel, server PDUs on the OUT channel. RTS PDUs are decoded and named for the `detail` column."""

    def __init__(
        self,
        flow: Flow,
        client: tuple[bytes, int],
        identified_by: str,
        sink: RecordSink,
        limits: Limits,
        frame: int,
        ts: int,
        epm_link: EpmLink | None,
        vc_lookup: VcLookup,
    ) -> None:
        self._vc_lookup = vc_lookup
        self.vc: VirtualConnection | None = None
        self.rts: list[str] = []
        self._own: Association | None = None
        super().__init__(flow, client, identified_by, sink, limits, frame, ts, epm_link)

    def _setup(self) -> None:
        super()._setup()
        self.c_pre = HttpPreamble(self.c_stream)
        self.s_pre = HttpPreamble(self.s_stream)

    def _stream_sink(self, from_client: bool) -> StreamSink:
        return self.c_pre if from_client else self.s_pre

    @property
    def channel(self) -> str:
        """v1, in, out, or unknown."""
        if self.c_pre.kind in ("in", "out"):
            return self.c_pre.kind
        if self.s_pre.kind == "v1" or self.c_pre.kind == "pdus":
            return "v1"
        return "unknown"

    def _hint(self) -> InterfaceHint | None:
        return self.epm_link.hint if self.epm_link else None

    def _association(self) -> Association:
        vc = self.vc
        if vc is not None:
            if vc.assoc is None:
                # The IN channel's conversation names the association: the client's calls travel on it.
                first = next((c for c in vc.channels if c.channel == "in"), self)
                vc.assoc = Association(first.flow, self.identified_by, self.sink, self.limits, self._hint())
            return vc.assoc
        if self._own is None:
            self._own = Association(self.flow, self.identified_by, self.sink, self.limits, self._hint())
        return self._own

    def _pdu(self, from_client: bool, pdu: CoPdu, frame: int, ts: int, first_frame: int) -> None:
        if isinstance(pdu, OtherPdu) and pdu.header.ptype == RTS:
            try:
                rts = parse_rts(pdu)
            except Malformed as e:
                self.violation(frame, "http", e.what, e.detail)
                return
            self.rts.append(rts.name)
            if rts.name in ("CONN/A1", "CONN/B1") and rts.cookies and self.vc is None:
                self.vc = self._vc_lookup(rts.cookies[0], self)
            return
        # On a v2 OUT channel the server's PDUs are the answers; on the IN channel the client's are the calls.
        self._association().pdu(from_client, pdu, frame, ts, first_frame, self.flow)

    def midstream(self) -> bool | None:
        return _began_before(self.vc.assoc if self.vc is not None else self._own)

    def _close_payload(self) -> None:
        if self._own is not None:
            self._own.close()
        # A virtual connection's association is closed by the pipeline once all its channels are.

    def detail(self) -> str:
        kind = {"v1": "RPC over HTTP v1", "in": "RPC over HTTP v2 IN channel", "out": "RPC over HTTP v2 OUT channel"}
        parts = [kind.get(self.channel, "RPC over HTTP")]
        if self.vc is not None:
            parts.append(f"virtual connection {self.vc.cookie}")
        if self.rts:
            parts.append("RTS " + " ".join(dict.fromkeys(self.rts)))
        return "; ".join(parts)
