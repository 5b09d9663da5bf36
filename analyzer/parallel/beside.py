"""A piece of work done in a forked child while this process does another: the tables' second core.

Once the records are merged the rest of a run (building the tables and views, the findings, writing
the files) used to be one process. Its two halves share nothing but the records: the base tables are
read back from the spool and written; the views and the findings read the same tables and are
written beside them. `with beside(job) as other:` forks a child that runs `job` (the views' half)
while this process goes on with the other; `other.result()` waits for the child and gives what `job`
returned, sent back pickled (the views' frames: small, aggregated). Forking is cheap here: the child
shares the parent's loaded pandas and the tables already built. Leaving the block without the result
(an error in this process) stops the child and reaps it, so no process outlives the run.

`job` runs here instead, when `result()` is called, if forking is not asked for, not available, or
not safe (other threads run in this process: a fork copies their locks, held or not; a Dask client,
a notebook kernel), or when the child fails: the result never depends on the path taken, only the
time does.

Layering: generic; imports nothing of the analyzer.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")


def can_fork() -> bool:
    """Whether a child can be forked safely: fork exists and no other thread runs here."""
    return hasattr(os, "fork") and threading.active_count() == 1


class Beside(Generic[T]):
    """A job running in a forked child (or, without one, run here when its result is asked for)."""

    def __init__(self, job: Callable[[], T], fork: bool = True) -> None:
        self.job = job
        self.pid: int | None = None
        self._fd = -1
        if fork and can_fork():
            self._start()

    def _start(self) -> None:
        r, w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: do the job, send its result, leave without the parent's cleanup
            os.close(r)
            code = 0
            try:
                with os.fdopen(w, "wb") as out:
                    pickle.dump(self.job(), out, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:  # anything at all: the parent then does the job itself
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(w)
        self.pid, self._fd = pid, r

    def result(self) -> T:
        """What the job returned: the child's, once it has ended, else the job run here."""
        if self.pid is None:
            return self.job()
        with os.fdopen(self._fd, "rb") as inp:
            try:
                result: T = pickle.load(inp)
                ok = True
            except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError):
                ok = False
        _pid, status = os.waitpid(self.pid, 0)
        self.pid = None
        if ok and os.waitstatus_to_exitcode(status) == 0:
            return result
        return self.job()

    def __enter__(self) -> Beside[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """A child whose result was not asked for is stopped and reaped."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            os.close(self._fd)
            self.pid = None


def beside(job: Callable[[], T], fork: bool = True) -> Beside[T]:
    """`job` started in a forked child when `fork` and it is safe (see the module docstring)."""
    return Beside(job, fork)
