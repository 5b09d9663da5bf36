"""The spool-backed Source ([analyzer.report.spooled]) and the spool's read side it stands on
(`Spool.fields`, `Spool.take`): every table read a chunk at a time from the spooled records is the
table built whole and stably sorted, whatever the batch and chunk sizes, for any subset of columns,
with multi-file sessions localised; the connection totals equal a count over the records."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from analyzer import records as rec_mod
from analyzer.capture.localise import localise
from analyzer.records import Records
from analyzer.report import spooled as spooled_mod
from analyzer.report.columns import convert
from analyzer.report.lists import join
from analyzer.report.source import TABLES
from analyzer.report.spooled import Spooled
from analyzer.report.tables import ORDER
from tests.conftest import SAMPLES, run
from tests.test_records import _bind

BASE = ("binds", "endpoints", "calls", "connections", "violations", "attempts", "captures")


def test_fields_and_take_read_the_spooled_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 10)
    r = Records()
    made = [_bind(i) for i in range(35)]  # 30 on disk in three files, 5 still buffered
    r.binds.extend(made)
    got: dict[str, list[object]] = {"flow.stream": [], "frame": [], "transfer_syntaxes": []}
    for batch in r.binds.fields(list(got)):
        assert len(batch["frame"]) <= 10
        for name in got:
            got[name] += batch[name]
    assert got["flow.stream"] == [b.flow.stream for b in made]
    assert got["frame"] == [b.frame for b in made]
    assert [tuple(t) for t in got["transfer_syntaxes"]] == [b.transfer_syntaxes for b in made]
    positions = [34, 0, 12, 12, 29, 30, 9]
    import numpy as np

    assert r.binds.take(np.asarray(positions)) == [made[i] for i in positions]


def _expected(spooled: Spooled, table: str) -> pd.DataFrame:
    """The table as it was built before it was streamed: every record converted at once, localised,
    then one stable sort by ORDER."""
    decl = spooled.builder.declaration(table)
    names = {c.name for c in decl.columns}
    df = convert(decl.columns, decl.rows(list(decl.records), names), decl.context)
    df = localise(df, table, spooled.records.frame_maps)
    if table in ORDER:
        df = df.sort_values(ORDER[table], kind="stable", ignore_index=True)
    return df.reset_index(drop=True)


def _check_source(records: Records, monkeypatch: pytest.MonkeyPatch, chunk_rows: int) -> int:
    """Every table of `records` from a Spooled source that keeps nothing whole; the number of tables
    whose records were not in ORDER (sorted through `Spool.take`)."""
    monkeypatch.setattr(spooled_mod, "CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(spooled_mod, "CACHE_ROWS", 0)
    source, reference = Spooled(records), Spooled(records)
    rnd, sorted_tables = random.Random(7), 0
    for table in BASE:
        expected = _expected(reference, table)
        chunks = list(source.chunks(table))
        rows_per = spooled_mod._chunk_rows(table)  # CHUNK_ROWS, twice it for binds and connections
        assert rows_per == chunk_rows * (2 if table in ("binds", "connections") else 1)
        assert all(0 < len(c) <= rows_per for c in chunks), table
        if table != "attempts":  # the others regrouped into chunks of exactly rows_per (the last: the rest)
            assert all(len(c) == rows_per for c in chunks[:-1]), table
        whole = pd.concat(chunks, ignore_index=True) if chunks else source.table(table)
        pd.testing.assert_frame_equal(whole, expected, check_index_type=False)
        some = rnd.sample(list(TABLES[table]), 3)
        parts = list(source.chunks(table, some))
        got = pd.concat(parts, ignore_index=True) if parts else source.table(table, some)
        pd.testing.assert_frame_equal(got, expected[some], check_index_type=False)
        sorted_tables += source._orders.get(table) is not None
    return sorted_tables


def test_chunks_are_the_table_built_whole_and_sorted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 5)
    records = run(sorted(SAMPLES.glob("*.pcap*")))
    records.finish()
    assert _check_source(records, monkeypatch, chunk_rows=7) >= 2, "some table must need sorting"


@pytest.mark.skipif(shutil.which("editcap") is None, reason="needs editcap (Wireshark)")
def test_a_multi_file_session_is_localised_in_every_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 3)
    subprocess.run(["editcap", "-c", "40", str(SAMPLES / "smb2_pipes.pcap"), str(tmp_path / "part.pcap")], check=True)
    records = run([tmp_path])
    records.finish()
    assert records.frame_maps, "the parts are one session"
    _check_source(records, monkeypatch, chunk_rows=4)


def test_connection_totals_count_the_records() -> None:
    """binds, calls, faults, violations and interfaces of each connection row, against a plain count."""
    records = run(sorted(SAMPLES.glob("*.pcap*")))
    records.finish()
    source = Spooled(records)
    names, late = source.builder.names, source.builder.late
    count: Counter[tuple[str, str, int]] = Counter()
    used: dict[tuple[str, int], set[str]] = {}
    for b in records.binds:
        count["binds", b.flow.capture, b.flow.stream] += 1
        if b.ack_result in ("acceptance", "none") and (n := names.interface(b.interface_uuid, b.if_major)):
            used.setdefault((b.flow.capture, b.flow.stream), set()).add(n)
    for c in map(late.call, records.calls):
        count["calls", c.flow.capture, c.flow.stream] += 1
        count["faults", c.flow.capture, c.flow.stream] += c.fault_status is not None
        if c.interface_uuid is not None and (n := names.interface(c.interface_uuid, c.if_major)):
            used.setdefault((c.flow.capture, c.flow.stream), set()).add(n)
    for v in records.violations:
        if v.stream is not None:
            count["violations", v.capture, v.stream] += v.count
    conns = list(records.connections)
    totals = source.builder.totals.rows(conns)
    assert sum(t.binds for t in totals) > 0 and sum(t.calls for t in totals) > 0
    for conn, t in zip(conns, totals, strict=True):
        key = (conn.flow.capture, conn.flow.stream)
        for kind in ("binds", "calls", "faults", "violations"):
            assert getattr(t, kind) == count[(kind, *key)], (kind, key)
        assert t.interfaces == join(used.get(key, ())), key


def test_a_long_table_streamed_to_parquet_reads_back_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row groups of PARQUET_ROWS gathered from chunks: the file reads back as the table, with its dtypes."""
    from analyzer.report import output

    monkeypatch.setattr(output, "PARQUET_ROWS", 10)
    records = run(sorted(SAMPLES.glob("*.pcap*")))
    records.finish()
    monkeypatch.setattr(spooled_mod, "CHUNK_ROWS", 7)
    monkeypatch.setattr(spooled_mod, "CACHE_ROWS", 0)
    source = Spooled(records)
    expected = source.table("calls")
    assert len(expected) > 25
    path = output.write_frame(source.chunks("calls"), TABLES["calls"], tmp_path / "calls.parquet", "parquet")
    import pyarrow.parquet as pq

    assert pq.ParquetFile(path).num_row_groups > 2
    pd.testing.assert_frame_equal(pd.read_parquet(path), expected)


