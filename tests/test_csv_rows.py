"""The CSV rows made column by column (`report.csv_rows`) are the bytes the pandas way and the csv
module write: for any text (separators, quotes, line breaks, formula starts, unicode, empty,
missing), whole or categorical, any integer, time, fraction and flag; a piece of other dtypes goes
the csv module's way."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.report import csv_rows, output
from analyzer.report.columns import frame

SCHEMA = {"capture": "string", "frame": "Int64", "ts": "datetime64[ns, UTC]", "ip": "string"}
_TEXT = st.one_of(
    st.none(),
    st.sampled_from(["", "a,b", 'say "hi"', "x\r\ny", "=cmd|' /C calc'!A0", "+1", "-", "@x", "\tx", "\rx", "é€"]),
    st.text(max_size=8),
)
_TS = st.one_of(st.none(), st.sampled_from([0, 1, 999, (1 << 63) - 1]), st.integers(1, (1 << 63) - 1))
_ROW = st.tuples(_TEXT, st.one_of(st.none(), st.integers(-(1 << 63), (1 << 63) - 1)), _TS, _TEXT)


def _pandas_way(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    output._as_text(df, SCHEMA, True).to_csv(buf, index=False, header=False, lineterminator="\r\n", float_format="%.6f")
    return buf.getvalue()


def _csv_module_way(df: pd.DataFrame, schema: dict[str, str]) -> str:
    """What `output` writes of a piece through the csv module (its cells, `output._cells`)."""
    import csv

    buf = io.StringIO()
    cells = (output._cells(df[c], dtype) for c, dtype in schema.items())
    csv.writer(buf, lineterminator="\r\n").writerows(zip(*cells, strict=True))
    return buf.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.lists(_ROW, min_size=1, max_size=12), st.booleans())
def test_rows_are_the_pandas_bytes(rows: list[tuple[object, ...]], categorical: bool) -> None:
    """Any text (quoted, neutralised or neither), whole or categorical, integers and times: the
    bytes pandas' to_csv and the csv module write of the same piece."""
    df = frame(SCHEMA, {name: [r[i] for r in rows] for i, name in enumerate(SCHEMA)})
    if categorical:
        df = df.astype({"capture": "category", "ip": "category"})
    got = csv_rows.rows(df, SCHEMA, ",", "\r\n")
    assert csv_rows.plain(df, SCHEMA) and got is not None
    assert got == _pandas_way(df.astype(SCHEMA)) == _csv_module_way(df.astype(SCHEMA), SCHEMA)


@settings(max_examples=200, deadline=None)
@given(st.lists(_ROW, min_size=2, max_size=12), st.data())
def test_a_slice_is_made_from_its_own_cells(rows: list[tuple[object, ...]], data: st.DataObject) -> None:
    """A piece cut out of a bigger frame (an Arrow slice, its bytes among others'): the byte check
    that skips quoting and neutralising (`csv_rows._may_need`) reads the slice's cells alone, and
    gives the csv module's bytes."""
    df = frame(SCHEMA, {name: [r[i] for r in rows] for i, name in enumerate(SCHEMA)})
    start = data.draw(st.integers(0, len(rows) - 1))
    end = data.draw(st.integers(start + 1, len(rows)))
    piece = df.iloc[start:end]
    assert csv_rows.rows(piece, SCHEMA, ",", "\r\n") == _csv_module_way(piece, SCHEMA)


def test_the_byte_check_sees_what_needs_work() -> None:
    import pyarrow as pa

    need = csv_rows._may_need
    assert need(pa.array(["10.0.0.1", None, ""]), ",") == (False, False)
    assert need(pa.array(["a", "=x"]), ",") == (True, False)
    assert need(pa.array(["a", "b\n+c"]), ",") == (True, True)
    assert need(pa.array(['say "hi"']), ",") == (False, True)
    assert need(pa.array(["a,b", "=x"]).slice(0, 1), ",") == (False, True), "the slice's cells only"
    assert need(pa.array(["=x", "a"]).slice(1), ",") == (False, False)


def test_a_concatenated_frame_is_the_csv_module_bytes() -> None:
    """Concatenated frames hold chunked Arrow columns: made like any other, a formula in a later
    chunk neutralised (the masks of `_neutralised` take one array)."""
    parts = [frame(SCHEMA, {"capture": [c], "frame": [1], "ts": [1], "ip": ["10.0.0.1"]}) for c in ("a", "=b", "c,d")]
    df = pd.concat(parts, ignore_index=True)
    assert csv_rows.rows(df, SCHEMA, ",", "\r\n") == _csv_module_way(df, SCHEMA)


