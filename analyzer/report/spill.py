"""Frames a fold makes as it goes, kept on disk until they are written (issue 13: peak RSS under floods).

A view whose rows grow with a base table (data_quality: a row per connection) would hold its output
whole until the pass ends: under the binds flood that was 200,000 rows, 90 MiB of Arrow text and
masked integers in the process that writes the tables. A `Spill` takes each frame as it is made and
writes it, as one Arrow IPC stream (`pa.Table.from_pandas`: the pandas metadata comes back with it, so
the dtypes do), to an anonymous temporary file (`tempfile.TemporaryFile`: unlinked already, gone when
the spill is closed or collected, or the process ends). `frames()` reads them back in order, one at a
time, as often as asked: what is held is one frame and the offsets.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Any

import pandas as pd


class Spill:
    """Frames written to a temporary file as they come, read back in order (see the module docstring)."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._parts: list[tuple[int, int]] = []  # (offset, length) of each frame's stream in the file
        self.rows = 0

    def add(self, df: pd.DataFrame) -> None:
        """One frame, written now (a frame of no rows is not kept)."""
        if not len(df):
            return
        import pyarrow as pa

        table = pa.Table.from_pandas(df, preserve_index=False)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        data = sink.getvalue()
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="rpc-analyzer-spill-")  # noqa: SIM115 (kept open: read back later)
        at = self._file.seek(0, 2)
        self._file.write(memoryview(data))
        self._parts.append((at, data.size))
        self.rows += len(df)

    def frames(self) -> Iterator[pd.DataFrame]:
        """Every frame added, in order, each as it was given (same columns and dtypes, a fresh index)."""
        import pyarrow as pa

        for at, size in self._parts:
            assert self._file is not None
            self._file.seek(at)
            data: Any = self._file.read(size)
            yield pa.ipc.open_stream(pa.py_buffer(data)).read_all().to_pandas()

    def close(self) -> None:
        """Remove the file (the spill is empty after this)."""
        if self._file is not None:
            self._file.close()
        self._file, self._parts, self.rows = None, [], 0
