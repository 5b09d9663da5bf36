"""Every core of one machine: the capture sessions of a run read in worker processes, then merged.

`run(paths, limits, jobs)` makes the records `Pipeline(limits).run(paths)` makes, in the same order:
each session (`analyzer.capture.session`: a file, or the files of one rotated series) is read by a worker from
a fresh state (`units.analyse_session`), in session order; `merge.Merger` walks the results in
that order as they come (session i once 0 to i-1 are merged, while the workers read the rest),
has a worker read again from the serial state, ahead of the fresh sessions still to read, each
session that state could have changed (`units.redo_session`; reading ahead, from the state the
results before it predict), and appends the records. With one
job, one session, or a worker pool that breaks, the run is the serial one, in this process.

Workers are forked (they share the parent's loaded modules and name overrides) and report their
progress through a queue; the parent sums it into one (bytes, files) progress across all workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import queue as queue_module
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from analyzer.capture.session import Member, expand_globs, sessions
from analyzer.capture.source import expand_paths
from analyzer.limits import Limits
from analyzer.parallel.child import ProgressFactory, keep_heap, without_pandas
from analyzer.parallel.merge import Merger
from analyzer.parallel.units import SerialState, SessionResult, Tick, analyse_session, redo_session, session_bytes
from analyzer.pipeline import Pipeline, Progress
from analyzer.records import Records

_POLL_S = 0.1  # how often the parent looks at the progress queue while workers read

_queue: Any = None  # a worker's progress queue, set when the worker starts


def no_progress() -> AbstractContextManager[Progress | None]:
    return nullcontext(None)


AUTO_MIN_BYTES = 16_000_000  # below this much input, worker processes cost more than they save
AUTO_MIN_FILE_BYTES = 4_000_000  # nor when the files are this small on average (many tiny sessions)
TWO_CORES_READER = 2  # up to this many usable cores, one reading process is the default (`default_jobs`)


def default_jobs(paths: Sequence[str] = ()) -> int:
    """The cores this process may run on; 1 when `paths` hold less than `AUTO_MIN_BYTES` in all, or
    files of less than `AUTO_MIN_FILE_BYTES` on average (a fixed cost per session then outweighs
    the gain, and small captures tend to share ports and servers: the merge reads more again).

    And 1 on two cores (`TWO_CORES_READER`): one reading process keeps both busy already, its input's
    SHA-256 on a thread beside it (about 0.55 s of CPU a GB against some 1 s of reading) and the
    parent's imports, then the views' child, on the other core. Two workers hash, import and are
    merged on top of that: medians of alternated runs on two cores (`bench/run.py --jobs --large`),
    8 captures of 1.1 GB in all 1.63 s with two workers against 1.34 s with one forked reader, 8 of
    220 MB 0.63 against 0.59 s, 8 rotated files of 241 MB 0.57 against 0.56 s."""
    if usable_cores() <= TWO_CORES_READER:
        return 1
    if paths:
        sizes = []
        for p, _explicit in expand_paths(paths):
            with contextlib.suppress(OSError):
                sizes.append(os.path.getsize(p))
        if sum(sizes) < AUTO_MIN_BYTES or sum(sizes) < AUTO_MIN_FILE_BYTES * len(sizes):
            return 1
    return usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def plan(paths: Iterable[str]) -> list[list[Member]]:
    """The run's sessions, in the serial run's order."""
    return sessions([p for p, _explicit in expand_paths(expand_globs(paths))])


def _start_worker(q: Any) -> None:
    """A worker's start: its progress queue, no pandas (a worker builds no table; pyarrow's first
    `pa.array` would import it, 0.2 s of CPU in every worker: most of what made two reading workers
    cost more than one process reading the same files, see README "Every core"), and a C heap that
    keeps its freed memory (`child.keep_heap`)."""
    global _queue
    _queue = q
    without_pandas()
    keep_heap()


def _tick(index: int) -> Tick | None:
    q = _queue
    return None if q is None else (lambda pos: q.put((index, pos)))


def _analyse(index: int, members: list[Member], limits: Limits) -> SessionResult:
    return analyse_session(index, members, limits, _tick(index))


def _redo(index: int, members: list[Member], limits: Limits, state: SerialState) -> SessionResult:
    return redo_session(index, members, limits, state, None)


class Tally:
    """One progress across workers: bytes read in every session, files of the sessions finished."""

    def __init__(self, groups: list[list[Member]], progress: Progress | None) -> None:
        self.groups = groups
        self.progress = progress
        self.read: dict[int, int] = {}
        self.finished: set[int] = set()
        self.files = 0

    def drain(self, q: Any) -> None:
        while True:
            try:
                self.at(*q.get_nowait())
            except queue_module.Empty:
                break
        self.show()

    def at(self, index: int, pos: int) -> None:
        """Session `index` has read `pos` bytes."""
        if index not in self.finished:  # a late report must not take back a finished session's bytes
            self.read[index] = max(pos, self.read.get(index, 0))

    def done(self, index: int) -> None:
        self.finished.add(index)
        self.read[index] = session_bytes(self.groups[index])
        self.files += len(self.groups[index])

    def show(self) -> None:
        if self.progress is not None:
            self.progress(sum(self.read.values()), self.files)


class _Work:
    """The pool's tasks, given to it a few at a time: each session read fresh, in session order,
    and any read again (`redo`) as soon as the merge asks for it. At most `jobs + 1` tasks are in
    the pool at once (one waiting for each worker to free up: none idles), so a reading again
    goes to the next free worker: it holds up the merge of every session after it. Given all at
    once, as before, the pool queued every fresh session ahead of it (its call queue takes tasks
    as they are submitted, past cancelling)."""

    def __init__(self, pool: cf.ProcessPoolExecutor, jobs: int, groups: list[list[Member]], limits: Limits) -> None:
        self.pool, self.room, self.groups, self.limits = pool, jobs + 1, groups, limits
        self.todo = list(range(len(groups)))[::-1]  # fresh sessions not given yet, the next last
        self.tasks: dict[cf.Future[SessionResult], int | None] = {}  # a reading again's token, None if fresh

    def top_up(self) -> None:
        while self.todo and len(self.tasks) < self.room:
            i = self.todo.pop()
            self.tasks[self.pool.submit(_analyse, i, self.groups[i], self.limits)] = None

    def redo(self, token: int, i: int, state: SerialState) -> None:
        self.tasks[self.pool.submit(_redo, i, self.groups[i], self.limits, state)] = token


def _collect(work: _Work, q: Any, tally: Tally) -> Records | None:
    """The merged records (None: not mergeable), the progress shown while the results come. Each
    result is merged as soon as every session before it is (`merge.Merger`), while the workers
    read the rest: the merge's 0.06 to 0.1 s of CPU on the 8 benchmark captures used to follow the
    last worker on the run's critical path, and a session read again (see `_Work`) waited for
    every fresh one."""
    merger = Merger(work.limits)
    work.top_up()
    while work.tasks:
        finished, _running = cf.wait(list(work.tasks), timeout=_POLL_S, return_when=cf.FIRST_COMPLETED)
        for fut in finished:
            token = work.tasks.pop(fut)
            if token is not None:
                merger.redone(token, fut.result())
            else:
                r = fut.result()
                merger.offer(r)
                tally.done(r.index)
        for token, i, state in merger.progress():
            work.redo(token, i, state)
        work.top_up()
        tally.drain(q)
    assert merger.added == len(work.groups), "every session merged"
    return merger.records()


def run(
    paths: Iterable[str],
    limits: Limits,
    jobs: int,
    progress: ProgressFactory = no_progress,
    while_reading: Callable[[], None] | None = None,
    serial: Callable[[], Records] | None = None,
) -> Records:
    """The serial run's records, read by up to `jobs` worker processes; `while_reading` runs here
    while they read. `progress()` is entered once the workers are started (they are forked before
    any display thread exists) and gets the bytes and files read across all of them. With one job
    or one session, `serial()` reads (default: a `Pipeline` in this process, after `while_reading`)."""
    paths = list(paths)
    groups = plan(paths)
    pending = [while_reading] if while_reading is not None else []

    def meanwhile() -> None:
        while pending:
            pending.pop()()

    if jobs > 1 and len(groups) > 1 and "fork" in multiprocessing.get_all_start_methods():
        try:
            records = _parallel(groups, limits, min(jobs, len(groups)), progress, meanwhile)
        except Exception:  # a worker died (killed, out of memory) or failed: read serially, as without workers
            records = None
        if records is not None:
            return records
    if serial is not None:
        return serial()
    meanwhile()
    with progress() as tick:
        return Pipeline(limits).run(paths, tick)


def _parallel(
    groups: list[list[Member]],
    limits: Limits,
    jobs: int,
    progress: ProgressFactory,
    meanwhile: Callable[[], None],
) -> Records | None:
    """The merged records, or None when the sessions cannot be merged (see `merge.mergeable`).
    pyarrow is imported here before the workers are forked, so that they share it: each worker
    imported it for its first spool batch, and the parent again with pandas (the 8 independent
    benchmark captures with two workers: 2.79 s of CPU in all against 3.02 s, medians of 5
    alternated runs at a load of 8)."""
    import pyarrow  # noqa: F401  - before the fork, once: each worker imported it for its first spool batch

    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    with cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_start_worker, initargs=(q,)) as pool:
        work = _Work(pool, jobs, groups, limits)
        work.top_up()  # the workers are forked here, before any other thread of this process
        with progress() as tick:
            # This process's own work (the tables' imports) on a thread, while this one feeds the
            # pool and merges: the pool is given a few tasks at a time (see `_Work`).
            beside = _Beside(meanwhile)
            try:
                return _collect(work, q, Tally(groups, tick))
            finally:
                beside.join()


class _Beside:
    """A function run on a thread of its own; `join` waits for it and raises what it raised."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), name="rpc-analyzer-imports")
        self.thread.start()

    def _run(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as e:  # raised where it is joined
            self.error = e

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error
