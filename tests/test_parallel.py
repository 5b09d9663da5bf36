"""Reading captures in a forked child ([analyzer.parallel.child]): the same records as in-process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.limits import DEFAULT_LIMITS
from analyzer.parallel import child as parallel
from analyzer.pipeline import Pipeline
from tests.conftest import SAMPLES

ROOT = Path(__file__).resolve().parents[1]
PATHS = [str(SAMPLES / n) for n in ("epm_map_session.pcap", "smb2_pipes.pcap", "cl_udp.pcap", "truncated.pcap")]


def _no_progress() -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext(None)


def test_child_records_equal_in_process_records() -> None:
    warmed = []
    child = parallel.read_in_child(PATHS, DEFAULT_LIMITS, _no_progress, lambda: warmed.append(os.getpid()))
    here = Pipeline(DEFAULT_LIMITS).run(PATHS)
    assert warmed == [os.getpid()]  # the warm-up ran here, in the parent
    assert child.binds == here.binds and child.calls == here.calls and child.endpoints == here.endpoints
    assert child.datagrams == here.datagrams and child.captures == here.captures
    assert child.connections == here.connections and child.violations == here.violations


def test_a_failing_child_falls_back_to_reading_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = parallel._run

    def flaky(paths: list[str], limits: object, progress: object) -> object:
        calls.append(os.getpid())
        if len(calls) == 1 and os.getpid() != parent:
            raise RuntimeError("the child breaks")
        return real(paths, limits, progress)  # type: ignore[arg-type]

    parent = os.getpid()
    monkeypatch.setattr(parallel, "_run", flaky)
    records = parallel.read_in_child(PATHS, DEFAULT_LIMITS, _no_progress, lambda: None)
    assert records.binds  # read again, in this process
    assert calls[-1] == parent


def test_without_fork_it_reads_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "fork")
    order = []
    records = parallel.read_in_child(PATHS, DEFAULT_LIMITS, _no_progress, lambda: order.append("warm"))
    assert order == ["warm"] and records.binds


def test_the_child_reads_and_nothing_runs_in_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    ran = []
    real = parallel._run

    def spy(paths: list[str], limits: object, progress: object) -> object:
        ran.append(os.getpid())  # appended in the child's memory when it runs there
        return real(paths, limits, progress)  # type: ignore[arg-type]

    monkeypatch.setattr(parallel, "_run", spy)
    records = parallel.read_in_child(PATHS, DEFAULT_LIMITS, _no_progress, lambda: None)
    assert records.binds and ran == []  # no fallback: the child's records came through


def test_a_reader_process_spools_records_without_importing_pandas() -> None:
    code = (
        "import pickle, sys\n"
        "from analyzer.parallel.child import without_pandas\n"
        "without_pandas()\n"
        "from analyzer.pipeline import Pipeline\n"
        f"records = Pipeline().run({PATHS!r})\n"
        "records.binds.flush()\n"
        "assert records.binds._files[0].endswith('.arrow'), records.binds._files\n"
        "pickle.dumps(records)\n"
        "print('pandas' in sys.modules, len(records.binds))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", str(len(Pipeline(DEFAULT_LIMITS).run(PATHS).binds))]


def test_a_worker_reads_a_session_without_importing_pandas() -> None:
    code = (
        "import concurrent.futures as cf, multiprocessing, sys\n"
        "from analyzer.limits import DEFAULT_LIMITS\n"
        "from analyzer.parallel import multicore, units\n"
        "def read(paths):\n"
        "    r = units.analyse_session(1, multicore.plan(paths)[0], DEFAULT_LIMITS)\n"
        "    return 'pandas' in sys.modules, len(r.records.binds)\n"
        "ctx = multiprocessing.get_context('fork')\n"
        "with cf.ProcessPoolExecutor(1, ctx, initializer=multicore._start_worker, initargs=(None,)) as pool:\n"
        f"    print(*pool.submit(read, {PATHS[:1]!r}).result())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", str(len(Pipeline(DEFAULT_LIMITS).run(PATHS[:1]).binds))]
