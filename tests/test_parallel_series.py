"""A rotated series whose conversations cross its file boundaries, read with every core and on a Dask
cluster: the same records and the same CSV bytes as the serial run.

epm_map_session.pcap cut into three files of one series: the endpoint-mapper conversation's first
request in file 1 and its answers in file 2; the connection to the port the mapper announced starts
in file 2, with its bind, and its calls are in file 3. Two independent captures beside it give the
workers more than one unit."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from click.testing import CliRunner

import analyzer
from analyzer.cli import main
from analyzer.parallel import multicore
from tests.conftest import SAMPLES
from tests.test_multicore import assert_same_result

CUTS = ("1-7", "8-17", "18-1000")


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if shutil.which("editcap") is None:
        pytest.skip("editcap not installed")
    out = tmp_path_factory.mktemp("series")
    (out / "ring").mkdir()
    src = str(SAMPLES / "epm_map_session.pcap")
    for i, frames in enumerate(CUTS, 1):
        subprocess.run(["editcap", "-r", src, str(out / "ring" / f"ring_{i:04d}.pcap"), frames], check=True)
    return [out / "ring", SAMPLES / "cl_udp.pcap", SAMPLES / "smb2_pipes.pcap"]


def _names(captures: Iterable[str]) -> set[str]:
    return {Path(c).name for c in captures}


def test_the_series_is_one_session_whose_conversations_cross_its_files(series: list[Path]) -> None:
    assert [len(g) for g in multicore.plan([str(p) for p in series])] == [3, 1, 1]
    serial = analyzer.analyze(series)
    conns = serial.connections.set_index("server_port")
    assert conns.loc[49667, "identified_by"] == "epm" and _names([conns.loc[49667, "capture"]]) == {"ring_0002.pcap"}
    calls = serial.calls[serial.calls["server_port"] == 49667]
    assert _names(calls["capture"]) == {"ring_0003.pcap"} and len(calls) == 7  # bound in file 2, called in 3
    epm = serial.calls[(serial.calls["server_port"] == 135) & serial.calls["capture"].str.contains("ring_")]
    assert _names(epm["capture"]) == {"ring_0001.pcap", "ring_0002.pcap"} and epm["response_frame"].notna().all()


def test_two_workers_read_the_serial_records(series: list[Path]) -> None:
    assert_same_result(analyzer.analyze(series), analyzer.analyze(series, jobs=2))


def test_a_local_cluster_reads_the_serial_records(series: list[Path]) -> None:
    distributed = pytest.importorskip("distributed")
    serial = analyzer.analyze(series)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert_same_result(serial, analyzer.analyze(series, client=client))


def test_the_csvs_are_the_same_bytes(series: list[Path], tmp_path: Path) -> None:
    for jobs in ("1", "2"):
        args = ["analyze", *map(str, series), "-o", str(tmp_path / jobs), "-q", "--jobs", jobs]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
    files = sorted(p.name for p in (tmp_path / "1").glob("*.csv"))
    assert {"binds.csv", "calls.csv", "findings.csv"} <= set(files)
    assert files == sorted(p.name for p in (tmp_path / "2").glob("*.csv"))
    for name in files:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
