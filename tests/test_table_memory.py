"""The table side's memory under floods (issue 13): what a fold holds does not grow with the rows of one
kind, and the streamed ways of writing give the rows and bytes of the whole ones.

- data_quality's connection rows go to a `report.spill.Spill` as they are made and are written from it
  (`DataQuality.stream`): the same rows, in the same order, as `result()`.
- the matrix's per-key lists are held compactly (`lists.put`) and its connections as one set of
  (key, capture, stream) columns (`activity._Connections`): the same cells as sets per key."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import analyzer
import analyzer.report.source as source_module
from analyzer.report import views
from analyzer.report.columns import frame
from analyzer.report.lists import Listed, add, joined, put
from analyzer.report.passes import fold
from analyzer.report.source import TABLES, Frames
from analyzer.report.spill import Spill
from analyzer.report.views.activity import _Connections
from analyzer.report.views.quality import DataQuality
from tests.conftest import SAMPLES
from tests.test_views_chunks import generated


def in_table_order(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The generated tables with the connections in their table's order (capture, then stream), as
    every spooled run gives them."""
    conns = tables["connections"].sort_values(["capture", "stream"], kind="stable", na_position="first")
    return {**tables, "connections": conns.reset_index(drop=True)}


def quality(tables: dict[str, pd.DataFrame]) -> DataQuality:
    view = DataQuality()
    fold(Frames(tables), view)
    return view


def streamed(view: DataQuality) -> pd.DataFrame:
    rows = view.stream()
    if isinstance(rows, pd.DataFrame):
        return rows
    return pd.concat(list(rows), ignore_index=True)


