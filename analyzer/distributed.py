"""Beyond one machine: a run's capture sessions read on a Dask cluster (`distributed`), and its tables
written as partitioned Parquet datasets.

`run_on_cluster(paths, limits, client)` sends the units of work `analyzer.multicore` runs in local
processes (`units.analyse_session`: one capture session each, the largest first) to the cluster's
workers, and merges their results exactly as the local run does (`merge.merge`, which has a worker
read again from the serial state any session that state could reach). The records are the serial
run's. What travels back is the records themselves (`units.SessionRecords`, in memory): a worker
needs no directory shared with the client, only the capture files at the same paths, and the same
version of rpc-analyzer (with the same name overrides: `names_file` is loaded on each worker).

`write_partitioned` writes each table as `<out>/<table>/part-<unit>.parquet`, one partition per unit
(session), in the unit order; the views and findings are computed from the whole tables, which are
the partitions concatenated (`read_table` reads a dataset back through dask.dataframe).

Layering: the pipeline's level for the run; `write_partitioned` works on an `AnalysisResult` (typed
only), like the interop writers above the report layer.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from analyzer.limits import Limits
from analyzer.merge import merge, mergeable
from analyzer.multicore import plan
from analyzer.pipeline import Pipeline, Progress
from analyzer.records import Records
from analyzer.session import Member
from analyzer.units import SerialState, SessionResult, analyse_session, redo_session, session_bytes

if TYPE_CHECKING:
    import pandas as pd

    from analyzer.api import AnalysisResult

_loaded_names: set[str] = set()  # name override files loaded in this (worker) process


def _names(names_file: str | None) -> None:
    if names_file and names_file not in _loaded_names:
        from analyzer import registry

        registry.load_overrides(names_file)
        _loaded_names.add(names_file)


def _analyse(index: int, members: list[Member], limits: Limits, names_file: str | None) -> SessionResult:
    _names(names_file)
    return analyse_session(index, members, limits)


def _redo(
    index: int, members: list[Member], limits: Limits, state: SerialState, names_file: str | None
) -> SessionResult:
    _names(names_file)
    return redo_session(index, members, limits, state)


def run_on_cluster(
    paths: Iterable[str],
    limits: Limits,
    client: Any,
    progress: Progress | None = None,
    names_file: str | None = None,
) -> Records:
    """The serial run's records, the sessions read by the workers of `client` (a distributed.Client);
    `progress(bytes, files)` as sessions finish."""
    from distributed import as_completed

    paths = list(paths)
    groups = plan(paths)
    if len(groups) < 2:
        return Pipeline(limits).run(paths, progress)
    largest_first = sorted(range(len(groups)), key=lambda i: -session_bytes(groups[i]))
    futures = [client.submit(_analyse, i, groups[i], limits, names_file, pure=False) for i in largest_first]
    results: dict[int, SessionResult] = {}
    done = files = 0
    for fut in as_completed(futures):  # type: ignore[no-untyped-call]
        r: SessionResult = fut.result()
        results[r.index] = r
        done += session_bytes(groups[r.index])
        files += len(groups[r.index])
        if progress is not None:
            progress(done, files)
    ordered = [results[i] for i in range(len(groups))]
    if not mergeable(ordered):
        return Pipeline(limits).run(paths)

    def redo(i: int, state: SerialState) -> SessionResult:
        result: SessionResult = client.submit(_redo, i, groups[i], limits, state, names_file, pure=False).result()
        return result

    return merge(ordered, limits, redo)


def units(result: AnalysisResult) -> dict[str, int]:
    """The unit (session, in the run's order) of every capture file, by its name in the tables."""
    out: dict[str, int] = {}
    session_of = {name: s for s, fmap in result.records.frame_maps.items() for name in fmap.files}
    sessions: dict[str, int] = {}
    for c in result.records.captures:
        session = session_of.get(c.capture, c.capture)
        out[c.capture] = sessions.setdefault(session, len(sessions))
    return out


def write_partitioned(result: AnalysisResult, out_dir: str | PathLike[str]) -> list[Path]:
    """Every table as a Parquet dataset `<out_dir>/<table>/`, one `part-<unit>.parquet` per unit that
    has rows of it (an empty table: one empty part, so the dataset has its columns); the directories."""
    of = units(result)
    out = Path(out_dir)
    written = []
    tables: list[tuple[str, pd.DataFrame]] = [*result.tables.items(), ("attempts", result.attempts)]
    for name, df in tables:
        target = out / name
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("part-*.parquet"):
            old.unlink()
        if not len(df) or "capture" not in df:  # hosts: per host across captures, one part
            df.to_parquet(target / "part-00000.parquet", index=False)
        else:
            unit = df["capture"].map(of).fillna(len(of)).astype(int)  # a capture not listed: a last part
            for u in sorted(set(unit)):
                df[unit == u].to_parquet(target / f"part-{u:05d}.parquet", index=False)
        written.append(target)
    return written


def read_table(out_dir: str | Path, name: str) -> pd.DataFrame:
    """A partitioned table read back (through dask.dataframe), its partitions in unit order."""
    import dask.dataframe as dd

    with warnings.catch_warnings():  # dask's own use of pandas deprecations, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        frame = cast("pd.DataFrame", dd.read_parquet(str(Path(out_dir) / name)).compute())
    out: pd.DataFrame = frame.reset_index(drop=True)
    return out
