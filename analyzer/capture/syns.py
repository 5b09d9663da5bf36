"""Plain SYNs found in a batch: runs of connection openings a SYN flood or a port scan is made of.

A plain SYN is a frame of the prefilter's common layout (Ethernet II, IPv4 without options, not a
fragment, TCP: `prefilter.fields`) with SYN set and ACK, FIN and RST clear (RFC 9293 3.1), no
payload, a whole TCP header inside the IP packet, to a port of `ports` from one that is not. The
decoder (`PacketDecoder._select_batches`) hands consecutive candidates of this kind, `MIN_RUN` or
more of them, to its `syn_sink` as one `SynRun` instead of decoding each into a `Packet`: the
pipeline then opens their flows in bulk (`analyzer.pipeline.conversations`).
"""

from __future__ import annotations

from itertools import chain, repeat
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from analyzer.capture.prefilter import Batch, Fields, Ints

MIN_RUN = 64  # fewer plain SYNs in a row go the per-packet way: bulk only pays for many
_SYN, _ACK_FIN_RST = 0x02, 0x14


class SynArrays(NamedTuple):
    """What the syn_only attempts rows of some SYNs of a run are made of, as arrays (`SynRun.arrays`)."""

    src_octets: npt.NDArray[np.uint8]  # (n, 4)
    dst_octets: npt.NDArray[np.uint8]
    frames: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    sport: npt.NDArray[np.int64]
    dport: npt.NDArray[np.int64]

    def part(self, a: int, b: int | None = None) -> SynArrays:
        """SYNs a..b-1's (to the end when b is None)."""
        return SynArrays(
            self.src_octets[a:b], self.dst_octets[a:b], self.frames[a:b], self.ts[a:b], self.sport[a:b], self.dport[a:b]
        )


class SynRun(NamedTuple):
    """Consecutive plain SYNs, as Python values per frame, and their addresses' octets and the numbers
    an attempts row takes as arrays (for rows made in bulk, with no Python value read back); `seq`,
    `ack` and `flags` as arrays alone (only the SYNs that stay in the flow table need theirs).
    `Packet(PROTO_TCP, src[i], dst[i], sport[i], dport[i], int(seq[i]), int(ack[i]), int(flags[i]), b"")`
    is what decoding frame `frames[i]` gives."""

    frames: list[int]
    ts: list[int]
    src: list[bytes]
    dst: list[bytes]
    sport: list[int]
    dport: list[int]
    seq: npt.NDArray[np.uint32]
    ack: npt.NDArray[np.uint32]
    flags: npt.NDArray[np.uint8]
    src_octets: npt.NDArray[np.uint8]  # (n, 4)
    dst_octets: npt.NDArray[np.uint8]
    frame_array: npt.NDArray[np.int64]  # `frames`, `ts`, `sport` and `dport` as int64 arrays
    ts_array: npt.NDArray[np.int64]
    sport_array: npt.NDArray[np.int64]
    dport_array: npt.NDArray[np.int64]

    def arrays(self, a: int, b: int) -> SynArrays:
        """The arrays of SYNs a..b-1 (views: nothing copied)."""
        whole = SynArrays(
            self.src_octets, self.dst_octets, self.frame_array, self.ts_array, self.sport_array, self.dport_array
        )
        return whole.part(a, b)


_FIXED_AT, _FIXED = 26, 22  # bytes 26 to 47 of a plain SYN's frame: the IPv4 addresses, the TCP header to its flags


def _fixed(view: npt.NDArray[np.uint8], d: Ints) -> npt.NDArray[np.uint8]:
    """Bytes 26 to 47 of each frame starting at `d`, as one (n, 22) array: copied as rows of a
    sliding window's view, a third of the time of gathering each field's bytes one index each."""
    rows: npt.NDArray[np.uint8] = sliding_window_view(view, _FIXED)[d + _FIXED_AT]
    return rows


def _field(fixed: npt.NDArray[np.uint8], at: int, size: int) -> npt.NDArray[np.uint8]:
    """The `size` bytes at frame offset `at` of each row of `_fixed`, as one contiguous (n, size) array."""
    return np.ascontiguousarray(fixed[:, at - _FIXED_AT : at - _FIXED_AT + size])


def _words(fixed: npt.NDArray[np.uint8], at: int, dtype: str) -> npt.NDArray[Any]:
    """The big-endian word (`dtype` ">u2" or ">u4") at frame offset `at` of each row of `_fixed`."""
    return _field(fixed, at, np.dtype(dtype).itemsize).view(dtype).ravel()


