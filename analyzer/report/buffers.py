"""Arrow columns as the C modules of the table side read them (analyzer/report/_flowid.c, _csv.c):
plain buffers, so that C reads a chunk's cells without a Python object per cell.

A text column is (offsets: int32, or int64 for a large one, per row + 1, data: its UTF-8 bytes,
valid: a byte per row), a
number column (values: int64 per row, 0 where missing, valid). The offsets index the data buffer as
Arrow holds it (a slice keeps its offsets into its parent's bytes), and C checks every one of them
against the data's length before reading.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def text_buffers(values: Any, large: bool = False) -> tuple[np.ndarray, Any, np.ndarray]:
    """A text column (any Arrow text, or a null array) as (offsets, data, valid); `large`: the
    offsets of a large_string column as int64 (as it holds them: no cast), not int32."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    wide = large and arr.type == pa.large_string()
    if not wide and arr.type != pa.string():
        arr = pc.cast(arr, pa.string())
    n = len(arr)
    buffers = arr.buffers()
    if arr.null_count == n:  # no cell at all (a null array cast to text may have no offsets)
        return np.zeros(n + 1, dtype=np.int64 if wide else np.int32), b"", np.zeros(n, dtype=np.uint8)
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if wide else np.int32)[arr.offset : arr.offset + n + 1]
    data = buffers[2] if buffers[2] is not None else b""
    return np.ascontiguousarray(offsets), data, valid(arr)


def number_buffers(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """A number column (any Arrow integers, or a null array) as (values, valid)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if arr.type != pa.int64():
        arr = pc.cast(arr, pa.int64())
    numbers = np.ascontiguousarray(arr.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    return numbers, valid(arr)


def valid(arr: Any) -> np.ndarray:
    """A byte per row of an Arrow array: 1 where it holds a value."""
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=np.uint8)
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)
