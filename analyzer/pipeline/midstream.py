"""Joining a connection-oriented DCE/RPC conversation whose start the capture missed.

A TCP flow on a port nobody announced, whose payload starts with a well-formed CO PDU header
(`co_start`) that is not a bind, becomes a `Candidate`. The header's packet type says which side
is the client ([C706] 12.6.4: requests, binds, alter_contexts come from the client; responses,
faults and acks from the server). The candidate keeps the flow's packets, bounded, until the
conversation confirms itself:
- a second well-formed header exactly where the previous PDU of that direction ends (frag_length
  later in the TCP sequence space, in the same segment or a later one), with the same byte order; or
- a bind or alter_context from the client that `co_bind_probe` accepts (what starts a conversation
  seen from its beginning); or
- an answer in the other direction whose call_id is the one of a request or bind seen (or the
  question to an answer seen), of the matching type.
A header where the previous PDU should have ended that is not one, or a budget spent without
confirmation, rejects the flow. TLS, file transfers and other binary protocols do not produce
two consecutive well-formed headers chained by frag_length, nor a call_id echoed by the peer.
"""

from __future__ import annotations

from analyzer.capture.decode import Packet
from analyzer.dcerpc.probe import CLIENT_PTYPES, CoStart, co_bind_probe, co_start
from analyzer.limits import Limits

_MASK = 0xFFFFFFFF
# Which answer types answer which question types ([C706] 12.6.4).
_ANSWERS = {0: (2, 3), 11: (12, 13), 14: (15,)}


class _Side:
    """What one direction has shown: where its next PDU should start, its byte order, its call_ids."""

    __slots__ = ("calls", "little", "next_seq")

    def __init__(self) -> None:
        self.next_seq: int | None = None
        self.little = True
        self.calls: set[tuple[int, int]] = set()  # (ptype, call_id)


class Candidate:
    """A flow that may be a DCE/RPC conversation joined in the middle. `client` and `server` are
    (address, port) pairs decided by the first header's packet type."""

    __slots__ = (
        "_max_packets",
        "_max_payloads",
        "_sides",
        "capped",
        "client",
        "held_port",
        "last_ts",
        "packets",
        "payloads",
        "server",
    )

    def __init__(self, pkt: Packet, first: CoStart, ts: int, limits: Limits) -> None:
        a, b = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
        self.client, self.server = (a, b) if first.ptype in CLIENT_PTYPES else (b, a)
        self.last_ts = ts
        self.packets: list[tuple[Packet, int, int]] = []
        self.payloads = 0
        self.held_port: int | None = None  # the server port selected while deciding
        self._sides = {True: _Side(), False: _Side()}
        self._max_packets = limits.max_midstream_packets
        self._max_payloads = limits.max_midstream_payloads
        self.capped: str | None = None  # the cap that ended the wait, if one did

    def feed(self, pkt: Packet, frame: int, ts: int) -> bool | None:
        """Keep a packet; True when the conversation is confirmed, False when rejected, None to wait."""
        self.last_ts = ts
        if len(self.packets) >= self._max_packets:
            self.capped = "cap_midstream_packets"
            return False
        self.packets.append((pkt, frame, ts))
        if not pkt.payload:
            return None
        self.payloads += 1
        verdict = self._judge(pkt)
        if verdict is None and self.payloads >= self._max_payloads:
            self.capped = "cap_midstream_payloads"
            return False
        return verdict

    def _judge(self, pkt: Packet) -> bool | None:
        from_client = (pkt.src, pkt.sport) == self.client
        side, other = self._sides[from_client], self._sides[not from_client]
        data = pkt.payload
        seq = pkt.seq
        if side.next_seq is not None:
            ahead = (seq - side.next_seq) & _MASK
            if ahead >= 0x80000000:  # inside the previous PDU: a continuation (or a retransmission)
                end = (seq + len(data) - side.next_seq) & _MASK
                if end >= 0x80000000 or end == 0:
                    return None
                data, seq = data[len(data) - end :], side.next_seq  # the bytes past the PDU's end
            elif ahead:  # a hole: this segment cannot be checked against the previous PDU
                side.next_seq = None
        off = 0
        while off < len(data):
            h = co_start(data, off, len(data))
            expected = side.next_seq is not None and (seq + off) & _MASK == side.next_seq
            if h is None:
                if expected and len(data) - off >= 16:
                    return False  # the previous PDU's frag_length led to no header
                return None
            if expected and h.little == side.little:
                return True
            if from_client and co_bind_probe(data, off, len(data)):
                return True  # a bind or alter_context offering a real transfer syntax: as a first PDU
            if any((q, h.call_id) in other.calls for q in _questions(h.ptype)):
                return True
            if any((a, h.call_id) in other.calls for a in _ANSWERS.get(h.ptype, ())):
                return True
            side.calls.add((h.ptype, h.call_id))
            side.little = h.little
            side.next_seq = (seq + off + h.frag_length) & _MASK
            off += h.frag_length
        return None

    def replay(self) -> list[tuple[Packet, int, int]]:
        """The packets to follow the conversation from: each direction from its first PDU header on,
        so that neither framer starts inside a PDU whose beginning was never seen."""
        started = {True: False, False: False}
        out = []
        for pkt, frame, ts in self.packets:
            from_client = (pkt.src, pkt.sport) == self.client
            if pkt.payload and not started[from_client]:
                if co_start(pkt.payload, 0, len(pkt.payload)) is None:
                    continue
                started[from_client] = True
            out.append((pkt, frame, ts))
        return out


def _questions(answer: int) -> tuple[int, ...]:
    return tuple(q for q, answers in _ANSWERS.items() if answer in answers)
