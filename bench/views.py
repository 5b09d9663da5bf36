#!/usr/bin/env python3
"""The views and the per-host table on their own: time (median of `--repeat`, CPU next to wall) and
peak Python allocation (tracemalloc) of each, over the base tables of one run.

    python bench/views.py CAPTURE... [--repeat 5] [--memory] [--profile VIEW] [--chunk-rows N] [--write]

The base tables are built first (not timed), then each view is computed from a `Frames` source
over them, `--repeat` times. `--memory` measures each view's peak above the tables under
tracemalloc (one run each, slower). `--profile VIEW` prints the top of a cProfile of that view.
`--write` times instead what `analyze` does after reading: `AnalysisResult.write` (every table, view
and finding, from the spool, in one pass over each base table: `report.passes`) and the summary's
counts, on a fresh result over the same records each time.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analyzer import analyze  # noqa: E402
from analyzer.api import AnalysisResult  # noqa: E402
from analyzer.records import Records  # noqa: E402
from analyzer.report import tables, views  # noqa: E402
from analyzer.report.hosts import hosts_frame  # noqa: E402
from analyzer.report.source import Frames, Source  # noqa: E402

# Each view by its name, and the per-host table.
VIEWS: dict[str, Callable[[Source], pd.DataFrame]] = {
    **{name: getattr(views, name) for name in views.VIEW_SCHEMAS},
    "hosts": hosts_frame,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("captures", nargs="+")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--memory", action="store_true", help="peak allocation of each view (tracemalloc)")
    ap.add_argument("--profile", choices=list(VIEWS), help="cProfile one view")
    ap.add_argument("--chunk-rows", type=int, help="chunk size the source is read in")
    ap.add_argument("--write", action="store_true", help="time the write path (one pass) instead")
    args = ap.parse_args(argv)
    if args.chunk_rows:
        import analyzer.report.source as source_module

        source_module.CHUNK_ROWS = args.chunk_rows  # type: ignore[misc]
    result = analyze(args.captures)
    if args.write:
        return _write(result.records, args.repeat, args.memory)
    base = {t: getattr(result, t) for t in ("binds", "endpoints", "calls", "connections", "violations", "captures")}
    base["attempts"] = result.attempts_table()
    source = Frames(base)
    print("rows:", ", ".join(f"{t}={len(df)}" for t, df in base.items()), f"(CHUNK_ROWS {tables.CHUNK_ROWS})")
    for name, fn in VIEWS.items():
        fn(source)  # warm: imports, registry caches
        walls, cpus = [], []
        for _ in range(args.repeat):
            gc.collect()
            w, c = time.perf_counter(), time.process_time()
            out = fn(source)
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
        wall, cpu = statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3
        line = f"{name:20} rows {len(out):7}  wall {wall:8.1f} ms  cpu {cpu:8.1f} ms"
        if args.memory:
            gc.collect()
            tracemalloc.start()
            fn(source)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            line += f"  peak {peak / 2**20:8.1f} MiB"
        print(line, flush=True)
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(VIEWS[args.profile], source)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
    return 0


def _write(records: Records, repeat: int, memory: bool) -> int:
    """The write path after reading, on a fresh result over `records` each time."""

    def write() -> None:
        result = AnalysisResult(records)
        with tempfile.TemporaryDirectory() as out:
            result.write(out)
            result.counts  # noqa: B018 - made by the write's pass

    write()  # warm: imports, registry caches
    walls, cpus = [], []
    for _ in range(repeat):
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        write()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    line = f"write + counts  wall {statistics.median(walls):7.2f} s  cpu {statistics.median(cpus):7.2f} s"
    if memory:
        gc.collect()
        tracemalloc.start()
        write()
        line += f"  peak {tracemalloc.get_traced_memory()[1] / 2**20:8.1f} MiB"
        tracemalloc.stop()
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
