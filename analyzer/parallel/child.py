"""Reading captures in a child process while the parent loads pandas: two cores, one run.

A run has two costly parts that do not depend on each other until the end: reading the captures
(pure Python, one core) and importing pandas and the name registry (about half a second, also one
core). `read_in_child` forks: the child runs the pipeline and sends back the pickled records (their
batches stay on disk, in a run directory the parent then owns); the parent meanwhile runs `warm_up`
and then unpickles. The child takes each input's SHA-256 as it reads it (`records.digests`, for
manifest.json), so no file is read twice. Where fork is not available, or the child fails, the
pipeline runs in this process instead (`read_here`, also what `--jobs 1` asks for: one process, one
core), so the result never depends on the path taken.
The child owns the progress display while it reads.
"""

from __future__ import annotations

import importlib.abc
import os
import pickle
import sys
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from analyzer.limits import Limits
from analyzer.pipeline import Pipeline, Progress
from analyzer.records import Records

ProgressFactory = Callable[[], AbstractContextManager[Progress | None]]


class _NoPandas(importlib.abc.MetaPathFinder):
    """An import finder that refuses pandas (see `without_pandas`)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError(f"{fullname} is not imported by a capture reader", name=fullname)


def without_pandas() -> None:
    """For a process while it only reads captures (the forked reader, a worker, and `--jobs 1` until
    its reading ends): make pandas unimportable there, unless it is already loaded. `pa.array`
    imports pandas on its first call only to ask whether the list it is given is a pandas object:
    0.13 to 0.2 s of CPU that a process building no table need not spend, and about 50 MiB resident
    beside the reading's own peak (pyarrow then takes pandas to be absent). A process that goes on
    to build tables calls `with_pandas` when its reading ends."""
    if "pandas" not in sys.modules and not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())


def with_pandas() -> None:
    """Undo `without_pandas`: pandas importable again, and pyarrow told it is there. pyarrow's pandas
    shim remembers a failed import (its `have_pandas` stays false, and `pa.array` would take a pandas
    Series for a plain sequence) until a call that needs pandas retries it: `_pandas_api.pd` is one,
    made here once pandas may load. Nothing when the guard was not set."""
    guards = [f for f in sys.meta_path if isinstance(f, _NoPandas)]
    if not guards:
        return
    for guard in guards:
        sys.meta_path.remove(guard)
    if "pyarrow" in sys.modules:
        import pyarrow

        pyarrow.lib._pandas_api.pd  # noqa: B018  (the retried import is the point)


# glibc's mallopt parameters (malloc.h) and the values a reading process sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_AT = 32 << 20  # blocks this large or larger are mapped on their own (glibc's largest default)
_TRIM_AT = 128 << 20  # free memory at the heap's top kept, up to this much


def _find_mallopt() -> Callable[[int, int], int] | None:
    """glibc's `mallopt`, looked up once, when this module is imported: in the parent, before any
    fork. Looked up in a forked child, the dynamic loader's lock could be held by a thread of the
    parent that the fork did not copy (an embedding program's), and the lookup would wait forever."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        found: Callable[[int, int], int] = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    return found


_MALLOPT = _find_mallopt()


def keep_heap() -> None:
    """For a process that only reads captures and then ends: glibc's malloc keeps freed memory
    instead of giving it back to the kernel at once. The reader's 4 MiB buffers are handed to the
    hashing thread (up to four wait there), so several are alive at a time and they are freed out
    of order; glibc then returned the heap's free top to the kernel (more than twice the last freed
    block's size) and the next buffers faulted their pages in again, zeroed by the kernel: 30,000 to
    54,000 page faults reading the 1.1 GB capture, 12,000 so, and the reading thread 1.88 s of CPU
    against 2.13 s (medians of 7 alternated runs at a load of 6), for 5 MiB more at the peak.
    Setting the trim threshold turns glibc's adaptive mmap threshold off, so that is set too, at the
    adaptive one's ceiling. Not where the process goes on to build tables (held memory would stay
    held). Elsewhere than glibc on Linux (musl ignores it), nothing is done."""
    if _MALLOPT is not None:
        _MALLOPT(_M_MMAP_THRESHOLD, _MMAP_AT)
        _MALLOPT(_M_TRIM_THRESHOLD, _TRIM_AT)


def _run(paths: list[str], limits: Limits, progress: ProgressFactory) -> Records:
    with progress() as tick:
        return Pipeline(limits, digests=True).run(paths, tick)


def read_here(paths: Iterable[str], limits: Limits, progress: ProgressFactory, warm_up: Callable[[], None]) -> Records:
    """The records of the captures, read in this process after `warm_up` (one process, one core)."""
    warm_up()
    return _run(list(paths), limits, progress)


def read_in_child(
    paths: Iterable[str], limits: Limits, progress: ProgressFactory, warm_up: Callable[[], None]
) -> Records:
    """The records of the captures, read in a forked child while `warm_up` runs here."""
    paths = list(paths)
    if not hasattr(os, "fork"):
        return read_here(paths, limits, progress, warm_up)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read, send, leave without running the parent's cleanup
        os.close(r)
        code = 0
        made: Records | None = None
        try:
            without_pandas()  # the parent imports it meanwhile; the spool's pyarrow need not here
            keep_heap()
            with os.fdopen(w, "wb") as out:
                made = _run(paths, limits, progress)
                # The records' batches stay in their run directory, which the unpickled copy owns.
                pickle.dump(made, out, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # anything at all: the parent then reads in-process
            code = 1
            if made is not None:
                made.close()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    warm_up()
    records: Records | None = None
    with os.fdopen(r, "rb") as inp:
        try:
            records = pickle.load(inp)  # streamed: the pickled bytes are never held whole
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError):
            records = None
    _pid, status = os.waitpid(pid, 0)
    if records is not None and os.waitstatus_to_exitcode(status) == 0:
        return records
    if records is not None:
        records.close()
    return _run(paths, limits, progress)
