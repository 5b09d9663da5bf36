"""Reading captures in a forked child ([analyzer.parallel.child]): the same records as in-process."""

from __future__ import annotations

import contextlib
import os

import pytest

from analyzer.limits import DEFAULT_LIMITS
from analyzer.parallel import child as parallel
from analyzer.pipeline import Pipeline
from tests.conftest import SAMPLES

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
