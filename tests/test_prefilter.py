"""The batch prefilter ([analyzer.capture.prefilter]): the same packets as the per-frame select.

A classic pcap is read through `PcapReader.batches` and numpy; any other reader frame by frame. The
two must agree packet for packet and on everything the reader counts, whatever the frames' layout,
wherever a batch ends, and while the consumer learns and forgets ports between packets.
"""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.capture import pcap, pcapng, prefilter
from analyzer.capture.decode import Packet, PacketDecoder, Selector
from analyzer.capture.ipfrag import Defragmenter
from analyzer.capture.prefilter import PortSet
from analyzer.capture.source import open_capture
from analyzer.limits import Limits
from analyzer.pipeline import Pipeline
from tests.conftest import CAPTURES, SAMPLES, needs_shared

# -- PortSet ------------------------------------------------------------------------------------


def test_port_set_counts_every_change_and_only_changes() -> None:
    s = PortSet({135})
    steps: list[tuple[Callable[[], object], bool]] = [
        (lambda: s.add(445), True),
        (lambda: s.add(445), False),  # already there: nothing to look at again
        (lambda: s.discard(1), False),
        (lambda: s.discard(445), True),
        (lambda: s.update({1, 2}), True),
        (lambda: s.update({1}), False),
        (lambda: s.remove(1), True),
        (lambda: s.__ior__({7}), True),
        (lambda: s.__isub__({7}), True),
        (lambda: s.__ixor__({9}), True),
        (lambda: s.__iand__({9, 135}), True),
        (lambda: s.symmetric_difference_update({10}), True),
        (lambda: s.difference_update({10}), True),
        (lambda: s.intersection_update({9}), True),
        (lambda: s.pop(), True),
        (lambda: s.clear(), True),
    ]
    for step, changes in steps:
        before = s.version
        step()
        assert (s.version != before) == changes, step
    t = PortSet()
    t |= {135, 593}  # what the pipeline does: the set stays a PortSet
    assert isinstance(t, PortSet) and t == {135, 593} and t.version == 1


# -- frames of every layout the prefilter must tell apart --------------------------------------

PORTS = [135, 445, 593, 1025, 4789, 6081, 49152, 50000]
FIRST = [5, 0x52, 4, 0x16, 0x00, 0x47]


def _ipv4(proto: int, l4: bytes, *, ihl: int = 5, frag: int = 0, total: int | None = None) -> bytes:
    opts = b"\x01" * ((ihl - 5) * 4)
    length = 20 + len(opts) + len(l4) if total is None else total
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, 1, frag, 64, proto, 0, b"\x0a\0\0\x01", b"\x0a\0\0\x02")
    return head + opts + l4


def _tcp(sport: int, dport: int, payload: bytes, doff: int = 5, flags: int = 0x18) -> bytes:
    return (
        struct.pack("!HHIIBBHHH", sport, dport, 1000, 2000, doff << 4, flags, 8192, 0, 0)
        + b"\0" * ((doff - 5) * 4)
        + payload
    )


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _payload(draw: st.DrawFn) -> bytes:
    n = draw(st.sampled_from([0, 0, 1, 2, 3, 10, 80, 100]))
    if not n:
        return b""
    body = bytes(draw(st.lists(st.integers(0, 255), min_size=n - 1, max_size=n - 1)))
    return bytes([draw(st.sampled_from(FIRST))]) + body


