"""The findings engine's column-wise paths give what its per-row path gives: a run of one group's rows
aggregated from the column arrays (`evidence.Evidence.add_range`, `Rows.runs`), and the attempts rows
held and given to the rules HELD_ATTEMPTS at a time (`engine.Findings`). Built inputs: attempts of
a few clients, in runs or interleaved, with gaps that cut bursts, missing values, frames out of order,
text columns as Arrow strings, Python objects or categories."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer import findings
from analyzer.findings import engine
from analyzer.findings.evidence import Evidence, Rows
from analyzer.findings.rules import Rule, load_rules
from tests.test_findings import T0
from tests.test_findings_chunks import Chunked

# Rules over attempts of every kind the engine aggregates: counts of rows and of distinct values,
# a rule with `after` (its host pairs), a call rule; small thresholds and windows so bursts are cut.
RULES = "\n".join(
    "\t".join(cells)
    for cells in (
        ("id", "kind", "source", "when", "group", "threshold", "window_s", "after", "technique"),
        ("t-many", "count", "attempts", "server_port=135", "client_ip", "count>=4", "2", "", "t_many"),
        ("t-hosts", "count", "attempts", "", "client_ip,server_port", "distinct:server_ip>=2", "1.5", "", "t_hosts"),
        ("t-after", "count", "attempts", "", "server_ip", "count>=2", "3", "t_many", "t_after"),
        ("t-call", "call", "attempts", "outcome=rejected", "", "", "1", "", "t_call"),
    )
)
SHOWN = "\tseverity\tconfidence\targument\ttitle\tdetail"
CELLS = ("\tmedium\tlikely\toutcome\tMany\t{client} {calls} {servers}", "\thigh\tlikely\toutcome\tHosts\t{server}")
CELLS += ("\tlow\tlikely\t\tAfter\t{client}", "\tlow\tlikely\tclient_ip\tCall\t{client}")

CLIENTS = ["10.0.0.66", "10.0.0.67", "10.0.0.68", None]
SERVERS = ["10.0.1.1", "10.0.1.2", "10.0.1.3", None]


@functools.cache
def _loaded() -> tuple[Rule, ...]:
    header, *rows = RULES.split("\n")
    text = "\n".join([header + SHOWN, *(r + c for r, c in zip(rows, CELLS, strict=True))]) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.tsv"
        path.write_text(text)
        return tuple(r for r in load_rules([str(path)]) if r.source == "attempts")


def _rules() -> list[Rule]:
    return list(_loaded())


@st.composite
def attempts(draw: Any) -> pd.DataFrame:
    n = draw(st.integers(1, 300))
    if draw(st.booleans()):  # clients one after the other (a flood's), or interleaved
        sizes = draw(st.lists(st.integers(1, 120), min_size=1, max_size=4))
        client = [CLIENTS[i % len(CLIENTS)] for i, k in enumerate(sizes) for _ in range(k)]
        client = (client * (n // len(client) + 1))[:n]
    else:
        client = draw(st.lists(st.sampled_from(CLIENTS), min_size=n, max_size=n))
    server = draw(st.lists(st.sampled_from(SERVERS), min_size=n, max_size=n))
    gaps = draw(st.lists(st.sampled_from([0, 10_000, 400_000_000, 2_500_000_000]), min_size=n, max_size=n))
    ts = T0 + np.cumsum(np.array(gaps, dtype=np.int64))
    frames = np.arange(1, n + 1)
    if draw(st.booleans()):  # frames out of order (still unique, as a capture's are)
        frames = frames[np.array(draw(st.permutations(list(range(n)))), dtype=np.int64)]
    outcome = draw(st.lists(st.sampled_from(["syn_only", "rejected", None]), min_size=n, max_size=n))
    df = pd.DataFrame(
        {
            "capture": "c.pcap",
            "frame": pd.array(frames, dtype="Int64"),
            "ts": pd.to_datetime(ts, utc=True),
            "client_ip": client,
            "client_port": 40000,
            "server_ip": server,
            "server_port": pd.array([135] * n, dtype="Int64"),
            "outcome": outcome,
        }
    )
    kind = draw(st.sampled_from(["string", "object", "category"]))
    text = ["capture", "client_ip", "server_ip", "outcome"]
    return df if kind == "object" else df.astype(dict.fromkeys(text, kind))


def _fields(ev: Evidence) -> tuple[Any, ...]:
    shown = {k: (list(d.seen), d.empty) for k, d in ev.shown.items()}
    return ev.capture, ev.n, ev.frames, ev.first_ns, ev.last_ns, shown, ev.pairs


@settings(max_examples=40, deadline=None)
@given(df=attempts(), data=st.data())
def test_add_range_is_add_of_the_same_rows(df: pd.DataFrame, data: Any) -> None:
    """Evidence of rows a..b-1 from the columns equals the evidence `add` makes of them one by one,
    also after rows added before (frames kept, times widened)."""
    for rule in _rules():
        rows = Rows(df, rule)
        a = data.draw(st.integers(0, rows.n - 1))
        b = data.draw(st.integers(a + 1, rows.n))
        bulk, single = Evidence(rule), Evidence(rule)
        if a:  # rows before, added the same way to both
            bulk.add(rows, list(range(a)))
            single.add(rows, list(range(a)))
        bulk.add_range(rows, a, b)
        single.add(rows, list(range(a, b)))
        assert _fields(bulk) == _fields(single), rule.id


def _per_row(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(Rows, "runs", lambda self: None)  # every chunk the per-row way


@settings(max_examples=25, deadline=None)
@given(df=attempts(), rows=st.sampled_from([7, 64, 4096]), held=st.sampled_from([1, 100, 16_384]))
def test_findings_column_wise_equal_per_row(df: pd.DataFrame, rows: int, held: int) -> None:
    """The whole engine over attempts chunks: by runs and held `held` rows at a time, or row by row
    and each chunk as it comes, the same findings."""
    rules = _rules()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "HELD_ATTEMPTS", held)
        bulk = findings.compute(Chunked({"attempts": df}, rows), rules)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "HELD_ATTEMPTS", 1)
        _per_row(mp)
        single = findings.compute(Chunked({"attempts": df}, rows), rules)
    pd.testing.assert_frame_equal(bulk, single)


def test_a_flood_of_a_few_clients_goes_by_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A SYN flood's attempts (a few clients one after the other) are aggregated run by run, never
    row by row, and give the findings the per-row path gives."""
    n = 3 * engine.HELD_ATTEMPTS
    df = pd.DataFrame(
        {
            "capture": pd.array(["c.pcap"] * n, dtype="string"),
            "frame": pd.array(np.arange(1, n + 1), dtype="Int64"),
            "ts": pd.to_datetime(T0 + np.arange(n) * 10_000, utc=True),
            "client_ip": pd.array([f"10.1.{i // 20_000}.0" for i in range(n)], dtype="string"),
            "client_port": np.arange(n) % 60000 + 1024,
            "server_ip": pd.array([f"10.0.1.{i % 3}" for i in range(n)], dtype="string"),
            "server_port": pd.array([135] * n, dtype="Int64"),
            "outcome": pd.array(["syn_only"] * n, dtype="string"),
        }
    )
    rules = [r for r in _rules() if r.after is None]  # `after` rules take the per-row path (host pairs)
    per_row: list[int] = []
    real = Evidence.add

    def spy(self: Evidence, rows: Rows, idx: list[int]) -> None:
        per_row.append(len(idx))
        real(self, rows, idx)

    monkeypatch.setattr(Evidence, "add", spy)
    bulk = findings.compute(Chunked({"attempts": df}, 4096), rules)
    assert not per_row and len(bulk) > 0
    _per_row(monkeypatch)
    single = findings.compute(Chunked({"attempts": df}, 4096), rules)
    assert per_row  # this time row by row
    pd.testing.assert_frame_equal(bulk, single)
