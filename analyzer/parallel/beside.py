"""A piece of work done in a forked child while this process does another: the tables' second core.

Once the records are merged the rest of a run (building the tables and views, the findings, writing
the files) used to be one process. Its two halves share nothing but the records on disk: the base
tables are read back from the spool and written; the views and the findings read the same spool
and are written beside them. `beside(job)` forks a child that runs `job` (the views' half) while
this process goes on with the other, and returns a function that waits for the child and gives
what `job` returned, sent back pickled (the views' frames: small, aggregated). Forking is cheap
here: the child shares the parent's loaded pandas and the records' pages.

It falls back to running `job` here, after the rest, when forking is not available, when other
threads run in this process (a fork copies their locks, held or not: a Dask client, a packet feed),
or when the child fails: the result never depends on the path taken, only the time does.

Layering: generic; imports nothing of the analyzer.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def can_fork() -> bool:
    """Whether a child can be forked safely: fork exists and no other thread runs here."""
    return hasattr(os, "fork") and threading.active_count() == 1


def beside(job: Callable[[], T]) -> Callable[[], T]:
    """`job` started in a forked child; call the result to wait for it and get what it returned
    (or, if the child could not be made or failed, to run `job` here)."""
    if not can_fork():
        return job
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: do the job, send its result, leave without the parent's cleanup
        os.close(r)
        code = 0
        try:
            with os.fdopen(w, "wb") as out:
                pickle.dump(job(), out, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # anything at all: the parent then does the job itself
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(w)

    def wait() -> T:
        with os.fdopen(r, "rb") as inp:
            try:
                result: T = pickle.load(inp)
                ok = True
            except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError):
                ok = False
        _pid, status = os.waitpid(pid, 0)
        if ok and os.waitstatus_to_exitcode(status) == 0:
            return result
        return job()

    return wait