def test_take_and_fields_read_a_pickled_batch_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that went to a pickle (a value outside its Arrow type) is read by `fields`,
    `arrow_fields` (for the key columns, which fit) and `take` like the Arrow ones."""
    import numpy as np

    from analyzer.model import ConnectionRecord
    from tests.test_records import _flow

    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 2)
    r = Records()
    made = [
        ConnectionRecord(_flow(i), "port135", i, 2**70 if i in (2, 3) else i, i, i, 1, 0, 0, 0, "fin")
        for i in (5, 1, 2, 3, 0)
    ]
    r.connections.extend(made)
    assert any(f.endswith(".pickle") for f in r.connections._files)
    streams = [s for batch in r.connections.fields(["flow.stream"]) for s in batch["flow.stream"]]
    assert streams == [5, 1, 2, 3, 0]
    arrow = [s for batch in r.connections.arrow_fields(["flow.stream"]) for s in batch[0].to_pylist()]
    assert arrow == streams
    assert r.connections.take(np.asarray([4, 2, 0, 3])) == [made[4], made[2], made[0], made[3]]
    order = Spooled(r)._order("connections", r.connections)
    assert order is not None and order.tolist() == [4, 1, 2, 3, 0]


def test_the_results_source_reads_what_the_api_built_else_the_spool(tmp_path: Path) -> None:
    """`AnalysisResult.source`: a table asked for as an attribute is read from that DataFrame; any other
    from the spool, equal to it; writing builds no attribute (the tables stream to the files)."""
    import analyzer

    result = analyzer.analyze([SAMPLES])
    result.write(tmp_path / "out")
    assert "binds" not in result.__dict__ and "calls" not in result.__dict__
    spooled = result.source.frame("binds")
    assert result.source.frame("binds") is spooled, "a small table is built once"
    built = result.binds
    assert result.source.frame("binds") is built
    pd.testing.assert_frame_equal(built, spooled)
    columns = ["capture", "frame", "uid"]
    pd.testing.assert_frame_equal(pd.concat(list(result.source.chunks("calls", columns))), result.calls[columns])
