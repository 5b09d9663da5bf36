"""Every core and a Dask cluster: the same records as the serial run, whatever reads the sessions.

A run's sessions are read in worker processes (`analyzer.parallel.multicore`) or on a `distributed.LocalCluster`
(`analyzer.parallel.distributed`) and merged (`analyzer.parallel.merge`); these tests compare every kind of record, in
order, and every table with the serial run's (`jobs=1`), on small inputs: the repository's samples,
captures made by the benchmark generator with different seeds, and a capture cut in two so that the
second part's connection is identified only by the first part's endpoint-mapper answer.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import analyzer
from analyzer.cli import main
from analyzer.limits import DEFAULT_LIMITS
from analyzer.parallel import merge, multicore, units
from analyzer.pipeline import Pipeline
from analyzer.records import Records
from tests.conftest import ROOT, SAMPLES, SHARED, needs_shared

KINDS = ("binds", "endpoints", "calls", "connections", "datagrams", "attempts", "violations")
GENERATOR = SHARED / "bench" / "make_bench_pcap.py"


def assert_same_records(a: Records, b: Records) -> None:
    for kind in KINDS:
        assert list(getattr(a, kind)) == list(getattr(b, kind)), kind
    assert a.captures == b.captures
    assert a.frame_maps == b.frame_maps
    assert a.book.entries() == b.book.entries()


def assert_same_result(a: analyzer.AnalysisResult, b: analyzer.AnalysisResult) -> None:
    assert_same_records(a.records, b.records)
    for name, df in a.tables.items():
        assert df.equals(getattr(b, name)), name
    for name, _make, _schema in a.view_items():
        assert getattr(a, name).equals(getattr(b, name)), name


@pytest.fixture(scope="module")
def independent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four independent captures (no digits in their names: not one series), different seeds."""
    if not GENERATOR.exists():
        pytest.skip(f"benchmark generator not found at {GENERATOR}")
    out = tmp_path_factory.mktemp("independent")
    for seed, name in enumerate(("alpha", "bravo", "charlie", "delta"), 3):
        cmd = [sys.executable, str(GENERATOR), "-o", str(out / f"{name}.pcap"), "--size", "1M", "--seed", str(seed)]
        subprocess.run(cmd, check=True, capture_output=True)
        (out / f"{name}.truth.json").unlink()
    return out


def test_samples_in_two_workers_are_the_serial_records() -> None:
    assert_same_result(analyzer.analyze([SAMPLES]), analyzer.analyze([SAMPLES], jobs=2))


