"""One capture session across files: splits and sensors give the whole file's records ([analyzer.capture.session],
[analyzer.capture.localise])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import analyzer
from analyzer.capture.session import FrameMap, sessions
from tests.conftest import SHARED, needs_shared

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "pcaps"
# Columns that say where a record fell: they differ between a whole file and its parts.
WHERE = {"capture", "frame", "ack_frame", "request_frame", "response_frame", "first_frame", "last_frame"}
WHERE |= {"epm_frame", "epm_capture"}
TABLES = ("binds", "endpoints", "calls", "connections")


def _split(path: Path, out: Path, per_file: int) -> list[Path]:
    out.mkdir()
    subprocess.run(["editcap", "-c", str(per_file), str(path), str(out / "part.pcap")], check=True)
    return sorted(out.iterdir())


def _rows(res: analyzer.AnalysisResult, table: str) -> list[str]:
    df: pd.DataFrame = getattr(res, table)
    cols = [c for c in df.columns if c not in WHERE]
    return sorted(str(r) for r in df[cols].astype(str).values.tolist())


def _same_as_whole(whole_path: Path, parts: list[Path], per_file: int, as_dir: bool) -> None:
    whole = analyzer.analyze([whole_path])
    split = analyzer.analyze([parts[0].parent] if as_dir else parts)
    for table in TABLES:
        assert _rows(split, table) == _rows(whole, table), table
    # Every record names the file and the frame within it where it fell.
    names = [p.as_posix() for p in parts]
    for table, col in (("calls", "frame"), ("binds", "frame"), ("connections", "first_frame")):
        got = sorted(zip(getattr(split, table)["capture"], getattr(split, table)[col], strict=True))
        want = sorted((names[(f - 1) // per_file], (f - 1) % per_file + 1) for f in getattr(whole, table)[col])
        assert got == want, table
    assert list(split.captures["capture"]) == names
    assert sum(split.captures["frames"]) == whole.captures["frames"].iloc[0]


@pytest.mark.parametrize("files", [4, 16])
def test_a_sample_split_by_editcap_is_the_whole_file(tmp_path: Path, files: int) -> None:
    whole = SAMPLES / "tcp_segmentation.pcap"
    frames = int(analyzer.analyze([whole]).captures["frames"].iloc[0])
    per_file = -(-frames // files)
    parts = _split(whole, tmp_path / "parts", per_file)
    _same_as_whole(whole, parts, per_file, as_dir=False)


@needs_shared
@pytest.mark.parametrize("files", [4, 16])
def test_a_generated_capture_split_into_files_is_the_whole_file(tmp_path: Path, files: int) -> None:
    cap = tmp_path / "bench.pcap"
    generator = SHARED / "bench" / "make_bench_pcap.py"
    subprocess.run([sys.executable, str(generator), "-o", str(cap), "--size", "2M", "--seed", "3"], check=True)
    frames = int(analyzer.analyze([cap]).captures["frames"].iloc[0])
    per_file = -(-frames // files)
    parts = _split(cap, tmp_path / "parts", per_file)
    _same_as_whole(cap, parts, per_file, as_dir=True)


def test_two_sensors_are_merged_by_timestamp(tmp_path: Path) -> None:
    """Alternate frames written to two files that overlap in time: merged as mergecap would."""
    from scapy.utils import rdpcap, wrpcap

    whole = SAMPLES / "epm_map_session.pcap"
    pkts = rdpcap(str(whole))
    one, two = tmp_path / "sensor1.pcap", tmp_path / "sensor2.pcap"
    wrpcap(str(one), pkts[0::2])
    wrpcap(str(two), pkts[1::2])
    split = analyzer.analyze([tmp_path])
    full = analyzer.analyze([whole])
    for table in TABLES:
        assert _rows(split, table) == _rows(full, table), table
    # Frame f of the whole file is frame (f + 1) // 2 of sensor1 (odd f) or f // 2 of sensor2.
    got = sorted(zip(split.calls["capture"], split.calls["frame"], strict=True))
    want = sorted(((one if f % 2 else two).as_posix(), (f + 1) // 2 if f % 2 else f // 2) for f in full.calls["frame"])
    assert got == want


def test_unrelated_files_stay_separate_captures(tmp_path: Path) -> None:
    groups = sessions(
        [str(SAMPLES / "linux_sll.pcap"), str(SAMPLES / "linux_sll2.pcap"), str(SAMPLES / "vlan_qinq.pcap")]
    )
    assert [len(g) for g in groups] == [1, 1, 1]  # different link types, different names


def test_frame_map_locates_runs() -> None:
    m = FrameMap("a")
    m.run(1, "a", 1)
    m.run(11, "b", 1)
    m.run(15, "a", 11)
    assert [m.locate(f) for f in (1, 10, 11, 14, 15, 20)] == [
        ("a", 1),
        ("a", 10),
        ("b", 1),
        ("b", 4),
        ("a", 11),
        ("a", 16),
    ]


def test_a_cut_file_inside_a_session_is_reported_and_the_next_read(tmp_path: Path) -> None:
    whole = SAMPLES / "tcp_segmentation.pcap"
    parts = _split(whole, tmp_path / "parts", 10)
    data = parts[1].read_bytes()
    parts[1].write_bytes(data[: len(data) - 7])  # cut inside its last record
    res = analyzer.analyze([tmp_path / "parts"])
    assert list(res.captures["truncated"]) == [False, True, False, False]
    frames = int(analyzer.analyze([whole]).captures["frames"].iloc[0])
    assert list(res.captures["frames"]) == [10, 9, 10, frames - 30]
    assert not res.errors and len(res.connections) == 1
    trunc = res.violations[res.violations["what"] == "truncated"]
    assert list(trunc["capture"]) == [parts[1].as_posix()]


def _file_frames(path: Path) -> list[tuple[int, bytes]]:
    from analyzer.capture.source import open_capture

    reader = open_capture(str(path), path.name)
    try:
        return [(ts, buf[s:e]) for ts, _link, buf, s, e in reader]
    finally:
        reader.close()


def _session_frames(paths: list[Path]) -> tuple[list[tuple[int, int, bytes]], FrameMap]:
    """(session frame number, ts, bytes) of every frame of the session's batches, and its frame map."""
    from analyzer.capture.session import SessionFrames

    (members,) = sessions([str(p) for p in paths])
    fmap = FrameMap(members[0].name)
    source = SessionFrames(members, fmap)
    got = [
        (b.frame0 + i + 1, int(b.ts[i]), b.buf[int(b.start[i]) : int(b.end[i])])
        for b in source.batches()
        for i in range(len(b.ts))
    ]
    source.close()
    return got, fmap


