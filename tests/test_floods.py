"""The floods of bench/floods.py, scaled down: each is summarised (one violation row per cap and
connection, or a listing then a summary), and the memory a run holds grows with its live flows, not
with its events: ten times the input, about the same peak. No time is asserted."""

from __future__ import annotations

import gc
import importlib.util
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from analyzer import records as rec_mod
from analyzer.api import from_records
from analyzer.limits import Limits
from analyzer.pipeline import Pipeline
from analyzer.records import Records
from analyzer.report.source import Frames
from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("bench_floods", ROOT / "bench" / "floods.py")
assert _spec is not None and _spec.loader is not None
floods: Any = importlib.util.module_from_spec(_spec)
sys.modules["bench_floods"] = floods
_spec.loader.exec_module(floods)


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches small enough that both sizes of a flood fill them: what stays is the live state."""
    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 128)


def _write(tmp_path: Path, build: Callable[..., None], n: int, **kw: Any) -> Path:
    path = tmp_path / f"{build.__name__}_{n}.pcap"
    with open(path, "wb") as out:
        build(out, n, **kw)
    return path


@pytest.fixture(scope="module", autouse=True)
def _warm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Run every flood once, tiny, so that lazy imports are not counted as the first run's memory."""
    tmp = tmp_path_factory.mktemp("warm")
    for build in (floods.syn_flood, floods.bind_flood, floods.pending_flood, floods.bogus_flood):
        records = Pipeline(Limits(), strict=True).run([str(_write(tmp, build, 300))])
        records.finish()
        from_records(records)


def _run(path: Path, limits: Limits) -> tuple[Records, int]:
    """The records of a run and the Python memory the run retains once it has read the capture:
    its live state and the records not yet written out (cyclic garbage collected first)."""
    gc.collect()
    tracemalloc.start()
    try:
        records = Pipeline(limits, strict=True).run([str(path)])
        gc.collect()
        retained, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return records, retained


def _per_flow(small: int, big: int) -> None:
    """Ten times the events, at most a fifth more memory retained (per-event growth would be ~10x)."""
    assert big < 1.2 * small + 32_768, f"memory retained grew from {small} to {big} bytes with 10x the input"


def test_syn_flood_is_one_cap_row_and_memory_per_flow(tmp_path: Path) -> None:
    limits = Limits(max_tcp_flows=100)
    peaks = []
    for n in (1500, 15000):
        records, peak = _run(_write(tmp_path, floods.syn_flood, n), limits)
        (cap,) = [v for v in records.violations if v.what == "cap_tcp_flows"]
        assert cap.count == n - 100 and cap.stream is None
        # every SYN-only attempt is still a row, of attempts: a SYN is not a conversation (issue 9)
        assert len(records.attempts) == n and not len(records.connections)
        peaks.append(peak)
    _per_flow(*peaks)


def test_bind_flood_keeps_every_bind_and_memory_per_flow(tmp_path: Path) -> None:
    peaks = []
    for n in (300, 3000):
        records, peak = _run(_write(tmp_path, floods.bind_flood, n), Limits())
        assert len(records.binds) == n and not list(records.violations)
        peaks.append(peak)
    t = from_records(records)
    assert len(t.binds) == 3000 and (t.binds["ack_result"] == "acceptance").all()
    assert len(t.connections) == 3000 and (t.connections["end"] == "rst").all()
    _per_flow(*peaks)


def test_unanswered_requests_are_one_cap_row(tmp_path: Path) -> None:
    limits = Limits(max_pending_calls=50)
    peaks = []
    for n in (400, 4000):
        records, peak = _run(_write(tmp_path, floods.pending_flood, n), limits)
        (cap,) = list(records.violations)
        assert (cap.what, cap.count, cap.stream) == ("cap_pending_calls", n - 50, 0)
        assert len(records.calls) == n  # flushed unanswered, none lost
        peaks.append(peak)
    _per_flow(*peaks)


