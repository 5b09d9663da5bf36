"""The vocabulary of table columns: dtypes, one declaration per column, and typed frames.

A table is declared once, as a sequence of `Column`s: its name, its dtype, and its values got two
ways from the same declaration: for a chunk of records as Arrow columns (`vector`, the common path:
`report.vector.columnar`), and for one record (`get`: records held in memory, a spooled batch
that did not fit its Arrow types; `convert`). The schema (column -> dtype, in order) comes from it too.

Dtypes: text columns are pandas "string", integers nullable "Int64", fractions "Float64", flags
"boolean", times "datetime64[ns, UTC]". Missing is <NA>/NaT, never an empty string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import pandas as pd

STR = "string"
INT = "Int64"
FLOAT = "Float64"
BOOL = "boolean"
TIME = "datetime64[ns, UTC]"
MAX_TS_NS = (1 << 63) - 1  # the last nanosecond datetime64[ns] holds (analyzer.capture.reader.MAX_TS_NS)

Schema = dict[str, str]
R = TypeVar("R")
C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class Column(Generic[R, C]):
    """One column of a table: its name, its dtype, its value for a row (`get(row, context)`) and its
    values for a chunk of rows as Arrow columns (`vector(batch, context)`, a `report.vector.Batch`;
    None for a table only ever built from records in memory)."""

    name: str
    dtype: str
    get: Callable[[R, C], Any]
    vector: Callable[[Any, C], Any] | None = None


def schema(columns: Sequence[Column[Any, Any]]) -> Schema:
    """Column -> dtype, in the declared order."""
    return {c.name: c.dtype for c in columns}


def convert(columns: Sequence[Column[R, C]], rows: Sequence[R], context: C) -> pd.DataFrame:
    """The rows as a typed frame: each declared column's values, got column by column."""
    return frame(schema(columns), {c.name: [c.get(r, context) for r in rows] for c in columns})


def frame(schema: Schema, columns: dict[str, list[Any]]) -> pd.DataFrame:
    """A DataFrame with exactly the schema's columns, in order, with its dtypes."""
    data: dict[str, Any] = {}
    n = len(next(iter(columns.values()))) if columns else 0
    for col, dtype in schema.items():
        values = columns.get(col, [None] * n)
        if dtype == TIME:
            # 0 is the unknown time; the capture layer range-checks every time it reads, and anything
            # outside int64 here too becomes unknown rather than an OverflowError (issue 13).
            times = [v if v and 0 < v <= MAX_TS_NS else None for v in values]
            data[col] = pd.to_datetime(pd.array(times, dtype="Int64"), unit="ns", utc=True)
        else:
            data[col] = pd.array(values, dtype=cast(Any, dtype))
    df: pd.DataFrame = pd.DataFrame(data, columns=list(schema))
    return df
