"""The streaming API: every bundled sample through dpkt's and scapy's readers, and fed one frame at
a time, gives the records `analyze()` gives for the file."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import analyzer
from analyzer.packets import PacketFeed, to_ns
from analyzer.records import Records
from tests.conftest import SAMPLES

TABLES = ("binds", "endpoints", "calls", "connections", "violations")
PCAPS = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz"))
NANO = {"nanosecond_bigendian.pcap"}  # dpkt gives float seconds: nanoseconds do not survive
TRUNCATED = {"truncated.pcap"}  # the file reader reports the cut; a packet source just ends
# dpkt's pcapng reader applies the first interface's timestamp resolution to every interface
DPKT_WRONG = {"two_interfaces.pcapng"}


def _open(path: Path) -> Any:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _dpkt(path: Path) -> Iterator[tuple[float, bytes]]:
    """dpkt's reader for the file, stopping quietly where dpkt stops understanding it."""
    import dpkt

    with _open(path) as f:
        head = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if head == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        try:
            yield from reader
        except (dpkt.NeedData, dpkt.UnpackError, ValueError):
            return


def _link(path: Path) -> int:
    import dpkt

    with _open(path) as f:
        head = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if head == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        return int(reader.datalink())


def _scapy(path: Path) -> Any:
    from scapy.utils import RawPcapNgReader, RawPcapReader

    if path.suffix == ".gz":
        return RawPcapReader(gzip.open(path, "rb"))
    with path.open("rb") as f:
        ng = f.read(4) == b"\x0a\x0d\x0d\x0a"
    return RawPcapNgReader(str(path)) if ng else RawPcapReader(str(path))


def _same(a: analyzer.AnalysisResult, b: analyzer.AnalysisResult, name: str, dpkt_times: bool = False) -> None:
    for table in TABLES:
        x, y = getattr(a, table), getattr(b, table)
        if table == "violations" and name in TRUNCATED:
            x = x[x["what"] != "truncated"].reset_index(drop=True)
        if dpkt_times and name in NANO:
            for col in [c for c in x.columns if str(x[c].dtype).startswith("datetime")]:
                assert ((x[col] - y[col]).abs() < pd.Timedelta(microseconds=1)).all()
                x, y = x.drop(columns=col), y.drop(columns=col)
        pd.testing.assert_frame_equal(x, y, obj=f"{name} {table}")
    assert a.captures["frames"].tolist() == b.captures["frames"].tolist() or name in TRUNCATED


@pytest.fixture(scope="module")
def baseline() -> dict[str, analyzer.AnalysisResult]:
    return {p.name: analyzer.analyze(p) for p in PCAPS}


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: p.name)
def test_dpkt_readers_give_the_same_records(path: Path, baseline: dict) -> None:
    if path.name in DPKT_WRONG:
        result = analyzer.analyze_packets(_dpkt(path), _link(path), name=path.as_posix())
        assert "timestamp out of range" in str(result.violations["detail"].tolist()), "refused, not a crash"
        return
    result = analyzer.analyze_packets(_dpkt(path), _link(path), name=path.as_posix())
    assert result.captures["format"].tolist() == ["packets"]
    _same(baseline[path.name], result, path.name, dpkt_times=True)


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: p.name)
def test_scapy_raw_readers_give_the_same_records(path: Path, baseline: dict) -> None:
    reader = _scapy(path)
    try:
        result = analyzer.analyze_packets(
            reader, int(getattr(reader, "linktype", None) or 0) if path.suffix != ".pcapng" else 1, name=path.as_posix()
        )
    finally:
        reader.close()
    _same(baseline[path.name], result, path.name)


@pytest.mark.parametrize("name", ["smb2_pipes.pcap", "epm_map_session.pcap", "cl_udp.pcap", "rpc_http_v2.pcap"])
def test_feeding_frames_one_at_a_time(name: str, baseline: dict) -> None:
    path = SAMPLES / name
    feed = PacketFeed(_link(path), name=path.as_posix())
    drained = []
    for i, (ts, buf) in enumerate(_dpkt(path)):
        feed.feed(ts, buf)
        if i % 7 == 6:
            drained.append(feed.drain())
    rest = feed.records()
    assert any(part.calls or part.binds for part in drained), "drains hand over records as they complete"
    merged = Records()  # what was drained, in order, then the rest: the whole run
    for part in [*drained, rest]:
        for table in ("binds", "calls", "endpoints", "connections", "violations", "datagrams"):
            for record in getattr(part, table):
                getattr(merged, table).append(record)
    merged.captures.extend(rest.captures)
    _same(baseline[name], analyzer.from_records(merged), name)
    with pytest.raises(RuntimeError):
        feed.feed(0, b"")


def test_timestamps() -> None:
    assert to_ns(1709287200.00166) == 1709287200001660000
    assert to_ns(1709287200) == 1709287200 * 10**9
    assert to_ns(1709287200001660123) == 1709287200001660123
    from decimal import Decimal

    assert to_ns(Decimal("1709287200.001660123")) == 1709287200001660123


def test_a_bad_item_ends_the_source_with_a_violation() -> None:
    for bad in [("x", None)], [(1.0,)], [(2**70, b"")], [(-5, b"")]:
        result = analyzer.analyze_packets([(1.0, b"\x00" * 60), *bad], 1, name="bad")
        assert result.captures["frames"].tolist() == [1]
        assert "truncated" in set(result.violations["what"])


def test_a_small_backlog_holds_the_feeder_back_without_losing_frames(baseline: dict) -> None:
    path = SAMPLES / "smb2_pipes.pcap"
    feed = PacketFeed(_link(path), name=path.as_posix(), backlog=2)
    for ts, buf in _dpkt(path):
        feed.feed(ts, buf)
    _same(baseline[path.name], analyzer.from_records(feed.records()), path.name)
