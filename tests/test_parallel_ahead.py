"""The findings computed ahead in a forked child (`analyzer.parallel.ahead`) while the parent writes the
tables: the same frame as computed in-process, whichever path gives it, and the same bytes on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import analyzer
from analyzer.api import AnalysisResult
from analyzer.cli import main
from analyzer.parallel import ahead
from tests.conftest import SAMPLES

WITH_FINDINGS = [SAMPLES / "epm_lookup_dump.pcap", SAMPLES / "multifrag_calls.pcap"]


def test_the_result_is_made_in_a_child_and_given_back() -> None:
    collect = ahead.in_child(lambda: ("made in", os.getpid()))
    what, pid = collect()
    assert what == "made in" and pid != os.getpid()


def test_a_failing_child_leaves_the_work_to_the_parent() -> None:
    parent = os.getpid()

    def make() -> int:
        if os.getpid() != parent:
            raise RuntimeError("the child breaks")
        return os.getpid()

    assert ahead.in_child(make)() == parent


def test_without_fork_the_work_is_done_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "fork")
    assert ahead.in_child(os.getpid)() == os.getpid()


def test_findings_ahead_equal_the_findings_computed_here() -> None:
    here = analyzer.analyze(WITH_FINDINGS)
    there = analyzer.analyze(WITH_FINDINGS)
    there.findings_ahead()
    assert "_findings_ahead" in there.__dict__  # started, not yet picked up
    built = {"calls", "binds", "endpoints", "connections", "violations"}
    assert built <= there.__dict__.keys()  # here, before the fork: the child shares them
    assert len(here.findings) >= 3 and there.findings.equals(here.findings)
    assert "_findings_ahead" not in there.__dict__


def test_analyze_with_two_jobs_writes_the_same_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[bool] = []
    real = AnalysisResult.findings_ahead

    def counted(self: AnalysisResult) -> None:
        started.append(True)
        real(self)

    monkeypatch.setattr(AnalysisResult, "findings_ahead", counted)
    runner = CliRunner()
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        got = runner.invoke(main, ["analyze", *map(str, WITH_FINDINGS), "-o", str(out), "-q", "--jobs", jobs])
        assert got.exit_code == 0, got.output
    for name in ("findings.csv", "calls.csv", "binds.csv", "matrix.csv"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
    assert len((tmp_path / "2" / "findings.csv").read_text().splitlines()) >= 4
    assert started == [True]  # with --jobs 2 only
