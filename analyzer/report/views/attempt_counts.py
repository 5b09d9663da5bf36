"""The data-quality view's attempts counter: how many attempts rows of a chunk hold each (capture,
server_ip, server_port), for the per-capture attempt counts and targets (`views.quality`).
Column-wise: a SYN flood's chunk of a million rows alike is one triple, and told by comparison."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from analyzer.report.vector import one_value

ATTEMPT_COLUMNS = ["capture", "server_ip", "server_port"]


def attempt_counts(chunk: pd.DataFrame) -> Counter[tuple[Any, Any, Any]]:
    """How many rows hold each (capture, server_ip, server_port), missing as None, in the order first
    seen: `Counter` of the rows' triples, counted column-wise. A SYN flood's chunk is one triple,
    told by comparing each column with its first value (a third of factorizing it, which every
    other chunk then does)."""
    cols = [chunk[name] for name in ATTEMPT_COLUMNS]
    first = _constant(cols) if len(chunk) else None
    if first is not None:
        return Counter({first: len(chunk)})
    codes, uniques = [], []
    for col in cols:
        code, values = pd.factorize(col, use_na_sentinel=True)  # missing: -1, then 0 here
        codes.append(code.astype(np.int64) + 1)
        uniques.append([None, *values.tolist()])
    _caps, servers, ports = (len(u) for u in uniques)
    combined = (codes[0] * servers + codes[1]) * ports + codes[2]
    triples, first, counts = np.unique(combined, return_index=True, return_counts=True)
    out: Counter[tuple[Any, Any, Any]] = Counter()
    for k in np.argsort(first, kind="stable").tolist():
        c = int(triples[k])
        out[uniques[0][c // (servers * ports)], uniques[1][c // ports % servers], uniques[2][c % ports]] += int(
            counts[k]
        )
    return out


def _constant(cols: list[pd.Series]) -> tuple[Any, Any, Any] | None:
    """The first row's values when every row of these columns holds them, none missing, else None."""
    if not all(one_value(col) for col in cols):
        return None
    first = [col.array[:1].tolist()[0] for col in cols]  # Python values, as the factorised path gives
    return (first[0], first[1], first[2])
