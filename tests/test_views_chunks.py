"""Views and the per-host table folded from chunks ([analyzer.report.fold]): the same result whatever the
chunk size (one row, a few rows, the whole table in one chunk) and whether text columns come as text
or categorical, on real captures and on generated tables whose keys are spread across chunk
boundaries; and a view reads only the columns it names."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd
import pytest

import analyzer
import analyzer.report.source as source_module
from analyzer.report import views
from analyzer.report.columns import STR, frame
from analyzer.report.figures import VIOLATIONS_SHOWN, figures
from analyzer.report.hosts import hosts_frame
from analyzer.report.source import TABLES, Frames, Source
from tests.conftest import CAPTURES, SAMPLES, needs_shared

# Each view by its name, and the per-host table.
VIEWS: dict[str, Callable[[Source], pd.DataFrame]] = {
    **{name: getattr(views, name) for name in views.VIEW_SCHEMAS},
    "hosts": hosts_frame,
}
BASE = ["binds", "endpoints", "calls", "connections", "violations", "captures", "attempts"]


def categorical(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables with every text column categorical, as a compact Source may give them."""
    return {t: df.astype({c: "category" for c in df.columns if df[c].dtype == STR}) for t, df in tables.items()}


class Counted(Frames):
    """A Frames source that records every table and column set read through it."""

    def __init__(self, tables: dict[str, pd.DataFrame]) -> None:
        super().__init__(tables)
        self.read: list[tuple[str, tuple[str, ...] | None]] = []

    def chunks(self, table: str, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        self.read.append((table, None if columns is None else tuple(columns)))
        return super().chunks(table, columns)

    def frame(self, table: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        self.read.append((table, None if columns is None else tuple(columns)))
        return super().frame(table, columns)


def folded(tables: dict[str, pd.DataFrame], rows: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, pd.DataFrame]:
    """Every view of the tables read in chunks of `rows` rows."""
    monkeypatch.setattr(source_module, "CHUNK_ROWS", rows)
    return {name: fn(Frames(tables)) for name, fn in VIEWS.items()}


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame], why: str) -> None:
    for name in VIEWS:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=f"{name} ({why})")


def check_chunking(
    tables: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch, sizes: Sequence[int] = (1, 2, 7)
) -> dict[str, pd.DataFrame]:
    """The views of the tables in one chunk, checked against chunks of each of `sizes` rows and against
    categorical text in chunks of the last size."""
    longest = max(len(df) for df in tables.values())
    whole = folded(tables, longest + 1, monkeypatch)
    for rows in sizes:
        assert_same(whole, folded(tables, rows, monkeypatch), f"chunks of {rows}")
    assert_same(whole, folded(categorical(tables), sizes[-1], monkeypatch), f"categorical text, chunks of {sizes[-1]}")
    return whole


def base_tables(result: analyzer.AnalysisResult) -> dict[str, pd.DataFrame]:
    return {t: getattr(result, t) for t in BASE}


