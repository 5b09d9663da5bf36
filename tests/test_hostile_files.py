"""Hostile and odd capture files (issue 13 items 1, 2, 5, 6; issue 9 item 5): timestamps out of range,
gzip cut short or inflated, NetMon read as a stream, and paths that are not regular files.

Every file is built here with struct (containers) and scapy (packets), small.
"""

from __future__ import annotations

import csv
import gzip
import os
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from analyzer.capture.netmon import NetmonReader
from analyzer.capture.source import expand_paths, open_capture
from analyzer.cli import main
from analyzer.errors import CaptureError
from analyzer.limits import Limits
from tests.conftest import CAPTURES, EPM, NDR, Conversation, bind, bind_ack, needs_shared, request, response, run

MAX_NS = (1 << 63) - 1
NETMON_HEADER = 72


def rpc_frames() -> list[bytes]:
    """An Ethernet-framed TCP conversation on port 135: bind (frame 4), bind_ack, a request (frame 6)
    and its response (frame 7)."""
    c = Conversation().handshake()
    c.send(True, bind(1, [(0, EPM, 3, [NDR])]))
    c.send(False, bind_ack(1, [(0, 0, NDR)]))
    c.send(True, request(2, 3, b"\0" * 24)).send(False, response(2, b"\0" * 8))
    c.close()
    return [bytes(p) for p in c.packets]


# -- containers, built with struct --------------------------------------------------------------


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def pcapng(frames: list[bytes], ticks: list[int], tsresol: int | None = None, tsoffset: int | None = None) -> bytes:
    """One section, one Ethernet interface with the given if_tsresol / if_tsoffset options."""
    opts = b""
    if tsresol is not None:
        opts += struct.pack("<HH", 9, 1) + bytes([tsresol]) + b"\0\0\0"
    if tsoffset is not None:
        opts += struct.pack("<HHq", 14, 8, tsoffset)
    if opts:
        opts += struct.pack("<HH", 0, 0)
    out = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += _block(1, struct.pack("<HHI", 1, 0, 0) + opts)
    for data, t in zip(frames, ticks, strict=True):
        out += _block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(data), len(data)) + data)
    return out


