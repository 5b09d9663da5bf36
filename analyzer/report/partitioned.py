"""Tables as partitioned Parquet datasets: one part per unit of work (capture session) of a run.

`write_partitioned` writes each table as `<out>/<table>/part-<unit>.parquet`, the unit being the
capture session the rows came from, numbered in the run's order (`units`); a table without a
`capture` column (hosts: per host across captures) is one part. The views and findings are computed
from the whole tables, which are the partitions concatenated, and written beside them as files.
`read_table` reads a dataset back through dask.dataframe.

Layering: the output level (tables and the records they came from); imported by `api` when asked.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pandas as pd

if TYPE_CHECKING:
    from analyzer.records import Records


def units(records: Records) -> dict[str, int]:
    """The unit (session, in the run's order) of every capture file, by its name in the tables."""
    out: dict[str, int] = {}
    session_of = {name: s for s, fmap in records.frame_maps.items() for name in fmap.files}
    sessions: dict[str, int] = {}
    for c in records.captures:
        session = session_of.get(c.capture, c.capture)
        out[c.capture] = sessions.setdefault(session, len(sessions))
    return out


def write_partitioned(
    tables: Iterable[tuple[str, pd.DataFrame]], records: Records, out_dir: str | PathLike[str]
) -> list[Path]:
    """Every (name, table) as a Parquet dataset `<out_dir>/<name>/`, one `part-<unit>.parquet` per unit
    of `records` that has rows of it (an empty table: one empty part, so the dataset has its columns);
    the directories."""
    of = units(records)
    out = Path(out_dir)
    written = []
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