@pytest.mark.parametrize("where", ["PCAP-ATTACK", "PetitPotam", "zerologon", "CVE-2021-1675"])
@needs_shared
def test_real_captures_fold_alike_in_any_chunk_size(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tables = base_tables(analyzer.analyze([CAPTURES / where]))
    assert len(tables["binds"]) > 13 and len(tables["calls"]) > 13  # several chunks of 13
    whole = check_chunking(tables, monkeypatch, (13, 101))
    assert all(not whole[name].empty for name in VIEWS), where


def test_samples_fold_alike_in_any_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    result = analyzer.analyze([SAMPLES])
    whole = check_chunking(base_tables(result), monkeypatch, (3, 17))
    for name in views.VIEW_SCHEMAS:
        pd.testing.assert_frame_equal(whole[name], getattr(result, name), obj=name)


# -- generated tables: few distinct keys, so every key has rows in many chunks ---------------------------


def pick(rng: random.Random, pool: Sequence[Any], n: int) -> list[Any]:
    return [rng.choice(pool) for _ in range(n)]


def generated(seed: int, n: int = 80) -> dict[str, pd.DataFrame]:
    """Base tables of random rows drawn from small pools (missing values among them)."""
    rng = random.Random(seed)
    ips = ["10.0.0.5", "10.0.0.10", "192.168.1.2", "fe80::1", "HOST1", None]
    uuids = ["367abb81-9844-35f1-ad32-98f038001003", "12345778-1234-abcd-ef00-0123456789ac", None]
    names = ["svcctl", "samr", "unknown-1234", None]
    captures = ["a.pcap", "b.pcap", None]
    pipes = ["\\PIPE\\svcctl", "\\pipe\\SVCCTL", "\\pipe\\samr", "", None]
    ts = [1_600_000_000 * 10**9 + rng.randrange(0, 5 * 60 * 10**9) for _ in range(40)] + [None]
    transports = ["ncacn_ip_tcp", "ncacn_np", "ncadg_ip_udp", None]
    ports = [135, 445, 49665, 49670, 6004, None]
    streams = [0, 1, 2, 3, None]
    flow = {
        "capture": pick(rng, captures, n),
        "frame": pick(rng, [1, 2, 3, 5, 8, None], n),
        "ts": pick(rng, ts, n),
        "client_ip": pick(rng, ips, n),
        "server_ip": pick(rng, ips, n),
        "server_port": pick(rng, ports, n),
        "transport": pick(rng, transports, n),
        "pipe_name": pick(rng, pipes, n),
        "stream": pick(rng, streams, n),
        "interface_uuid": pick(rng, uuids, n),
        "interface_name": pick(rng, names, n),
        "interface_version": pick(rng, ["1.0", "3.0", None], n),
        "auth_level": pick(rng, ["connect", "pkt_privacy", None], n),
    }
    binds = {**flow, "ack_result": pick(rng, ["acceptance", "none", "nak", "provider_rejection", None], n)}
    calls = {
        **{k: pick(rng, v, n) for k, v in flow.items()},
        "fault_code": pick(rng, ["0x00000005", None, None], n),
        "request_bytes": pick(rng, [0, 10, 300, None], n),
        "response_bytes": pick(rng, [0, 20, None], n),
        "operation": pick(rng, ["OpenSCManagerW", "CreateServiceW", "", None], n),
        "user": pick(rng, ["alice", "bob", None], n),
        "domain": pick(rng, ["CORP", None], n),
        "attack": pick(rng, ["T1569.002", None], n),
        "interface_source": pick(rng, ["bind", "header", "late", None], n),
        "status": pick(rng, ["ok", "nca_s_op_rng_error", None], n),
        "encrypted": pick(rng, [True, False, None], n),
    }
    endpoints = {
        **{k: flow[k] for k in ("capture", "frame", "ts", "interface_uuid", "interface_name", "interface_version")},
        "epm_server_ip": pick(rng, ips, n),
        "host": pick(rng, ips, n),
        "protocol": pick(rng, ["ncacn_ip_tcp", "ncacn_np", "ncalrpc", None], n),
        "endpoint": pick(rng, ["49665", "\\PIPE\\lsass", "\\pipe\\LSASS", "lrpc-1", None], n),
        "port": pick(rng, ports, n),
        "pipe_name": pick(rng, pipes, n),
        "annotation": pick(rng, ["Impl friendly name", "", None], n),
        "object_uuid": pick(rng, ["00000000-0000-0000-0000-000000000000", "6bffd098-a112-3610-9833-46c3f87e345a"], n),
    }
    connections = {
        **{k: flow[k] for k in ("capture", "stream", "transport", "client_ip", "server_ip", "server_port")},
        "client_port": pick(rng, [50000, 50001, None], n),
        "pipe_name": pick(rng, pipes, n),
        "first_ts": pick(rng, ts, n),
        "last_ts": pick(rng, ts, n),
        "gaps": pick(rng, [0, 1, None], n),
        "end": pick(rng, ["fin", "idle", "capture_end", "evicted", None], n),
        "midstream": pick(rng, [True, False, None], n),
    }
    violations = {
        "capture": pick(rng, captures, n),
        "stream": pick(rng, streams, n),
        "what": pick(rng, ["max_tcp_flows", "unconfirmed_conversation", "bad_frag_len", "", None], n),
        "occurrences": pick(rng, [1, 4, None], n),
    }
    attempts = {
        "capture": pick(rng, captures, n),
        "server_ip": pick(rng, ips, n),
        "server_port": pick(rng, ports, n),
        "frame": pick(rng, [1, 2, None], n),
    }
    caps: dict[str, list[Any]] = {
        "capture": ["a.pcap", "b.pcap", "c.pcap"],
        "error": [None, "bad magic", None],
        "truncated": [False, True, None],
    }
    data: dict[str, dict[str, list[Any]]] = {
        "binds": binds,
        "calls": calls,
        "endpoints": endpoints,
        "connections": connections,
        "violations": violations,
        "attempts": attempts,
        "captures": caps,
    }
    return {t: frame(TABLES[t], cols) for t, cols in data.items()}


@pytest.mark.parametrize("seed", range(6))
def test_generated_tables_fold_alike_in_any_chunk_size(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = check_chunking(generated(seed), monkeypatch)
    for name, schema in {**views.VIEW_SCHEMAS, "hosts": TABLES["hosts"]}.items():
        assert {c: str(d) for c, d in whole[name].dtypes.items()} == schema, name
        assert not whole[name].empty, name


def test_counts_add_up_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts folded in chunks of three rows still add up to the tables' rows."""
    tables = generated(7, n=300)
    out = folded(tables, 3, monkeypatch)
    binds, calls = tables["binds"], tables["calls"]
    assert out["matrix"]["binds"].sum() == len(binds)
    assert out["matrix"]["calls"].sum() == len(calls)
    assert out["matrix"]["accepted"].sum() == (binds["ack_result"] == "acceptance").sum()
    assert out["timeline"]["binds"].sum() == binds["ts"].notna().sum()
    assert out["timeline"]["request_bytes"].sum() == calls.loc[calls["ts"].notna(), "request_bytes"].sum()
    dq = out["data_quality"]
    per_capture = dq[dq["scope"] == "capture"].set_index("capture")
    violations = tables["violations"]
    weights = violations["occurrences"].fillna(1)
    for cap in ("a.pcap", "b.pcap"):
        assert per_capture.loc[cap, "violations"] == weights[violations["capture"] == cap].sum()
        assert per_capture.loc[cap, "attempts"] == (tables["attempts"]["capture"] == cap).sum()
    assert per_capture.loc["c.pcap", "violations"] == 0


def test_a_view_reads_only_the_columns_it_names() -> None:
    tables = generated(1)
    for name, fn in VIEWS.items():
        source = Counted(tables)
        fn(source)
        assert source.read, name
        for table, columns in source.read:
            assert columns is not None and set(columns) < set(TABLES[table]), (name, table)


def test_empty_tables_give_empty_shaped_views(monkeypatch: pytest.MonkeyPatch) -> None:
    empty = {t: frame(TABLES[t], {}) for t in BASE}
    out = folded(empty, 1, monkeypatch)
    for name in views.VIEW_SCHEMAS:
        pd.testing.assert_frame_equal(out[name], views.empty_view(name), obj=name)
    assert out["hosts"].empty and list(out["hosts"].columns) == list(TABLES["hosts"])


def test_first_sighting_is_the_earliest_row_wherever_its_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inventory's endpoint, port and first frame come from the earliest row, even when that row
    is in the last chunk, and a missing time sorts last."""
    t0 = 1_600_000_000 * 10**9
    rows: dict[str, list[Any]] = {
        "capture": ["a.pcap"] * 3,
        "frame": [30, 20, 10],
        "ts": [t0 + 3 * 10**9, None, t0 + 1 * 10**9],
        "epm_server_ip": ["10.0.0.5"] * 3,
        "host": ["10.0.0.5"] * 3,
        "interface_uuid": ["367abb81-9844-35f1-ad32-98f038001003"] * 3,
        "protocol": ["ncacn_np"] * 3,
        "endpoint": ["\\PIPE\\svcctl", "\\pipe\\SVCCTL", "\\pipe\\svcctl"],
        "pipe_name": ["\\PIPE\\svcctl", "\\pipe\\SVCCTL", "\\pipe\\svcctl"],
    }
    tables = {"endpoints": frame(TABLES["endpoints"], rows)}
    for rows_per_chunk in (1, 3):
        monkeypatch.setattr(source_module, "CHUNK_ROWS", rows_per_chunk)
        inv = views.endpoint_inventory(Frames(tables))
        assert len(inv) == 1
        entry = inv.iloc[0]
        assert entry["endpoint"] == "\\pipe\\svcctl" and entry["first_frame"] == 10
        assert entry["first_seen"] == pd.Timestamp(t0 + 10**9, unit="ns", tz="UTC")
        assert entry["last_seen"] == pd.Timestamp(t0 + 3 * 10**9, unit="ns", tz="UTC")
        assert entry["epm_frames"] == 3 and entry["status"] == views.ANNOUNCED_ONLY


def test_report_figures_fold_alike_in_any_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTML report's figures (`report.figures`): counts and the first violations, whatever the chunks."""
    tables = generated(3, n=300)
    monkeypatch.setattr(source_module, "CHUNK_ROWS", 7)
    fig = figures(Frames(categorical(tables)))
    calls, violations = tables["calls"], tables["violations"]
    assert fig.rows["calls"] == 300 and fig.rows["violations"] == 300
    assert fig.faults == calls["fault_code"].notna().sum()
    assert fig.encrypted == calls["encrypted"].fillna(False).astype(bool).sum()
    assert fig.occurrences == violations["occurrences"].sum()
    pd.testing.assert_frame_equal(fig.violations, violations.head(VIOLATIONS_SHOWN).reset_index(drop=True))
    conns = tables["connections"]
    ip = conns[conns["transport"] != "ncacn_np"]
    assert fig.dynamic_connections == (ip["server_port"] >= 1024).fillna(False).sum()
    assert sum(fig.per_port.values()) == len(ip)


@pytest.mark.parametrize("seed", range(3))
def test_data_quality_rows_are_by_capture_then_stream(seed: int) -> None:
    """Connections out of their table's order still give rows by capture, then stream (capture rows first)."""
    dq = views.data_quality(Frames(generated(seed)))
    by = dq.sort_values(["capture", "stream"], kind="stable", na_position="first", ignore_index=True)
    pd.testing.assert_frame_equal(dq, by)
    firsts = dq.groupby("capture", sort=False)["scope"].first()
    assert set(firsts) == {"capture"}
