"""Whether a table's rows are already in its order: records come back from the spool in the order
they were made, which is mostly the table's order (a call is recorded when it is answered, a
connection when it ends, so not always). A table already in order is not sorted again (a stable
sort would change nothing, and would copy the whole table).
"""

from __future__ import annotations

from typing import Any

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


def sort_order(df: pd.DataFrame, keys: list[str]) -> np.ndarray | None:
    """The positions of a frame's rows in the stable order of `keys` (what
    `sort_values(keys, kind="stable")` would give), or None when they are in that order already."""
    return arrays_order(_key_arrays(df, keys))


def arrays_order(arrays: list[np.ndarray]) -> np.ndarray | None:
    """`sort_order` of keys already made int64 ranks (`SortKeys`)."""
    if _in_order(arrays):
        return None
    order: np.ndarray = np.lexsort(arrays[::-1])  # the last key given to lexsort is the primary one
    return order


class SortKeys:
    """Sort keys gathered a batch of Arrow arrays at a time, each made an int64 array as `_key_arrays`
    makes it (text as its rank among the key's sorted values, missing last), without a frame or a
    Python object per row: a million SYNs' keys cost their numbers."""

    def __init__(self, text: list[bool]) -> None:
        self._text = text
        self._codes: list[dict[str, int]] = [{} for _ in text]  # per text key: value -> code
        self._parts: list[list[np.ndarray]] = [[] for _ in text]

    def add(self, columns: list[Any]) -> None:
        """One batch: a pyarrow array per key, in the order given at construction."""
        for i, (arr, text) in enumerate(zip(columns, self._text, strict=True)):
            if pa_null(arr):
                self._parts[i].append(np.full(len(arr), -1 if text else _BIG, dtype=np.int64))
            elif text:
                encoded = arr.dictionary_encode()
                codes = self._codes[i]
                known = np.array([codes.setdefault(v, len(codes)) for v in encoded.dictionary.to_pylist()] or [0])
                at = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
                self._parts[i].append(np.where(at < 0, -1, known[np.maximum(at, 0)]))
            else:
                self._parts[i].append(arr.fill_null(_BIG).to_numpy(zero_copy_only=False).astype(np.int64))

    def arrays(self) -> list[np.ndarray]:
        out = []
        for parts, codes, text in zip(self._parts, self._codes, self._text, strict=True):
            values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            if text:  # codes -> ranks of the sorted values; missing last
                rank = np.empty(len(codes) + 1, dtype=np.int64)
                rank[[codes[v] for v in sorted(codes)]] = np.arange(len(codes))
                rank[-1] = _BIG
                values = rank[values]  # a code of -1 takes the last entry, _BIG
            out.append(values)
        return out


def pa_null(arr: Any) -> bool:
    """Whether a pyarrow array is of the null type (every value missing, no type inferred)."""
    import pyarrow as pa

    return bool(arr.type == pa.null())


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
