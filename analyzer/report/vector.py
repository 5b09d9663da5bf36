"""A chunk of a table's records as Arrow columns, and derived columns computed on its distinct values.

The spool keeps records as Arrow batches (`records.Spool.batches`, one column per field, `flow.capture`
for a flow's field). A base table is built from those columns directly (`report.columns.columnar`): a
column that is a record field is its Arrow array as it is; a derived one (a name from the registry, a
version, a flow id) is computed once per distinct combination of the fields it is made of and taken
back to the rows (`Batch.distinct`); a number (a round trip time) with numpy. No Python object is made
per row: a flood of 200,000 binds costs its distinct values, and its distinct flows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.report.columns import BOOL, FLOAT, INT, MAX_TS_NS, STR, TIME, C, Column


class Batch:
    """A chunk of records as Arrow arrays by field name (`frame`, `flow.client_ip`), with any columns
    the table adds to them (a connection's totals) and fields late naming changed (`set`)."""

    def __init__(self, batch: Any) -> None:
        self.rows: int = batch.num_rows
        self._columns: dict[str, Any] = dict(zip(batch.schema.names, batch.columns, strict=True))
        self._groups: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}

    def __getitem__(self, name: str) -> Any:
        return self._columns[name]

    def set(self, name: str, values: Any) -> None:
        """A field's values replaced, or a column added (an Arrow array of `rows` values)."""
        self._columns[name] = values
        self._groups = {k: v for k, v in self._groups.items() if name not in k}

    def _group(self, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """The first row of each distinct combination of these fields, and each row's combination."""
        if names not in self._groups:
            key = np.zeros(self.rows, dtype=np.int64)
            for name in names:
                codes = _codes(self._columns[name])
                # Codes per field are below `rows`, so one step's key stays below rows**2: made
                # dense again after each field, it never overflows however many fields.
                key = np.unique(key * (self.rows + 1) + codes, return_inverse=True)[1].astype(np.int64)
            _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            self._groups[names] = (first, inverse)
        return self._groups[names]

    def distinct(self, fn: Callable[..., Any], names: Sequence[str], dtype: str) -> Any:
        """`fn` of each row's values of `names` (None where missing), as an Arrow array for a column
        of `dtype`: called once per distinct combination of values."""

        def each(*values: Any) -> Any:
            rows = zip(*(v.to_pylist() for v in values), strict=True)
            return pa.array([fn(*row) for row in rows], type=_ARROW[dtype])

        return self.distinct_columns(each, names, dtype)

    def distinct_columns(self, fn: Callable[..., Any], names: Sequence[str], dtype: str) -> Any:
        """`distinct` for an `fn` that takes the distinct combinations all at once, as an Arrow
        array per field, and gives an Arrow array of their values (a flow id computed in bulk)."""
        if not self.rows:
            return pa.array([], type=_ARROW[dtype])
        first, inverse = self._group(tuple(names))
        at = pa.array(first)
        made = fn(*(self._columns[name].take(at) for name in names))
        return made.take(pa.array(inverse))


def columnar(columns: Sequence[Column[Any, C]], batch: Batch, context: C) -> pd.DataFrame:
    """A chunk of rows given as Arrow columns as a typed frame: each declared column's `vector`,
    typed as `columns.frame` types the same values got row by row (`columns.convert`)."""
    data: dict[str, Any] = {}
    for c in columns:
        assert c.vector is not None, c.name
        data[c.name] = typed(c.vector(batch, context), c.dtype)
    df: pd.DataFrame = pd.DataFrame(data, columns=[c.name for c in columns])
    return df


def _codes(values: Any) -> np.ndarray:
    """Each value's code among the array's distinct values (missing is a value of its own)."""
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int8())
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def seconds(later: Any, earlier: Any, keep: Any) -> pd.arrays.FloatingArray:
    """`round((later - earlier) / 1e9, 6)` for the rows `keep` (a numpy mask), missing elsewhere:
    the seconds between two nanosecond times, as Python's `round` gives them. Exact in integers
    (microseconds rounded from nanoseconds, then divided, which is what the decimal rounding gives)
    except where Python's answer hangs on a float's last bit (half a microsecond exactly, beyond
    1e15 ns) or on its sign (-0.0): those rows are rounded by Python itself."""
    ns = np.where(keep, ints(later) - ints(earlier), 0)
    us = (ns + 500) // 1000
    values = us / 1e6
    tricky = np.flatnonzero(keep & ((ns % 1000 == 500) | (ns < 0) | (ns >= 10**15)))
    for i in tricky.tolist():
        values[i] = round(int(ns[i]) / 1e9, 6)
    return pd.arrays.FloatingArray(np.where(keep, values, 0.0), ~np.asarray(keep, dtype=bool))