def test_spill_gives_back_the_frames_it_took() -> None:
    spill = Spill()
    tables = generated(0)
    parts = [tables["calls"].iloc[:30], tables["calls"].iloc[30:30], tables["calls"].iloc[30:]]
    for part in parts:
        spill.add(part)
    assert spill.rows == len(tables["calls"])
    for _ in range(2):  # read as often as asked
        back = list(spill.frames())
        assert len(back) == 2  # the empty frame is not kept
        for got, part in zip(back, [parts[0], parts[2]], strict=True):
            pd.testing.assert_frame_equal(got, part.reset_index(drop=True), check_exact=True)
    spill.close()
    assert list(spill.frames()) == [] and spill.rows == 0


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rows", [1, 3, 4096])
def test_data_quality_streamed_is_the_view(seed: int, rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Capture rows merged into the spilled connection rows: those of `result()` in every chunk size,
    with captures that have no connection, connections of no listed capture and missing captures."""
    monkeypatch.setattr(source_module, "CHUNK_ROWS", rows)
    tables = in_table_order(generated(seed))
    view = quality(tables)
    assert view.in_order and view.spilled.rows == len(tables["connections"])
    got = view.stream()
    assert not isinstance(got, pd.DataFrame)  # a stream, not the frame
    pd.testing.assert_frame_equal(streamed(view), view.result(), check_exact=True)
    pd.testing.assert_frame_equal(view.result(), views.data_quality(Frames(tables)), check_exact=True)


def test_data_quality_out_of_order_gives_the_sorted_frame() -> None:
    tables = generated(1)
    conns = tables["connections"]
    tables["connections"] = conns.iloc[::-1].reset_index(drop=True)  # streams descending: out of order
    view = quality(tables)
    assert not view.in_order
    got = view.stream()
    assert isinstance(got, pd.DataFrame)
    pd.testing.assert_frame_equal(got, views.data_quality(Frames(tables)), check_exact=True)


def test_data_quality_without_connections_is_the_capture_rows() -> None:
    tables = {**generated(2), "connections": frame(TABLES["connections"], {})}
    view = quality(tables)
    got = view.stream()
    assert isinstance(got, pd.DataFrame) and set(got["scope"]) == {"capture"}
    pd.testing.assert_frame_equal(got, view.result(), check_exact=True)


def _connections(n: int) -> pd.DataFrame:
    """n connections of one capture, in order, with nothing to count (a bind flood's)."""
    rng = random.Random(n)
    return frame(
        TABLES["connections"],
        {
            "capture": ["flood.pcap"] * n,
            "stream": list(range(n)),
            "transport": ["ncacn_ip_tcp"] * n,
            "client_ip": [f"10.1.{i // 256 % 256}.{i % 256}" for i in range(n)],
            "client_port": [rng.randrange(1024, 65536) for _ in range(n)],
            "server_ip": ["10.0.0.1"] * n,
            "server_port": [135] * n,
            "gaps": [0] * n,
            "end": ["rst"] * n,
            "midstream": [False] * n,
        },
    )


def _held(n: int) -> int:
    """Arrow bytes still allocated once a data_quality fold has taken n connections (the fold kept)."""
    before: int = pa.total_allocated_bytes()
    view = quality({"connections": _connections(n), "captures": frame(TABLES["captures"], {"capture": ["flood.pcap"]})})
    held: int = pa.total_allocated_bytes() - before
    assert view.spilled.rows == n
    return held


def test_data_quality_holds_no_connection_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its connection rows are on disk: the Arrow memory the fold keeps does not grow with them (it
    held every row's text before, 65 MiB under the bind flood)."""
    monkeypatch.setattr(source_module, "CHUNK_ROWS", 512)
    small, big = _held(1_000), _held(20_000)
    assert big - small < 64 * 1024, (small, big)


def test_writing_streams_data_quality(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`write` takes data_quality's rows from the spill (its frame is never made) and writes the
    bytes of the frame written whole; reading the attribute afterwards still gives the view."""
    res = analyzer.analyze([SAMPLES])
    whole = analyzer.analyze([SAMPLES]).data_quality
    real = DataQuality.result

    def refused(self: DataQuality) -> pd.DataFrame:
        raise AssertionError("data_quality made whole while writing")

    monkeypatch.setattr(DataQuality, "result", refused)
    for fmt in ("csv", "jsonl"):
        res.write(tmp_path / fmt, fmt)
    monkeypatch.setattr(DataQuality, "result", real)
    pd.testing.assert_frame_equal(res.data_quality, whole, check_exact=True)
    from analyzer.report.output import write_frame

    for fmt in ("csv", "jsonl"):
        expected = write_frame(whole, views.DATA_QUALITY, tmp_path / f"whole.{fmt}", fmt)
        assert (tmp_path / fmt / f"data_quality.{fmt}").read_bytes() == expected.read_bytes(), fmt


@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["", "a", "b", "10.0.0.5", "135", "10.0.0.10"]), st.integers(0, 3)))
)
def test_a_compact_list_is_the_set_it_stands_for(values: list[object]) -> None:
    """`put` (None, one text, or a set) lists what `add` into a set lists."""
    held: Listed = None
    into: set[str] = set()
    for v in values:
        held = put(held, v)
        add(into, v)
    assert joined(held) == joined(into)
    assert not isinstance(held, set) or len(held) > 1  # a set only for two values or more


def test_matrix_connections_are_the_distinct_streams_per_key() -> None:
    """`_Connections` gathers its blocks as they outgrow what is distinct: the counts are those of a set
    per key of (capture, stream), whatever the blocks and their repeats."""
    rng = np.random.default_rng(7)
    held, truth = _Connections(), [set() for _ in range(50)]
    names = ["a.pcap", "b.pcap", None]
    for _ in range(60):  # 60 blocks of 5,000 rows: gathered several times on the way
        keys = rng.integers(0, 50, 5_000)
        caps = [names[i] for i in rng.integers(0, 3, 5_000)]
        streams = rng.integers(0, 3_000, 5_000)
        held.add(keys, np.array([held.capture(c) for c in caps], dtype=np.int64), streams)
        for k, c, s in zip(keys.tolist(), caps, streams.tolist(), strict=True):
            if c is not None:
                truth[k].add((c, s))
    assert held.distinct > 0  # gathered before the end
    assert held.counts(52) == [len(t) for t in truth] + [0, 0]
