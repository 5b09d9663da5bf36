"""One pass over the base tables feeds every reader ([analyzer.report.passes]): the writer and every
view, the per-host table, the summary's counts and the findings read each table once; each fold sees
the columns it asked for; the tables come in the pass's order whoever asks; and what the readers make
together is what each makes alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analyzer
from analyzer.api import READERS
from analyzer.report import spooled as spooled_mod
from analyzer.report.passes import PASS_ORDER, Pass
from analyzer.report.source import TABLES, Frames
from analyzer.report.spooled import Spooled
from tests.conftest import SAMPLES

CAPTURE = SAMPLES / "smb2_pipes.pcap"


class Taking:
    """A fold that records what it was handed."""

    def __init__(self, reads: dict[str, list[str]]) -> None:
        self.reads = reads
        self.got: list[tuple[str, list[str], int]] = []
        self.ended = False

    def wants(self, table: str) -> list[str] | None:
        return self.reads.get(table)

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        self.got.append((table, list(chunk.columns), len(chunk)))

    def done(self, source: object) -> None:
        self.ended = True


def _tables() -> dict[str, pd.DataFrame]:
    result = analyzer.analyze([CAPTURE])
    return {t: result.source.frame(t) for t in PASS_ORDER}


def test_each_fold_gets_its_columns_of_one_read_in_the_pass_order() -> None:
    tables = _tables()
    read: list[tuple[str, tuple[str, ...] | None]] = []

    class Counted(Frames):
        def chunks(self, table: str, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
            read.append((table, None if columns is None else tuple(columns)))
            return super().chunks(table, columns)

    a = Taking({"binds": ["ack_result", "client_ip"], "connections": ["stream"]})
    b = Taking({"binds": ["server_ip"], "calls": ["operation"]})
    sweep = Pass(Counted(tables), [a, b])
    written = list(sweep.chunks("connections", everything=True))  # asked first: binds and calls go by first
    sweep.finish()
    assert [t for t, _ in read] == ["binds", "calls", "connections"]  # nobody wants the others: not read
    union = {"ack_result", "client_ip", "server_ip"}
    assert dict(read)["binds"] == tuple(c for c in TABLES["binds"] if c in union)  # the union, in table order
    assert dict(read)["connections"] is None and list(written[0].columns) == list(TABLES["connections"])
    assert {t for t, _, _ in a.got} == {"binds", "connections"} and {t for t, _, _ in b.got} == {"binds", "calls"}
    assert all(cols == a.reads[t] for t, cols, _ in a.got) and all(cols == b.reads[t] for t, cols, _ in b.got)
    assert sum(n for t, _, n in a.got if t == "binds") == len(tables["binds"])
    assert a.ended and b.ended
    assert list(sweep.chunks("binds")) == []  # a table goes by once
    assert PASS_ORDER.index("violations") < PASS_ORDER.index("connections")  # what data_quality counts on


def test_the_readers_of_one_pass_make_what_each_makes_alone() -> None:
    together = analyzer.analyze([CAPTURE])
    together._pass(READERS).finish()
    for name in READERS:
        alone = analyzer.analyze([CAPTURE])
        assert name in together.__dict__ or name in together._streamed, name  # the one pass made it
        made, single = getattr(together, name), getattr(alone, name)
        if isinstance(made, pd.DataFrame):
            pd.testing.assert_frame_equal(made, single, check_exact=True, obj=name)
        else:  # the summary's counts
            assert made.per == single.per and made.services() == single.services(), name


def test_writing_reads_each_base_table_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every table streamed from the spool (none small enough to keep): the writer, the views, the
    per-host table, the counts and the findings share one read of each; the files are those of
    main's way (each reader on its own), which `test_run_output` and the goldens hold."""
    monkeypatch.setattr(spooled_mod, "CACHE_ROWS", 0)
    reads: Counter[str] = Counter()
    real = Spooled.chunks

    def chunks(self: Spooled, table: str, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        reads[table] += 1
        return real(self, table, columns)

    monkeypatch.setattr(Spooled, "chunks", chunks)
    result = analyzer.analyze([CAPTURE])
    result.write(tmp_path / "out")
    result.counts  # noqa: B018 - the summary's counts were made by the same pass
    assert reads and all(n == 1 for n in reads.values()), reads
    assert {"binds", "calls", "connections"} <= set(reads)
    alone = analyzer.analyze([CAPTURE])
    for name in ("hosts", "data_quality", "matrix", "endpoint_inventory"):
        written = pd.read_csv(tmp_path / "out" / f"{name}.csv", dtype=str, keep_default_na=False)
        assert len(written) == len(getattr(alone, name)), name


def test_grouped_adds_up_each_group_as_its_rows_would() -> None:
    """`fold.Grouped` against a loop over the rows: groups in first-come order, missing a key value
    like any other, sizes, counts, sums, times, distinct streams and the earliest row (time, then
    frame, missing after known, first in table order on a tie)."""
    from analyzer.report.fold import Grouped

    ns = [5, None, 3, 3, None, 7, 3]
    df = pd.DataFrame(
        {
            "k": pd.array(["a", None, "a", "b", None, "b", "a"], dtype="string"),
            "n": pd.array([1, 2, None, 4, 5, 6, 7], dtype="Int64"),
            "ts": pd.to_datetime(pd.array(ns, dtype="Int64"), unit="ns", utc=True),
            "frame": pd.array([10, 11, None, 13, 14, 15, 9], dtype="Int64"),
        }
    )
    g = Grouped(df, ["k"])
    assert g.values(["k"]) == [["a", None, "b"]] and g.sizes() == [3, 2, 2]
    assert g.counts(df["n"].notna().to_numpy(dtype=bool)) == [2, 2, 2]
    assert g.sums("n") == [8, 7, 10]
    assert g.earliest("ts") == [3, None, 3] and g.latest("ts") == [5, None, 7]
    groups, values = g.distinct_pairs("n")
    assert list(zip(groups.tolist(), values.tolist(), strict=True)) == [(0, 1), (0, 7), (1, 2), (1, 5), (2, 4), (2, 6)]
    first = g.earliest_rows("ts", "frame")
    # "a": times 5, 3, 3 -> the two at 3 by frame: 9 before the missing one; None: both unknown
    # times, frame 11 first; "b": time 3 before 7
    assert first["frame"].tolist() == [9, 11, 13]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(*[st.sampled_from(["a", "b", "", None])] * 3, st.sampled_from([1, 2, None])), max_size=30))
