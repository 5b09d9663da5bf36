"""One TCP connection: SYN, FIN and RST, both directions reassembled, and its connections row.

`TcpConnection` takes the decoded segments of one connection in capture order (`packet`), keeps a
`TcpHalf` per direction (RFC 9293 sequence space), and hands the in-order bytes of either direction,
and the holes, to one transport connection (`Payload`, see `analyzer.transports`): the reader of
what the bytes are. It reports each hole: a `tcp_gap` when the bytes were never captured, the
out-of-order cap (`cap_ooo_bytes`, `cap_ooo_segments`) when they were captured and the buffer gave
up waiting for the hole. A closed connection leaves a `Tombstone` in the flow table that swallows
its stragglers until a new SYN.

The transport is made on the first byte (or hole) a direction delivers: a SYN, a reset or an empty
connection never builds one (a SYN flood builds no DCE/RPC state).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, Protocol

from analyzer.book import Announcement
from analyzer.capture.decode import ACK, SYN, Packet
from analyzer.limits import Limits
from analyzer.model import ConnectionRecord, Flow, RecordSink
from analyzer.tcp import TcpHalf
from analyzer.tcp.reassembly import Receiver

try:  # the per-packet step in C (analyzer/tcp/_tcp.c): flags, counters and both halves without a Python frame
    from analyzer.tcp._tcp import ConnectionCore
except ImportError:  # not built: the Python twin, the same results
    from analyzer.tcp.core import ConnectionCore  # type: ignore[assignment]


class Payload(Protocol):
    """A transport connection: what reads the reassembled bytes of both directions. Events in, the
    way h11 takes bytes; records out through the sink it was made with."""

    def data(self, from_client: bool, data: bytes, frame: int, ts: int) -> None: ...

    def gap(self, from_client: bool, missing: int, frame: int, ts: int) -> None: ...

    def receiver(self, from_client: bool) -> Receiver:
        """What `data(from_client, ...)` calls, for one direction: its reassembly then hands the
        in-order bytes straight to it, one call where the layers took three."""

    def close(self) -> None:
        """The connection ended: finish what is pending."""

    def pdus(self) -> int:
        """DCE/RPC PDUs framed (0 for a connection that carries them inside another protocol)."""

    def detail(self) -> str | None:
        """A line for the connection's `detail` column."""

    def midstream(self) -> bool | None:
        """Did the conversation begin before the capture? None without PDUs."""


def _drop(data: bytes, frame: int, ts: int) -> None:
    """Where the bytes of a closed connection would go (none arrive: it has left the flow table)."""


_NOT_ANNOUNCED = (None, None, None, None)  # a ConnectionRecord's epm_* fields, when no EPM answer announced it
# A connections row (`TcpConnection.row`) is a ConnectionRecord's fields in order: where its `pdus` is.
ROW_PDUS = [f.name for f in fields(ConnectionRecord)].index("pdus")


class _Direction:
    """A `TcpHalf`'s sink: one direction's holes, and its bytes until the transport exists (the first
    byte makes it; from then on the half delivers straight to the transport's reader)."""

    __slots__ = ("conn", "from_client")

    def __init__(self, conn: TcpConnection, from_client: bool) -> None:
        self.conn: TcpConnection | None = conn
        self.from_client = from_client

    def data(self, data: bytes, frame: int, ts: int) -> None:
        conn = self.conn
        if conn is not None:
            (conn.payload or conn.start()).data(self.from_client, data, frame, ts)

    def gap(self, missing: int, frame: int, ts: int) -> None:
        conn = self.conn
        if conn is not None:
            conn.gap(self.from_client, missing, frame, ts)


