"""Sans-IO TCP stream reassembly, one direction at a time (RFC 9293 sequence space).

Segments go in; in-order bytes, gaps and the end of the stream come out through a `StreamSink`.
It survives what real captures do: retransmissions and overlaps (the first copy of a byte wins),
out-of-order segments (buffered, capped), captures that start mid-connection (the first segment
seen sets the origin), 32-bit sequence wrap, and loss. A hole is declared lost, and the stream
resumes after it, as soon as there is evidence the bytes were sent: the peer acknowledged them,
or the out-of-order buffer hit its cap, or the stream ended. The consumer is told how many bytes
are missing so it can resynchronise.

No I/O, no clocks: frame numbers and timestamps are passed in and handed back with the data,
so the consumer can say which frame completed each PDU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from analyzer.limits import Limits

_MASK = 0xFFFFFFFF
_HALF = 0x80000000


Receiver = Callable[[bytes, int, int], None]  # (in-order bytes, frame, ts)


class StreamSink(Protocol):
    """Receives the reassembled bytes of one direction."""

    def data(self, data: bytes, frame: int, ts: int) -> None: ...

    def gap(self, missing: int, frame: int, ts: int) -> None: ...


class TcpHalf:
    """One direction of one TCP connection.

    Counters: `gaps` holes declared (a connection's `gaps` column); for the tests, which check the
    reassembly through them, `retransmitted` bytes seen twice, `missing` bytes lost in the holes,
    `ooo_segments` segments that arrived ahead of a hole, `cap_hits` times the out-of-order cap
    forced a hole to be declared.
    """

    __slots__ = (
        "_base32",
        "_fin_off",
        "_limits",
        "_next",
        "_ooo",
        "_ooo_bytes",
        "_peer_acked",
        "_sink",
        "cap_hits",
        "deliver",
        "finished",
        "gaps",
        "given_up",
        "missing",
        "ooo_segments",
        "retransmitted",
        "started",
    )

    def __init__(self, sink: StreamSink, limits: Limits) -> None:
        self._sink = sink
        # Where in-order bytes go: the sink's `data`, until its owner points it at the reader of the
        # bytes itself (a call per segment saved, `TcpConnection.start`).
        self.deliver: Receiver = sink.data
        self._limits = limits
        self.started = False
        self._base32 = 0  # sequence number (mod 2**32) of stream offset 0
        self._next = 0  # stream offset of the next byte to deliver
        self._ooo: dict[int, tuple[bytes, int, int]] = {}  # offset -> (data, frame, ts)
        self._ooo_bytes = 0
        self._peer_acked = -1  # highest stream offset the peer has acknowledged
        self._fin_off = -1
        self.finished = False
        self.retransmitted = 0
        self.gaps = 0
        self.missing = 0
        self.ooo_segments = 0
        self.cap_hits = 0
        self.given_up: str | None = None  # while a cap forces a hole: its violation code

    def syn(self, seq: int) -> None:
        """A SYN: the stream starts at seq + 1 (a retransmitted SYN changes nothing)."""
        if not self.started:
            self.started = True
            self._base32 = (seq + 1) & _MASK

    def segment(self, seq: int, payload: bytes, fin: bool, frame: int, ts: int) -> None:
        """One segment of this direction (SYN already handled by `syn`)."""
        if not self.started:
            self.started = True
            self._base32 = seq & _MASK
        nxt = self._next
        d = (seq - self._base32 - nxt) & _MASK  # the stream offset of seq, unwrapped around the next expected byte
        if not d and payload and not fin and not self._ooo:  # in order, nothing buffered (the common case)
            self._next = nxt + len(payload)
            self.deliver(payload, frame, ts)  # `_add`'s end
        else:
            self._segment(nxt + d if d < _HALF else nxt + d - (1 << 32), payload, fin, frame, ts)
        if self._fin_off >= 0 and self._next >= self._fin_off and not self.finished:
            self.finished = True

    def _segment(self, off: int, payload: bytes, fin: bool, frame: int, ts: int) -> None:
        """A segment at stream offset `off` other than an in-order one with nothing buffered."""
        if fin:
            self._fin_off = off + len(payload)
        if payload:
            if off == self._next and not self._ooo:
                self._next = off + len(payload)
                self.deliver(payload, frame, ts)
            else:
                self._add(off, payload, frame, ts)

    def peer_ack(self, ack: int, frame: int, ts: int) -> None:
        """The other direction acknowledged up to `ack`: bytes before it were sent."""
        if not self.started:
            return
        nxt = self._next
        d = (ack - self._base32 - nxt) & _MASK  # the offset of ack, as in `segment` (inline: nearly every packet)
        off = nxt + d if d < _HALF else nxt + d - (1 << 32)
        if off > self._peer_acked:
            self._peer_acked = off
            # A hole the receiver has acknowledged will never be filled by this capture.
            if self._ooo and min(self._ooo) <= off:
                self._declare_gap(frame, ts)

    def _add(self, off: int, payload: bytes, frame: int, ts: int) -> None:
        end = off + len(payload)
        nxt = self._next
        if end <= nxt:
            self.retransmitted += len(payload)
            return
        if off < nxt:
            self.retransmitted += nxt - off
            payload = payload[nxt - off :]
            off = nxt
        if off == nxt:
            self._deliver(payload, frame, ts)
            if self._ooo:
                self._drain()
            return
        # Ahead of a hole. If the peer already acknowledged the hole, it was lost before the capture.
        if self._peer_acked >= off:
            self._store(off, payload, frame, ts)
            self._declare_gap(frame, ts)
            return
        self._store(off, payload, frame, ts)
        lim = self._limits
        if self._ooo_bytes > lim.max_ooo_bytes or len(self._ooo) > lim.max_ooo_segments:
            # Not a loss: the bytes were captured, and the buffer gave up waiting for the hole.
            self.cap_hits += 1
            self.given_up = "cap_ooo_bytes" if self._ooo_bytes > lim.max_ooo_bytes else "cap_ooo_segments"
            self._declare_gap(frame, ts)
            self.given_up = None

    def _store(self, off: int, payload: bytes, frame: int, ts: int) -> None:
        old = self._ooo.get(off)
        if old is not None:
            if len(old[0]) >= len(payload):
                self.retransmitted += len(payload)
                return
            self._ooo_bytes -= len(old[0])
        self._ooo[off] = (payload, frame, ts)
        self._ooo_bytes += len(payload)
        self.ooo_segments += 1

    def _deliver(self, data: bytes, frame: int, ts: int) -> None:
        self._next += len(data)
        self.deliver(data, frame, ts)

    def _drain(self) -> None:
        """Deliver buffered segments that are now contiguous, each with the frame it arrived in:
        the consumer takes the latest frame among a PDU's bytes as the frame that completed it."""
        ooo = self._ooo
        while ooo:
            first = min(ooo)
            if first > self._next:
                return
            data, frame, ts = ooo.pop(first)
            self._ooo_bytes -= len(data)
            end = first + len(data)
            if end <= self._next:
                self.retransmitted += len(data)
                continue
            self._deliver(data[self._next - first :], frame, ts)

    def _declare_gap(self, frame: int, ts: int) -> None:
        """Skip the hole before the first buffered segment and deliver what follows it."""
        if not self._ooo:
            return
        first = min(self._ooo)
        if first > self._next:
            missing = first - self._next
            if self.given_up is None:  # a cap's hole is counted in cap_hits, not as lost bytes
                self.gaps += 1
                self.missing += missing
            self._next = first
            self._sink.gap(missing, frame, ts)
        self._drain()

    def flush(self, frame: int, ts: int) -> None:
        """End of the connection or the capture: give up on every hole, deliver what is left."""
        while self._ooo:
            self._declare_gap(frame, ts)
        if self._fin_off >= 0 and self._next >= self._fin_off:
            self.finished = True
