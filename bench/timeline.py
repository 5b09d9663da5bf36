#!/usr/bin/env python3
"""A timeline per process of one `rpc-analyzer analyze` run: when each phase starts and ends.

    python bench/timeline.py LOG -- analyze CAPTURES -o OUT -q --jobs 2

wraps the run's phases (planning the sessions, the workers' sessions, the parent's imports, the
merge, the tables and the manifest) with a timer that appends one line per phase to LOG
(`pid phase start end cpu at`, seconds since this script started; cpu is the process's user + system
time spent in the phase, at the process's CPU time when the phase started: a forked process counts
from its fork), then prints the lines grouped by process. Forked workers inherit the
wrappers. A measuring aid for issue 14, not part of the analyzer.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import importlib.abc
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from typing import Any

T0 = time.time()
LOG = ""


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _note(phase: str, start: float, end: float, cpu: float, at: float | None = None) -> None:
    """One phase: its wall start and end, its CPU, and the process's CPU when it started."""
    at = _cpu() - cpu if at is None else at
    with open(LOG, "a") as fh:
        fh.write(f"{os.getpid()} {phase.replace(' ', '_')} {start - T0:.3f} {end - T0:.3f} {cpu:.3f} {at:.3f}\n")


def timed(phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, c0 = time.time(), _cpu()
        try:
            return fn(*args, **kwargs)
        finally:
            _note(phase, start, time.time(), _cpu() - c0)

    return wrapper


def patch(module: str, attr: str, phase: str) -> None:
    """Wrap `module.attr` (a dotted attribute); one that this tree lacks is left (an older tree
    measured as a baseline)."""
    mod = importlib.import_module(module)
    owner: Any = mod
    for p in attr.split("."):
        if not hasattr(owner, p):
            return
        owner = getattr(owner, p)
    wrap(mod, attr, phase)


def wrap(mod: Any, attr: str, phase: str) -> None:
    owner: Any = mod
    *path, last = attr.split(".")
    for p in path:
        owner = getattr(owner, p)
    setattr(owner, last, timed(phase, getattr(owner, last)))


def _thread_timed(phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A thread's whole life as one phase, its CPU that thread's alone (`time.thread_time`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, c0 = time.time(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            _note(phase, start, time.time(), time.thread_time() - c0, 0.0)

    return wrapper


def _records_wrapper(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(paths: Any, quiet: Any, warm_up: Callable[[], None]) -> Any:
        return fn(paths, quiet, timed("imports(warm_up)", warm_up))

    return wrapper


PATCHES = [
    ("analyzer.parallel.multicore", "plan", "plan"),
    ("analyzer.parallel.multicore", "analyse_session", "session(fresh)"),
    ("analyzer.parallel.multicore", "redo_session", "session(redo)"),
    ("analyzer.parallel.multicore", "merge", "merge"),  # before round 8: the whole merge after the workers
    ("analyzer.parallel.multicore", "Merger.step", "merge(session)"),
    ("analyzer.parallel.child", "_run", "read(child)"),
    ("analyzer.pipeline", "Pipeline.run", "pipeline.run"),
    ("analyzer.parallel.child", "pickle.dump", "pickled(send)"),
    ("analyzer.parallel.child", "pickle.load", "pickled(wait)"),
    ("analyzer.parallel.multicore", "_collect", "workers(wait)"),
]
AFTER_API = [
    ("analyzer.api", "from_records", "from_records"),
    ("analyzer.api", "write_tables", "write_tables"),
    ("analyzer.api", "write_manifest", "manifest"),
    ("analyzer.api", "Pass.finish", "readers(pass end)"),
    ("analyzer.api", "beside", "fork(views)"),
    ("analyzer.api", "AnalysisResult._write_items", "views(child)"),
]


class _AfterImport(importlib.abc.MetaPathFinder):
    """Wraps a module's functions once it is imported (where the run imports it, not earlier)."""

    def __init__(self, name: str, patches: list[tuple[str, str, str]]) -> None:
        self.name, self.patches = name, patches

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec: Any = importlib.util.find_spec(fullname)
        loader = spec.loader
        real_exec = loader.exec_module
        patches = self.patches

        def exec_module(module: Any) -> None:
            real_exec(module)
            for _m, attr, phase in patches:
                wrap(module, attr, phase)

        loader.exec_module = exec_module
        return spec


def main() -> None:
    global LOG
    LOG = sys.argv[1]
    args = sys.argv[3:] if sys.argv[2] == "--" else sys.argv[2:]
    open(LOG, "w").close()
    start, c0 = time.time(), _cpu()
    import analyzer.cli.app as app
    from analyzer.cli import reading

    _note("import_cli", start, time.time(), _cpu() - c0)
    for module, attr, phase in PATCHES:
        patch(module, attr, phase)
    reading._records = _records_wrapper(reading._records)
    digest = importlib.import_module("analyzer.capture.digest")
    digest.Sha256Stream._work = _thread_timed("sha256(thread)", digest.Sha256Stream._work)
    sys.meta_path.insert(0, _AfterImport("analyzer.api", AFTER_API))
    pid = os.getpid()

    def at_end() -> None:
        if os.getpid() == pid:
            _note("exit", time.time(), time.time(), _cpu())
            show()

    atexit.register(at_end)  # run by the script's quick exit (`cli.app.leave`) as by a normal one
    sys.argv = ["rpc-analyzer", *args]
    with contextlib.suppress(SystemExit):
        app.run()


def show() -> None:
    with open(LOG) as fh:
        lines = [ln.split() for ln in fh]
    by_pid: dict[str, list[list[str]]] = {}
    for ln in lines:
        by_pid.setdefault(ln[0], []).append(ln)
    for pid, rows in by_pid.items():
        print(f"pid {pid}")
        for _p, phase, s, e, cpu, at in sorted(rows, key=lambda r: float(r[2])):
            wall = float(e) - float(s)
            span = f"{float(s):6.3f} -> {float(e):6.3f}  ({wall:5.3f} s wall"
            print(f"  {phase:<18} {span}, {cpu} s CPU; process CPU {at} s at start)")


if __name__ == "__main__":
    main()