def test_epm_stubs_kept_are_capped_per_association(tmp_path: Path) -> None:
    limits = Limits(max_held_stub_bytes=200_000)
    peaks = []
    for n in (4, 40):
        path = _write(tmp_path, floods.epm_flood, n, stub_bytes=64_000, fragment=16_000)
        records, peak = _run(path, limits)
        (cap,) = [v for v in records.violations if v.what == "cap_held_stub_bytes"]
        assert cap.count == n - 3 and cap.stream == 0  # three stubs of 64,000 fit in 200,000
        peaks.append(peak)
    _per_flow(*peaks)


def test_bogus_pdus_are_listed_then_summarised(tmp_path: Path) -> None:
    limits = Limits(max_violations_listed=20)
    peaks = []
    for n in (2000, 20000):
        records, peak = _run(_write(tmp_path, floods.bogus_flood, n), limits)
        rows = list(records.violations)
        assert {v.what for v in rows} == {"short_request"}
        assert len(rows) == 21 and sum(v.count for v in rows) == n
        summary = rows[-1]
        assert summary.count == n - 20 and summary.last_frame is not None and summary.frame < summary.last_frame
        peaks.append(peak)
    _per_flow(*peaks)


def test_flood_files_are_what_they_claim(tmp_path: Path) -> None:
    """The builders' output is a readable capture whose frame count is the flood's size."""
    from analyzer.capture.source import open_capture

    sizes: dict[str, tuple[Callable[[BinaryIO, int], None], int, int]] = {
        "syn": (floods.syn_flood, 50, 50),
        "binds": (floods.bind_flood, 10, 50),
        "pending": (floods.pending_flood, 10, 14),
    }
    for name, (build, n, frames) in sizes.items():
        reader = open_capture(str(_write(tmp_path, build, n)), name)
        assert sum(1 for _ in reader) == frames, name
        reader.close()


def test_summary_and_report_count_occurrences_not_rows(tmp_path: Path) -> None:
    """The terminal summary and the HTML report say how many violations there were, not how many
    rows summarise them."""
    from rich.console import Console

    from analyzer.report.summary import print_summary

    records, _ = _run(_write(tmp_path, floods.bogus_flood, 500), Limits(max_violations_listed=10))
    result = from_records(records)
    assert len(result.violations) == 11
    console = Console(record=True, width=200)
    print_summary(result, tmp_path, "csv", console)
    text = console.export_text()
    assert "500 violations" in text and "11 violations" not in text
    assert "<dt>violations</dt><dd>500</dd>" in result.html()


