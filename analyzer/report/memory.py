"""Giving freed memory back to the system while the tables are built (issue 13: peak RSS under floods).

Building a million-row table frees as much as it keeps: a chunk's Python objects and Arrow buffers
are transient. Two allocators hold on to what was freed: pyarrow's default pool (mimalloc) keeps its
pages for reuse, and glibc's malloc keeps freed heap below its top. Measured on a SYN flood of 1 M
attempts, those were 270 MiB of resident memory around a 37 MiB table. So the tables use Arrow's
system pool (unless the user chose one with ARROW_DEFAULT_MEMORY_POOL) and `release()` asks glibc
to return free pages (`malloc_trim`, where there is one) after each whole table or view is made.
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import cache
from typing import Any

_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def system_pool_throughout() -> None:
    """Arrow's C++ default pool made the system one too, for every process of a command: called
    before pyarrow is first imported (when Arrow picks that pool from the environment, once) and
    before the reader or the workers are forked, which inherit it. `use_system_pool` reaches only
    what pyarrow allocates from Python; what Arrow's C++ takes from its own default pool (mimalloc:
    the Parquet writer's file stream and encoders, the spool's IPC writer while reading, an IPC
    read with options) stayed in mimalloc's pages, resident after it was freed: writing the bind
    flood's 200,000-row binds table to Parquet, 20 MiB of them (peak 182 MiB against 163 with the
    system pool throughout, `--jobs 1`). Until round 12 only `--jobs 1` did this; the default run's
    processes then kept mimalloc's: on 10.8 GB the forked reader's peak 143 -> 126 MiB with it, the
    parent's 168 -> 163; writing the binds flood to Parquet, the parent's 195 -> 180 MiB; times the
    same or shorter. Nothing once pyarrow is loaded, or when the user chose a pool."""
    if "pyarrow" not in sys.modules:
        os.environ.setdefault(_POOL_VARIABLE, "system")


@cache
def use_system_pool() -> None:
    """Arrow allocations through malloc, so that `release()` reaches them too; once per process."""
    if os.environ.get(_POOL_VARIABLE):
        return
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())


@cache
def _trim() -> Any:
    """glibc's malloc_trim from the C library already loaded (`CDLL(None)`): `ctypes.util.find_library`
    would fork `ldconfig` or a compiler to look for it, a process the size of this one for a moment."""
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None


def release() -> None:
    """Free heap pages back to the system (glibc's malloc_trim; nothing elsewhere)."""
    trim = _trim()
    if trim is not None:
        trim(0)
