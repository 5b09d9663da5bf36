"""The data-quality view counts bind items and calls per connection column-wise (`quality._binds`,
`quality._calls`): the same counters as the per-row reading of the rows' Python values
(`fold.columns`) that the view did before. Built inputs: missing values in every column, text columns
as Arrow strings or Python objects, one connection or several in a chunk."""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.report.fold import columns
from analyzer.report.views.quality import _BIND_COLUMNS, _CALL_COLUMNS, _COUNTERS, _binds, _calls

CAPTURES = ["a.pcap", "b.pcap", None]
STREAMS = [0, 1, 7, None]
NAMES = ["srvsvc", "unknown-12345678-1234-1234-1234-123456789abc", None]
SOURCES = ["bind", "header", "epm", "unknown", None]


def _reference_binds(chunk: pd.DataFrame) -> dict[tuple[str, int], list[int]]:
    per: dict[tuple[str, int], list[int]] = {}
    for capture, stream, ack, name in zip(*columns(chunk, _BIND_COLUMNS), strict=True):
        unknown = name is not None and name.startswith("unknown-")
        if (ack == "none" or unknown) and capture is not None and stream is not None:
            counts = per.setdefault((capture, stream), [0] * len(_COUNTERS))
            counts[0] += ack == "none"
            counts[6] += unknown
    return per


def _reference_calls(chunk: pd.DataFrame) -> dict[tuple[str, int], list[int]]:
    per: dict[tuple[str, int], list[int]] = {}
    for capture, stream, source, status, encrypted, name in zip(*columns(chunk, _CALL_COLUMNS), strict=True):
        without = source not in ("bind", "header")
        unknown = name is not None and name.startswith("unknown-")
        if (without or status is None or encrypted or unknown) and capture is not None and stream is not None:
            counts = per.setdefault((capture, stream), [0] * len(_COUNTERS))
            counts[1] += without
            counts[2] += status is None
            counts[3] += encrypted is True
            counts[6] += unknown
    return per


def _frame(data: dict[str, list[Any]], text: list[str], kind: str) -> pd.DataFrame:
    df = pd.DataFrame(data)
    df["stream"] = pd.array(data["stream"], dtype="Int64")
    return df if kind == "object" else df.astype({c: "string" for c in text})


def _drawn(draw: Any, names: list[str], values: tuple[list[Any], ...]) -> tuple[dict[str, list[Any]], str]:
    """Up to 60 rows of `values` (one list of choices per column of `names`) as columns, and the
    text columns' kind: Arrow strings or Python objects."""
    n = draw(st.integers(0, 60))
    rows = draw(st.lists(st.tuples(*(st.sampled_from(v) for v in values)), min_size=n, max_size=n))
    cols = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in names]
    return dict(zip(names, cols, strict=True)), draw(st.sampled_from(["string", "object"]))


@st.composite
def bind_chunks(draw: Any) -> pd.DataFrame:
    values = (CAPTURES, STREAMS, ["accepted", "none", "provider_rejection", None], NAMES)
    data, kind = _drawn(draw, _BIND_COLUMNS, values)
    return _frame(data, ["capture", "ack_result", "interface_name"], kind)


@st.composite
def call_chunks(draw: Any) -> pd.DataFrame:
    values = (CAPTURES, STREAMS, SOURCES, [0, 5, None], [True, False, None], NAMES)
    data, kind = _drawn(draw, _CALL_COLUMNS, values)
    df = _frame(data, ["capture", "interface_source", "interface_name"], kind)
    df["status"] = pd.array(data["status"], dtype="Int64")
    df["encrypted"] = pd.array(data["encrypted"], dtype="boolean")
    return df


@settings(max_examples=80, deadline=None)
@given(chunk=bind_chunks())
def test_bind_counters_are_the_rows_counted_one_by_one(chunk: pd.DataFrame) -> None:
    per: dict[tuple[str, int], list[int]] = {}
    _binds(chunk, per)
    assert per == _reference_binds(chunk)


@settings(max_examples=80, deadline=None)
@given(chunk=call_chunks())
def test_call_counters_are_the_rows_counted_one_by_one(chunk: pd.DataFrame) -> None:
    per: dict[tuple[str, int], list[int]] = {}
    _calls(chunk, per)
    assert per == _reference_calls(chunk)


def test_a_flood_chunk_is_one_connection_and_counts_add_up_over_chunks() -> None:
    n = 4096
    chunk = pd.DataFrame(
        {
            "capture": pd.array(["f.pcap"] * n, dtype="string"),
            "stream": pd.array([3] * n, dtype="Int64"),
            "interface_source": pd.array(["bind"] * n, dtype="string"),
            "status": pd.array([None] * n, dtype="Int64"),
            "encrypted": pd.array([False] * n, dtype="boolean"),
            "interface_name": pd.array(["srvsvc"] * n, dtype="string"),
        }
    )
    per: dict[tuple[str, int], list[int]] = {}
    _calls(chunk, per)
    _calls(chunk, per)
    assert per == {("f.pcap", 3): [0, 0, 2 * n, 0, 0, 0, 0]}
