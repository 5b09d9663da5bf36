"""A table written from a stream of chunks has its small chunks joined (`output._joined`) and the
same bytes as writing each chunk as it came: CSV and JSON lines, chunks of any sizes, text that needs
quoting or the formula guard, missing values, and chunks whose dtypes differ from the ones before
(pandas would make such a join object, and those are never joined)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.report import json_rows
from analyzer.report.columns import BOOL, INT, STR, TIME, frame
from analyzer.report.output import _as_text, _joined, _write_csv, write_frame

SCHEMA = {"capture": STR, "stream": INT, "ok": BOOL, "ts": TIME, "summary": STR}
TEXTS = ["a.pcap", "=cmd|' /C calc'!A0", 'say "hi"', "two\nlines", "", None]


@st.composite
def chunks(draw: Any) -> list[pd.DataFrame]:
    out = []
    for _ in range(draw(st.integers(0, 12))):
        n = draw(st.integers(0, 7))
        cols = {
            "capture": [draw(st.sampled_from(TEXTS)) for _ in range(n)],
            "stream": [draw(st.sampled_from([0, 7, None])) for _ in range(n)],
            "ok": [draw(st.sampled_from([True, False, None])) for _ in range(n)],
            "ts": [draw(st.sampled_from([0, 1_700_000_000_123_456_789])) for _ in range(n)],
            "summary": [draw(st.sampled_from(TEXTS)) for _ in range(n)],
        }
        df = frame(SCHEMA, cols)
        if draw(st.integers(0, 5)) == 0:  # now and then a chunk of other dtypes: text as Python objects
            df = df.astype({"summary": object})
        out.append(df)
    return out


def _json_lines(piece: pd.DataFrame) -> str:
    """A chunk's JSON lines as the writer made them before (`write_frame`'s two ways)."""
    made = json_rows.lines(piece, SCHEMA)
    return made if made is not None else _as_text(piece, SCHEMA, False).to_json(orient="records", lines=True)


def _one_by_one(pieces: list[pd.DataFrame]) -> str:
    buf = io.StringIO()
    header = True
    for piece in pieces:
        _write_csv(piece, SCHEMA, buf, header)
        header = False
    if header:
        _write_csv(frame(SCHEMA, {}), SCHEMA, buf, True)
    return buf.getvalue()


@settings(max_examples=100, deadline=None)
@given(pieces=chunks(), rows=st.integers(1, 20))
def test_joined_chunks_write_the_same_csv(pieces: list[pd.DataFrame], rows: int, tmp_path_factory: Any) -> None:
    joined = list(_joined(iter(pieces), rows))
    assert sum(map(len, joined)) == sum(map(len, pieces))
    # joined up to `rows` rows: a piece over it is a chunk that came so
    assert all(len(j) <= rows or len(j) in {len(p) for p in pieces} for j in joined)
    assert _one_by_one(joined) == _one_by_one(pieces)
    path = Path(tmp_path_factory.mktemp("csv")) / "t.csv"
    write_frame(iter(pieces), SCHEMA, path)
    assert path.read_bytes().decode("utf-8") == _one_by_one(pieces)


@settings(max_examples=60, deadline=None)
@given(pieces=chunks())
def test_joined_chunks_write_the_same_json_lines(pieces: list[pd.DataFrame], tmp_path_factory: Any) -> None:
    path = Path(tmp_path_factory.mktemp("jsonl")) / "t.jsonl"
    write_frame(iter(pieces), SCHEMA, path, "jsonl")
    want = "".join(_json_lines(p) for p in pieces if len(p))
    assert path.read_bytes().decode("utf-8") == want


def test_small_chunks_are_joined_and_other_dtypes_are_not() -> None:
    small = [frame(SCHEMA, {"capture": ["a"], "stream": [i]}) for i in range(5)]
    other = small[0].astype({"summary": object})
    joined = list(_joined(iter([*small, other, *small]), 100))
    assert [len(j) for j in joined] == [5, 1, 5]
