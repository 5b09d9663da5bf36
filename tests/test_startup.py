"""A run's fixed costs: the console script's quick exit (`cli.app.leave`) and the collector frozen
after the tables' imports (`cli.reading.frozen_after`). Each keeps what the slow way did."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import app, main
from analyzer.cli.app import leave
from analyzer.cli.reading import frozen_after
from tests.conftest import SAMPLES


def _script(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    """`python -m analyzer ARGS` (the console script's `run`), with a temporary directory of its own."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.run(
        [sys.executable, "-m", "analyzer", *args], capture_output=True, text=True, check=False, env=env
    )


def test_the_script_exits_with_the_commands_code_and_its_whole_output(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    piped = _script(["names", "svcctl"], tmp)
    assert piped.returncode == 0 and piped.stdout == CliRunner().invoke(main, ["names", "svcctl"]).output
    (tmp_path / "empty").mkdir()
    none = _script(["analyze", str(tmp_path / "empty"), "-o", str(tmp_path / "o")], tmp)
    assert none.returncode == 3 and "no capture files" in none.stderr
    assert _script(["names", "no-such-interface-anywhere"], tmp).returncode == 1


def test_the_script_removes_its_run_directory_and_writes_every_table(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    proc = _script(["analyze", str(SAMPLES / "epm_map_session.pcap"), "-o", str(out)], tmp)
    assert proc.returncode == 0, proc.stderr
    assert "context items bound" in proc.stdout  # the summary, flushed before the process ended
    assert list(tmp.iterdir()) == []  # the spool's run directory: removed by its atexit finalizer
    manifest = (out / "manifest.json").read_text()
    assert manifest.rstrip().endswith("}") and "binds.csv" in manifest


def test_the_script_keeps_openblas_to_one_thread_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy's idle BLAS threads cost CPU a run: the console script asks for one before it runs the
    command, and leaves a value the user set."""
    seen: list[str | None] = []

    def command(**_kw: object) -> None:
        seen.append(os.environ.get("OPENBLAS_NUM_THREADS"))
        sys.exit(0)

    monkeypatch.setattr(app.main, "main", command)
    monkeypatch.setattr(app, "leave", lambda code: None)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    with pytest.raises(SystemExit):
        app.run()
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    with pytest.raises(SystemExit):
        app.run()
    assert seen == ["1", "4"]


@pytest.mark.parametrize("code", ["text is printed by the normal exit", 1.5])
def test_leave_returns_for_a_code_that_is_not_a_status(code: object) -> None:
    leave(code)  # returned: the process is still here


def test_leave_returns_while_another_thread_runs() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        leave(0)  # the normal exit would wait for the thread: so must this one
    finally:
        stop.set()
        other.join()


def test_frozen_after_collects_nothing_inside_and_freezes_what_was_made() -> None:
    assert gc.isenabled()
    before = gc.get_freeze_count()
    try:
        with frozen_after():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before + len(made)
    finally:
        gc.unfreeze()


def test_frozen_after_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with frozen_after():
            pass
        assert not gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


_HEAP_ROUNDS = """
import resource, sys
from analyzer.parallel.child import keep_heap
if sys.argv[1] == "kept":
    keep_heap()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
held = [b"x" * (4 << 20) for _ in range(6)]  # the heap grown once, as by the first buffers
del held
before = faults()
for _ in range(10):  # buffers made and freed as the reader and the hashing thread do
    held = [b"x" * (4 << 20) for _ in range(6)]
    del held
print(faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_reading_process_keeps_its_freed_heap() -> None:
    """`keep_heap` (the forked reader, a --jobs worker): 4 MiB buffers freed and made again reuse
    the heap's pages instead of faulting new ones in (about 6,000 faults a round without it)."""

    def faults(mode: str) -> int:
        proc = subprocess.run([sys.executable, "-c", _HEAP_ROUNDS, mode], capture_output=True, text=True, check=True)
        return int(proc.stdout)

    plain, kept = faults("plain"), faults("kept")
    assert plain > 10 * 1000  # the default gives the heap's top back, and faults it in again
    assert kept < plain / 4
