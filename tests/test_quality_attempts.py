"""The data-quality view counts attempts column-wise (`views.attempt_counts`): the same counts, in
the same first-seen order (which `most_common` breaks ties by), as a `Counter` of the rows' triples
read as Python values (`fold.columns`). Built inputs: missing values in every column, text columns as
Arrow strings, Python objects or categories, and chunks of one triple throughout but for at most one
row (the flood's shortcut, `attempt_counts._constant`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.report.fold import columns
from analyzer.report.views.attempt_counts import ATTEMPT_COLUMNS, attempt_counts

CAPTURES = ["a.pcap", "b.pcap", None]
SERVERS = ["10.0.0.1", "10.0.0.2", "10.0.0.10", None]
PORTS = [135, 445, 49152, None]


@st.composite
def chunks(draw: Any) -> pd.DataFrame:
    n = draw(st.integers(0, 80))
    triples = st.tuples(*(st.sampled_from(v) for v in (CAPTURES, SERVERS, PORTS)))
    if draw(st.booleans()):  # a flood's chunk: one triple throughout, or all but one row (the shortcut's edge)
        rows = [draw(triples)] * n
        if n and draw(st.booleans()):
            rows[draw(st.integers(0, n - 1))] = draw(triples)
    else:
        rows = draw(st.lists(triples, min_size=n, max_size=n))
    cap, server, port = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [])
    kind = draw(st.sampled_from(["string[pyarrow]", "string", "object", "category"]))
    df = pd.DataFrame({"capture": cap, "server_ip": server, "server_port": pd.array(port, dtype="Int64")})
    return df if kind == "object" else df.astype({"capture": kind, "server_ip": kind})


@settings(max_examples=150, deadline=None)
@given(chunk=chunks())
def test_attempt_counts_are_a_counter_of_the_rows(chunk: pd.DataFrame) -> None:
    want = Counter(zip(*columns(chunk, ATTEMPT_COLUMNS), strict=True))
    got = attempt_counts(chunk)
    assert list(got.items()) == list(want.items())


def test_a_flood_chunk_is_one_triple() -> None:
    n = 4096
    chunk = pd.DataFrame(
        {
            "capture": pd.array(["f.pcap"] * n, dtype="string"),
            "server_ip": pd.array(["10.0.0.1"] * n, dtype="string"),
            "server_port": pd.array([135] * n, dtype="Int64"),
        }
    )
    assert attempt_counts(chunk) == Counter({("f.pcap", "10.0.0.1", 135): n})