def test_a_series_comes_in_batches_numbered_through_the_session(tmp_path: Path) -> None:
    """Files that follow one another: each file's frames in turn, numbered 1, 2, ... across files."""
    parts = _split(SAMPLES / "tcp_segmentation.pcap", tmp_path / "parts", 7)
    got, fmap = _session_frames(parts)
    want = [f for p in parts for f in _file_frames(p)]
    assert [(ts, d) for _n, ts, d in got] == want
    assert [n for n, _ts, _d in got] == list(range(1, len(want) + 1))
    assert fmap.locate(8) == (parts[1].as_posix(), 1)


def test_overlapping_files_come_in_batches_merged_by_timestamp(tmp_path: Path) -> None:
    """Two sensors: the batches hold the frames merged by timestamp (ties in file order), each once."""
    from scapy.utils import rdpcap, wrpcap

    pkts = rdpcap(str(SAMPLES / "epm_map_session.pcap"))
    one, two = tmp_path / "sensor1.pcap", tmp_path / "sensor2.pcap"
    wrpcap(str(one), pkts[0::2])
    wrpcap(str(two), pkts[1::2])
    got, _fmap = _session_frames([one, two])
    tagged = [(ts, j, d) for j, p in enumerate((one, two)) for ts, d in _file_frames(p)]
    want = [(ts, d) for ts, _j, d in sorted(tagged, key=lambda t: (t[0], t[1]))]
    assert [(ts, d) for _n, ts, d in got] == want
    assert [n for n, _ts, _d in got] == list(range(1, len(want) + 1))


@needs_shared
def test_a_netmon_series_comes_in_batches_too(tmp_path: Path) -> None:
    """A reader without batches of its own (NetMon): its frames grouped into batches, the same frames."""
    caps = sorted((SHARED / "captures").rglob("*.cap"))
    assert caps
    cap = caps[0]
    series = [tmp_path / "nm1.cap", tmp_path / "nm2.cap"]
    for s in series:  # two copies of one file: they overlap in time, so the merge groups them too
        s.write_bytes(cap.read_bytes())
    got, _fmap = _session_frames(series)
    frames = _file_frames(cap)
    assert len(got) == 2 * len(frames)
    assert sorted((ts, d) for _n, ts, d in got) == sorted(frames + frames)


def _first_frame(path: Path, peek: bool) -> tuple[int, int, bytes] | str:
    """(time, link type, bytes) of the file's first frame as its reader gives it, or why there is none."""
    from analyzer.capture.source import open_capture
    from analyzer.errors import CaptureError

    try:
        reader = open_capture(str(path), peek=peek)
    except CaptureError as e:
        return e.reason
    try:
        ts, link, buf, start, end = next(iter(reader))
        return ts, link, buf[start:end]
    except (StopIteration, OSError, EOFError, CaptureError) as e:
        return type(e).__name__
    finally:
        reader.close()


def _files() -> list[Path]:
    found = sorted(p for p in SAMPLES.rglob("*") if p.is_file())
    captures = SHARED / "captures"
    return found + (sorted(p for p in captures.rglob("*") if p.is_file()) if captures.is_dir() else [])


def test_a_peek_reads_the_first_frame_every_full_read_does() -> None:
    """`open_capture(peek=True)` (the session plan's first small read) gives each sample's and shared
    capture's first frame exactly as the full reader does, or fails the same way."""
    files = _files()
    assert len(files) > 20
    for path in files:
        assert _first_frame(path, True) == _first_frame(path, False), path


@pytest.mark.parametrize("first_len", [10, 65_000, 65_536 - 40, 65_536 - 39, 200_000])
@pytest.mark.parametrize("cut", ["none", "second", "first"])
def test_a_peek_completes_a_first_frame_longer_than_its_read(tmp_path: Path, first_len: int, cut: str) -> None:
    """A first record that runs past the peek's first read (`source.PEEK_BYTES`), whole or cut short
    by the file's end: the same frame, or the same failure, as the full read."""
    import struct

    record = struct.pack("<IIII", 1_700_000_000, 5, first_len, first_len) + b"\x00" * first_len
    second = struct.pack("<IIII", 1_700_000_001, 6, 60, 60) + b"\x01" * 60
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262_144, 1) + record + second
    keep = {"none": len(data), "second": len(data) - 30, "first": 24 + 16 + first_len // 2}[cut]
    path = tmp_path / "big_first.pcap"
    path.write_bytes(data[:keep])
    assert _first_frame(path, True) == _first_frame(path, False)
    planned = sessions([str(path), str(tmp_path / "absent.pcap")])
    assert planned[0][0].first_ts == (None if cut == "first" else 1_700_000_000 * 10**9 + 5000)