def test_a_piece_of_other_dtypes_or_one_column_goes_the_csv_module_way() -> None:
    one = {"capture": "string"}
    assert csv_rows.rows(frame(one, {"capture": ["", None]}), one, ",", "\r\n") is None  # "" would be '""'
    other = {"a": "string", "b": "object"}
    df = pd.DataFrame({"a": pd.array(["x"], dtype="string"), "b": [object()]})
    assert csv_rows.rows(df, other, ",", "\r\n") is None


def test_a_written_table_is_the_same_either_way(tmp_path: object) -> None:
    """write_frame's bytes, plain rows and rows that need quoting mixed in one table."""
    rows = {
        "capture": ["a.pcap"] * 5000 + ['b,"c".pcap'],
        "frame": list(range(5001)),
        "ts": [1_700_000_000_123_456_789 + i for i in range(5001)],
        "ip": ["10.0.0.1"] * 5001,
    }
    df = frame(SCHEMA, rows)
    path = output.write_frame(df, SCHEMA, f"{tmp_path}/t.csv")
    header = ",".join(SCHEMA) + "\r\n"
    assert path.read_bytes().decode() == header + _pandas_way(df)


NUMBERS = {"rtt_s": "Float64", "encrypted": "boolean", "calls": "Int64"}
_FLOAT = st.one_of(
    st.none(), st.sampled_from([0.0, -0.0, 0.5, 1e-7, 5e-7, 123456.0000005]), st.floats(allow_nan=True, width=64)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_FLOAT, st.one_of(st.none(), st.booleans()), st.integers(0, 9)), min_size=1, max_size=12))
def test_fractions_and_flags_are_the_csv_writers_bytes(rows: list[tuple[object, ...]]) -> None:
    """Fractions (six decimals, each distinct value formatted once; -0.0, NaN, infinities) and flags
    made column by column are what the csv module writes of the same cells (`output._cells`)."""
    df = frame(NUMBERS, {name: [r[i] for r in rows] for i, name in enumerate(NUMBERS)})
    got = csv_rows.rows(df, NUMBERS, ",", "\r\n")
    assert got is not None and csv_rows.plain(df, NUMBERS)
    assert got == _csv_module_way(df, NUMBERS)


ALL_KINDS = {**SCHEMA, **NUMBERS}
_INT = st.one_of(st.none(), st.integers(-(1 << 63), (1 << 63) - 1))
_TIMES = st.one_of(_TS, st.sampled_from([86_399_999_999_999, 951_782_400_000_000_000, 4_107_542_399_999_999_999]))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_TEXT, _INT, _TIMES, _TEXT, _FLOAT, st.one_of(st.none(), st.booleans()), _INT), max_size=12),
    st.booleans(),
    st.sampled_from([",", ";", "\t", "|"]),
)
def test_rows_joined_in_c_are_the_arrow_ones(rows: list[tuple[object, ...]], categorical: bool, sep: str) -> None:
    """The rows joined in C (analyzer/report/_csv.c: numbers, times, flags formatted there, text
    copied) are the bytes of the Arrow compute way they replace and of the csv module, for every
    kind of column at once: leap days and the last microsecond of a day, any separator."""
    if csv_rows.compiled is None:
        pytest.skip("analyzer/report/_csv.c is not built")
    df = frame(ALL_KINDS, {name: [r[i] for r in rows] for i, name in enumerate(ALL_KINDS)})
    if categorical:
        df = df.astype({"capture": "category"})
    if df.empty:
        assert csv_rows.rows(df, ALL_KINDS, sep, "\r\n") is None
        return
    got = csv_rows.rows(df, ALL_KINDS, sep, "\r\n")
    compiled, csv_rows.compiled = csv_rows.compiled, None
    try:
        arrow = csv_rows.rows(df, ALL_KINDS, sep, "\r\n")
    finally:
        csv_rows.compiled = compiled
    assert got is not None and got == arrow
    if sep == ",":
        assert got == _csv_module_way(df.astype(ALL_KINDS), ALL_KINDS)


def test_c_rows_refuse_what_they_cannot_read() -> None:
    """Buffers that do not hold the rows they claim raise, never read past their end."""
    import numpy as np

    c = csv_rows.compiled
    if c is None:
        pytest.skip("analyzer/report/_csv.c is not built")
    ok = np.ones(2, dtype=np.uint8)
    with pytest.raises(ValueError):
        c.rows([("text", np.array([0, 5, 99], dtype=np.int32), b"hello", ok)], 2, b",", b"\n")
    with pytest.raises(ValueError):
        c.rows([("int", np.zeros(1, dtype=np.int64), ok)], 2, b",", b"\n")
    with pytest.raises(ValueError):
        c.rows([("nothing", b"", ok)], 2, b",", b"\n")
    assert (
        c.rows([("int", np.array([-(2**63), 7], dtype=np.int64), ok)], 2, b",", b"\n") == b"-9223372036854775808\n7\n"
    )
