"""The Parquet writer holds a row group's chunks as Arrow tables (`report.output._RowGroup`) and
writes the bytes of holding the frames and converting them whole (what it did before)."""

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
    """The Parquet bytes of the chunks gathered into row groups of `rows` as frames, each converted
    whole: what `output._write_parquet` wrote before it held the chunks as Arrow."""
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
def test_chunks_held_as_arrow_write_the_bytes_of_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: int
) -> None:
    """Chunks held as Arrow tables for a row group (`output._RowGroup`): the bytes of holding the
    frames and converting them whole, for row groups of several chunks and for a table of fewer
    rows than one (the bytes of `to_parquet` of the whole frame); a categorical stream too."""
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
