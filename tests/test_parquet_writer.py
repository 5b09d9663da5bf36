"""The Parquet writer (`report.output._write_parquet`): a table, whole or streamed as chunks of any
sizes, is written as row groups of exactly `PARQUET_ROWS` rows (the last: the rest), and reads back
as the table with its dtypes; the bytes depend on the rows, not on how they were cut; a table of no
rows is written as `to_parquet` writes its empty frame."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from analyzer.report import spooled as spooled_mod
from analyzer.report.columns import frame
from analyzer.report.source import TABLES
from analyzer.report.spooled import Spooled
from tests.conftest import SAMPLES, run


def _cut(df: pd.DataFrame, seed: int) -> list[pd.DataFrame]:
    """The frame as consecutive pieces of random lengths (some empty)."""
    rnd, out, at = random.Random(seed), [], 0
    while at < len(df):
        n = rnd.choice([0, 1, 3, 5, 11])
        out.append(df.iloc[at : at + n])
        at += n
    return out


@pytest.mark.parametrize("group", [10, 10_000])
def test_row_groups_of_any_pieces_read_back_as_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: int
) -> None:
    """Row groups of several chunks, and a table of fewer rows than one; a categorical stream too."""
    import pyarrow.parquet as pq

    from analyzer.report import output

    monkeypatch.setattr(output, "PARQUET_ROWS", group)
    records = run(sorted(SAMPLES.glob("*.pcap*")))
    records.finish()
    monkeypatch.setattr(spooled_mod, "CHUNK_ROWS", 5)  # a row group of two chunks
    monkeypatch.setattr(spooled_mod, "CACHE_ROWS", 0)
    source = Spooled(records)
    for table in ("calls", "binds", "connections"):
        whole = source.table(table)
        assert len(whole) > 20, table
        got = output.write_frame(source.chunks(table), TABLES[table], tmp_path / f"{table}.parquet", "parquet")
        sizes = [pq.ParquetFile(got).metadata.row_group(i).num_rows for i in range(pq.ParquetFile(got).num_row_groups)]
        assert sizes == [group] * (len(whole) // group) + ([len(whole) % group] if len(whole) % group else [])
        pd.testing.assert_frame_equal(pd.read_parquet(got), whole)
        for seed in range(3):  # cut otherwise, or whole: the same bytes
            other = output.write_frame(iter(_cut(whole, seed)), TABLES[table], tmp_path / "cut.parquet", "parquet")
            assert other.read_bytes() == got.read_bytes(), (table, seed)
        assert (
            output.write_frame(whole, TABLES[table], tmp_path / "w.parquet", "parquet").read_bytes() == got.read_bytes()
        )
    compact = [c.astype({"capture": "category"}) for c in source.chunks("calls")]
    path = output.write_frame(iter(compact), TABLES["calls"], tmp_path / "compact.parquet", "parquet")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back.astype({"capture": "string"}), source.table("calls"))


def test_a_table_of_no_rows_is_the_empty_frame_to_parquet_writes(tmp_path: Path) -> None:
    from analyzer.report import output

    for table in ("calls", "attempts"):
        empty = frame(TABLES[table], {})
        empty.to_parquet(tmp_path / "ref.parquet", index=False)
        for given in (empty, iter([]), iter([empty, empty])):
            got = output.write_frame(given, TABLES[table], tmp_path / f"{table}.parquet", "parquet")
            assert got.read_bytes() == (tmp_path / "ref.parquet").read_bytes(), table
