"""CSV rows made column by column with Arrow compute: the bytes `output` writes with pandas, for the
plain pieces of the tables that can be millions of rows (the attempts of a SYN flood, the binds,
calls and connections of a flood of them).

pandas' `to_csv` turns every cell into a Python string and through the `csv` module (about 2 us a
row of the attempts table, plus the text copy the writer makes for times and the formula check);
here each column becomes Arrow text at once and the rows are joined in Arrow. A piece is made here
when its columns are of the dtypes made here: text (neutralised where a spreadsheet could read a
formula, by `neutralise` itself on those cells alone, and quoted as RFC 4180 and the csv module
quote: a cell holding the separator, a quote, a CR or an LF), integers, times (RFC 3339 UTC,
microseconds, as `output.ISO_FORMAT`), fractions (six decimals, `f"{v:.6f}"`: each distinct value
formatted once by Python itself) and flags (`True`, `False`). Otherwise `rows` gives None and the
caller writes the piece through the csv module. Property tests hold both ways byte-equal.
"""

from __future__ import annotations

import datetime
import re
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from analyzer.report.buffers import text_buffers
from analyzer.report.columns import BOOL, FLOAT, INT, STR, TIME

# Where a spreadsheet starts reading a formula: at the start of the cell or of any line inside it.
_FORMULA_START = r"(?<![^\r\n])(?=[=+\-@\t\r])"
HAS_FORMULA = r"(?:^|[\r\n])[=+\-@\t\r]"  # Python's re and Arrow's RE2 read it alike
FORMULA_STARTS = frozenset("=+-@\t\r")


def neutralise(value: str) -> str:
    """A cell safe to open in a spreadsheet: a `'` before every formula start, in the cell and after
    each line break inside it."""
    return re.sub(_FORMULA_START, "'", value)


def _pc() -> Any:
    import pyarrow.compute as pc

    return pc


def _text(values: pd.Series, sep: str = ",", wide: bool = False) -> Any:
    """A text column as the cells the csv module writes (`output._cells`, then RFC 4180 quoting):
    neutralised where a formula may start (by `neutralise` itself, on those cells alone), quoted where
    a cell holds the separator, a quote, a CR or an LF. A categorical column (the compact tables) is
    made on its categories, each once. None when the column is not text. `wide`: large_string text
    (as pandas holds it) comes back as it is, else as Arrow string."""
    made = _text_cells(values, sep, wide, False)
    return None if made is None else made[0]


def _text_cells(values: pd.Series, sep: str, wide: bool, quote_later: bool) -> tuple[Any, bool] | None:
    """`_text`, and whether its cells still need quoting: with `quote_later`, the quoting is left to
    the caller (analyzer/report/_csv.c quotes as it writes) and the flag says whether any cell may
    need it."""
    import pyarrow as pa

    arr = pa.array(values)
    if isinstance(arr, pa.ChunkedArray):  # a frame concatenated from others: one array, as the steps below take
        arr = arr.combine_chunks()
    dictionary = isinstance(arr, pa.DictionaryArray)
    text = arr.dictionary if dictionary else arr
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        return None
    formula, quote = _may_need(text, sep)
    if formula:
        text = _neutralised(text)
    if quote and not quote_later:
        text = _quoted(text, sep)
    made = text.take(arr.indices) if dictionary else text
    made = made if wide and made.type == pa.large_string() else _pc().cast(made, pa.string())
    return made, quote and quote_later


_STARTS = np.zeros(256, dtype=bool)  # which bytes start a formula (`FORMULA_STARTS`, all ASCII)
_STARTS[list("".join(FORMULA_STARTS).encode("ascii"))] = True


def _may_need(text: Any, sep: str) -> tuple[bool, bool]:
    """Whether any cell may need neutralising, and whether any may need quoting, read from the
    array's UTF-8 bytes (a tenth of the time of one of the regular expressions of `_neutralised`
    and `_quoted` on a chunk's column, which almost never match). Exact
    enough to skip them: no quote, separator, CR or LF in any cell, and no formula character at the
    start of one, and neither step changes a thing; otherwise they decide cell by cell."""
    if not sep.isascii() or len(sep) != 1:
        return True, True
    if not len(text):
        return False, False
    cells, starts = cell_bytes(text)
    if not cells:
        return False, False
    broken = b"\r" in cells or b"\n" in cells  # `in` on bytes is memchr: no table lookup per byte
    quote = broken or b'"' in cells or sep.encode() in cells
    return broken or bool(_STARTS[np.frombuffer(cells, dtype=np.uint8)[starts]].any()), quote


def cell_bytes(text: Any) -> tuple[bytes, np.ndarray]:
    """The UTF-8 bytes of a text array's cells, one after the other (an Arrow slice: its own cells
    only), and where each non-empty cell starts among them."""
    import pyarrow as pa

    wide = pa.types.is_large_string(text.type)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64 if wide else np.int32)
    offsets = offsets[text.offset : text.offset + len(text) + 1]
    low, high = int(offsets[0]), int(offsets[-1])
    cells = memoryview(text.buffers()[2])[low:high].tobytes() if high > low else b""
    return cells, offsets[:-1][offsets[1:] > offsets[:-1]] - low


