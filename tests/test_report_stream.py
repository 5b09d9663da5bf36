"""Tables written in chunks ([analyzer.report.stream]): the rows and order of one stable sort."""

from __future__ import annotations

import random

import pandas as pd

from analyzer.report.columns import INT, STR, frame
from analyzer.report.stream import sorted_chunks

SCHEMA = {"capture": STR, "frame": INT, "ctx_id": INT, "n": INT}


def _table(rows: int, seed: int) -> pd.DataFrame:
    rnd = random.Random(seed)
    return frame(
        SCHEMA,
        {
            "capture": [rnd.choice(["b.pcap", "a.pcap", "c.pcap"]) for _ in range(rows)],
            "frame": [rnd.choice([None, *range(40)]) for _ in range(rows)],
            "ctx_id": [rnd.randrange(3) for _ in range(rows)],
            "n": list(range(rows)),  # says where each row came from: ties must keep their order
        },
    )


def _pieces(df: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [df.iloc[i : i + size].reset_index(drop=True) for i in range(0, len(df), size)]


def test_out_of_order_rows_come_out_as_one_stable_sort() -> None:
    keys = ["capture", "frame", "ctx_id"]
    for seed in range(5):
        df = _table(1000, seed)
        out = list(sorted_chunks(_pieces(df, 97), keys, 128))
        assert all(len(c) <= 128 for c in out)
        got = pd.concat(out, ignore_index=True)
        pd.testing.assert_frame_equal(got, df.sort_values(keys, kind="stable", ignore_index=True))


def test_rows_already_in_order_are_passed_through() -> None:
    df = _table(500, 7).sort_values(["capture", "frame"], kind="stable", ignore_index=True)
    out = list(sorted_chunks(_pieces(df, 100), ["capture", "frame"], 100))
    assert [len(c) for c in out] == [100] * 5
    pd.testing.assert_frame_equal(pd.concat(out, ignore_index=True), df)


def test_no_rows_is_no_chunk() -> None:
    assert list(sorted_chunks([frame(SCHEMA, {})], ["capture"], 10)) == []
