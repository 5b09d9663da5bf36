"""A chunk whose column holds one value throughout (a flood's) is told by comparison, not factorised
(`report.vector.one_value`), and the codes made from that answer are the factorised ones: the folds'
group codes (`fold._value_codes`) and the rules' key index (`findings.select.KeyIndex`). Built inputs:
columns of one value, of one value but one row (another value or a missing one), and of any values,
as Arrow text, Python text, objects and Int64."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.findings.select import KeyIndex
from analyzer.report.fold import _value_codes
from analyzer.report.vector import one_value

TEXTS = ["10.0.0.1", "10.0.0.2", "srvsvc", "", None]
NUMBERS = [135, 445, 0, None]


@st.composite
def columns(draw: Any) -> pd.Series:
    text = draw(st.booleans())
    pool = TEXTS if text else NUMBERS
    n = draw(st.integers(0, 60))
    if draw(st.booleans()):  # one value throughout, or all but one row
        values = [draw(st.sampled_from(pool))] * n
        if n and draw(st.booleans()):
            values[draw(st.integers(0, n - 1))] = draw(st.sampled_from(pool))
    else:
        values = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    if not text:
        return pd.Series(pd.array(values, dtype="Int64"))
    kind = draw(st.sampled_from(["string[pyarrow]", "string[python]", "object"]))
    return pd.Series(values, dtype=kind)


@settings(max_examples=200, deadline=None)
@given(col=columns())
def test_one_value_is_one_known_value_throughout(col: pd.Series) -> None:
    truth = bool(len(col)) and bool(col.notna().all()) and col.nunique() == 1
    got = one_value(col)
    # Columns it does not compare (Python text, objects) answer no; the others, the truth.
    compared = col.dtype == "Int64" or (isinstance(col.dtype, pd.StringDtype) and col.dtype.storage == "pyarrow")
    assert got == (truth and compared)


@settings(max_examples=200, deadline=None)
@given(col=columns())
def test_codes_are_the_factorised_ones(col: pd.Series) -> None:
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    more, size = _value_codes(col)
    assert size == len(uniques) and more.tolist() == codes.tolist()
    keyed = KeyIndex(pd.DataFrame({"k": col})).column("k")
    assert keyed is not None
    assert keyed[0].tolist() == codes.tolist() and keyed[1] == uniques.tolist()
    assert [type(v) for v in keyed[1]] == [type(v) for v in uniques.tolist()]


def test_a_flood_column_is_one_value() -> None:
    n = 4096
    assert one_value(pd.Series(["10.0.0.1"] * n, dtype="string[pyarrow]"))
    assert one_value(pd.Series(pd.array(np.full(n, 135), dtype="Int64")))
    odd = pd.Series(["10.0.0.1"] * (n - 1) + [None], dtype="string[pyarrow]")
    assert not one_value(odd)
