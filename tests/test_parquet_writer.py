"""A table streamed to Parquet as chunks (`report.output._write_parquet`) is written in the bytes of
its frames gathered into row groups of `PARQUET_ROWS` and converted whole, and a table shorter than
one row group in the bytes of `to_parquet` of the whole frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analyzer.report import spooled as spooled_mod
from analyzer.report.source import TABLES
from analyzer.report.spooled import Spooled
from tests.conftest import SAMPLES, run


def _row_groups_of_frames(chunks: list[pd.DataFrame], rows: int, path: Path) -> bytes:
    """The Parquet bytes of the chunks gathered into row groups of `rows` as frames, each converted whole."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    whole = pd.concat(chunks, ignore_index=True)
    if len(whole) < rows:
        whole.to_parquet(path, index=False)
        return path.read_bytes()
    writer: Any = None
    for start in range(0, len(whole), rows):
        table = pa.Table.from_pandas(whole.iloc[start : start + rows].reset_index(drop=True), preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table.cast(writer.schema))
    writer.close()
    return path.read_bytes()


@pytest.mark.parametrize("group", [10, 10_000])
def test_streamed_chunks_write_the_bytes_of_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: int) -> None:
    """Row groups of several chunks, and a table of fewer rows than one; a categorical stream too."""
    from analyzer.report import output

    monkeypatch.setattr(output, "PARQUET_ROWS", group)
    records = run(sorted(SAMPLES.glob("*.pcap*")))
    records.finish()
    monkeypatch.setattr(spooled_mod, "CHUNK_ROWS", 5)  # a row group of two chunks
    monkeypatch.setattr(spooled_mod, "CACHE_ROWS", 0)
    source = Spooled(records)
    for table in ("calls", "binds", "connections"):
        chunks = list(source.chunks(table))
        got = output.write_frame(iter(chunks), TABLES[table], tmp_path / f"{table}.parquet", "parquet").read_bytes()
        assert got == _row_groups_of_frames(chunks, group, tmp_path / f"{table}.ref.parquet"), table
    compact = [c.astype({"capture": "category"}) for c in source.chunks("calls")]
    got = output.write_frame(iter(compact), TABLES["calls"], tmp_path / "compact.parquet", "parquet").read_bytes()
    assert got == _row_groups_of_frames(compact, group, tmp_path / "compact.ref.parquet")
