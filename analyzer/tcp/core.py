"""The per-packet step of one followed TCP connection (RFC 9293 3.1, the header's flags; 3.10.7,
segment arrival, as a passive observer of both directions sees it).

`ConnectionCore` counts the packets and payload bytes of each side, keeps the last frame and time
and the client's ISN, starts a direction's stream after its SYN, hands each acknowledgement to
the other direction's `TcpHalf` (evidence that a hole was sent) and the payload and FIN to this
direction's, and notes a RST. `connection.TcpConnection` subclasses it for everything else.

This is the Python twin of `analyzer.tcp._tcp.ConnectionCore` (analyzer/tcp/_tcp.c), which
`analyzer.tcp.connection` takes where it was built: the same fields, the same calls in the same
order (tests/test_tcp_c.py holds the two equal).
"""

from __future__ import annotations

from typing import Any

from analyzer.capture.decode import ACK, FIN, RST, SYN, Packet


class ConnectionCore:
    """The counters and both halves of a connection, and what one packet does to them. The subclass's
    `__init__` sets every field."""

    __slots__ = (
        "c2s",
        "client",
        "client_bytes",
        "client_isn",
        "last_frame",
        "last_ts",
        "packets",
        "reset",
        "s2c",
        "server_bytes",
        "server_packets",
    )

    # A `TcpHalf` each (the C one or its twin: the same methods).
    c2s: Any
    s2c: Any
    client: tuple[bytes, int]
    client_isn: int | None
    last_frame: int
    last_ts: int
    packets: int
    server_packets: int
    client_bytes: int
    server_bytes: int
    reset: bool

    def client_syn(self, seq: int, frame: int, ts: int) -> None:
        """The client's first SYN, without payload and without ACK, FIN or RST: what `packet` does
        with it, without its tests (a connection followed from a `SynOnly` entry)."""
        self.packets += 1
        self.last_frame = frame
        self.last_ts = ts
        self.c2s.syn(seq)
        self.client_isn = seq

    @property
    def finished(self) -> bool:
        return self.reset or (self.c2s.finished and self.s2c.finished)

    def packet(self, pkt: Packet, from_client: bool, frame: int, ts: int) -> None:
        _proto, _src, _dst, _sport, _dport, seq, ack, flags, payload = pkt  # one step, not an attribute each
        self.packets += 1
        self.last_frame = frame
        self.last_ts = ts
        if from_client:
            half, other = self.c2s, self.s2c
        else:
            self.server_packets += 1
            half, other = self.s2c, self.c2s
        if flags & SYN:
            half.syn(seq)
            if from_client and not flags & ACK:
                self.client_isn = seq
            seq = (seq + 1) & 0xFFFFFFFF
        if flags & ACK:
            other.peer_ack(ack, frame, ts)
        if payload:
            if from_client:
                self.client_bytes += len(payload)
            else:
                self.server_bytes += len(payload)
            half.segment(seq, payload, bool(flags & FIN), frame, ts)
        elif flags & FIN:
            half.segment(seq, payload, True, frame, ts)
        if flags & RST:
            self.reset = True
