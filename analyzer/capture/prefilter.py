"""The batch prefilter: which frames of a batch could any RPC layer want, decided with numpy.

The selection rule is `PacketDecoder.select`'s, applied to many frames per numpy call instead of
one frame per Python iteration. For each frame of a batch it reads, at fixed offsets, the fields of
the one layout most traffic has (Ethernet II, IPv4 with a 20-byte header, not a fragment, TCP or
UDP) and drops the frames of that layout that no rule can want:

- TCP: neither port in the selector's `tcp_ports`, and no payload, or a first payload byte outside
  `tcp_probe_first`;
- UDP: neither port in `udp_ports`, not to a tunnel port (VXLAN, Geneve), and no payload, or a
  first payload byte outside `udp_probe_first`.

Everything else is a candidate and goes through exactly the per-frame test `select` applies (ports
checked against the sets as they are at that frame, the probe called, then `decode`), so the
result is the same packet for packet. Ports are learned while a batch is being read: a `PortSet`
counts its changes, and after each packet the candidates left in the batch are widened by the
frames of any port added meanwhile (a port removed needs nothing: the per-frame test drops them).

The fields are read in C (`_batch.fields`, built with the package) or, where it was not built, by
`numpy_fields`: the same arrays either way (tests/test_prefilter.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from analyzer.capture.tunnel import UDP_GENEVE, UDP_VXLAN

Ints = npt.NDArray[np.int64]
c_fields: Callable[..., tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes]] | None
try:
    from analyzer.capture._batch import fields as c_fields
except ImportError:  # not built (no compiler at install): numpy_fields, the same arrays
    c_fields = None


class Batch(NamedTuple):
    """Consecutive frames of one link type sharing one buffer: frame `frame0 + i + 1` is
    `buf[start[i]:end[i]]`, captured at `ts[i]` (ns, 0 unknown)."""

    buf: bytes
    link: int
    frame0: int
    start: Ints
    end: Ints
    ts: Ints


class PortSet(set[int]):
    """A set of ports that counts its changes (`version`), so that a batch already filtered knows
    when to look at its frames again. Every mutating method of `set` is counted."""

    version = 0

    def _changed(self, before: int) -> None:
        if len(self) != before:
            self.version += 1

    def add(self, port: int) -> None:
        n = len(self)
        super().add(port)
        self._changed(n)

    def discard(self, port: object) -> None:
        n = len(self)
        super().discard(port)
        self._changed(n)

    def remove(self, port: int) -> None:
        super().remove(port)
        self.version += 1

    def pop(self) -> int:
        self.version += 1
        return super().pop()

    def clear(self) -> None:
        self.version += 1
        super().clear()

    def update(self, *others: Iterable[int]) -> None:
        n = len(self)
        super().update(*others)
        self._changed(n)

    def difference_update(self, *others: Iterable[object]) -> None:
        self.version += 1
        super().difference_update(*others)

    def intersection_update(self, *others: Iterable[object]) -> None:
        self.version += 1
        super().intersection_update(*others)

    def symmetric_difference_update(self, other: Iterable[int]) -> None:
        self.version += 1
        super().symmetric_difference_update(other)

    def __ior__(self, other: AbstractSet[int]) -> PortSet:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __iand__(self, other: AbstractSet[object]) -> PortSet:
        self.intersection_update(other)
        return self

    def __isub__(self, other: AbstractSet[object]) -> PortSet:
        self.difference_update(other)
        return self

    def __ixor__(self, other: AbstractSet[int]) -> PortSet:  # type: ignore[override,misc]
        self.symmetric_difference_update(other)
        return self


def _be16(view: npt.NDArray[np.uint8], at: Ints) -> Ints:
    return (view[at].astype(np.int64) << 8) | view[at + 1]


def table(values: Iterable[int]) -> npt.NDArray[np.bool_]:
    """A 256-entry lookup: is this byte in values?"""
    t = np.zeros(256, dtype=np.bool_)
    t[[v for v in values if 0 <= v < 256]] = True
    return t


class Fields(NamedTuple):
    """Per frame of a batch: kind (0 another layout, 6 TCP, 17 UDP in the common layout), ports,
    payload start and end (the IPv4 total length honoured), and whether the payload's first byte
    can interest the probe."""

    kind: npt.NDArray[np.int64]
    sport: Ints
    dport: Ints
    pay: Ints
    stop: Ints
    maybe: npt.NDArray[np.bool_]


_UDP_TUNNEL_PORTS = (UDP_VXLAN, UDP_GENEVE)  # always decoded: the packet inside decides


def fields(
    batch: Batch, tcp_first: npt.NDArray[np.bool_], udp_first: npt.NDArray[np.bool_], use_c: bool = True
) -> tuple[Fields, npt.NDArray[np.bool_]]:
    """The frames' fields, and which frames are candidates whatever the port sets hold."""
    n = len(batch.start)
    # Only Ethernet has the common layout; fields are read at a fixed offset up to 48 bytes in, so a
    # buffer shorter than that (a record alone in its batch) is left to the per-frame test as well.
    if batch.link != 1 or len(batch.buf) < 48:
        zero = np.zeros(n, dtype=np.int64)
        return Fields(zero, zero, zero, zero, zero, np.zeros(n, dtype=np.bool_)), np.ones(n, dtype=np.bool_)
    if c_fields is None or not use_c:
        return numpy_fields(batch, tcp_first, udp_first)
    start, end = (np.ascontiguousarray(a, dtype=np.int64) for a in (batch.start, batch.end))
    out = c_fields(batch.buf, start.data, end.data, np.ascontiguousarray(tcp_first).data, udp_first.data)
    kind, sport, dport, pay, stop = (np.frombuffer(b, dtype=np.int64) for b in out[:5])
    maybe, base = (np.frombuffer(b, dtype=np.bool_) for b in out[5:])
    return Fields(kind, sport, dport, pay, stop, maybe), base


