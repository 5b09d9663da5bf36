"""Table order ([analyzer.report.order], `Builder.frame`): a table already in order is kept as it is,
any other is the result of one stable sort over its keys."""

from __future__ import annotations

import random
from itertools import pairwise

import pandas as pd

from analyzer.report.columns import INT, STR, frame
from analyzer.report.order import in_order

SCHEMA = {"capture": STR, "frame": INT, "ctx_id": INT}
KEYS = ["capture", "frame", "ctx_id"]


def _table(rows: int, seed: int) -> pd.DataFrame:
    rnd = random.Random(seed)
    return frame(
        SCHEMA,
        {
            "capture": [rnd.choice(["b.pcap", "a.pcap", "c.pcap"]) for _ in range(rows)],
            "frame": [rnd.choice([None, *range(40)]) for _ in range(rows)],
            "ctx_id": [rnd.randrange(3) for _ in range(rows)],
        },
    )


def test_in_order_agrees_with_a_stable_sort() -> None:
    for seed in range(20):
        df = _table(5 + seed * 3, seed)
        ordered = df.sort_values(KEYS, kind="stable", ignore_index=True)
        assert in_order(ordered, KEYS), seed
        assert in_order(df, KEYS) == df.equals(ordered), seed


def test_missing_keys_sort_last_as_in_sort_values() -> None:
    df = frame(SCHEMA, {"capture": ["a", "a", "a"], "frame": [1, 2, None], "ctx_id": [0, 0, 0]})
    assert in_order(df, KEYS)
    assert not in_order(df.iloc[[2, 0, 1]].reset_index(drop=True), KEYS)


def test_equal_keys_are_in_order_whatever_else_differs() -> None:
    df = frame({**SCHEMA, "n": INT}, {"capture": ["a"] * 3, "frame": [7] * 3, "ctx_id": [1] * 3, "n": [3, 1, 2]})
    assert in_order(df, KEYS)


def test_sort_keys_gathered_from_arrow_batches_give_the_frames_order() -> None:
    """`SortKeys` (the spool's key columns, batch by batch) orders rows as `sort_order` of the frame
    does: text by value, missing last, equal keys in the order given; a batch may be all missing."""
    import pyarrow as pa

    from analyzer.report.order import SortKeys, arrays_order, sort_order

    for seed in range(20):
        df = _table(rnd_rows := 1 + seed * 7, seed)
        keys = SortKeys([True, False, False])
        for start in range(0, rnd_rows, 5):
            part = df.iloc[start : start + 5]
            keys.add([pa.array(part[k].astype(object).where(part[k].notna(), None).tolist()) for k in KEYS])
        keys.add([pa.array([None, None]), pa.array([None, None]), pa.array([None, None])])
        whole = pd.concat([df, frame(SCHEMA, {k: [None, None] for k in KEYS})], ignore_index=True)
        got, expected = arrays_order(keys.arrays()), sort_order(whole, KEYS)
        assert (got is None) == (expected is None), seed
        if got is not None and expected is not None:
            assert got.tolist() == expected.tolist(), seed
            assert (
                whole.iloc[got].reset_index(drop=True).equals(whole.sort_values(KEYS, kind="stable", ignore_index=True))
            )


def test_the_batch_by_batch_order_check_agrees_with_a_stable_sort() -> None:
    """`OrderCheck` (batches checked one at a time, only the last row's keys kept) says in order
    exactly when `sort_order` of the whole does: within a batch and across a batch's edge, text by
    value, missing last; a batch may be all missing or empty."""
    import pyarrow as pa

    from analyzer.report.order import OrderCheck, sort_order

    def arrays(part: pd.DataFrame) -> list[pa.Array]:
        return [pa.array(part[k].astype(object).where(part[k].notna(), None).tolist()) for k in KEYS]

    for seed in range(60):
        df = _table(1 + seed * 5, seed)
        if seed % 2:  # sorted, so that the in-order answer is tested as often as the other
            df = df.sort_values(KEYS, kind="stable", ignore_index=True)
        tail = frame(SCHEMA, {k: [None, None] for k in KEYS}) if seed % 3 == 0 else df.iloc[:0]
        whole = pd.concat([df, tail], ignore_index=True)
        check, step = OrderCheck([True, False, False]), 1 + seed % 7
        for start in range(0, len(df), step):
            check.add(arrays(df.iloc[start : start + step]))
        check.add(arrays(df.iloc[:0]))
        if len(tail):
            check.add([pa.array([None, None])] * 3)
        assert check.in_order == (sort_order(whole, KEYS) is None), seed


def test_data_quality_in_order_agrees_with_its_sort_missing_streams_included() -> None:
    """data_quality keeps its rows unsorted when `_in_order` says they are by capture, then stream,
    missing first (its sort): a missing stream after a stream of 1 or more was once taken as in order
    (the int64 minimum minus the stream overflowed to a positive step)."""
    from analyzer.report.views.quality import _in_order, _keys

    schema = {"capture": STR, "stream": INT}
    assert not _in_order(frame(schema, {"capture": ["a"] * 3, "stream": [1, 1, None]}))
    for seed in range(200):
        rnd = random.Random(seed)
        n = rnd.randrange(1, 8)
        df = frame(
            schema,
            {
                "capture": [rnd.choice([None, "a.pcap", "b.pcap"]) for _ in range(n)],
                "stream": [rnd.choice([None, 0, 1, 2, 5]) for _ in range(n)],
            },
        )
        ordered = df.sort_values(["capture", "stream"], kind="stable", na_position="first", ignore_index=True)
        keys = _keys(df)
        key_by_key = all(a <= b for a, b in pairwise(keys))  # the rows' own keys
        assert _in_order(ordered), seed
        assert _in_order(df) == key_by_key == df.equals(ordered), (seed, df)