def ints(values: Any) -> np.ndarray:
    """An Arrow integer array as int64, 0 where missing."""
    return np.asarray(values.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)


def known(values: Any) -> np.ndarray:
    """Where an Arrow array holds a value: not missing, and for integers not 0 either (an unknown
    time: Python's `if ts`)."""
    if pa.types.is_integer(values.type):
        nonzero: np.ndarray = ints(values) != 0
        return nonzero
    return np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def typed(values: Any, dtype: str) -> Any:
    """A column's values (an Arrow array, or a pandas array already typed) as the pandas array
    `columns.frame` makes of the same values as Python objects."""
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    if values.type == pa.null():
        values = pa.nulls(len(values), _ARROW[dtype])
    if dtype == STR:  # pandas' own Arrow text (large_string, which it casts to): a third of pd.array's time
        text = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        return pd.arrays.ArrowStringArray(text if pa.types.is_large_string(text.type) else pc.cast(text, pa.string()))
    missing = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if dtype == BOOL:
        return pd.arrays.BooleanArray(np.asarray(values.fill_null(False).to_numpy(zero_copy_only=False)), missing)
    if dtype == FLOAT:
        return pd.arrays.FloatingArray(np.asarray(values.fill_null(0.0).to_numpy(zero_copy_only=False)), missing)
    whole = ints(values)
    if dtype == INT:
        return pd.arrays.IntegerArray(whole, missing)
    assert dtype == TIME
    # 0 is the unknown time, and anything outside datetime64[ns] is unknown too (as in `columns.frame`)
    return utc_times(whole, missing | (whole <= 0) | (whole > MAX_TS_NS))


_NAT = np.iinfo(np.int64).min  # NaT's integer in a datetime64 array


def one_value(values: pd.Series) -> bool:
    """Whether every row of a column holds one and the same value, none missing: a flood's chunk,
    told by comparing the column with its first value, a third of the time factorising it takes
    (which every other chunk then does). Arrow text and pandas' Int64 are compared; any
    other column (and an empty one) answers no."""
    if not len(values):
        return False
    dtype = values.dtype
    # The first and last rows first: a column of many values nearly always differs there, and is
    # then not compared throughout.
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        arr = pa.array(values)  # the column's own Arrow data (pandas' `__arrow_array__`)
        if arr.null_count or arr[0].as_py() != arr[-1].as_py():
            return False
        return bool(pc.all(pc.equal(arr, arr[0])).as_py())
    arr = values.array  # the array's own methods: a Series' cost three times as much here
    if isinstance(arr, pd.arrays.IntegerArray) and dtype == "Int64":
        if arr.isna().any():
            return False
        data = arr.to_numpy(dtype=np.int64)
        return bool(data[0] == data[-1] and (data == data[0]).all())
    return False


def utc_times(ns: np.ndarray, unknown: np.ndarray) -> pd.arrays.DatetimeArray:
    """Nanoseconds since the epoch as a UTC time column, NaT where `unknown`: what `pd.to_datetime(
    ..., unit="ns", utc=True)` makes of them, by a view of the integers (a fifth of its time)."""
    times: pd.arrays.DatetimeArray = pd.DatetimeIndex(np.where(unknown, _NAT, ns).view("M8[ns]"), tz="UTC").array
    return times


_ARROW = {STR: pa.string(), INT: pa.int64(), FLOAT: pa.float64(), BOOL: pa.bool_(), TIME: pa.int64()}