def pcap(frames: list[bytes], times: list[tuple[int, int]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for data, (sec, usec) in zip(frames, times, strict=True):
        out += [struct.pack("<IIII", sec, usec, len(data), len(data)), data]
    return b"".join(out)


def netmon(frames: list[bytes], filetimes: list[int] | None = None, deltas_us: list[int] | None = None) -> bytes:
    """NetMon 2.3: 72-byte header (as NetMon writes it), frames with a 15-byte trailer carrying FILETIME
    (0 = take the capture start plus the frame's microsecond offset), then the frame table."""
    n = len(frames)
    filetimes = filetimes or [0] * n
    deltas_us = deltas_us or [i * 1000 for i in range(n)]
    body = bytearray()
    offsets = []
    for data, ft, delta in zip(frames, filetimes, deltas_us, strict=True):
        offsets.append(NETMON_HEADER + len(body))
        body += struct.pack("<QII", delta, len(data), len(data)) + data
        body += struct.pack("<HIQB", 1, 0, ft, 0)
    table_off = NETMON_HEADER + len(body)
    head = struct.pack("<4sBBH8HII", b"GMBU", 3, 2, 1, 2024, 3, 5, 1, 10, 0, 0, 0, table_off, 4 * n)
    return head.ljust(NETMON_HEADER, b"\0") + bytes(body) + struct.pack(f"<{n}I", *offsets)


def analyze_cli(tmp_path: Path, *paths: Path | str) -> tuple[Any, dict[str, list[dict[str, str]]]]:
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["analyze", "-q", *map(str, paths), "-o", str(out)])
    tables = {}
    for name in ("binds", "calls", "connections", "violations", "captures", "timeline", "data_quality"):
        p = out / f"{name}.csv"
        if p.exists():
            with p.open() as fh:
                tables[name] = list(csv.DictReader(fh))
    return res, tables


# -- item 1: timestamps --------------------------------------------------------------------------


def _ns_ticks(frames: list[bytes], first: int) -> list[int]:
    return [first + i * 1000 for i in range(len(frames))]


TS_CASES = {
    # if_tsresol 10^-0 (seconds): a plausible tick count times 10^9 passes 2^63 ns.
    "pcapng_tsresol": lambda f: pcapng(f, [10**10 + i for i in range(len(f))], tsresol=0),
    # if_tsoffset pushing past 2^63 ns.
    "pcapng_tsoffset_high": lambda f: pcapng(f, _ns_ticks(f, 1), tsresol=9, tsoffset=(1 << 62) // 10**8),
    # if_tsoffset pushing before 1970.
    "pcapng_tsoffset_negative": lambda f: pcapng(f, _ns_ticks(f, 1), tsresol=9, tsoffset=-(10**10)),
    # the maximal tick count at nanosecond resolution.
    "pcapng_max_ticks": lambda f: pcapng(f, [(1 << 64) - 1] * len(f), tsresol=9),
    # NetMon FILETIME at its maximum.
    "netmon_filetime_max": lambda f: netmon(f, filetimes=[(1 << 64) - 1] * len(f)),
    # NetMon microsecond offset at its maximum (no FILETIME).
    "netmon_offset_max": lambda f: netmon(f, deltas_us=[(1 << 64) - 1] * len(f)),
    # pcap: a microsecond field of more than a second.
    "pcap_fraction": lambda f: pcap(f, [(1_700_000_000, 2_000_000 + i) for i in range(len(f))]),
}


@pytest.mark.parametrize("case", list(TS_CASES))
def test_out_of_range_timestamps_are_unknown_not_a_crash(tmp_path: Path, case: str) -> None:
    """Every frame of the file has the bad time, the bind included: the file is read, the tables are
    built and written, the times are empty, and one violation counts the frames."""
    frames = rpc_frames()
    path = tmp_path / ("x.cap" if case.startswith("netmon") else "x.pcap")
    path.write_bytes(TS_CASES[case](frames))
    res, t = analyze_cli(tmp_path, path)
    assert res.exit_code == 0, res.output
    (bad,) = [v for v in t["violations"] if v["what"] == "timestamp_out_of_range"]
    assert bad["frame"] == "1" and bad["detail"].startswith(f"{len(frames)} frame(s)")
    assert [b["ts"] for b in t["binds"]] == [""]  # the bind was decoded, its time is unknown
    assert t["connections"] and t["connections"][0]["first_ts"] == ""
    assert t["captures"][0]["first_ts"] == "" and t["captures"][0]["error"] == ""


def test_one_bad_time_among_good_ones(tmp_path: Path) -> None:
    frames = rpc_frames()
    ticks = _ns_ticks(frames, 1_700_000_000 * 10**9)
    ticks[0] = ticks[3] = ticks[5] = (1 << 64) - 1  # the SYN's, the bind's and the request's frames
    path = tmp_path / "x.pcapng"
    path.write_bytes(pcapng(frames, ticks, tsresol=9))
    res, t = analyze_cli(tmp_path, path)
    assert res.exit_code == 0
    (bad,) = [v for v in t["violations"] if v["what"] == "timestamp_out_of_range"]
    assert bad["frame"] == "1" and bad["detail"].startswith("3 frame(s)")
    assert t["binds"][0]["ts"] == ""
    (call,) = t["calls"]
    assert call["ts"] == "" and call["rtt_s"] == "" and call["response_frame"] == "7"  # no time, no rtt
    assert t["captures"][0]["first_ts"] == "2023-11-14T22:13:20.000001Z"  # the first known time: frame 2


def test_times_at_the_edges_of_the_range_are_kept(tmp_path: Path) -> None:
    frames = rpc_frames()[:2]
    path = tmp_path / "x.pcapng"
    path.write_bytes(pcapng(frames, [MAX_NS, 1], tsresol=9))
    r = open_capture(str(path))
    assert [ts for ts, *_ in r] == [MAX_NS, 1] and r.notes() == []


# -- items 2 (issue 9 item 5) and the decompression guard ----------------------------------------


def _big_pcap(n: int) -> tuple[bytes, list[bytes]]:
    import random

    rnd = random.Random(5)
    frames = [rnd.randbytes(rnd.randint(60, 1400)) for _ in range(n)]
    return pcap(frames, [(1_700_000_000 + i, 0) for i in range(n)]), frames


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_gzip_keeps_every_frame_before_the_cut(tmp_path: Path, keep: float) -> None:
    raw, frames = _big_pcap(3000)  # about 2 MB: the cut falls well past the first MiB of output
    gz = gzip.compress(raw, compresslevel=1)
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(gz[: int(len(gz) * keep)])
    r = open_capture(str(path))
    got = [bytes(buf[s:e]) for _ts, _l, buf, s, e in r]
    r.close()
    # Every frame whose bytes made it out of the decompressor is there, in order.
    assert got == frames[: len(got)] and len(got) > len(frames) * keep * 0.9 - 5
    assert r.truncated is not None and f"the last complete frame is {len(got)}" in r.truncated
    res, t = analyze_cli(tmp_path, path)
    assert res.exit_code == 0
    (row,) = [v for v in t["violations"] if v["what"] == "truncated"]
    assert f"the last complete frame is {len(got)}" in row["detail"]
    assert t["captures"][0]["frames"] == str(len(got)) and t["captures"][0]["truncated"] == "True"


def test_small_truncated_gzip_keeps_its_frames(tmp_path: Path) -> None:
    """Under 1 MiB: all was lost before, with exit 0 and 'after frame 0'."""
    frames = rpc_frames()
    gz = gzip.compress(pcap(frames, [(1_700_000_000, i) for i in range(len(frames))]))
    path = tmp_path / "small.pcap.gz"
    path.write_bytes(gz[:-12])  # the trailer (CRC, size) and a little data are gone
    res, t = analyze_cli(tmp_path, path)
    assert res.exit_code == 0
    assert len(t["binds"]) == 1 and int(t["captures"][0]["frames"]) >= len(frames) - 1


@pytest.mark.parametrize(
    "data",
    [
        gzip.compress(b"\xd4\xc3\xb2\xa1\x02\x00"),  # a pcap header cut at 6 bytes
        gzip.compress(b"\xd4\xc3\xb2\xa1" + bytes(range(1, 60)))[:22],  # the gzip stream cut inside the header
        gzip.compress(b"\x0a\x0d\x0d\x0a\x1c"),
        gzip.compress(b"GMBU\x03\x02"),
        b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00",
        gzip.compress(b"")[:5],
    ],
)
def test_file_shorter_than_its_header_is_not_a_capture(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "short.pcap.gz"
    path.write_bytes(data)
    res, t = analyze_cli(tmp_path, path)
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a capture file" in lines[0], lines
    assert t["captures"][0]["error"].startswith("not a capture file")


def test_gzip_ratio_guard_stops_a_bomb(tmp_path: Path) -> None:
    frame = bytes(1400)
    raw = pcap([frame] * 6000, [(1_700_000_000, 0)] * 6000)  # 8.5 MB of zeros and equal headers
    path = tmp_path / "bomb.pcap.gz"
    path.write_bytes(gzip.compress(raw, compresslevel=1))
    limits = Limits(max_gzip_ratio=20, gzip_ratio_floor_bytes=1 << 20)
    records = run([path], limits=limits)
    (cap,) = records.captures
    assert cap.truncated and 0 < cap.frames < 6000
    (v,) = [v for v in records.violations if v.what == "cap_gzip_ratio"]
    assert v.layer == "limits" and "20:1" in v.detail and f"after frame {cap.frames}" in v.detail
    # With the default guard the same file is read whole: real-looking ratios pass.
    assert run([path]).captures[0].frames == 6000


def test_default_guard_bounds_a_bomb_by_its_floor(tmp_path: Path) -> None:
    """1.1 GiB of zero frames from 1.2 MB of gzip (the same member repeated, RFC 1952 2.2): the default
    guard lets the first GiB through and stops there, naming the frame."""
    records = pcap([bytes(65535)] * 1024, [(1_700_000_000, 0)] * 1024)[24:]  # 64 MiB of records
    member = gzip.compress(records, compresslevel=9)
    path = tmp_path / "bomb.pcap.gz"
    path.write_bytes(gzip.compress(pcap([], [])) + member * 18)
    result = run([path])
    (cap,) = result.captures
    assert cap.truncated and 16_300 < cap.frames < 16_500  # 1 GiB is 16,380 of these 65,551-byte records
    (v,) = [v for v in result.violations if v.what == "cap_gzip_ratio"]
    assert "100:1" in v.detail and f"after frame {cap.frames}" in v.detail


def test_concatenated_gzip_members_are_one_file(tmp_path: Path) -> None:
    raw, frames = _big_pcap(50)
    half = len(raw) // 2
    path = tmp_path / "two.pcap.gz"
    path.write_bytes(gzip.compress(raw[:half]) + gzip.compress(raw[half:]) + b"\0" * 64)
    r = open_capture(str(path))
    assert [bytes(b[s:e]) for _t, _l, b, s, e in r] == frames and r.truncated is None


# -- item 4: NetMon as a stream -------------------------------------------------------------------


def _netmon_peak(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        r = open_capture(str(path))
        n = sum(1 for _ in r)
        r.close()
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_netmon_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    frame = rpc_frames()[3] + bytes(1300)
    small, large = tmp_path / "small.cap", tmp_path / "large.cap"
    small.write_bytes(netmon([frame] * 2_000))  # 2.9 MB: larger than the window already
    large.write_bytes(netmon([frame] * 12_000))  # 17 MB
    n_small, peak_small = _netmon_peak(small)
    n_large, peak_large = _netmon_peak(large)
    assert (n_small, n_large) == (2_000, 12_000)
    # The window (1 MiB, two while it slides) and one table block bound it, not the file's size.
    assert peak_large < 4 << 20 < large.stat().st_size / 4
    assert peak_large < 1.2 * peak_small + (256 << 10)


def test_netmon_gzip_and_out_of_order_frame_table(tmp_path: Path) -> None:
    frames = rpc_frames()
    data = bytearray(netmon(frames))
    n = len(frames)
    table_off = struct.unpack_from("<I", data, 24)[0]
    offsets = list(struct.unpack_from(f"<{n}I", data, table_off))
    struct.pack_into(f"<{n}I", data, table_off, *reversed(offsets))  # frames listed last first
    path = tmp_path / "rev.cap.gz"
    path.write_bytes(gzip.compress(bytes(data)))
    r = open_capture(str(path))
    assert isinstance(r, NetmonReader)
    assert [bytes(b[s:e]) for _t, _l, b, s, e in r] == list(reversed(frames))


def test_netmon_corrupt_lengths_end_cleanly(tmp_path: Path) -> None:
    frames = rpc_frames()
    data = bytearray(netmon(frames))
    struct.pack_into("<I", data, NETMON_HEADER + 12, 0xFFFFFFF0)  # frame 1 claims 4 GiB
    path = tmp_path / "bad.cap"
    path.write_bytes(bytes(data))
    r = open_capture(str(path))
    assert list(r) == [] and r.truncated is not None and "frame 1" in r.truncated
    data = bytearray(netmon(frames))
    path.write_bytes(bytes(data[:-8]))  # the frame table cut short: the frames are walked instead
    r = open_capture(str(path))
    assert [bytes(b[s:e]) for _t, _l, b, s, e in r] == frames
    assert r.truncated is not None and r.truncated.startswith("the frame table is missing")


def test_cut_netmon_keeps_every_frame_before_the_cut(tmp_path: Path) -> None:
    """NetMon puts its frame table at the end, so a cut loses it: the frames are walked in file order
    up to the cut (gzip-compressed or not), and a frame that does not look like one stops the walk."""
    frames = rpc_frames()
    data = netmon(frames)
    cut = data[: NETMON_HEADER + sum(16 + len(f) + 15 for f in frames[:6]) + 20]  # inside frame 7
    (tmp_path / "cut.cap").write_bytes(cut)
    (tmp_path / "cut.cap.gz").write_bytes(gzip.compress(data)[: len(gzip.compress(cut)) - 30])
    r = open_capture(str(tmp_path / "cut.cap"))
    assert [bytes(b[s:e]) for _t, _l, b, s, e in r] == frames[:6]
    r = open_capture(str(tmp_path / "cut.cap.gz"))
    got = [bytes(b[s:e]) for _t, _l, b, s, e in r]
    assert got == frames[: len(got)] and len(got) >= 4
    assert r.truncated is not None and f"the last complete frame is {len(got)}" in r.truncated
    garbage = bytearray(cut)
    struct.pack_into(
        "<H", garbage, NETMON_HEADER + sum(16 + len(f) + 15 for f in frames[:3]) - 15, 0x1234
    )  # frame 3's media
    (tmp_path / "garbage.cap").write_bytes(bytes(garbage))
    assert len(list(open_capture(str(tmp_path / "garbage.cap")))) == 2


# -- items 5 and 6: only regular files --------------------------------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def test_fifo_named_or_in_a_directory_is_an_error_not_a_hang(tmp_path: Path) -> None:
    good = tmp_path / "good.pcap"
    good.write_bytes(pcap(rpc_frames(), [(1_700_000_000, i) for i in range(len(rpc_frames()))]))
    fifo = _fifo(tmp_path / "named.pcap")
    d = tmp_path / "dir"
    d.mkdir()
    _fifo(d / "inner.pcap")
    res, t = analyze_cli(tmp_path, fifo, d, good)
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2 and all("is a FIFO (named pipe), not a regular file" in ln for ln in lines)
    assert len(t["binds"]) == 1  # the good file was analysed


def test_devices_and_sockets_are_refused(tmp_path: Path) -> None:
    import socket

    sock_path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(sock_path))
    try:
        for path, kind in (("/dev/null", "a character device"), (str(sock_path), "a socket")):
            with pytest.raises(CaptureError, match=f"is {kind}, not a regular file"):
                open_capture(path)
        res, _t = analyze_cli(tmp_path, "/dev/zero")
        assert res.exit_code == 1 and "is a character device" in res.stderr
    finally:
        s.close()


def test_dangling_link_in_a_directory_is_reported_not_skipped(tmp_path: Path) -> None:
    """Tests run as root, who can read any file: a dangling symlink is the unreadable entry here."""
    d = tmp_path / "d"
    d.mkdir()
    (d / "gone.pcap").symlink_to(tmp_path / "nowhere.pcap")
    (d / "notes.txt").write_text("not a capture: skipped, as before")
    (d / "notes.txt.gz").write_bytes(gzip.compress(b"not a capture either: skipped"))
    (d / "wrecked.pcap.gz").write_bytes(gzip.compress(b"\xd4\xc3\xb2\xa1" + bytes(range(1, 60)))[:12])
    assert [Path(p).name for p, _ in expand_paths([str(d)])] == ["gone.pcap", "wrecked.pcap.gz"]
    res, _t = analyze_cli(tmp_path, d)
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert lines[0] == f"rpc-analyzer: {d / 'gone.pcap'}: cannot open: No such file or directory"
    assert lines[1].startswith(f"rpc-analyzer: {d / 'wrecked.pcap.gz'}: not a capture file: compressed stream ends")
    assert len(lines) == 2


def test_unreadable_file_named_directly_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root can read a mode-000 file, so the denial is simulated: os.open and os.access say EACCES for
    that one path, as they would for another user. click must not turn it into a usage error (exit 2)."""
    secret = tmp_path / "secret.pcap"
    secret.write_bytes(pcap(rpc_frames(), [(1, 0)] * len(rpc_frames())))
    real_open, real_access = os.open, os.access

    def deny_open(path: Any, flags: int, *a: Any, **kw: Any) -> int:
        if str(path) == str(secret):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *a, **kw)

    def deny_access(path: Any, mode: int, *a: Any, **kw: Any) -> bool:
        return False if str(path) == str(secret) else real_access(path, mode, *a, **kw)

    monkeypatch.setattr(os, "open", deny_open)
    monkeypatch.setattr(os, "access", deny_access)
    res, t = analyze_cli(tmp_path, secret)
    assert res.exit_code == 1
    assert res.stderr.strip() == f"rpc-analyzer: {secret}: cannot open: Permission denied"
    assert t["captures"][0]["error"] == "cannot open: Permission denied"
    # Found in a directory, it is reported the same way, not skipped.
    res, t = analyze_cli(tmp_path / "o2", tmp_path)
    assert res.exit_code == 1
    assert res.stderr.strip() == f"rpc-analyzer: {secret}: cannot open: Permission denied"


def _netmon_whole_file(path: Path) -> list[bytes]:
    """The frames of a NetMon 2.x file read the old way, the whole file in memory (the reference)."""
    data = path.read_bytes()
    table_off, table_len = struct.unpack_from("<II", data, 24)
    out = []
    for (off,) in struct.iter_unpack("<I", data[table_off : table_off + table_len]):
        _delta_us, _orig, incl = struct.unpack_from("<QII", data, off)
        out.append(data[off + 16 : off + 16 + incl])
    return out


@needs_shared
def test_streamed_netmon_reader_gives_the_whole_file_records() -> None:
    """On every shared NetMon file: the same frames, in the same order, as reading the file whole."""
    checked = 0
    for cap in sorted(CAPTURES.rglob("*.cap")):
        if cap.read_bytes()[:4] != b"GMBU":
            continue
        r = open_capture(str(cap))
        got = [bytes(buf[s:e]) for _ts, _link, buf, s, e in r]
        assert r.truncated is None and r.bad_times == 0
        assert got == _netmon_whole_file(cap), cap
        checked += 1
    assert checked >= 8


def test_names_file_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "names.csv")
    res = CliRunner().invoke(main, ["names", "svcctl", "--names", str(fifo)])
    assert res.exit_code == 2 and "not a regular file" in res.stderr


def test_unlistable_subdirectory_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root can list any directory, so os.scandir (which os.walk uses) and os.open/os.listdir are made
    to refuse that one subdirectory, as they would for another user."""
    sub = tmp_path / "d" / "locked"
    sub.mkdir(parents=True)
    (tmp_path / "d" / "good.pcap").write_bytes(pcap(rpc_frames(), [(1, 0)] * len(rpc_frames())))
    real_scandir, real_open = os.scandir, os.open

    def deny(path: Any) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "scandir", lambda p=".": deny(p) if str(p) == str(sub) else real_scandir(p))
    monkeypatch.setattr(os, "open", lambda p, *a, **k: deny(p) if str(p) == str(sub) else real_open(p, *a, **k))
    assert [(Path(p).name, named) for p, named in expand_paths([str(tmp_path / "d")])] == [
        ("good.pcap", False),
        ("locked", False),
    ]
    res, t = analyze_cli(tmp_path, tmp_path / "d")
    assert res.exit_code == 1
    assert res.stderr.strip() == f"rpc-analyzer: {sub}: cannot open: Permission denied"
    assert len(t["binds"]) == 1


def test_tables_never_overflow_on_a_time_out_of_range() -> None:
    """The report layer's own guard: a time no reader should produce is unknown, not an OverflowError."""
    from analyzer.report.columns import TIME, frame

    df = frame({"ts": TIME}, {"ts": [1 << 64, -(1 << 70), 0, MAX_NS, 1_700_000_000 * 10**9]})
    assert df["ts"].isna().tolist() == [True, True, True, False, False]


def test_input_hashing_refuses_a_fifo_instead_of_waiting(tmp_path: Path) -> None:
    """manifest.json hashes every input: a FIFO there is an error entry, not a hang."""
    from analyzer.capture.digest import sha256_file
    from analyzer.report.manifest import hash_inputs

    fifo = _fifo(tmp_path / "p.pcap")
    with pytest.raises(OSError, match="not a regular file"):
        sha256_file(fifo)
    assert hash_inputs([str(fifo)])[str(fifo)]["error"] == "not a regular file"