def _addresses(octets: npt.NDArray[np.uint8]) -> list[bytes]:
    """Each row of (n, 4) octets as its 4 bytes: a void view's items are bytes, made without a
    Python slice each (a bytes dtype would drop trailing zero octets). A stretch of one address (a
    flood's server, each attacker) is one bytes object, repeated: a tenth of the objects made and
    freed, and its hash computed once for every flow key holding it (a run's keys hashed in half
    the time)."""
    stretches = _stretches(octets)
    if stretches is None:
        out: list[bytes] = octets.view("V4").ravel().tolist()
        return out
    starts, lengths = stretches
    each: list[bytes] = octets[starts].view("V4").ravel().tolist()
    return list(chain.from_iterable(map(repeat, each, lengths.tolist())))


def _stretches(octets: npt.NDArray[np.uint8]) -> tuple[Ints, Ints] | None:
    """Where each stretch of one address starts among (n, 4) octets (contiguous), and its length;
    None when the addresses are mostly distinct (spoofed sources: nothing to share)."""
    words = octets.view(np.uint32).ravel()  # an address as one word, to find where it changes
    starts = np.flatnonzero(np.concatenate(([True], words[1:] != words[:-1])))
    if len(starts) * 8 > len(words):
        return None
    return starts, np.diff(np.append(starts, len(words)))


def plain(batch: Batch, f: Fields, at: Ints, ports: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Which frames at `at` are plain SYNs to a port where `ports` (a 65,536-entry table) is set."""
    view = np.frombuffer(batch.buf, dtype=np.uint8)
    d = batch.start[at]
    tcp = f.kind[at] == 6
    flags = view[np.where(tcp, d + 47, 0)]
    sport, dport = f.sport[at], f.dport[at]
    whole = d + 54 <= f.stop[at]  # the decoder needs the 20 bytes of a TCP header
    empty = f.pay[at] >= f.stop[at]
    mask: npt.NDArray[np.bool_] = (
        tcp & whole & empty & (flags & (_SYN | _ACK_FIN_RST) == _SYN) & ports[dport] & ~ports[sport]
    )
    return mask


def runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, end) of every stretch of at least MIN_RUN set values."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= MIN_RUN]


def syn_run(batch: Batch, at: Ints) -> SynRun:
    """The SYNs of the frames at `at` (all plain)."""
    fixed = _fixed(np.frombuffer(batch.buf, dtype=np.uint8), batch.start[at])
    src_octets, dst_octets = _field(fixed, 26, 4), _field(fixed, 30, 4)
    frames, ts = np.asarray(at + batch.frame0 + 1, dtype=np.int64), np.asarray(batch.ts[at], dtype=np.int64)
    sport, dport = (np.asarray(_words(fixed, o, ">u2"), dtype=np.int64) for o in (34, 36))
    return SynRun(
        frames=frames.tolist(),
        ts=ts.tolist(),
        src=_addresses(src_octets),
        dst=_addresses(dst_octets),
        sport=sport.tolist(),
        dport=dport.tolist(),
        seq=_words(fixed, 38, ">u4"),
        ack=_words(fixed, 42, ">u4"),
        flags=fixed[:, 47 - _FIXED_AT],
        src_octets=src_octets,
        dst_octets=dst_octets,
        frame_array=frames,
        ts_array=ts,
        sport_array=sport,
        dport_array=dport,
    )


_OCTETS = [str(i) for i in range(256)]


def dotted(octets: npt.NDArray[np.uint8]) -> Any:
    """IPv4 addresses ((n, 4) octets) as the dotted-quad text `socket.inet_ntop` gives, an Arrow
    array. A flood's addresses come in long stretches of one (its server's, each attacker's): then
    each stretch's text is made once and repeated, a fifth of the time of making every row's."""
    import pyarrow as pa

    octets = np.ascontiguousarray(octets, dtype=np.uint8)
    stretches = _stretches(octets)
    if stretches is None:  # mostly distinct: each row made
        return _dotted(octets)
    starts, lengths = stretches
    return _dotted(octets[starts]).take(pa.array(np.repeat(np.arange(len(starts)), lengths)))


def _dotted(octets: npt.NDArray[np.uint8]) -> Any:
    """`dotted`, every row made."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.array(_OCTETS)
    parts = [table.take(pa.array(octets[:, i])) for i in range(4)]
    return pc.binary_join_element_wise(*parts, ".")
