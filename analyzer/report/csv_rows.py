"""CSV rows made column by column with Arrow compute: the bytes `output` writes with pandas, for the
plain pieces of the tables that can be millions of rows (the attempts of a SYN flood, the binds,
calls and connections of a flood of them).

pandas' `to_csv` turns every cell into a Python string and through the `csv` module (about 2 us a
row of the attempts table, plus the text copy the writer makes for times and the formula check);
here each column becomes Arrow text at once and the rows are joined in Arrow. A piece is made here
only when the result is certainly the same: its columns are text, integers, times (RFC 3339 UTC,
microseconds, as `output.ISO_FORMAT`), fractions (six decimals, `f"{v:.6f}"`: each distinct value
formatted once by Python itself) and flags (`True`, `False`), and no text cell would be quoted or
neutralised (it holds the separator, a quote, a CR or an LF, or starts with =, +, -, @, tab or CR).
Otherwise `rows` gives None and the caller writes the piece the pandas way.
"""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import pandas as pd

from analyzer.report.columns import BOOL, FLOAT, INT, STR, TIME

# What makes the csv writer quote a cell (RFC 4180 and the CRLF terminator) or the writer put a `'`
# before it (`output.neutralise`): either means the pandas way.
_NOT_PLAIN = r'[,"\r\n]|^[=+\-@\t]'


def _pc() -> Any:
    import pyarrow.compute as pc

    return pc


def _text(values: pd.Series) -> Any:
    """A text column as Arrow strings, or None when a cell is not plain. A categorical column (the
    compact tables) is checked on its categories, each once."""
    import pyarrow as pa

    pc = _pc()
    arr = pa.array(values)
    plain = arr.dictionary if isinstance(arr, pa.DictionaryArray) else arr
    if not (pa.types.is_string(plain.type) or pa.types.is_large_string(plain.type)):
        return None
    if pc.any(pc.match_substring_regex(plain, _NOT_PLAIN)).as_py():
        return None
    return pc.cast(arr, pa.string())


def _column(values: pd.Series, dtype: str) -> Any:
    """One column's cells as Arrow text (None where missing), or None when it is not plain."""
    import pyarrow as pa

    pc = _pc()
    if dtype == STR:
        return _text(values)
    if dtype == INT and str(values.dtype) == INT:
        return pc.cast(pa.array(values, type=pa.int64()), pa.string())
    if dtype == TIME and str(values.dtype) == TIME:
        return _iso(values)
    if dtype == FLOAT and str(values.dtype) == FLOAT:
        return _fixed(values)
    if dtype == BOOL and str(values.dtype) == BOOL:
        return _flags(values)
    return None


def _fixed(values: pd.Series) -> Any:
    """Fractions as `output` writes them, `f"{v:.6f}"` (missing and NaN empty), each distinct value
    (by its bits: -0.0 is not 0.0) formatted once."""
    import pyarrow as pa

    floats = values.to_numpy(dtype="float64", na_value=np.nan)
    missing = np.isnan(floats)
    bits, which = np.unique(np.where(missing, 0.0, floats).view(np.int64), return_inverse=True)
    text = pa.array([f"{v:.6f}" for v in bits.view(np.float64).tolist()], type=pa.string())
    return _pc().if_else(pa.array(missing), pa.scalar(None, pa.string()), text.take(pa.array(which.ravel())))


def _flags(values: pd.Series) -> Any:
    """Flags as the csv module writes Python's bools: `True`, `False` (missing empty)."""
    import pyarrow as pa

    flags = pa.array(values.array, type=pa.bool_())
    return _pc().if_else(flags, pa.scalar("True"), pa.scalar("False"))


_DIGITS = [f"{i:03d}" for i in range(1000)]


def _iso(values: pd.Series) -> Any:
    """Times as `output.ISO_FORMAT` writes them (%f truncates to the microsecond): each distinct
    second formatted once, the microseconds as two three-digit lookups."""
    import pyarrow as pa

    missing = values.isna().to_numpy()
    ns = np.where(missing, 0, values.array.asi8)  # after 1970: `columns.frame` made the rest unknown
    seconds, which = np.unique(ns // 1_000_000_000, return_inverse=True)
    us = ns // 1000 % 1_000_000
    utc = datetime.timezone.utc
    second = pa.array(
        [datetime.datetime.fromtimestamp(s, utc).strftime("%Y-%m-%dT%H:%M:%S.") for s in seconds.tolist()]
    )
    milli, micro = pa.array(_DIGITS), pa.array([d + "Z" for d in _DIGITS])
    text = _pc().binary_join_element_wise(second.take(which), milli.take(us // 1000), micro.take(us % 1000), "")
    return _pc().if_else(pa.array(missing), pa.scalar(None, pa.string()), text)


def plain(df: pd.DataFrame, schema: dict[str, str]) -> bool:
    """Would `rows` make this piece (its columns those of `schema`, of those dtypes, and no text
    cell to quote or neutralise)? A categorical column is judged by its categories."""
    if df.empty or list(df.columns) != list(schema):
        return False
    for name, dtype in schema.items():
        values = df[name]
        if dtype == STR:
            if _text(values) is None:
                return False
        elif dtype not in (INT, TIME, FLOAT, BOOL) or str(values.dtype) != dtype:
            return False
    return True


def rows(df: pd.DataFrame, schema: dict[str, str], sep: str, end: str) -> str | None:
    """The piece's rows (no header) as CSV text, each ending in `end`; None when the piece is not
    plain enough to be sure of the bytes (see the module docstring)."""
    if df.empty or list(df.columns) != list(schema):
        return None
    cells = []
    for name, dtype in schema.items():
        column = _column(df[name], dtype)
        if column is None:
            return None
        cells.append(_pc().fill_null(column, ""))
    joined = _pc().binary_join_element_wise(*cells, sep)
    return end.join(joined.to_pylist()) + end
