"""The JSON lines made column by column (`report.json_rows`) are the bytes pandas' to_json writes of
the same piece as `output` gives it (times as ISO text): any text (escapes, quotes, slashes, control
characters, unicode beyond the BMP, empty, missing), whole, categorical or sliced, any integer, time,
fraction (NaN, -0.0, tiny and huge) and flag; a piece of other dtypes goes pandas' way."""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.report import json_rows, output
from analyzer.report.columns import frame

SCHEMA = {"capture": "string", "frame": "Int64", "ts": "datetime64[ns, UTC]", "rtt_s": "Float64", "ok": "boolean"}
_TEXT = st.one_of(
    st.none(),
    st.sampled_from(["", "a/b", 'say "hi"', "x\r\ny", "\\PIPE\\lsarpc", "é€😀", "\x00\x7f\u2028", "<&>", "=x"]),
    st.text(max_size=8),
)
_TS = st.one_of(st.none(), st.sampled_from([0, 1, 999, (1 << 63) - 1]), st.integers(1, (1 << 63) - 1))
_FLOAT = st.one_of(st.none(), st.sampled_from([0.0, -0.0, 0.5, 1e-7, 1e20, 123456.0000005]), st.floats(width=64))
_INT = st.one_of(st.none(), st.integers(-(1 << 63), (1 << 63) - 1))
_ROW = st.tuples(_TEXT, _INT, _TS, _FLOAT, st.one_of(st.none(), st.booleans()))


def _pandas_way(df: pd.DataFrame) -> str:
    text: str = output._as_text(df, SCHEMA, False).to_json(orient="records", lines=True)
    return text


@settings(max_examples=300, deadline=None)
@given(st.lists(_ROW, min_size=1, max_size=12), st.booleans(), st.data())
def test_lines_are_the_pandas_bytes(rows: list[tuple[object, ...]], categorical: bool, data: st.DataObject) -> None:
    df = frame(SCHEMA, {name: [r[i] for r in rows] for i, name in enumerate(SCHEMA)})
    if categorical:
        df = df.astype({"capture": "category"})
    start = data.draw(st.integers(0, len(rows) - 1))
    piece = df.iloc[start:]
    got = json_rows.lines(piece, SCHEMA)
    assert got is not None
    assert got == _pandas_way(piece.astype(SCHEMA))


def test_a_concatenated_frame_and_other_dtypes() -> None:
    parts = [frame(SCHEMA, {"capture": [c], "frame": [1], "ts": [1], "rtt_s": [0.5], "ok": [True]}) for c in "a/"]
    df = pd.concat(parts, ignore_index=True)
    assert json_rows.lines(df, SCHEMA) == _pandas_way(df)
    other = {"a": "string", "b": "object"}
    assert json_rows.lines(pd.DataFrame({"a": pd.array(["x"], dtype="string"), "b": [object()]}), other) is None
    assert json_rows.lines(frame(SCHEMA, {}), SCHEMA) is None, "no rows: nothing to make"


def test_a_written_table_is_the_pandas_bytes(tmp_path: object) -> None:
    rows: dict[str, list[Any]] = {
        "capture": ["a.pcap"] * 5000 + ["b/é.pcap"],
        "frame": list(range(5001)),
        "ts": [1_700_000_000_123_456_789 + i for i in range(5001)],
        "rtt_s": [i / 7 for i in range(5001)],
        "ok": [i % 3 == 0 for i in range(5001)],
    }
    df = frame(SCHEMA, rows)
    path = output.write_frame(df, SCHEMA, f"{tmp_path}/t.jsonl", "jsonl")
    assert path.read_text(encoding="utf-8") == _pandas_way(df)
