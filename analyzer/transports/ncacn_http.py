"""RPC over HTTP ([MS-RPCH]): the v1 banner, v2 channel preambles and RTS PDUs.

Version 1 (ncacn_http on TCP 593, [MS-RPCH] 2.1.1): the server greets with the 14 bytes
`ncacn_http/1.0`, then ordinary connection-oriented PDUs flow both ways.

Version 2 ([MS-RPCH] 2.1.2, 3.2): the client opens two HTTP requests to an RPC proxy, the IN channel
(`RPC_IN_DATA`, whose request body carries the client's PDUs) and the OUT channel (`RPC_OUT_DATA`,
whose response body carries the server's PDUs). RTS PDUs (packet type 20, [MS-RPCH] 2.2.3.6) set the
channels up; CONN/A1 (OUT) and CONN/B1 (IN) carry the same virtual connection cookie, which is how the
two TCP connections are joined into one association.

Sans-IO. `HttpPreamble` strips what precedes the PDU stream of one direction and passes the rest on
to its framer; `HttpConnection` is one TCP connection (both preambles and framers), and
`VirtualConnections` joins the channels of a v2 virtual connection by cookie into one association.
RTS PDUs are decoded by `analyzer.dcerpc.rts`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from analyzer.book import Announcement
from analyzer.bounded import BoundedDict
from analyzer.dcerpc.association import Association
from analyzer.dcerpc.constants import RTS
from analyzer.dcerpc.pdu import CoPdu, OtherPdu
from analyzer.dcerpc.rts import parse_rts
from analyzer.dcerpc.stream import CoStream
from analyzer.dcerpc.wire import Malformed
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.model import Flow, RecordSink
from analyzer.stubs import stub_decoder
from analyzer.tcp import Receiver, StreamSink
from analyzer.transports.ncacn_ip_tcp import began_before, epm_hint, framing_violation

V1_BANNER = b"ncacn_http/1.0"
IN_METHOD = b"RPC_IN_DATA "
OUT_METHOD = b"RPC_OUT_DATA "
_RTS_NAMES_LISTED = 16  # distinct RTS PDU names named in a connection's detail cell


class HttpPreamble:
    """One direction of an RPC-over-HTTP connection: strips the v1 banner or the v2 HTTP request or
    response header, then passes the PDU stream on. `kind` says what was seen first:
    'v1' (banner), 'in' / 'out' (RPC_IN_DATA / RPC_OUT_DATA request), 'response' (an HTTP response),
    'pdus' (PDUs straight away, the client side of v1), or None while undecided."""

    __slots__ = ("_buf", "_max", "_next", "_on_cap", "kind")

    def __init__(
        self, nxt: StreamSink, limits: Limits = DEFAULT_LIMITS, on_cap: Callable[[int, str, str], None] | None = None
    ) -> None:
        self._next = nxt
        self._max = limits.max_http_header_bytes
        self._on_cap = on_cap  # (frame, what, detail) when a header passes the cap
        self._buf = b""
        self.kind: str | None = None

    def data(self, data: bytes, frame: int, ts: int) -> None:
        if self.kind is not None and not self._buf:
            self._next.data(data, frame, ts)
            return
        buf = self._buf + data
        if self.kind is None:
            if buf[:1] == b"\x05":
                self.kind = "pdus"
            elif buf.startswith(V1_BANNER):
                self.kind = "v1"
                buf = buf[len(V1_BANNER) :]
            elif len(buf) < len(V1_BANNER) and V1_BANNER.startswith(buf):
                self._buf = buf  # the banner is split across segments
                return
            else:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > self._max:
                        if self._on_cap is not None:
                            self._on_cap(frame, "cap_http_header_bytes", f"no end of header in {len(buf)} bytes")
                        self.kind = "unknown"
                        self._buf = b""
                        self._next.data(buf, frame, ts)
                        return
                    self._buf = buf
                    return
                head = buf[:end]
                if head.startswith(IN_METHOD):
                    self.kind = "in"
                elif head.startswith(OUT_METHOD):
                    self.kind = "out"
                elif head.startswith(b"HTTP/"):
                    self.kind = "response"
                else:
                    self.kind = "unknown"
                buf = buf[end + 4 :]
        self._buf = b""
        if buf:
            self._next.data(buf, frame, ts)

    def gap(self, missing: int, frame: int, ts: int) -> None:
        self._buf = b""
        if self.kind is None:
            self.kind = "unknown"
        self._next.gap(missing, frame, ts)


def http_probe(buf: bytes, start: int, end: int) -> bool:
    """Does a TCP payload start an RPC-over-HTTP v2 channel (an RPC_IN_DATA / RPC_OUT_DATA request)?"""
    if buf[start] != 0x52:  # "R"
        return False
    head = bytes(buf[start : start + len(OUT_METHOD)])
    return head.startswith(IN_METHOD) or head == OUT_METHOD


class VirtualConnection:
    """An RPC-over-HTTP v2 virtual connection ([MS-RPCH] 1.3.1): the IN and OUT channels that
    carry the same cookie, and the one association they share."""

    __slots__ = ("assoc", "channels", "cookie")

    def __init__(self, cookie: str) -> None:
        self.cookie = cookie
        self.channels: list[HttpConnection] = []
        self.assoc: Association | None = None


class VirtualConnections:
    """The virtual connections of one capture, by cookie (at most `max_virtual_connections`; past
    it the oldest is closed). A virtual connection's association is closed once every one of its
    channels is, or at the end of the capture."""

    def __init__(self, sink: RecordSink, limits: Limits) -> None:
        self._sink = sink
        self._by_cookie: BoundedDict[str, VirtualConnection] = BoundedDict(limits.max_virtual_connections)

    def join(self, cookie: str, channel: HttpConnection) -> VirtualConnection:
        vc = self._by_cookie.get(cookie)
        if vc is None:
            vc = VirtualConnection(cookie)
            evicted = self._by_cookie.put(cookie, vc)
            if evicted is not None:
                n = len(self._by_cookie)
                self._sink.violation(channel.flow, None, "limits", "cap_virtual_connections", f"{n} open")
                if evicted[1].assoc is not None:
                    evicted[1].assoc.close()
        vc.channels.append(channel)
        return vc

    def channel_closed(self, channel: HttpConnection) -> None:
        vc = channel.vc
        if vc is None:
            return
        if vc.assoc is not None and all(c.closed for c in vc.channels):
            vc.assoc.close()
            if self._by_cookie.get(vc.cookie) is vc:
                del self._by_cookie[vc.cookie]
            return
        # Keep what can still matter: the open channels, and, until the association is made, the
        # first IN channel (its conversation names the association). A cookie reused by connection
        # after connection then holds what is open, not every connection it ever had.
        first_in = None if vc.assoc is not None else next((c for c in vc.channels if c.channel == "in"), None)
        vc.channels = [c for c in vc.channels if not c.closed or c is first_in]

    def close_all(self) -> None:
        for vc in self._by_cookie.values():
            if vc.assoc is not None:
                vc.assoc.close()
        self._by_cookie.clear()


class HttpConnection:
    """One TCP connection of RPC over HTTP. v1 (the `ncacn_http/1.0` banner, then PDUs) has its own
    association; a v2 channel (`RPC_IN_DATA` / `RPC_OUT_DATA`) joins its virtual connection by the
    cookie of its CONN/A1 or CONN/B1 RTS PDU and feeds that association: client PDUs come on the IN
    channel, server PDUs on the OUT channel. RTS PDUs are decoded and named for the `detail` column."""

    def __init__(
        self,
        flow: Flow,
        identified_by: str,
        sink: RecordSink,
        limits: Limits,
        announced: Announcement | None,
        vcs: VirtualConnections,
    ) -> None:
        self.flow = flow
        self.identified_by = identified_by
        self.sink = sink
        self.limits = limits
        self.announced = announced
        self._vcs = vcs
        self.vc: VirtualConnection | None = None
        self.rts: dict[str, None] = {}  # the names of the RTS PDUs seen, in order, each once
        self._own: Association | None = None
        self.closed = False
        self._streams = {
            side: CoStream(partial(self.pdu, side), partial(framing_violation, sink, flow, side), limits)
            for side in (True, False)
        }
        self._pre = {
            side: HttpPreamble(self._streams[side], limits, partial(self._capped, side)) for side in (True, False)
        }

    def data(self, from_client: bool, data: bytes, frame: int, ts: int) -> None:
        self._pre[from_client].data(data, frame, ts)

    def gap(self, from_client: bool, missing: int, frame: int, ts: int) -> None:
        self._pre[from_client].gap(missing, frame, ts)

    def receiver(self, from_client: bool) -> Receiver:
        return self._pre[from_client].data

    def _capped(self, from_client: bool, frame: int, what: str, detail: str) -> None:
        self.sink.violation(self.flow, frame, "limits", what, ("client: " if from_client else "server: ") + detail)

    @property
    def channel(self) -> str:
        """v1, in, out, or unknown."""
        c, s = self._pre[True].kind, self._pre[False].kind
        if c in ("in", "out"):
            return c
        if s == "v1" or c == "pdus":
            return "v1"
        return "unknown"

    def _association(self) -> Association:
        vc = self.vc
        if vc is not None:
            if vc.assoc is None:
                # The IN channel's conversation names the association: the client's calls travel on it.
                first = next((c for c in vc.channels if c.channel == "in"), self)
                vc.assoc = Association(
                    first.flow,
                    self.identified_by,
                    self.sink,
                    self.limits,
                    epm_hint(self.announced),
                    decoder=stub_decoder(self.limits),
                )
            return vc.assoc
        if self._own is None:
            self._own = Association(
                self.flow,
                self.identified_by,
                self.sink,
                self.limits,
                epm_hint(self.announced),
                decoder=stub_decoder(self.limits),
            )
        return self._own

    def pdu(self, from_client: bool, pdu: CoPdu, frame: int, ts: int, first_frame: int) -> None:
        if isinstance(pdu, OtherPdu) and pdu.header.ptype == RTS:
            try:
                rts = parse_rts(pdu)
            except Malformed as e:
                self.sink.violation(self.flow, frame, "http", e.what, e.detail)
                return
            if len(self.rts) < _RTS_NAMES_LISTED:
                self.rts[rts.name] = None
            if rts.name in ("CONN/A1", "CONN/B1") and rts.cookies and self.vc is None:
                self.vc = self._vcs.join(rts.cookies[0], self)
            return
        # On a v2 OUT channel the server's PDUs are the answers; on the IN channel the client's are the calls.
        self._association().pdu(from_client, pdu, frame, ts, first_frame, self.flow)

    def close(self) -> None:
        self.closed = True
        if self._own is not None:
            self._own.close()
        self._vcs.channel_closed(self)
        for stream in self._streams.values():
            stream.detach()

    def pdus(self) -> int:
        return self._streams[True].pdus + self._streams[False].pdus

    def midstream(self) -> bool | None:
        return began_before(self.vc.assoc if self.vc is not None else self._own)

    def detail(self) -> str:
        kind = {"v1": "RPC over HTTP v1", "in": "RPC over HTTP v2 IN channel", "out": "RPC over HTTP v2 OUT channel"}
        parts = [kind.get(self.channel, "RPC over HTTP")]
        if self.vc is not None:
            parts.append(f"virtual connection {self.vc.cookie}")
        if self.rts:
            parts.append("RTS " + " ".join(self.rts))
        return "; ".join(parts)