@needs_shared
def test_independent_captures_in_two_workers_are_the_serial_records(independent: Path) -> None:
    serial = analyzer.analyze([independent])
    assert len(serial.captures) == 4 and len(serial.binds) > 0
    parallel = analyzer.analyze([independent], jobs=2)
    assert_same_result(serial, parallel)
    # The workers hashed each input as they read it, for manifest.json: no file is read twice.
    files = sorted(independent.glob("*.pcap"))
    assert parallel.records.digests == {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_a_session_the_earlier_ones_reach_is_read_again(cut_in_two: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serial = analyzer.analyze([cut_in_two])
    # The serial run names the second file's connection from the first file's EPM answer.
    by = set(serial.connections.loc[serial.connections["capture"].str.endswith("use.pcap"), "identified_by"])
    assert by == {"epm"}
    redone: list[int] = []

    class Counting(merge.Merger):
        def redone(self, token: int, r: units.SessionResult) -> None:
            redone.append(r.index)
            assert r.redone
            super().redone(token, r)

    monkeypatch.setattr(multicore, "Merger", Counting)
    assert_same_result(serial, analyzer.analyze([cut_in_two], jobs=2))
    assert redone == [1]


def test_fresh_sessions_that_nothing_reaches_are_not_read_again() -> None:
    groups = multicore.plan([str(SAMPLES / "cl_udp.pcap"), str(SAMPLES / "smb2_pipes.pcap")])
    results = [units.analyse_session(i, g, DEFAULT_LIMITS) for i, g in enumerate(groups)]

    def no_redo(i: int, state: units.SerialState) -> units.SessionResult:
        raise AssertionError(f"session {i} read again")

    serial = Pipeline(DEFAULT_LIMITS).run([m.path for g in groups for m in g])
    assert_same_records(serial, merge.merge(results, DEFAULT_LIMITS, no_redo))


def test_analyze_jobs_writes_the_same_files(tmp_path: Path) -> None:
    for jobs in ("1", "2"):
        res = CliRunner().invoke(main, ["analyze", str(SAMPLES), "-o", str(tmp_path / jobs), "-q", "--jobs", jobs])
        assert res.exit_code == 0, res.output
    files = sorted(p.name for p in (tmp_path / "1").glob("*.csv"))
    assert "binds.csv" in files and files == sorted(p.name for p in (tmp_path / "2").glob("*.csv"))
    for name in files:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


def test_a_local_cluster_reads_the_serial_records(cut_in_two: Path, tmp_path: Path) -> None:
    """The cluster runs in a child interpreter: distributed leaves threads behind it (its event loop,
    its thread pools), and a later test in this process that forks (tests/test_beside.py) would find
    them and be refused the fork, as `parallel.beside.can_fork` must refuse it."""
    pytest.importorskip("distributed")
    body = "import sys; from pathlib import Path; from tests.test_multicore import on_a_local_cluster as t; "
    body += "t(Path(sys.argv[1]), Path(sys.argv[2]))"
    child = [sys.executable, "-c", body, str(cut_in_two), str(tmp_path)]
    done = subprocess.run(child, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]


def on_a_local_cluster(cut_in_two: Path, tmp_path: Path) -> None:
    """The same records as the serial run, from a `distributed.LocalCluster` of two worker processes,
    by `analyze(client=...)` and by the command line's `--scheduler`; the partitioned Parquet dataset."""
    import distributed

    from analyzer.report.partitioned import read_table

    inputs = [cut_in_two, SAMPLES / "cl_udp.pcap", SAMPLES / "smb2_pipes.pcap"]
    serial = analyzer.analyze(inputs)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        seen: list[tuple[int, int]] = []
        clustered = analyzer.analyze(inputs, client=client, progress=lambda done, n: seen.append((done, n)))
        args = ["analyze", *map(str, inputs), "-o", str(tmp_path / "cli"), "--format", "parquet", "-q"]
        res = CliRunner().invoke(main, [*args, "--scheduler", cluster.scheduler_address])
        assert res.exit_code == 0, res.output
    cli_calls = read_table(tmp_path / "cli", "calls")
    assert cli_calls.sort_values(list(cli_calls.columns), ignore_index=True).equals(
        serial.calls.sort_values(list(serial.calls.columns), ignore_index=True)
    )
    assert_same_result(serial, clustered)
    paths = [m.path for g in multicore.plan([str(p) for p in inputs]) for m in g]
    assert seen[-1] == (sum(Path(p).stat().st_size for p in paths), len(paths))  # one progress, all workers
    written = clustered.write(tmp_path, "parquet", partitioned=True)
    assert (tmp_path / "binds").is_dir() and tmp_path / "binds" in written
    parts = sorted(p.name for p in (tmp_path / "calls").iterdir())
    assert parts == [f"part-{u:05d}.parquet" for u in sorted(set(clustered.calls["capture"].map(unit_of(clustered))))]
    for name, df in serial.tables.items():
        back = read_table(tmp_path, name)
        keys = list(df.columns)
        assert back.sort_values(keys, ignore_index=True).equals(df.sort_values(keys, ignore_index=True)), name


def unit_of(result: analyzer.AnalysisResult) -> dict[str, int]:
    from analyzer.report.partitioned import units

    return units(result.records)


def test_one_progress_across_the_workers(cut_in_two: Path) -> None:
    inputs = [cut_in_two, SAMPLES / "cl_udp.pcap", SAMPLES / "smb2_pipes.pcap"]
    seen: list[tuple[int, int]] = []
    analyzer.analyze(inputs, jobs=2, progress=lambda done, files: seen.append((done, files)))
    paths = [m.path for g in multicore.plan([str(p) for p in inputs]) for m in g]
    total = sum(Path(p).stat().st_size for p in paths)
    assert seen and seen[-1] == (total, len(paths))  # every byte and every file, once all are read
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(seen))


def test_sessions_hand_their_spool_over_on_one_machine_and_lists_to_another(cut_in_two: Path) -> None:
    members = multicore.plan([str(SAMPLES / "epm_map_session.pcap")])[0]
    local = units.analyse_session(1, members, DEFAULT_LIMITS)
    portable = units.analyse_session(1, members, DEFAULT_LIMITS, portable=True)
    assert isinstance(local.records, Records) and isinstance(portable.records, units.SessionRecords)
    assert list(local.records.binds) == portable.records.binds and portable.records.binds
    local.records.close()
    inputs = [cut_in_two, SAMPLES / "cl_udp.pcap", SAMPLES / "smb2_pipes.pcap"]
    assert_same_result(analyzer.analyze(inputs), analyzer.analyze(inputs, jobs=2))


def test_files_that_cannot_be_read_are_reported_the_same(tmp_path: Path) -> None:
    (tmp_path / "notes.pcap").write_bytes(b"not a capture at all")
    shutil.copyfile(SAMPLES / "truncated.pcap", tmp_path / "cut.pcap")
    inputs = [tmp_path / "cut.pcap", tmp_path / "notes.pcap", SAMPLES / "epm_map_session.pcap", tmp_path / "gone.pcap"]
    serial = analyzer.analyze(inputs)
    assert len(serial.errors) == 2
    parallel = analyzer.analyze(inputs, jobs=2)
    assert parallel.errors == serial.errors
    assert_same_result(serial, parallel)


def test_rotated_series_are_units_too(cut_in_two: Path, tmp_path: Path) -> None:
    for series in ("north", "south"):  # two sensors, each a series of two files
        (tmp_path / series).mkdir()
        shutil.copyfile(cut_in_two / "announce.pcap", tmp_path / series / "ring_0001.pcap")
        shutil.copyfile(cut_in_two / "use.pcap", tmp_path / series / "ring_0002.pcap")
    inputs = [tmp_path / "north", tmp_path / "south", SAMPLES / "smb2_pipes.pcap"]
    assert [len(g) for g in multicore.plan([str(p) for p in inputs])] == [2, 2, 1]
    assert_same_result(analyzer.analyze(inputs), analyzer.analyze(inputs, jobs=2))
