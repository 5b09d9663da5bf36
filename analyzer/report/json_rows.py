"""JSON lines made column by column with Arrow compute: the bytes pandas' `to_json(orient="records",
lines=True)` writes of a piece `output._as_text` made (times as ISO text), without a Python object
per cell.

pandas' JSON writer (its own ujson) formats each cell in C but first boxes the frame's rows; for a
flood's tables that and the `strftime` of every time were most of writing JSON lines. Here each
column becomes the Arrow text of its cells (`"name":value`) at once and the rows are joined in
Arrow: integers in decimal, flags `true`/`false`, missing `null`, times as `output.ISO_FORMAT`
(`csv_rows.iso_times`, each distinct second formatted once) in quotes. Text that needs no escaping
(printable ASCII but `"`, `\\` and `/`, which ujson escapes) is quoted as it is; any other text
and every fraction is formatted by pandas' own writer, once per distinct value of the piece (ujson
has its own ways: `\\/`, `\\u00e9`, `0.0000001`, `1e+20`, `-0.0` as `0.0`), so the bytes are its.
A piece of a dtype not made here gives None and goes through pandas. Property tests hold both ways
byte-equal (tests/test_json_rows.py).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.report.columns import BOOL, FLOAT, INT, STR, TIME
from analyzer.report.csv_rows import cell_bytes, iso_times

_NEEDS_ESCAPE = r'[^\x20-\x7e]|["\\/]'  # what ujson writes other than as it is (\x7f is written raw too)
_PLAIN = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\/')  # the bytes of text written as it is
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')  # one string of a JSON array, as ujson writes it


def _pandas_text(values: list[str]) -> list[str]:
    """Each text as pandas' JSON writer writes it in a record."""
    return _JSON_STRING.findall(pd.Series(values, dtype=object).to_json(orient="records"))


def _pandas_floats(values: np.ndarray) -> list[str]:
    """Each float as pandas' JSON writer writes it in a record."""
    text: str = pd.Series(values, dtype="float64").to_json(orient="records")
    return text[1:-1].split(",") if len(values) else []


def _quoted(values: Any) -> Any:
    """Text cells as JSON strings (missing: null)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if isinstance(arr, pa.DictionaryArray):
        return pc.fill_null(_quoted(arr.dictionary).take(arr.indices), "null")
    arr = pc.cast(arr, pa.string())
    made = pc.binary_join_element_wise('"', arr, '"', "")
    if len(arr) and cell_bytes(arr)[0].translate(None, _PLAIN):  # a byte ujson escapes: find the cells
        escape = pc.fill_null(pc.match_substring_regex(arr, _NEEDS_ESCAPE), False)
        odd = arr.filter(escape)
        distinct = odd.unique()
        written = pa.array(_pandas_text(distinct.to_pylist()), type=pa.string())
        made = pc.replace_with_mask(made, escape, written.take(pc.index_in(odd, distinct)))
    return pc.fill_null(made, "null")


def _fractions(values: pd.Series) -> Any:
    """Fractions as ujson writes them (double precision 10), each distinct value once; NaN and missing null."""
    floats = values.to_numpy(dtype="float64", na_value=np.nan)
    bits, which = np.unique(floats.view(np.int64), return_inverse=True)
    written = pa.array(_pandas_floats(bits.view(np.float64)), type=pa.string())
    return written.take(pa.array(which.ravel()))


def _cells(values: pd.Series, dtype: str) -> Any:
    """One column's cells as JSON text (never missing), or None when its dtype is not one made here."""
    kind = str(values.dtype)
    if dtype == STR:
        if not (kind == STR or isinstance(values.dtype, pd.CategoricalDtype)):
            return None
        arr = pa.array(values)
        text = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
        return _quoted(arr) if pa.types.is_string(text) or pa.types.is_large_string(text) else None
    if dtype != kind:
        return None
    if dtype == INT:
        return pc.fill_null(pc.cast(pa.array(values, type=pa.int64()), pa.string()), "null")
    if dtype == BOOL:
        flags = pa.array(values.array, type=pa.bool_())
        return pc.fill_null(pc.if_else(flags, "true", "false"), "null")
    if dtype == FLOAT:
        return _fractions(values)
    if dtype == TIME:
        return pc.fill_null(pc.binary_join_element_wise('"', iso_times(values), '"', ""), "null")
    return None


def lines(df: pd.DataFrame, schema: dict[str, str]) -> str | None:
    """The piece's rows as JSON lines, each ending in a newline (the bytes of `df.to_json(orient=
    "records", lines=True)` of `output._as_text(df)`); None when a column is not of a dtype made here."""
    if df.empty or list(df.columns) != list(schema):
        return None
    parts: list[Any] = []
    for at, (name, dtype) in enumerate(schema.items()):
        cells = _cells(df[name], dtype)
        if cells is None:
            return None
        key = pd.Series([name], dtype=object).to_json(orient="records")[1:-1]
        parts += [("{" if at == 0 else ",") + key + ":", cells]
    joined = pc.binary_join_element_wise(*parts, "}", "")
    return "\n".join(joined.to_pylist()) + "\n"
