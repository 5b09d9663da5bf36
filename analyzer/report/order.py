"""Whether a table's rows are already in its order: records come back from the spool in the order
they were made, which is mostly the table's order (a call is recorded when it is answered, a
connection when it ends, so not always). A table already in order is not sorted again (a stable
sort would change nothing, and would copy the whole table).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_BIG = int(np.iinfo(np.int64).max)  # where a missing key sorts: last, as sort_values puts NA


def _key_arrays(df: pd.DataFrame, keys: list[str]) -> list[np.ndarray]:
    """Each sort key as an int64 array: text keys as their rank among the key's sorted values (factorised
    column-wise: a million Python strings would be built otherwise), missing last."""
    out: list[np.ndarray] = []
    for k in keys:
        col = df[k]
        if isinstance(col.dtype, pd.CategoricalDtype) and col.cat.categories.is_monotonic_increasing:
            codes = col.cat.codes.to_numpy()  # categories in sorted order: the codes are the ranks
            out.append(np.where(codes < 0, _BIG, codes).astype(np.int64))
        elif col.dtype == "string" or col.dtype == object or isinstance(col.dtype, pd.CategoricalDtype):
            codes, _ = pd.factorize(col.astype("string"), sort=True, use_na_sentinel=True)
            out.append(np.where(codes < 0, _BIG, codes).astype(np.int64))
        else:
            out.append(col.to_numpy(dtype="int64", na_value=_BIG))
    return out


def in_order(df: pd.DataFrame, keys: list[str]) -> bool:
    """Whether a frame's rows are already in the stable order of `keys` (sorting would change nothing)."""
    return _in_order(_key_arrays(df, keys))


def _in_order(keys: list[np.ndarray]) -> bool:
    """Whether rows are already in lexicographic key order (equal keys in any order would be kept
    where they are by a stable sort anyway)."""
    n = len(keys[0])
    if n < 2:
        return True
    undecided = np.ones(n - 1, dtype=bool)
    for k in keys:
        a, b = k[:-1], k[1:]
        if np.any(undecided & (a > b)):
            return False
        undecided &= a == b
    return True
