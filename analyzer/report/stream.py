"""A table as a stream of sorted chunks, so that writing it never holds the whole table in memory.

Records come back from the spool in the order they were made, which is mostly but not always the
table's order (a call is recorded when it is answered, a connection when it ends). `sorted_chunks`
converts the records chunk by chunk, spills each chunk to a temporary file and keeps only its sort
keys; already in order, the chunks are read back as they are; otherwise each row's place in the
stable sort is computed from the keys alone and the rows are dealt into buckets of `CHUNK_ROWS`
consecutive places, each bucket then read and ordered on its own (an external sort in two passes).
The rows and their order are those of a stable `sort_values` over the whole table.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

import numpy as np
import pandas as pd

_BIG = int(np.iinfo(np.int64).max)  # where a missing key sorts: last, as sort_values puts NA


class _Spill:
    """Frames pickled one after another into an anonymous temporary file."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="rpc-analyzer-table-")  # noqa: SIM115 (closed by close())
        self._offsets: list[int] = []

    def add(self, df: pd.DataFrame) -> None:
        self._file.seek(0, os.SEEK_END)
        self._offsets.append(self._file.tell())
        pickle.dump(df, self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def __len__(self) -> int:
        return len(self._offsets)

    def get(self, i: int) -> pd.DataFrame:
        self._file.seek(self._offsets[i])
        df: pd.DataFrame = pickle.load(self._file)
        return df

    def close(self) -> None:
        self._file.close()


def _key_arrays(df: pd.DataFrame, keys: list[str]) -> list[np.ndarray]:
    """Each sort key as an int64 array (text keys as their value for now; see `_codes`)."""
    out: list[np.ndarray] = []
    for k in keys:
        col = df[k]
        if col.dtype == "string" or col.dtype == object:
            out.append(np.array([None if v is pd.NA else v for v in col.tolist()], dtype=object))
        else:
            out.append(col.to_numpy(dtype="int64", na_value=_BIG))
    return out


def _codes(values: np.ndarray) -> np.ndarray:
    """Text keys as int64 codes in sorted order, missing last."""
    present = sorted({v for v in values if v is not None})
    rank = {v: i for i, v in enumerate(present)}
    return np.fromiter((rank.get(v, _BIG) if v is not None else _BIG for v in values), dtype=np.int64)


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


def sorted_chunks(chunks: Iterable[pd.DataFrame], keys: list[str], size: int) -> Iterator[pd.DataFrame]:
    """The rows of `chunks` in stable order of `keys`, as frames of about `size` rows."""
    spill = _Spill()
    try:
        parts: list[list[np.ndarray]] = []
        for df in chunks:
            if df.empty:
                continue
            spill.add(df)
            parts.append(_key_arrays(df, keys))
        if not parts:
            return
        columns = [np.concatenate([p[i] for p in parts]) for i in range(len(keys))]
        del parts
        columns = [_codes(c) if c.dtype == object else c for c in columns]
        if _in_order(columns):
            for i in range(len(spill)):
                yield spill.get(i)
            return
        yield from _bucketed(spill, columns, size)
    finally:
        spill.close()


def _bucketed(spill: _Spill, keys: list[np.ndarray], size: int) -> Iterator[pd.DataFrame]:
    """Deal the spilled rows into buckets of `size` consecutive sorted places, then order each."""
    order = np.lexsort(keys[::-1])  # stable: equal keys keep their order
    place = np.empty_like(order)
    place[order] = np.arange(len(order))
    del order
    buckets: dict[int, _Spill] = {}
    try:
        start = 0
        for i in range(len(spill)):
            df = spill.get(i)
            where = place[start : start + len(df)]
            start += len(df)
            bucket = where // size
            for b in np.unique(bucket):
                rows = bucket == b
                piece = df.iloc[rows]
                buckets.setdefault(int(b), _Spill()).add(piece.assign(_place=where[rows]))
        for b in sorted(buckets):
            pieces = [buckets[b].get(i) for i in range(len(buckets[b]))]
            both = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]
            both = both.sort_values("_place", kind="stable").drop(columns="_place")
            yield both.reset_index(drop=True)
            buckets.pop(b).close()
    finally:
        for s in buckets.values():
            s.close()
