"""Reading the captures for a command: the files found, the records made (in a forked child, in worker
processes with --jobs, or on a Dask cluster with --scheduler), and one line per file that failed."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from analyzer.cli.options import EXIT_INPUT_ERROR, EXIT_NO_INPUT, JOBS, NAMES, SCHEDULER, err
from analyzer.cli.progress import progress_bar

if TYPE_CHECKING:
    from analyzer.api import AnalysisResult
    from analyzer.records import Records


def read_captures(captures: tuple[str, ...], quiet: bool) -> AnalysisResult:
    """Analyse the captures for a reporting command: exit 3 when there is no file, one line per bad file."""
    from analyzer.capture.source import expand_paths

    files = expand_paths(captures)
    if not files:
        err("no capture files found in " + ", ".join(captures))
        sys.exit(EXIT_NO_INPUT)
    paths = [p for p, _ in files]

    warmed: list[bool] = []

    def warm_up() -> None:
        """What the tables need, loaded while the captures are read: pandas, the name registry and
        the findings rules (once, even when the workers fail and a child reads instead)."""
        if warmed:
            return
        warmed.append(True)
        with frozen_after():
            from analyzer import api, findings, registry
            from analyzer.report import zeek_names

            registry.interface_name("e1af8308-5d1f-11c9-91a4-08002b14a0fa")
            del api, findings, zeek_names

    records = _records(paths, quiet, warm_up)
    from analyzer.api import from_records

    result = from_records(records)
    result.cores = 1 if one_process() else _write_cores(paths)
    for line in result.errors:
        err(line)
    return result


@contextmanager
def frozen_after() -> Iterator[None]:
    """No cyclic collection while the block imports, and what it (and everything before it) made
    moved to the collector's permanent generation after it (`gc.freeze`). The imports of pandas,
    pyarrow and the findings rules make some 300,000 objects that live as long as the process, none
    of them garbage: collecting while they are made walked them some 150 times (30 ms of CPU), and
    every full collection after the reading walked them all again (50 ms, on the run's critical
    path, on the 1.1 GB capture). Frozen, a later collection looks only at the objects made after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


def _jobs(paths: list[str]) -> int:
    """The worker processes of this command: --jobs, else every core once the input is big enough."""
    from analyzer.parallel.multicore import default_jobs

    jobs: int = _meta().get(JOBS) or default_jobs(paths)
    return jobs


def _write_cores(paths: list[str]) -> int:
    """The processes writing the tables may use: the --jobs, or two where this process may run on
    two cores, even when one reader was enough. A second core makes some views in a forked child
    (`api._BESIDE`) whatever the input's size: a flood's 100,000 calls in a 13 MB file made tables
    for 0.9 s, which the reading's `default_jobs` (one worker below 16 MB) left to one core. Medians
    of alternated runs, wall time: that flood 1.68 -> 1.44 s, ../shared/captures 1.82 -> 1.53 s,
    the bundled samples 0.48 -> 0.42 s, a 24 KB capture 0.38 -> 0.37 s; CPU time the same within
    0.05 s."""
    from analyzer.parallel.multicore import usable_cores

    return max(_jobs(paths), min(usable_cores(), 2))


def _meta() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    return ctx.meta if ctx is not None else {}


def one_process() -> bool:
    """Whether this command runs in one process: `--jobs 1` asked for one core. Without --jobs a run
    that needs no workers still reads in a forked child while this process imports what the tables
    need (two cores, the default: every core)."""
    return bool(_meta().get(JOBS) == 1)


def _records(paths: list[str], quiet: bool, warm_up: Callable[[], None]) -> Records:
    """The records: on the cluster of --scheduler, else in --jobs worker processes (every core by
    default), else in a forked child while `warm_up` runs here, or with `--jobs 1` in this process."""
    from analyzer.limits import DEFAULT_LIMITS
    from analyzer.parallel.child import read_in_child
    from analyzer.report.memory import system_pool_throughout

    system_pool_throughout()  # before any process of the run imports pyarrow: it and its forks
    meta = _meta()
    if meta.get(SCHEDULER):
        return _on_cluster(paths, quiet, warm_up, meta[SCHEDULER], meta.get(NAMES))
    if one_process():
        return _read_first(paths, quiet, warm_up)
    from analyzer.parallel.multicore import run

    return run(
        paths,
        DEFAULT_LIMITS,
        _jobs(paths),
        lambda: progress_bar(paths, quiet),
        warm_up,
        serial=lambda: read_in_child(paths, DEFAULT_LIMITS, lambda: progress_bar(paths, quiet), warm_up),
    )


def _read_first(paths: list[str], quiet: bool, warm_up: Callable[[], None]) -> Records:
    """`--jobs 1`: the captures read in this process before pandas is imported, then what the
    tables need. Imported first (as the two-process run's parent does, beside its forked reader),
    pandas and what it pulls in (about 50 MiB resident) sat under the reading's own peak: the SYN
    flood read to 200 MiB so, against 165 in the forked reader without it. What the reading freed
    is given back (`report.memory.release`) before the imports and the tables reuse the heap."""
    from analyzer.limits import DEFAULT_LIMITS
    from analyzer.parallel.child import read_here, with_pandas, without_pandas
    from analyzer.report.memory import release

    without_pandas()
    try:
        records = read_here(paths, DEFAULT_LIMITS, lambda: progress_bar(paths, quiet), lambda: None)
    finally:
        with_pandas()
    release()
    warm_up()
    return records


def _on_cluster(paths: list[str], quiet: bool, warm_up: Callable[[], None], address: str, names: str | None) -> Records:
    try:
        from distributed import Client

        from analyzer.parallel.distributed import run_on_cluster
    except ImportError:
        err("--scheduler needs the distributed package: pip install 'rpc-analyzer[cluster]'")
        sys.exit(EXIT_INPUT_ERROR)
    from analyzer.limits import DEFAULT_LIMITS

    try:
        client = Client(address, timeout=30)  # type: ignore[no-untyped-call]
    except (OSError, ValueError) as e:
        err(f"cannot reach the Dask scheduler at {address}: {e}")
        sys.exit(EXIT_INPUT_ERROR)
    try:
        with client, progress_bar(paths, quiet) as tick:
            warm_up()
            return run_on_cluster(paths, DEFAULT_LIMITS, client, tick, names)
    except Exception as e:  # a worker lost, a task that failed there: one line, no traceback
        err(f"the Dask cluster at {address} failed: {type(e).__name__}: {e}")
        sys.exit(EXIT_INPUT_ERROR)