def _neutralised(text: Any) -> Any:
    import pyarrow as pa

    pc = _pc()
    formula = pc.fill_null(pc.match_substring_regex(text, HAS_FORMULA), False)
    if not pc.any(formula).as_py():
        return text
    fixed = [neutralise(v) for v in text.filter(formula).to_pylist()]
    return pc.replace_with_mask(text, formula, pa.array(fixed, type=text.type))


def _quoted(text: Any, sep: str) -> Any:
    """RFC 4180 as the csv module writes it with a CRLF terminator: a cell holding the separator, a
    quote, a CR or an LF in quotes, its quotes doubled."""
    pc = _pc()
    quote = pc.match_substring_regex(text, "[" + re.escape(sep) + '"\r\n]')
    if not pc.any(quote).as_py():
        return text
    import pyarrow as pa

    mark = pa.scalar('"', text.type)
    doubled = pc.replace_substring(text, '"', '""')
    return pc.if_else(quote, pc.binary_join_element_wise(mark, doubled, mark, pa.scalar("", text.type)), text)


def _column(values: pd.Series, dtype: str, sep: str = ",") -> Any:
    """One column's cells as Arrow text (None where missing), or None when its dtype is not one made here."""
    import pyarrow as pa

    pc = _pc()
    if dtype == STR:
        return _text(values, sep)
    if dtype == INT and str(values.dtype) == INT:
        return pc.cast(pa.array(values, type=pa.int64()), pa.string())
    if dtype == TIME and str(values.dtype) == TIME:
        return iso_times(values)
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


def iso_times(values: pd.Series) -> Any:
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
    """Would `rows` make this piece (its columns those of `schema`, of dtypes made here)?"""
    return _plain_columns(df, schema) is not None


def _plain_columns(df: pd.DataFrame, schema: dict[str, str]) -> list[pd.Series] | None:
    """The piece's columns in `schema`'s order when `rows` makes it, else None (each column got
    once: a frame's `[]` costs about 20 us, a tenth of making a column of a 4,096-row piece)."""
    if df.empty or list(df.columns) != list(schema) or len(schema) < 2:
        return None
    columns = [values for _, values in df.items()]
    for values, dtype in zip(columns, schema.values(), strict=True):
        kind = str(values.dtype)
        if dtype == STR:
            if not isinstance(values.dtype, pd.StringDtype | pd.CategoricalDtype):  # `== STR`: any StringDtype
                return None
        elif dtype not in (INT, TIME, FLOAT, BOOL) or kind != dtype:
            return None
    return columns


def rows(df: pd.DataFrame, schema: dict[str, str], sep: str, end: str) -> str | None:
    """The piece's rows (no header) as CSV text, each ending in `end`; None when a column's dtype is
    not one made here (see the module docstring), or for a table of one column (the csv module
    writes an empty cell there as `""`). Joined in C where analyzer/report/_csv.c is built."""
    columns = _plain_columns(df, schema)
    if columns is None:
        return None
    dtypes = list(schema.values())
    if compiled is not None:
        specs = [_spec(values, dtype, sep) for values, dtype in zip(columns, dtypes, strict=True)]
        if all(spec is not None for spec in specs):
            made: bytes = compiled.rows(specs, len(df), sep.encode(), end.encode())
            return made.decode("utf-8")
    cells = []
    for values, dtype in zip(columns, dtypes, strict=True):
        column = _column(values, dtype, sep)
        if column is None:
            return None
        cells.append(_pc().fill_null(column, ""))
    joined = _pc().binary_join_element_wise(*cells, sep)
    return end.join(joined.to_pylist()) + end


compiled: ModuleType | None
try:  # the rows joined in C (optional: setup.py builds it where it can; else Arrow compute, above)
    from analyzer.report import _csv as compiled
except ImportError:  # not built (no compiler at install)
    compiled = None


def _spec(values: pd.Series, dtype: str, sep: str) -> tuple[Any, ...] | None:
    """One column as analyzer/report/_csv.c takes it (see there): text made here (neutralised and
    quoted, fractions formatted), numbers, times and flags as they are; None when not made here."""
    import pyarrow as pa

    kind = str(values.dtype)
    if dtype == FLOAT and kind == FLOAT:
        return ("text", *text_buffers(_fixed(values)))
    if dtype == STR:
        one_byte = len(sep.encode()) == 1  # C quotes by one byte; any other separator: `_quoted`
        made = _text_cells(values, sep, True, one_byte)
        if made is None:
            return None
        text, quote = made
        buffers = ("large_text" if text.type == pa.large_string() else "text", *text_buffers(text, large=True))
        return (*buffers, sep.encode()[0]) if quote else buffers
    if dtype != kind or dtype not in (INT, TIME, BOOL):
        return None
    array: Any = values.array  # the pandas array's own isna and to_numpy: a tenth of the Series' cost
    known = (~np.asarray(array.isna(), dtype=bool)).view(np.uint8)
    if dtype == TIME:  # nanoseconds (NaT where missing): `columns.frame` made anything unknown NaT
        return ("time", np.ascontiguousarray(array.asi8, dtype=np.int64), known)
    if dtype == BOOL:
        return ("flag", np.asarray(array.to_numpy(dtype=bool, na_value=False)).view(np.uint8), known)
    return ("int", np.ascontiguousarray(array.to_numpy(dtype=np.int64, na_value=0)), known)