def test_grouped_numbers_groups_as_a_row_loop_would(rows: list[tuple[object, ...]]) -> None:
    """`fold.Grouped`'s groups (text keys by Arrow's dictionary encoding, others by pandas) are the
    distinct key tuples in first-come order, missing a value like any other: for keys given many
    times over too, whose combined codes must be renumbered before they could overflow."""
    from analyzer.report import fold

    df = pd.DataFrame(
        {
            "a": pd.array([r[0] for r in rows], dtype="string"),
            "b": pd.array([r[1] for r in rows], dtype="string"),
            "c": pd.Categorical([r[2] for r in rows]),
            "n": pd.array([r[3] for r in rows], dtype="Int64"),
        }
    )
    for keys in (["a"], ["a", "b", "c", "n"], ["a", "b", "c", "n"] * 40):
        seen: dict[tuple[object, ...], int] = {}
        expected = [seen.setdefault(tuple(r[k] for k in (0, 1, 2, 3)[: min(len(keys), 4)]), len(seen)) for r in rows]
        g = fold.Grouped(df, keys)
        assert g.codes.tolist() == expected and g.n == len(seen)


def test_a_folds_frame_is_the_chunks_columns() -> None:
    """What a fold is handed (made from the chunk's arrays, `passes.columns_of`) is `chunk[cols]`:
    the same values, dtypes (text, categorical, nullable numbers, times, plain numpy, objects) and
    index, for a chunk that is a slice of a bigger frame too."""
    import numpy as np

    from analyzer.report.passes import columns_of

    whole = pd.DataFrame(
        {
            "text": pd.array(["a", None, "c", "d"], dtype="string"),
            "kind": pd.Categorical(["x", "y", None, "x"]),
            "n": pd.array([1, None, 3, 4], dtype="Int64"),
            "ts": pd.to_datetime(pd.array([1, None, 3, 4], dtype="Int64"), unit="ns", utc=True),
            "plain": np.arange(4),
            "any": [object(), None, 1, "x"],
        }
    )
    for chunk in (whole, whole.iloc[1:3]):
        arrays = columns_of(chunk)
        for cols in (["n", "text"], ["ts"], ["any", "plain", "kind"]):
            made = pd.DataFrame({c: arrays[c] for c in cols}, index=chunk.index, copy=False)
            pd.testing.assert_frame_equal(made, chunk[cols])