def numpy_fields(
    batch: Batch, tcp_first: npt.NDArray[np.bool_], udp_first: npt.NDArray[np.bool_]
) -> tuple[Fields, npt.NDArray[np.bool_]]:
    """`fields` in numpy, for an Ethernet batch of at least 48 bytes."""
    view = np.frombuffer(batch.buf, dtype=np.uint8)
    start, end = batch.start, batch.end
    size = end - start
    d = np.where(size >= 42, start, 0)  # a safe index for frames too short to read
    etype = _be16(view, d + 12)
    proto = view[d + 23].astype(np.int64)
    ip4 = (size >= 42) & (etype == 0x0800) & (view[d + 14] == 0x45) & ((_be16(view, d + 20) & 0x3FFF) == 0)
    tcp = ip4 & (proto == 6) & (size >= 54)
    udp = ip4 & (proto == 17)
    kind = np.where(tcp, 6, np.where(udp, 17, 0))
    total = _be16(view, d + 16)
    stop = np.where((total >= 20) & (d + 14 + total < end), d + 14 + total, end)
    sport = _be16(view, d + 34)
    dport = _be16(view, d + 36)
    doff = view[np.where(tcp, d + 46, 0)].astype(np.int64)
    pay = np.where(tcp, d + 34 + ((doff >> 4) << 2), d + 42)
    has = pay < stop
    first = view[np.where(has, pay, 0)]
    maybe = has & np.where(tcp, tcp_first[first], udp_first[first])
    tunnel = udp & np.isin(dport, _UDP_TUNNEL_PORTS)
    base = (kind == 0) | maybe | tunnel
    return Fields(kind, sport, dport, pay, stop, maybe), base


def port_table(ports: Iterable[int]) -> npt.NDArray[np.bool_]:
    """A 65,536-entry lookup: is this port in ports? (Cheaper per batch than np.isin.)"""
    t = np.zeros(1 << 16, dtype=np.bool_)
    t[[p for p in ports if 0 <= p < 1 << 16]] = True
    return t


def candidates(
    f: Fields, base: npt.NDArray[np.bool_], tcp: npt.NDArray[np.bool_], udp: npt.NDArray[np.bool_], since: int
) -> Ints:
    """Indices, from `since` on, of the frames the per-frame test must see: those `fields` left in,
    and those of the common layout with a port in the sets (as `port_table`s) as they are now."""
    kind, sp, dp = f.kind[since:], f.sport[since:], f.dport[since:]
    want = base[since:] | ((kind == 6) & (tcp[sp] | tcp[dp])) | ((kind == 17) & (udp[sp] | udp[dp]))
    out: Ints = np.flatnonzero(want) + since
    return out


Row = tuple[int, int, int, int, bool, int, int, int, int, int]


def rows(batch: Batch, f: Fields, at: Ints) -> Iterable[Row]:
    """(index, kind, sport, dport, maybe, payload start, payload end, frame start, frame end, ts) of
    the frames at `at`, as Python values."""
    cols = (at, f.kind, f.sport, f.dport, f.maybe, f.pay, f.stop, batch.start, batch.end, batch.ts)
    return zip(at.tolist(), *(c[at].tolist() for c in cols[1:]), strict=True)


__all__ = ["Batch", "Fields", "PortSet", "candidates", "fields", "port_table", "rows", "table"]