@st.composite
def frame(draw: st.DrawFn) -> bytes:
    """One Ethernet frame: mostly the common layout, then everything that must take the slow path."""
    sport, dport = draw(st.sampled_from(PORTS)), draw(st.sampled_from(PORTS))
    pay = _payload(draw)
    kind = draw(
        st.sampled_from(["tcp", "tcp", "tcp", "udp", "udp", "opts", "frag", "vlan", "ipv6", "short", "total", "arp"])
    )
    eth = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb"
    if kind == "tcp":
        ip = _ipv4(6, _tcp(sport, dport, pay, doff=draw(st.sampled_from([5, 5, 8, 15]))))
    elif kind == "udp":
        ip = _ipv4(17, _udp(sport, dport, pay))
    elif kind == "opts":
        ip = _ipv4(draw(st.sampled_from([6, 17])), _tcp(sport, dport, pay), ihl=6)
    elif kind == "frag":
        ip = _ipv4(6, _tcp(sport, dport, pay), frag=draw(st.sampled_from([0x2000, 0x0001, 0x4000])))
    elif kind == "vlan":
        return eth + b"\x81\x00\x00\x0a\x08\x00" + _ipv4(6, _tcp(sport, dport, pay))
    elif kind == "ipv6":
        l4 = _tcp(sport, dport, pay)
        six = struct.pack("!IHBB16s16s", 0x60000000, len(l4), 6, 64, b"\xfe\x80" + b"\0" * 14, b"\xfe\x80" + b"\1" * 14)
        return eth + b"\x86\xdd" + six + l4
    elif kind == "short":
        return (eth + b"\x08\x00" + _ipv4(6, _tcp(sport, dport, pay)))[: draw(st.integers(0, 60))]
    elif kind == "total":  # an IPv4 total length shorter or longer than the frame, or 0 (TSO)
        l4 = _tcp(sport, dport, pay) if draw(st.booleans()) else _udp(sport, dport, pay)
        proto = 6 if len(l4) >= 20 and l4[12] & 0xF0 else 17
        ip = _ipv4(proto, l4, total=draw(st.sampled_from([0, 20, 28, 40, 45, 2000])))
    else:
        return eth + b"\x08\x06" + b"\0" * 28
    padding = b"\0" * draw(st.sampled_from([0, 0, 6]))  # Ethernet pads short frames
    return eth + b"\x08\x00" + ip + padding


def _pcap(frames: list[tuple[int, int, bytes]], tail: bytes, link: int = 1) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, link)
    for sec, frac, data in frames:
        out += struct.pack("<IIII", sec, frac, len(data), len(data)) + data
    return out + tail


def _probe(first: frozenset[int]) -> Callable[[bytes, int, int], bool]:
    """A probe that accepts a payload starting with a byte of `first` (the selector's promise)
    whose second byte is even: both outcomes happen."""

    def probe(buf: bytes, start: int, end: int) -> bool:
        return end - start >= 2 and buf[start] in first and not buf[start + 1] & 1

    return probe


def _consume(sel: Selector, pkt: Packet) -> None:
    """What a pipeline does between packets: learn a port (0x01 PORT) or forget one (0x02 PORT)."""
    p = pkt.payload
    if len(p) >= 4 and p[1] in (1, 2):
        ports = sel.tcp_ports if p[0] % 2 else sel.udp_ports
        port = PORTS[p[2] % len(PORTS)]
        if p[1] == 1:
            ports.add(port)
        else:
            ports.discard(port)


def _selected(path: Path, batched: bool, udp_first: bool) -> tuple[list[Any], tuple[Any, ...]]:
    sel = Selector()
    sel.tcp_ports |= {135}
    sel.udp_ports |= {135}
    sel.tcp_probe_first = frozenset({5, 0x52})
    if udp_first:
        sel.udp_probe_first = frozenset({4})
    sel.tcp_probe = _probe(sel.tcp_probe_first)
    sel.udp_probe = _probe(sel.udp_probe_first)
    dec = PacketDecoder(sel, Defragmenter(Limits()))
    reader = open_capture(str(path))
    source: Any = reader if batched else iter(reader)  # a bare iterator has no batches: frame by frame
    out = []
    for item in dec.select(source, lambda: None):
        out.append(item)
        _consume(sel, item[2])
    reader.close()
    counted = (
        reader.frames,
        reader.bytes_read,
        reader.truncated,
        reader.notes(),
        dec.frames,
        dec.first_ts,
        dec.last_ts,
    )
    return out, counted


TAILS = [
    b"",
    b"\x01\x02\x03",  # a cut record header
    struct.pack("<IIII", 5, 0, 100, 100) + b"x" * 30,  # a record cut in its data
    struct.pack("<IIII", 5, 0, 1 << 25, 1 << 25) + b"x" * 30,  # a corrupt length
]


@settings(max_examples=60, deadline=None)
@given(
    frames=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from([0, 5, 999_999, 1_000_000, 4_000_000_000]), frame()),
        max_size=60,
    ),
    tail=st.sampled_from(TAILS),
    batch=st.sampled_from([16, 50, 100, 300, 4096, 1 << 22]),
    link=st.sampled_from([1, 1, 1, 101]),
    udp_first=st.booleans(),
)
def test_batches_select_what_frame_by_frame_selects(
    tmp_path_factory: pytest.TempPathFactory,
    frames: list[tuple[int, int, bytes]],
    tail: bytes,
    batch: int,
    link: int,
    udp_first: bool,
) -> None:
    path = tmp_path_factory.mktemp("pf") / "x.pcap"
    # Link type 101 (raw IP) takes the frames without their Ethernet header.
    recs = [(sec, frac, data[14:] if link == 101 else data) for sec, frac, data in frames]
    path.write_bytes(_pcap(recs, tail, link))
    saved = pcap._BATCH
    pcap._BATCH = batch  # small batches: records cut by a batch's end, batches of one record
    try:
        reader = open_capture(str(path))
        got = [(ts, lt, bytes(buf[s:e])) for ts, lt, buf, s, e in reader]
        fast = _selected(path, True, udp_first)
    finally:
        pcap._BATCH = saved
    # The format read plainly: every whole record, its time (0 when the fraction is out of range).
    assert got == [(sec * 10**9 + frac * 1000 if frac < 10**6 else 0, link, data) for sec, frac, data in recs]
    assert reader.frames == len(recs) and (reader.truncated is None) == (tail == b"")
    assert reader.bytes_read == 24 + sum(16 + len(data) for _s, _f, data in recs)
    slow = _selected(path, False, udp_first)
    assert fast == slow