class TcpConnection(ConnectionCore):
    """One TCP connection that is followed: reassembly of both directions, its transport, its row.
    Its packets go to `ConnectionCore.packet` (counters, flags, both halves: analyzer/tcp/core.py)."""

    __slots__ = (
        "_c_dir",
        "_make",
        "_s_dir",
        "announced",
        "closed",
        "first_frame",
        "first_ts",
        "flow",
        "identified_by",
        "payload",
        "sink",
    )

    def __init__(
        self,
        flow: Flow,
        client: tuple[bytes, int],
        identified_by: str,
        sink: RecordSink,
        limits: Limits,
        frame: int,
        ts: int,
        make_payload: Callable[[TcpConnection], Payload],
        announced: Announcement | None = None,
    ) -> None:
        self.flow = flow
        self.client = client
        self.identified_by = identified_by
        self.sink = sink
        self.announced = announced  # the EPM answer that announced the server port, if one did
        self.first_frame = self.last_frame = frame
        self.first_ts = self.last_ts = ts
        self.packets = self.server_packets = self.client_bytes = self.server_bytes = 0
        self.client_isn = None
        self.reset = False
        self.closed = False
        self._make = make_payload
        self.payload: Payload | None = None
        self._c_dir = _Direction(self, True)
        self._s_dir = _Direction(self, False)
        self.c2s = TcpHalf(self._c_dir, limits)
        self.s2c = TcpHalf(self._s_dir, limits)

    def start(self) -> Payload:
        """The transport, made when the first byte or hole is delivered; from then on each
        direction's in-order bytes go straight to it (not through its `_Direction`)."""
        payload = self.payload = self._make(self)
        self.c2s.deliver = payload.receiver(True)
        self.s2c.deliver = payload.receiver(False)
        return payload

    def is_new_connection(self, pkt: Packet) -> bool:
        """A SYN from the client that starts a new connection on the same addresses and ports."""
        if not pkt.flags & SYN or pkt.flags & ACK:
            return False
        if self.reset or (self.c2s.finished and self.s2c.finished):
            return True
        return self.client_isn is not None and pkt.seq != self.client_isn

    def gap(self, from_client: bool, missing: int, frame: int, ts: int) -> None:
        """A hole in one direction: report it (a cap when the bytes were captured), then pass it on."""
        side = "client" if from_client else "server"
        half = self.c2s if from_client else self.s2c
        if half.given_up is not None:  # captured, but the out-of-order buffer gave up on the hole
            detail = f"{missing} {side} bytes skipped: the out-of-order buffer was full"
            self.sink.violation(self.flow, frame, "limits", half.given_up, detail)
        else:
            self.sink.violation(self.flow, frame, "tcp", "tcp_gap", f"{missing} {side} bytes missing from the capture")
        (self.payload or self.start()).gap(from_client, missing, frame, ts)

    def close_row(self, end: str) -> tuple[Any, ...]:
        """Flush both directions, let the transport finish, and return the connection's row (`row`):
        what the flow table closes goes to a row spool, no record object made for it (a bind flood
        closes a connection per bind)."""
        if not self.closed:
            self.closed = True
            self.c2s.flush(self.last_frame, self.last_ts)
            self.s2c.flush(self.last_frame, self.last_ts)
            if self.payload is not None:
                self.payload.close()
            # A connection and its parsers refer to each other; such cycles wait for the cyclic
            # collector, which under a flood of short connections held about as much garbage as
            # there was live state. Cut, a closed connection is freed at once.
            self._c_dir.conn = self._s_dir.conn = None
            self.c2s.deliver = self.s2c.deliver = _drop
        return self.row(end)

    def row(self, end: str) -> tuple[Any, ...]:
        """The connections row: a `ConnectionRecord`'s fields in their order."""
        a, p = self.announced, self.payload
        if p is None:
            pdus, detail, midstream = 0, None, None
        else:
            pdus, detail, midstream = p.pdus(), p.detail(), p.midstream()
        # In the record's field order (`ROW_PDUS`).
        return (
            self.flow,
            self.identified_by,
            self.first_frame,
            self.first_ts,
            self.last_frame,
            self.last_ts,
            self.packets,
            self.client_bytes,
            self.server_bytes,
            pdus,
            end,
            self.c2s.gaps + self.s2c.gaps,
            *(_NOT_ANNOUNCED if a is None else self._announced_fields(a)),
            detail,
            midstream,
        )

    def _announced_fields(self, a: Announcement) -> tuple[str | None, int | None, str | None, float | None]:
        """epm_capture, epm_frame, epm_client_ip, epm_delay_s of a connection the EPM announced."""
        delay = round((self.first_ts - a.ts) / 1e9, 6) if a.ts and self.first_ts else None
        return a.capture, a.frame, a.client_ip or "", delay

    def outcome(self) -> str:
        """The attempts outcome of a connection to an RPC port that carried no PDU."""
        if self.client_bytes or self.server_bytes or (self.server_packets and not self.reset):
            return "no_pdu"
        return "rejected" if self.reset else "syn_only"


class Tombstone:
    """A closed connection: swallows late packets (final ACKs, retransmitted FINs) until a new SYN."""

    __slots__ = ("client", "last_ts")

    def __init__(self, client: tuple[bytes, int], ts: int) -> None:
        self.client = client
        self.last_ts = ts

    def swallows(self, pkt: Packet) -> bool:
        """Is this packet a straggler (anything but a SYN from the client)?"""
        return not ((pkt.src, pkt.sport) == self.client and pkt.flags & (SYN | ACK) == SYN)