def test_compact_attempts_are_the_table_and_give_the_same_findings(tmp_path: Path) -> None:
    """The compact attempts the views, findings and writer read (text as categoricals) are the table
    itself once cast back, in its order; findings and data_quality from them equal those from the
    table; the API's `attempts` keeps its dtypes. Made with more than one chunk and several hosts."""
    import pandas as pd

    from analyzer import findings
    from analyzer.report import views
    from analyzer.report.attempts import ATTEMPTS, typed
    from analyzer.report.tables import CHUNK_ROWS

    def scan(out: BinaryIO, n: int) -> None:  # three clients, each SYNs port 135 on twelve servers
        w = floods.PcapWriter(out)
        for i in range(n):
            server = bytes([10, 0, 1, i % 12])
            floods.Conn(w, bytes([10, 9, 0, i // 12 % 3]), 1024 + i % 60000, server, 135).syn()

    n = 2 * CHUNK_ROWS + 100
    records = Pipeline(Limits(), strict=True).run([str(_write(tmp_path, scan, n))])
    records.finish()
    result = from_records(records)
    compact = result.attempts_table()
    assert isinstance(compact["client_ip"].dtype, pd.CategoricalDtype)
    table = result.attempts
    assert dict(table.dtypes.astype(str)) == {k: str(pd.Series(dtype=v).dtype) for k, v in ATTEMPTS.items()}
    assert len(table) == n
    pd.testing.assert_frame_equal(compact.astype(ATTEMPTS), table)
    for start in (0, CHUNK_ROWS, 2 * CHUNK_ROWS):  # the writer's slices, typed the quick way
        piece = compact.iloc[start : start + CHUNK_ROWS]
        pd.testing.assert_frame_equal(typed(piece), piece.astype(ATTEMPTS))
    base = {t: getattr(result, t) for t in ("calls", "binds", "endpoints", "connections", "violations", "captures")}
    compact_source, table_source = Frames({**base, "attempts": compact}), Frames({**base, "attempts": table})
    from_compact, from_table = findings.compute(compact_source), findings.compute(table_source)
    assert set(from_table["technique"]) == {"port135_scan"} and len(from_table) == 3
    pd.testing.assert_frame_equal(from_compact, from_table)
    pd.testing.assert_frame_equal(views.data_quality(compact_source), views.data_quality(table_source))


def test_lean_compact_attempts_are_the_compact_table(tmp_path: Path) -> None:
    """The compact attempts made straight from the spool's Arrow batches are those the typed chunks
    give (categories, codes, dtypes, order), over batches written row by row and in bulk."""
    import pandas as pd

    from analyzer.report.attempts import attempt_chunks, compact_attempts
    from analyzer.report.compact import Compact

    def mixed(out: BinaryIO, n: int) -> None:  # a flood to 135 (bulk), then a scan of 445 and 593
        w = floods.PcapWriter(out)
        for i in range(n):
            floods.Conn(w, *floods._client(i), floods.SERVER, 135).syn()
        for i in range(300):
            floods.Conn(w, bytes([10, 9, 1, i % 7]), 2000 + i, bytes([10, 0, 2, i % 5]), (445, 593)[i % 2]).syn()

    path = tmp_path / "mixed.pcap"
    with open(path, "wb") as out:
        mixed(out, 3000)
    records = Pipeline(Limits(max_tcp_flows=100), strict=True).run([str(path)])
    lean = compact_attempts(records)
    made = Compact()
    for chunk in attempt_chunks(records):
        made.add(chunk)
    assert lean is not None and len(lean) == 3300
    pd.testing.assert_frame_equal(lean, made.frame())


def test_writer_streams_attempts_without_the_whole_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`write` takes the attempts a chunk at a time from the spool: no compact frame of the whole
    table is made (a million SYNs held that, 75 MiB, for the writer alone), and the file's bytes are
    those of the table written whole. Several chunks, text and numbers."""
    from analyzer.report import spooled
    from analyzer.report.attempts import ATTEMPTS
    from analyzer.report.output import write_frame
    from analyzer.report.tables import CHUNK_ROWS

    n = 2 * CHUNK_ROWS + 100
    records = Pipeline(Limits(), strict=True).run([str(_write(tmp_path, floods.syn_flood, n))])
    records.finish()
    whole = from_records(records).attempts
    assert len(whole) == n
    expected = write_frame(whole, ATTEMPTS, tmp_path / "whole.csv").read_bytes()

    def whole_table(*_: Any, **__: Any) -> None:
        raise AssertionError("the attempts were built whole for the writer")

    monkeypatch.setattr(spooled, "compact_attempts", whole_table)
    monkeypatch.setattr(spooled.Compact, "frame", whole_table)
    result = from_records(records)
    result.write(tmp_path / "out")
    assert (tmp_path / "out" / "attempts.csv").read_bytes() == expected


def test_streamed_attempts_write_the_parquet_bytes_of_the_whole_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spool batches of 1,000 rows, streamed as they come (each cut into chunks of at most
    CHUNK_ROWS): the Parquet file's row groups (here of CHUNK_ROWS) are those of the whole table. A
    table too big to be kept whole (`spooled.CACHE_ROWS`), so it streams a batch at a time."""
    from analyzer.report import output, spooled
    from analyzer.report.attempts import ATTEMPTS
    from analyzer.report.tables import CHUNK_ROWS

    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 1000)
    monkeypatch.setattr(output, "PARQUET_ROWS", CHUNK_ROWS)
    n = spooled.CACHE_ROWS + 100
    records = Pipeline(Limits(), strict=True).run([str(_write(tmp_path, floods.syn_flood, n))])
    records.finish()
    whole = from_records(records).attempts
    expected = output.write_frame(whole, ATTEMPTS, tmp_path / "whole.parquet", "parquet").read_bytes()
    from_records(records).write(tmp_path / "out", "parquet")
    assert (tmp_path / "out" / "attempts.parquet").read_bytes() == expected