def test_the_batch_path_is_taken_and_learns_ports_mid_batch(tmp_path: Path) -> None:
    """A port learned from one packet selects the next frames of the same batch on that port."""
    eth = b"\x00" * 12 + b"\x08\x00"
    learn = eth + _ipv4(6, _tcp(50000, 135, bytes([1, 1, 3, 0])))  # odd first byte: learn TCP PORTS[3]
    later = eth + _ipv4(6, _tcp(40000, PORTS[3], b""))
    before = eth + _ipv4(6, _tcp(40001, PORTS[3], b""))
    path = tmp_path / "l.pcap"
    path.write_bytes(_pcap([(1, 0, before), (2, 0, learn), (3, 0, later)], b""))
    reader = open_capture(str(path))
    assert hasattr(reader, "batches")
    got, _ = _selected(path, True, False)
    assert [frame for frame, _ts, _pkt in got] == [2, 3]


class _FrameByFrame:
    """A reader seen without its batches: the decoder takes its frames one by one."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def __iter__(self) -> Iterator[Any]:
        return iter(self._reader)

    def __getattr__(self, name: str) -> Any:
        if name == "batches":
            raise AttributeError(name)
        return getattr(self._reader, name)


def _records(path: Path, batched: bool) -> dict[str, list[Any]]:
    p = Pipeline(strict=True, datagrams=True)
    reader = open_capture(str(path))
    p.add_reader(reader if batched else _FrameByFrame(reader), path.name, str(path))  # type: ignore[arg-type]
    r = p.records
    tables = ("binds", "endpoints", "calls", "connections", "datagrams", "attempts", "violations", "captures")
    out = {t: list(getattr(r, t)) for t in tables}
    r.close()
    return out


def _pcaps(root: Path) -> Iterator[Path]:
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.read_bytes()[:4] in pcap.MAGICS:
            yield p


def test_samples_give_the_same_records_either_way() -> None:
    paths = list(_pcaps(SAMPLES))
    assert len(paths) > 10
    for path in paths:
        assert _records(path, True) == _records(path, False), path.name


@needs_shared
def test_shared_captures_give_the_same_records_either_way() -> None:
    paths = list(_pcaps(CAPTURES))
    assert paths
    rnd = random.Random(14)
    for path in rnd.sample(paths, min(len(paths), 40)):
        assert _records(path, True) == _records(path, False), path.name


# -- pcapng: batches against a plain reading of the format ----------------------------------------

MAX_TS = (1 << 63) - 1


def _ng_block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _ng_idb(link: int, tsresol: int, tsoffset: int) -> bytes:
    opts = struct.pack("<HHB3x", 9, 1, tsresol)
    if tsoffset:
        opts += struct.pack("<HHq", 14, 8, tsoffset)
    return _ng_block(1, struct.pack("<HHI", link, 0, 0) + opts + struct.pack("<HH", 0, 0))


def _scale(tsresol: int) -> tuple[int, int]:
    """pcapng if_tsresol: 10**-n or 2**-n seconds per tick, as (multiplier, divisor) to nanoseconds."""
    if tsresol & 0x80:
        return 10**9, 1 << (tsresol & 0x7F)
    return (10 ** (9 - tsresol), 1) if tsresol <= 9 else (1, 10 ** (tsresol - 9))


@st.composite
def pcapng_file(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int, bytes]], int]:
    """A pcapng file, the (ts, link, frame) a plain reading of it gives, and how many frames it has
    before an enhanced packet block names an interface never described (the file ends there)."""
    out = _ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    ifaces: list[tuple[int, int, int, int]] = []
    want: list[tuple[int, int, bytes]] = []
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(["epb"] * 8 + ["idb", "spb", "opb", "other", "unknown"]))
        data = draw(frame())
        if kind == "idb" or (kind in ("epb", "spb", "opb") and not ifaces):
            link = draw(st.sampled_from([1, 1, 101]))
            tsresol = draw(st.sampled_from([6, 6, 9, 3, 0x80 | 20]))
            tsoffset = draw(st.sampled_from([0, 0, 1, -2_000_000_000, 1 << 40]))
            out += _ng_idb(link, tsresol, tsoffset)
            ifaces.append((link, *_scale(tsresol), tsoffset * 10**9))
            continue
        if kind == "other":
            out += _ng_block(0xBAD, b"\1\2\3\4")
            continue
        iface = len(ifaces) if kind == "unknown" else draw(st.integers(0, len(ifaces) - 1))
        ticks = draw(st.sampled_from([0, 1_700_000_000_000_000, 1 << 62, (1 << 64) - 1]))
        if kind == "spb":
            out += _ng_block(3, struct.pack("<I", len(data)) + data)
            want.append((0, ifaces[0][0], data))
            continue
        hi, lo = ticks >> 32, ticks & 0xFFFFFFFF
        caplen = len(data)
        if draw(st.integers(0, 5)) == 0:  # a captured length past the block: the block's end bounds it
            caplen += 100
            data += b"\0" * (-len(data) % 4)
        if kind == "opb":
            out += _ng_block(2, struct.pack("<HHIIII", iface, 0, hi, lo, caplen, caplen) + data)
        else:
            out += _ng_block(6, struct.pack("<IIIII", iface, hi, lo, caplen, caplen) + data)
        if iface >= len(ifaces):
            return out, want, len(want)
        link, mult, div, off = ifaces[iface]
        ts = ticks * mult // div + off
        want.append((ts if 0 <= ts <= MAX_TS else 0, link, data))
    return out, want, len(want)


@settings(max_examples=60, deadline=None)
@given(case=pcapng_file(), chunk=st.sampled_from([12, 40, 200, 1 << 20]), udp_first=st.booleans())
def test_pcapng_batches_read_the_format_and_select_like_frame_by_frame(
    tmp_path_factory: pytest.TempPathFactory,
    case: tuple[bytes, list[tuple[int, int, bytes]], int],
    chunk: int,
    udp_first: bool,
) -> None:
    from analyzer.capture import pcapng

    data, want, count = case
    path = tmp_path_factory.mktemp("ng") / "x.pcapng"
    path.write_bytes(data)
    saved = pcapng._CHUNK
    pcapng._CHUNK = chunk  # small reads: blocks cut by a buffer's end
    try:
        reader = open_capture(str(path))
        got = [(ts, link, bytes(buf[s:e])) for ts, link, buf, s, e in reader]
        assert got == want and reader.frames == count
        assert _selected(path, True, udp_first) == _selected(path, False, udp_first)
    finally:
        pcapng._CHUNK = saved


@settings(max_examples=80, deadline=None)
@given(
    ifaces=st.lists(
        st.tuples(st.sampled_from([6, 9, 3, 0x80 | 20]), st.sampled_from([0, 1, -2_000_000_000, 1 << 40])),
        min_size=1,
        max_size=3,
    ),
    rows=st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from([0, 1_700_000_000_000_000, 1 << 62, (1 << 64) - 1])),
        min_size=1,
        max_size=30,
    ),
)
def test_pcapng_batch_times_are_the_per_frame_times(
    tmp_path_factory: pytest.TempPathFactory, ifaces: list[tuple[int, int]], rows: list[tuple[int, int]]
) -> None:
    """`_times` (numpy, with its whole-array path for a batch of one interface all in range) gives
    each frame the time `_frame` gives it, one by one."""
    path = tmp_path_factory.mktemp("ngt") / "t.pcapng"
    shb = _ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    path.write_bytes(shb + b"".join(_ng_idb(1, res, off) for res, off in ifaces))
    batched = open_capture(str(path))
    one = open_capture(str(path))
    assert isinstance(batched, pcapng.PcapngReader) and isinstance(one, pcapng.PcapngReader)
    list(batched.batches())  # the interfaces read
    list(one.batches())
    rows = [(i % len(ifaces), ticks) for i, ticks in rows]
    iface = np.array([i for i, _ in rows], dtype=np.int64)
    ticks = [t for _, t in rows]
    hi = np.array([t >> 32 for t in ticks], dtype=np.int64)
    lo = np.array([t & 0xFFFFFFFF for t in ticks], dtype=np.int64)
    got = batched._times(iface, hi, lo).tolist()
    want = [frame[0] for i, t in rows if (frame := one._frame(i, t, b"", 0, 0)) is not None]
    assert got == want and batched.bad_times == one.bad_times
    batched.close()
    one.close()


# -- the pcap record walk: C and Python -----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 300), max_size=40),
    cut=st.integers(0, 400),
    little=st.booleans(),
    junk=st.binary(max_size=20),
)
def test_the_c_record_walk_finds_what_the_python_walk_finds(
    lengths: list[int], cut: int, little: bool, junk: bytes
) -> None:
    """Whole records, a record cut by the buffer's end, a header cut, a huge length: the same offsets
    and the same stop, in either byte order."""
    if pcap.c_walk is None:
        pytest.skip("the C walk is not built here")
    order = "<" if little else ">"
    buf = b"".join(struct.pack(order + "IIII", 1 + i, 2 + i, n, n) + bytes(n) for i, n in enumerate(lengths))
    buf = buf[: len(buf) - cut] if cut < len(buf) else buf
    buf += struct.pack(order + "IIII", 1, 2, 0xFFFFFFFF, 0) + junk  # a corrupt length ends the walk
    reader = pcap.PcapReader.__new__(pcap.PcapReader)
    reader._endian = order
    c_walk, py_walk = reader._walk(buf), reader._walk(buf, use_c=False)
    assert [a.tolist() for a in c_walk[:3]] == [a.tolist() for a in py_walk[:3]] and c_walk[3] == py_walk[3]
    times = [struct.unpack_from(order + "II", buf, off) for off in c_walk[0].tolist()]  # seconds, fraction
    assert list(zip(c_walk[1].tolist(), c_walk[2].tolist(), strict=True)) == times
    for short in (b"", buf[:15]):
        assert reader._walk(short)[3] == 0 and not len(reader._walk(short)[0])


@settings(max_examples=200, deadline=None)
@given(frames=st.lists(frame(), min_size=1, max_size=30), pad=st.binary(max_size=60))
def test_the_c_fields_are_the_numpy_fields(frames: list[bytes], pad: bytes) -> None:
    """Every array of every frame, whatever its layout (the common one or not, short, cut, padded)."""
    if prefilter.c_fields is None:
        pytest.skip("the C fields are not built here")
    buf = pad + b"".join(frames) + bytes(48)
    ends = list(itertools.accumulate((len(f) for f in frames), initial=len(pad)))
    start, end = np.array(ends[:-1], dtype=np.int64), np.array(ends[1:], dtype=np.int64)
    batch = prefilter.Batch(buf, 1, 0, start, end, np.zeros(len(frames), dtype=np.int64))
    tcp_first, udp_first = prefilter.table({5, 0x52}), prefilter.table(range(0, 256, 3))
    (c, c_base), (py, py_base) = (
        prefilter.fields(batch, tcp_first, udp_first),
        prefilter.numpy_fields(batch, tcp_first, udp_first),
    )
    assert [a.tolist() for a in c] == [a.tolist() for a in py] and c_base.tolist() == py_base.tolist()
    assert [a.dtype for a in c] == [a.dtype for a in py] and c_base.dtype == py_base.dtype


@settings(max_examples=100, deadline=None)
@given(case=pcapng_file(), cut=st.integers(0, 64), junk=st.binary(max_size=16))
def test_the_c_epb_run_finds_what_the_python_run_finds(
    case: tuple[bytes, list[tuple[int, int, bytes]], int], cut: int, junk: bytes
) -> None:
    """From every block boundary and any 4-byte offset, in either byte order, the buffer cut anywhere."""
    if pcapng.c_epb_run is None:
        pytest.skip("the C walk is not built here")
    data = case[0]
    data = data[: len(data) - cut] + junk if cut < len(data) else junk
    reader = pcapng.PcapngReader.__new__(pcapng.PcapngReader)
    for order in "<>":
        reader._endian = order
        for off in range(0, len(data) + 8, 4):
            c_run, c_heads, c_stop = reader._run(data, off, len(data))
            py_run, py_heads, py_stop = reader._run(data, off, len(data), use_c=False)
            assert c_run.tolist() == py_run.tolist() and c_stop == py_stop and c_run.dtype == py_run.dtype
            assert c_heads.tolist() == py_heads.tolist() and c_heads.shape == (len(c_run), 4)
            for at, head in zip(c_run.tolist(), c_heads.tolist(), strict=True):  # iface, ts high, low, caplen
                assert head == list(struct.unpack_from(order + "IIII", data, at + 8))
