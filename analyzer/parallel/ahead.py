"""A result computed ahead in a forked child while this process goes on: the second core after reading.

Once the captures are read, a run's remaining work is the tables, the views, the findings and the
files, all in one process: with the reading on every core, that part is what an `analyze` on two cores
waits for (Amdahl). Its largest piece that nothing else waits on is the findings (57 rules over the
base tables; their result is small, bounded by techniques, hosts and bursts). `in_child(make)` forks:
the child runs `make()` (on what the parent had built, shared copy on write, and the records on disk)
and sends the pickled result back; the parent meanwhile writes the rest and collects it when needed.

The child shares the parent's memory as it was at the fork (copy on write) and the records' run
directory (read only); it leaves with `os._exit`, so that nothing of the parent's cleanup (the run
directory's removal) runs there. Where fork is not available, or the child fails or is killed, the
parent runs `make()` itself: the result never depends on the path taken.

Layering: the parallel layer; it knows nothing of what it computes.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_child(make: Callable[[], T]) -> Callable[[], T]:
    """Start `make()` in a forked child; the callable returned gives its result (waiting for the
    child), or what `make()` returns here when the child could not give one. Call it once."""
    if not hasattr(os, "fork"):
        return make
    sys.stdout.flush()  # what is buffered would be written twice: by the child at its exit too
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, leave without the parent's cleanup
        os.close(r)
        code = 0
        try:
            with os.fdopen(w, "wb") as out:
                pickle.dump(make(), out, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # anything at all (a broken pipe: the parent left): the parent computes
            code = 1
        finally:
            os._exit(code)
    os.close(w)

    def collect() -> T:
        with os.fdopen(r, "rb") as inp:
            try:
                made: T = pickle.load(inp)  # streamed from the pipe
                ok = True
            except Exception:  # a child that died mid-answer: what it sent is not a result
                ok = False
        _pid, status = os.waitpid(pid, 0)
        if ok and os.waitstatus_to_exitcode(status) == 0:
            return made
        return make()

    return collect
