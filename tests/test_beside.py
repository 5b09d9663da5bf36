"""The tables' second core (`analyzer.parallel.beside`): a job in a forked child, the same result.

`AnalysisResult.write` with `cores=2` makes most views and the findings in a forked child while the
parent writes the base tables; these tests check that the files are the same bytes, listed in the
same order in manifest.json, and that the views the child made come back to the result.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

import analyzer
from analyzer.parallel.beside import beside, can_fork
from tests.conftest import SAMPLES

needs_fork = pytest.mark.skipif(not can_fork(), reason="needs fork and no other thread")


@needs_fork
def test_the_job_runs_in_a_child_and_its_result_comes_back() -> None:
    with beside(lambda: (os.getpid(), list(range(5)))) as other:
        pid, values = other.result()
    assert pid != os.getpid() and values == [0, 1, 2, 3, 4]


@needs_fork
def test_a_child_whose_result_is_not_asked_for_is_stopped() -> None:
    with pytest.raises(KeyError), beside(lambda: time.sleep(30)) as other:
        child = other.pid
        assert child is not None
        raise KeyError("the parent fails")
    with pytest.raises(ChildProcessError):  # reaped already
        os.waitpid(child, os.WNOHANG)


@needs_fork
def test_a_child_that_fails_leaves_the_job_to_the_parent() -> None:
    parent = os.getpid()

    def job() -> int:
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        return 42

    with beside(job) as other:
        assert other.pid is not None
        assert other.result() == 42


def test_without_fork_the_job_runs_here(monkeypatch: pytest.MonkeyPatch) -> None:
    with beside(os.getpid, fork=False) as other:
        assert other.pid is None and other.result() == os.getpid()
    monkeypatch.setattr("analyzer.parallel.beside.can_fork", lambda: False)
    with beside(os.getpid) as other:
        assert other.pid is None and other.result() == os.getpid()


@needs_fork
@pytest.mark.parametrize("big", [False, True], ids=["small tables", "a big table"])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_two_cores_write_the_same_files_as_one(
    tmp_path: Path, fmt: str, big: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Either way the views are split (`api._BESIDE`, with a big table `_BESIDE_BIG` too)."""
    if big:  # every table counts as big: data_quality is made in the child
        monkeypatch.setattr("analyzer.api.CACHE_ROWS", 0)
    outs = {}
    results = {}
    for cores in (1, 2):
        res = analyzer.analyze([SAMPLES])
        res.cores = cores
        outs[cores] = res.write(tmp_path / str(cores), fmt)
        results[cores] = res
    assert [p.name for p in outs[1]] == [p.name for p in outs[2]]
    assert "findings" in results[2].__dict__  # made by the child, sent back
    # data_quality's rows were streamed from a spill: made in the child they are not sent back
    assert ("data_quality" in results[2].__dict__ or "data_quality" in results[2]._streamed) is not big
    for one, two in zip(outs[1], outs[2], strict=True):
        assert one.read_bytes() == two.read_bytes(), one.name
    manifests = [json.loads((tmp_path / str(c) / "manifest.json").read_text()) for c in (1, 2)]
    assert manifests[0]["tables"] == manifests[1]["tables"]
    for name in ("endpoint_inventory", "timeline", "matrix", "data_quality", "findings"):
        pd.testing.assert_frame_equal(getattr(results[1], name), getattr(results[2], name))


@pytest.mark.parametrize(("usable", "expected"), [(1, 1), (2, 2), (8, 2)])
def test_a_small_input_read_by_one_worker_still_writes_on_two_cores(
    monkeypatch: pytest.MonkeyPatch, usable: int, expected: int
) -> None:
    """The reading's one worker (the bundled samples are under `AUTO_MIN_BYTES`) does not keep the
    tables from a second core; a machine of one core keeps to it."""
    from analyzer.cli import reading
    from analyzer.parallel import multicore

    monkeypatch.setattr(multicore, "usable_cores", lambda: usable)
    assert multicore.default_jobs([str(SAMPLES)]) == 1
    assert reading.read_captures((str(SAMPLES),), True).cores == expected


@pytest.mark.parametrize(("usable", "expected"), [(1, 1), (2, 1), (3, 3), (8, 8)])
def test_two_cores_read_in_one_process_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, usable: int, expected: int
) -> None:
    """An input big enough for workers gets them from three cores on; on two, one reading process
    (its hashing thread and the views' child take the other core: `multicore.TWO_CORES_READER`)."""
    from analyzer.parallel import multicore

    big = tmp_path / "big.pcap"
    with big.open("wb") as f:
        f.truncate(2 * multicore.AUTO_MIN_BYTES)  # sparse: only its size is read
    monkeypatch.setattr(multicore, "usable_cores", lambda: usable)
    assert multicore.default_jobs([str(big)]) == expected
