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


class OrderCheck:
    """Whether batches of Arrow key arrays (as `SortKeys.add` takes them) come in the keys' stable
    order, checked a batch at a time and nothing kept but the last row's keys: a table in order (the
    usual case; a million SYNs' attempts) is found so without gathering its keys (for a million rows,
    with their ranks and the concatenation, 32 MiB at once). Each batch is ranked on its own (text by
    its values' sorted order, missing last, as `SortKeys` ranks the whole), and its first row is
    compared with the previous batch's last."""

    def __init__(self, text: list[bool]) -> None:
        self._text = text
        self._last: tuple[tuple[int, Any], ...] | None = None  # the last row's keys: (missing, value)
        self.in_order = True

    def add(self, columns: list[Any]) -> bool:
        """One batch (a pyarrow array per key); whether every row so far is in order."""
        if self.in_order and len(columns[0]):
            arrays = [_batch_ranks(arr, text) for arr, text in zip(columns, self._text, strict=True)]
            first, last = (tuple(_edge(arr[at].as_py()) for arr in columns) for at in (0, len(columns[0]) - 1))
            self.in_order = (self._last is None or self._last <= first) and _in_order(arrays)
            self._last = last
        return self.in_order


def _edge(value: Any) -> tuple[int, Any]:
    """A key's value as it compares across batches: missing after every value."""
    return (1, 0) if value is None else (0, value)


def _batch_ranks(arr: Any, text: bool) -> np.ndarray:
    """One batch's key as int64 ranks within the batch (text by its values' sorted order), missing last."""
    if pa_null(arr):
        return np.full(len(arr), _BIG, dtype=np.int64)
    if not text:
        return np.asarray(arr.fill_null(_BIG).to_numpy(zero_copy_only=False), dtype=np.int64)
    encoded = arr.dictionary_encode()
    values = encoded.dictionary.to_pylist()
    rank = np.empty(len(values) + 1, dtype=np.int64)
    rank[sorted(range(len(values)), key=values.__getitem__)] = np.arange(len(values))
    rank[-1] = _BIG
    ranks: np.ndarray = rank[encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)]
    return ranks


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
