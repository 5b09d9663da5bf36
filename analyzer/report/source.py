"""Where the views, the per-host table and the findings read the base tables: a `Source`.

A Source gives one base table (binds, endpoints, calls, connections, violations, captures, attempts:
`report.tables.SCHEMAS` and `report.attempts.ATTEMPTS`) in either of two ways:

- `chunks(table, columns)`: the table in its `report.order.ORDER`, as frames of at most `CHUNK_ROWS`
  rows holding only `columns` (all when None); no frame for a table without rows. A reader that
  aggregates chunk by chunk holds its own result and one chunk, whatever the table's size: a flood's
  million rows cost what its distinct keys cost.
- `frame(table, columns)`: the same rows whole, for the small tables and for readers that need them all.

Either way each column has its `SCHEMAS` dtype, except that a text column may come categorical (the
compact form a big table is read in): a reader gives the same answer both ways.

`Frames` is the Source over whole DataFrames: the API's tables once built, or frames a test made.
`report.spooled.Spooled` is the one over a run's spooled records, which never holds a big table whole
unless a reader asks for it whole; `AnalysisResult.source` reads a table the API already built
from its DataFrame and any other from the spool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

import pandas as pd

from analyzer.report.attempts import ATTEMPTS
from analyzer.report.columns import frame as typed_frame
from analyzer.report.tables import CHUNK_ROWS, SCHEMAS

TABLES: dict[str, dict[str, str]] = {**SCHEMAS, "attempts": ATTEMPTS}


class Source(Protocol):
    """The base tables as chunks in table order or whole (see the module docstring)."""

    def chunks(self, table: str, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]: ...

    def frame(self, table: str, columns: Sequence[str] | None = None) -> pd.DataFrame: ...


def empty_table(table: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """`table` with no rows: its columns (or only `columns`) with their dtypes."""
    schema = TABLES[table]
    return typed_frame({c: schema[c] for c in (columns or schema)}, {})


class Frames:
    """A Source over whole DataFrames, given as a mapping (a table left out has no rows) or as a function
    of the table's name (called once per read: the caller memoises)."""

    def __init__(self, tables: Mapping[str, pd.DataFrame] | Callable[[str], pd.DataFrame]) -> None:
        self._tables = tables

    def frame(self, table: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        if table not in TABLES:
            raise KeyError(f"no base table {table!r}")
        tables = self._tables
        if callable(tables):
            df = tables(table)
        elif table in tables:
            df = tables[table]
        else:
            return empty_table(table, columns)
        return df if columns is None else df[list(columns)]

    def chunks(self, table: str, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        df = self.frame(table, columns)
        for start in range(0, len(df), CHUNK_ROWS):
            yield df.iloc[start : start + CHUNK_ROWS]
