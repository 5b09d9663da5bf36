"""What the views hold per key while they fold (issue 13: a 10 GB capture's `--jobs 1` peak).

- a per-key list (`lists.put`) of two to `SMALL_LISTED` texts is a tuple, not a set (216 bytes however
  few it holds), and comes out as the set's cell would (`joined`);
- the matrix keeps per key a number: its counts and first and last seen are items of int64 columns
  (`activity.Matrix.counts`, `.times`), its listed values items of lists (`.lists`), not an object, a
  list and int objects per key."""

from __future__ import annotations

import sys
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from analyzer.report.columns import frame
from analyzer.report.lists import SMALL_LISTED, add, joined, put
from analyzer.report.source import TABLES
from analyzer.report.views.activity import Matrix

_TEXTS = st.sampled_from(["135", "49665", "80", "10.0.0.2", "10.0.0.10", "::1", "ncacn_np", "", "b", "a"])


@given(st.lists(st.one_of(st.none(), _TEXTS, st.integers(0, 70_000)), max_size=30))
def test_a_listed_value_comes_out_as_the_set_of_its_texts(values: list[object]) -> None:
    """Whatever form `put` holds the list in, its cell is that of the set `add` keeps of the same
    values, and it is a tuple exactly while it holds two to SMALL_LISTED texts."""
    held = None
    distinct: set[str] = set()
    for v in values:
        held = put(held, v)
        add(distinct, v)
    assert joined(held) == joined(distinct)
    if 2 <= len(distinct) <= SMALL_LISTED:
        assert isinstance(held, tuple) and sorted(held) == sorted(distinct)
    elif len(distinct) > SMALL_LISTED:
        assert held == distinct


def test_a_few_texts_cost_less_than_a_set() -> None:
    held = None
    for v in ("ncacn_ip_tcp", "ncacn_np", "ncacn_http"):
        held = put(held, v)
    assert sys.getsizeof(held) * 2 < sys.getsizeof(set(held or ())), held


def _matrix_bytes(keys: int) -> float:
    """Traced bytes a `Matrix` holds per key after folding `keys` distinct (client, server) pairs, two
    binds (two ports, two transports) and a call each, 4,096 rows a chunk."""
    start_ns = 1_767_225_600_000_000_000  # 2026-01-01
    n = 2 * keys
    binds = frame(
        TABLES["binds"],
        {
            "ts": [start_ns + i * 1_000_000 for i in range(n)],
            "capture": ["a.pcap"] * n,
            "stream": list(range(n)),
            "client_ip": [f"10.1.{(i // 2) // 250}.{(i // 2) % 250}" for i in range(n)],
            "server_ip": ["10.0.0.1"] * n,
            "server_port": [49_665 + i % 2 for i in range(n)],
            "transport": ["ncacn_ip_tcp" if i % 2 else "ncacn_http" for i in range(n)],
            "interface_uuid": ["e3514235-4b06-11d1-ab04-00c04fc2dcd2"] * n,
            "interface_name": ["drsuapi"] * n,
            "ack_result": ["acceptance"] * n,
        },
    )
    calls = frame(
        TABLES["calls"],
        {
            **{c: list(binds[c])[::2] for c in ("client_ip", "server_ip", "interface_uuid", "interface_name")},
            "ts": [start_ns + i * 2_000_000 for i in range(keys)],
            "capture": ["a.pcap"] * keys,
            "stream": list(range(0, n, 2)),
            "server_port": [49_665] * keys,
            "transport": ["ncacn_ip_tcp"] * keys,
            "operation": ["DRSGetNCChanges"] * keys,
        },
    )
    view = Matrix()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for table, rows in (("binds", binds), ("calls", calls)):
            for start in range(0, len(rows), 4096):
                view.add(table, rows.iloc[start : start + 4096])
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    out = view.result()
    assert len(out) == keys
    assert set(out["binds"]) == {2} and set(out["calls"]) == {1} and set(out["connections"]) == {2}
    assert set(out["endpoints"]) == {"49665;49666"} and set(out["transports"]) == {"ncacn_http;ncacn_ip_tcp"}
    return held / keys


def test_the_matrix_holds_its_lists_and_a_number_per_key() -> None:
    """Counts, times and lists in columns, two-text lists as tuples: about 800 traced bytes a key here
    with its own client address and connections (1,370 with a list of counts, two times and sets per
    key, main before issue 13's round 9; 900 with an object and a list of lists per key, before round
    10), and no more per key for 4x the keys."""
    small, big = _matrix_bytes(3_000), _matrix_bytes(12_000)
    assert big < 860, big
    assert big < small * 1.25 + 40, (small, big)
