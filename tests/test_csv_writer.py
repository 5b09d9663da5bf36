"""The CSV writer ([analyzer.report.output]) writes through the csv module, a column at a time, for
speed: its bytes are those of pandas' to_csv with the same conventions (RFC 4180 line ends, times
ISO 8601 with a Z, fractions with 6 decimals, formula starts neutralised), for any cells."""

from __future__ import annotations

import csv
import io
import re

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.report.columns import BOOL, FLOAT, INT, STR, TIME, frame
from analyzer.report.csv_rows import neutralise
from analyzer.report.output import ISO_FORMAT, LINE_TERMINATOR, csv_text

SCHEMA = {"text": STR, "count": INT, "seconds": FLOAT, "flag": BOOL, "ts": TIME}
_TEXT = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from('ab=+-@\t\r\n,"; é'), max_size=8),
    st.text(max_size=6),
)


def _to_csv(df: pd.DataFrame) -> str:
    """The writer as it was: a neutralised copy of the frame, times formatted, then pandas' to_csv."""
    out = df.copy()
    out["ts"] = out["ts"].dt.strftime(ISO_FORMAT).astype(STR)
    mask = out["text"].str.contains(r"(?:^|[\r\n])[=+\-@\t\r]", na=False, regex=True)
    if mask.any():
        out.loc[mask, "text"] = out.loc[mask, "text"].map(neutralise)
    buf = io.StringIO()
    out.to_csv(buf, index=False, lineterminator=LINE_TERMINATOR, float_format="%.6f")
    return buf.getvalue()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            _TEXT,
            st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
            st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=True, width=64)),
            st.one_of(st.none(), st.booleans()),
            st.one_of(st.none(), st.integers(1, 2**63 - 1)),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_same_bytes_as_pandas_to_csv(rows: list[tuple[object, ...]]) -> None:
    df = frame(SCHEMA, {name: [r[i] for r in rows] for i, name in enumerate(SCHEMA)})
    text = csv_text(df, SCHEMA)
    assert text == _to_csv(df)
    for row in list(csv.reader(io.StringIO(text, newline="")))[1:]:
        assert not re.search(r"(?:^|[\r\n])[=+\-@\t\r]", row[0]), "no formula start survives in text"
