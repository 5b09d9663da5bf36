"""Partial aggregation over `Source` chunks: what the views and the per-host table are folded with.

A view takes a base table chunk by chunk (in the one pass over the tables, `report.passes`, only the
columns it needs) and folds each chunk into its own per-key state (counts and sums add, first and
last seen take min and max, lists keep their distinct values), so what it holds is its result and one
chunk, never the table.

A chunk is first cut into groups of rows alike in the columns a fold keys and lists by (`Grouped`:
Arrow's dictionary encoding or pandas' factorize per column, numpy for the sizes, counts, sums,
minima and maxima per group), and the fold's Python runs once per group, not once per row: a flood's
chunk of thousands of rows alike is a group or two, and a real capture's chunk costs a few
factorizes more than a loop over its rows (no group-by, join or cast of a whole frame, whose fixed
cost of about a millisecond each dominated on tables of a few thousand rows). Values come as Python
objects with missing as None, times as integer nanoseconds since the epoch (so a chunk's text may be
categorical or not: the same values come out).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from sys import intern
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.report.columns import TIME
from analyzer.report.vector import one_value

_NAT = np.iinfo(np.int64).min  # how NaT is held in a datetime64 column's integers
MINUTE_NS = 60_000_000_000
# Columns ordered as addresses (10.0.0.5 before 10.0.0.10; missing after every address and name).
IP_COLUMNS = frozenset({"server", "client_ip", "server_ip", "host"})


def cells(chunk: pd.DataFrame, column: str) -> list[Any]:
    """One column of a chunk as Python values, missing as None; a time as its nanoseconds."""
    s = chunk[column]
    if isinstance(s.dtype, pd.DatetimeTZDtype) or s.dtype.kind == "M":
        ns = pd.DatetimeIndex(s).as_unit("ns").asi8
        values: list[Any] = ns.tolist()
        if (ns == _NAT).any():
            values = [None if v == _NAT else v for v in values]
        return values
    typed: Any = s  # the stubs do not let na_value be None, which is what a fold wants
    out: list[Any] = typed.to_numpy(dtype=object, na_value=None).tolist()
    return out


def columns(chunk: pd.DataFrame, names: Sequence[str]) -> list[list[Any]]:
    """`cells` of each named column, in order (to zip)."""
    return [cells(chunk, n) for n in names]


def earliest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None or a <= b else b


def latest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None or a >= b else b


def ip_key(value: object) -> str:
    """Where an address sorts: IPv4, then IPv6, in numeric order, then names, then missing."""
    if not isinstance(value, str):
        return "3"
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return "2" + value
    return f"{ip.version - 4:d}{int(ip):039d}"


def sort_rows(data: dict[str, list[Any]], by: list[str]) -> dict[str, list[Any]]:
    """The rows (columns of equal length) in the stable order of `by`: addresses as `ip_key` orders
    them, any other column with missing values first (the views' row order).

    Sorted one column at a time, the last of `by` first: stable sorts compose into the order of
    sorting by all of `by` at once, and only one column's keys are alive at a time, references to
    its own values (an address's `ip_key` once per distinct address). A key tuple per row and
    column, and one of them per row, were 12 MiB for the 10.8 GB capture's 25,700 timeline rows,
    made at the end of the pass while the other folds still held their state (`--jobs 1`)."""
    order = list(range(len(data[by[0]])))
    for col in reversed(by):
        values = data[col]
        if col in IP_COLUMNS:
            memo = {v: ip_key(v) for v in set(values)}
            order.sort(key=lambda i: memo[values[i]])
        else:
            present = [i for i in order if values[i] is not None]
            present.sort(key=values.__getitem__)
            order = [i for i in order if values[i] is None] + present
    return {col: [values[i] for i in order] for col, values in data.items()}


def table(schema: dict[str, str], data: dict[str, list[Any]]) -> pd.DataFrame:
    """The view's frame: exactly the schema's columns, in order, with its dtypes (times from nanoseconds)."""
    n = len(next(iter(data.values()))) if data else 0
    out: dict[str, Any] = {}
    for col, dtype in schema.items():
        values = data.get(col, [None] * n)
        if dtype == TIME:
            out[col] = pd.to_datetime(pd.array(values, dtype="Int64"), unit="ns", utc=True)
        else:
            out[col] = pd.array(values, dtype=cast(Any, dtype))
    df: pd.DataFrame = pd.DataFrame(out, columns=list(schema))
    return df


def typed(schema: dict[str, str], data: dict[str, Any], n: int) -> pd.DataFrame:
    """`table` for columns already made column-wise (arrays, pandas arrays): each given column cast
    to the schema's dtype, any other all missing; `n` rows."""
    out: dict[str, Any] = {}
    for col, dtype in schema.items():
        values = data.get(col)
        out[col] = pd.array([None] * n if values is None else values, dtype=cast(Any, dtype))
    df: pd.DataFrame = pd.DataFrame(out, columns=list(schema))
    return df


class Grouped:
    """A chunk's rows grouped by their distinct values of `keys` (missing is a value like any other),
    for a fold to add up a group at a time instead of a row at a time: a flood's chunk of thousands of
    rows alike is a group or two. Groups are numbered in the order their first rows come (so a fold
    meets them in table order), and their sizes, counts, sums, minima and maxima are made column-wise.

    Measured on the binds flood (40 k connections, 40 k bind items), the per-row loops of the per-host
    table and the matrix were 0.14 s and 0.07 s of CPU; per group they are a few milliseconds."""

    def __init__(self, chunk: pd.DataFrame, keys: Sequence[str]) -> None:
        self.chunk = chunk
        codes = np.zeros(len(chunk), dtype=np.int64)
        bound = 1  # every code is below it
        for key in keys:  # combined a column at a time, renumbered before a step could overflow
            more, size = _value_codes(chunk[key])
            if bound * (size + 1) >= _COMBINED:
                codes = pd.factorize(codes)[0]
                bound = len(chunk) or 1
            codes = codes * (size + 1) + (more + 1)
            bound *= size + 1
        codes = pd.factorize(codes)[0]  # numbered as the groups first come
        self.codes: np.ndarray = codes
        self.first: np.ndarray = np.unique(codes, return_index=True)[1]  # by code: first-come order
        self.n = len(self.first)

    def values(self, names: Sequence[str]) -> list[list[Any]]:
        """Each named column's value in each group (at its first row), as `cells` gives them, text
        interned: a fold keeps these as its keys and listed values, and a chunk's text comes as a new
        object per row, so the matrix of a 10 GB capture held 350,000 copies of a few thousand
        addresses and names (22 MiB) before."""
        return [
            [intern(v) if type(v) is str else v for v in col] for col in columns(self.chunk.iloc[self.first], names)
        ]

    def rows(self, names: Sequence[str]) -> list[tuple[Any, ...]]:
        """Each group's values of the named columns, as a tuple (`values` zipped)."""
        return list(zip(*self.values(names), strict=True))

    def sizes(self) -> list[int]:
        sizes: list[int] = np.bincount(self.codes, minlength=self.n).tolist()
        return sizes

    def counts(self, mask: np.ndarray) -> list[int]:
        """Per group, its rows where `mask` holds."""
        counted: list[int] = np.bincount(self.codes[mask], minlength=self.n).tolist()
        return counted

    def sums(self, column: str) -> list[int]:
        """Per group, the sum of an integer column (missing as 0)."""
        values = self.chunk[column].to_numpy(dtype=np.int64, na_value=0)
        out = np.zeros(self.n, dtype=np.int64)
        np.add.at(out, self.codes, values)
        summed: list[int] = out.tolist()
        return summed

    def distinct_pairs(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """The distinct (group, known value) of an integer column, as two int64 arrays, by group then value."""
        known = self.chunk[column].notna().to_numpy(dtype=bool)
        values = self.chunk[column].to_numpy(dtype=np.int64, na_value=0)[known]
        codes = self.codes[known]
        order = np.lexsort((values, codes))
        values, codes = values[order], codes[order]
        new = np.ones(len(values), dtype=bool)
        new[1:] = (values[1:] != values[:-1]) | (codes[1:] != codes[:-1])
        return codes[new], values[new]

    def earliest_rows(self, ts: str, frame: str) -> pd.DataFrame:
        """Per group, its earliest row by time, then frame (missing after known), the first such in
        table order: where a stable sort would put the group's first row."""
        t = _ns(self.chunk[ts])
        f = self.chunk[frame]
        order = np.lexsort(
            (
                np.arange(len(t)),
                f.to_numpy(dtype=np.int64, na_value=0),
                f.isna().to_numpy(dtype=bool),
                t,
                t == _NAT,
                self.codes,
            )
        )
        starts = np.flatnonzero(np.diff(self.codes[order], prepend=-1) != 0)
        rows: pd.DataFrame = self.chunk.iloc[order[starts]]
        return rows

    def earliest(self, column: str) -> list[int | None]:
        """Per group, the earliest time of a time column in nanoseconds (None: none known)."""
        ns = _ns(self.chunk[column])
        out = np.full(self.n, _MAX, dtype=np.int64)
        np.minimum.at(out, self.codes, np.where(ns == _NAT, _MAX, ns))
        return [None if v == _MAX else v for v in out.tolist()]

    def latest(self, column: str) -> list[int | None]:
        """Per group, the latest time of a time column in nanoseconds (None: none known)."""
        out = np.full(self.n, _NAT, dtype=np.int64)
        np.maximum.at(out, self.codes, _ns(self.chunk[column]))
        return [None if v == _NAT else v for v in out.tolist()]


_MAX = np.iinfo(np.int64).max
_COMBINED = 1 << 62  # combined codes stay below it (int64)


def _value_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Each row's code among the column's distinct values (-1: missing), and how many there are:
    Arrow text by Arrow's dictionary encoding (pandas' factorize of the same array wraps that one and
    took about twice as long, 140 us a column of a 4,096-row chunk), any other column by pandas."""
    if one_value(values):  # a flood's chunk
        return np.zeros(len(values), dtype=np.int64), 1
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        arr = pa.array(values)
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        encoded = pc.dictionary_encode(arr)
        more = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        return more, len(encoded.dictionary)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), len(uniques)


def minutes(s: pd.Series) -> np.ndarray:
    """A time column of known times as the minute each falls in, in nanoseconds (`MINUTE_NS` steps)."""
    ns = _ns(s)
    minute: np.ndarray = ns - ns % MINUTE_NS
    return minute


def _ns(s: pd.Series) -> np.ndarray:
    """A time column's nanoseconds, NaT as `_NAT`."""
    ns: np.ndarray = pd.DatetimeIndex(s).as_unit("ns").asi8
    return ns
