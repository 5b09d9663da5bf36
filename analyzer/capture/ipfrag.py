"""IP fragment reassembly (IPv4 RFC 791, IPv6 RFC 8200 4.5), bounded.

Fragments are rare in RPC traffic but real (large binds with Kerberos tickets over UDP, old stacks).
A datagram is complete when its last fragment has arrived and every byte before it is covered;
the frame that completes it is the frame the reassembled packet belongs to, as in Wireshark.
Overlaps keep the first copy of each byte. State is capped in datagrams and bytes; what is dropped
is counted for the data-quality report.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

from analyzer.limits import Limits

_MAX_DATAGRAM = 65_535 + 40


class _Datagram:
    __slots__ = ("first_ts", "pieces", "proto", "total")

    def __init__(self, ts: int) -> None:
        self.first_ts = ts
        self.pieces: dict[int, bytes] = {}
        self.total = -1  # length known once the last fragment arrived
        self.proto = -1


class Defragmenter:
    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._pending: OrderedDict[tuple[bytes, int], _Datagram] = OrderedDict()
        self.dropped = 0  # datagrams given up (cap, timeout, oversize)
        self.capped = 0  # of those, given up because max_ip_fragment_datagrams were pending
        self.first_capped: int | None = None  # the frame of the first
        self.reassembled = 0

    def ipv4(self, packet: bytes, ihl: int, frame: int, ts: int) -> bytes | None:
        """Feed one IPv4 fragment (header included); the transport payload when complete."""
        flags_off = struct.unpack_from(">H", packet, 6)[0]
        offset = (flags_off & 0x1FFF) * 8
        more = bool(flags_off & 0x2000)
        # src, dst, id and protocol identify the datagram.
        key = (packet[12:20] + packet[4:6], packet[9])
        return self._add(key, packet[9], offset, more, packet[ihl:], ts, frame)

    def ipv6(self, header: bytes, frag: bytes, frame: int, ts: int) -> tuple[int, bytes] | None:
        """Feed one IPv6 fragment (fixed header, fragment header + data): (next header, payload)."""
        nxt = frag[0]
        off_flags = struct.unpack_from(">H", frag, 2)[0]
        ident = frag[4:8]
        key = (header[8:40] + ident, nxt)
        payload = self._add(key, nxt, off_flags & 0xFFF8, bool(off_flags & 1), frag[8:], ts, frame)
        return None if payload is None else (nxt, payload)

    def _add(
        self, key: tuple[bytes, int], proto: int, offset: int, more: bool, data: bytes, ts: int, frame: int
    ) -> bytes | None:
        self._expire(ts)
        dg = self._pending.get(key)
        if dg is None:
            if len(self._pending) >= self._limits.max_ip_fragment_datagrams:
                self._pending.popitem(last=False)
                self.dropped += 1
                self.capped += 1
                if self.first_capped is None:
                    self.first_capped = frame
            dg = self._pending[key] = _Datagram(ts)
        dg.proto = proto
        if offset + len(data) > _MAX_DATAGRAM:
            del self._pending[key]
            self.dropped += 1
            return None
        dg.pieces.setdefault(offset, data)
        if not more:
            dg.total = offset + len(data)
        if dg.total < 0:
            return None
        out = bytearray(dg.total)
        covered = 0
        for off in sorted(dg.pieces):
            piece = dg.pieces[off]
            if off > covered:
                return None  # a hole remains
            end = min(off + len(piece), dg.total)
            if end > covered:
                out[covered:end] = piece[covered - off : end - off]
                covered = end
        if covered < dg.total:
            return None
        del self._pending[key]
        self.reassembled += 1
        return bytes(out)

    def _expire(self, ts: int) -> None:
        horizon = ts - int(self._limits.ip_fragment_timeout_s * 1_000_000_000)
        while self._pending:
            key, dg = next(iter(self._pending.items()))
            if dg.first_ts >= horizon:
                break
            del self._pending[key]
            self.dropped += 1
