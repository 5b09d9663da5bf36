"""The findings engine reads its sources a chunk at a time: the findings must not depend on where the
chunks are cut, on text columns coming categorical, on a capture out of time order, or on which table
teaches a host's role; and it reads only the columns its rules use, never a whole table."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analyzer import findings
from analyzer.findings.engine import HELD_ATTEMPTS
from analyzer.report.source import TABLES, Frames
from tests.conftest import needs_shared
from tests.findings_expected import analysed
from tests.test_findings import T0, calls, run, svc

BASE = ("calls", "binds", "endpoints", "connections", "violations", "attempts", "captures")
# Real captures with findings of every kind: sequences, `after`, count thresholds, the DC role.
REAL = (
    "Pcaps/wmiexecpro-create-start-service.pcap",
    "Pcaps/dcsync_secretsdump.pcap",
    "PCAP-ATTACK/Lateral_Movement/CVE-2020-1472_Zerologon_RPC_NetLogon_NullChallenge_SecChan_6_from_nonDC_to_DC.pcapng",
    "PCAP-ATTACK/Evasion/DE_byt3bl33d3r_remote_eventservice_crash.pcapng",
    "suricata-verify/tests/filestore-filecontainer-smb/filecontainer-smb.pcap",
    "Malcolm-Test-Artifacts/pcap/plugins/cve-2022-26809/cve-2022-26809-4.pcap",
)


class Chunked(Frames):
    """Frames cut into chunks of `rows`, recording every read (table, columns, whole or chunked)."""

    def __init__(self, tables: dict[str, pd.DataFrame], rows: int) -> None:
        super().__init__(tables)
        self.rows = rows
        self.reads: list[tuple[str, tuple[str, ...] | None, str]] = []

    def frame(self, table: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        self.reads.append((table, tuple(columns) if columns is not None else None, "frame"))
        return super().frame(table, columns)

    def chunks(self, table: str, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        self.reads.append((table, tuple(columns) if columns is not None else None, "chunks"))
        df = super().frame(table, columns)
        for start in range(0, len(df), self.rows):
            yield df.iloc[start : start + self.rows]


def _compact(df: pd.DataFrame) -> pd.DataFrame:
    """The compact form a big table is read in: its text columns categorical."""
    return df.astype({c: "category" for c, d in df.dtypes.items() if str(d) in ("string", "str", "object")})


@needs_shared
@pytest.mark.parametrize("capture", REAL)
def test_chunked_equals_whole_on_real_captures(capture: str) -> None:
    result = analysed(capture)
    tables = {t: getattr(result, t) for t in BASE}
    whole = findings.compute(Frames(tables))
    assert not whole.empty
    for rows in (7, 4096):
        pd.testing.assert_frame_equal(findings.compute(Chunked(tables, rows)), whole)
    compact = {t: _compact(df) for t, df in tables.items()}
    pd.testing.assert_frame_equal(findings.compute(Chunked(compact, 50)), whole)


def _svc_rows(times: list[float]) -> pd.DataFrame:
    """PsExec-like calls at the given times (seconds after T0), frames in list order."""
    ops = [("RCreateServiceW", 12), ("RStartServiceW", 19), ("RDeleteService", 2)]
    rows = [svc(*ops[i % 3], t=t, frame=i + 1, args={"service_name": f"S{i // 3}"}) for i, t in enumerate(times)]
    return calls(*rows)


def test_a_capture_out_of_time_order_gives_the_findings_of_its_rows_sorted_by_time() -> None:
    """Frames in table order, times not: the rules see each group's rows by time, as if sorted."""
    times = [float(t) for t in (0, 1, 2, 3000, 3001, 3002, 5, 6, 7, 900, 901, 902)]
    shuffled = _svc_rows(times)
    by_time = shuffled.sort_values("ts", kind="stable").reset_index(drop=True)
    want = run(by_time)
    assert len(want) > 1
    pd.testing.assert_frame_equal(run(shuffled), want)
    source = Chunked({"calls": shuffled}, 2)
    pd.testing.assert_frame_equal(findings.compute(source), want)
    # an unknown time sorts last and never cuts a burst
    unknown = shuffled.copy()
    unknown.loc[0, "ts"] = pd.NaT
    pd.testing.assert_frame_equal(
        findings.compute(Chunked({"calls": unknown}, 2)), run(unknown.sort_values("ts", kind="stable"))
    )


def test_the_domain_controller_role_is_learnt_from_a_table_read_later() -> None:
    """DCSync needs the client's role; here only the attempts table (read after calls) shows that the
    client talks Kerberos as a server, so it is a DC and its replication is routine."""
    drs = {"interface_name": "drsuapi", "operation": "IDL_DRSGetNCChanges", "opnum": 3, "request_bytes": 300}
    c = calls({**drs, "client_ip": "10.0.0.2", "server_ip": "10.0.0.1"})
    assert list(run(c)["technique"]) == ["T1003.006"]
    kerberos = pd.DataFrame(
        {
            "capture": ["c.pcap"],
            "frame": [9],
            "ts": pd.to_datetime([T0], utc=True),
            "client_ip": ["10.0.0.5"],
            "client_port": [50000],
            "server_ip": ["10.0.0.2"],
            "server_port": [88],
            "outcome": ["rejected"],
        }
    )
    assert run(c, attempts=kerberos).empty


def _scan(n: int) -> pd.DataFrame:
    """n attempts from one client to port 135 of one server (a flood: one flow key, n rows)."""
    return pd.DataFrame(
        {
            "capture": pd.Categorical(["c.pcap"] * n),
            "frame": np.arange(1, n + 1),
            "ts": pd.to_datetime(T0 + np.arange(n) * 10_000, utc=True),
            "client_ip": pd.Categorical(["10.0.0.66"] * n),
            "client_port": np.arange(n) % 60000 + 1024,
            "server_ip": pd.Categorical(["10.0.0.1"] * n),
            "server_port": np.full(n, 135),
            "outcome": pd.Categorical(["syn_only"] * n),
        }
    )


def test_reads_chunks_of_the_columns_rules_use_never_a_whole_table() -> None:
    source = Chunked({"calls": calls(svc("RCreateServiceW", 12)), "attempts": _scan(50)}, 16)
    f = findings.compute(source)
    assert list(f["technique"]) == ["T1569.002"]
    assert all(how == "chunks" for _, _, how in source.reads)
    for table, columns, _ in source.reads:
        assert columns is not None and set(columns) < set(TABLES[table]), table
    read = {t: set(c or ()) for t, c, _ in source.reads}
    assert "client_port" not in read["attempts"] and "rtt_s" not in read["calls"]
    assert "connections" not in read  # no violations: no connection is looked up


def _peak(n: int) -> int:
    source = Chunked({"calls": calls(svc("RQueryServiceStatus", 6)), "attempts": _scan(n)}, 4096)
    tracemalloc.start()
    try:
        findings.compute(source)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_per_key_not_per_row_under_a_scan_flood() -> None:
    """Eight times the attempts of one client and server: the engine's peak grows by much less than
    the rows (the attempts it holds, one chunk and one open burst, not the table or a copy of it).
    Both runs hold HELD_ATTEMPTS rows at some point (the small one twice that)."""
    n = 2 * HELD_ATTEMPTS
    small, large = _peak(n), _peak(8 * n)
    per_row_of_large = 8 * 8 * n  # one int64 column of the large table would cost this much
    assert large - small < per_row_of_large / 4, (small, large)


def test_violations_are_placed_by_their_connection() -> None:
    """A violation has no time: its connection's start and addresses place it (malformed bind_acks)."""
    conns = pd.DataFrame(
        {
            "capture": ["c.pcap"],
            "stream": [4],
            "client_ip": ["10.0.0.9"],
            "server_ip": ["10.0.0.66"],
            "server_port": [135],
            "pipe_name": [None],
            "first_ts": pd.to_datetime([T0], utc=True),
        }
    )
    viol: dict[str, Any] = {c: [None] * 4 for c in TABLES["violations"]}
    viol.update(capture=["c.pcap"] * 4, frame=[3, 5, 7, 9], stream=[4, 4, 4, None])
    viol.update(what=["bad_header"] * 4, layer=["dcerpc"] * 4)
    tables = {
        "calls": calls(svc("RQueryServiceStatus", 6)),
        "connections": conns.astype({"stream": "Int64"}),
        "violations": pd.DataFrame(viol).astype({"stream": "Int64", "frame": "Int64"}),
    }
    f = findings.compute(Chunked(tables, 1))
    assert list(f["technique"]) == ["T1210"]
    row = f.iloc[0]
    assert (row["client_ip"], row["server_ip"], row["calls"], row["frames"]) == ("10.0.0.9", "10.0.0.66", 3, "3;5;7")
    assert row["first_ts"] == pd.Timestamp(T0, unit="ns", tz="UTC")


def _lookups(clients: int, late: bool) -> pd.DataFrame:
    """Per client, 5 account lookups in 4 s (a finding: 5 in 30 s) if its number is even, else 3 (none),
    the clients 100 s apart; `late`: one more lookup of the first client 1 s after its last, last in
    table order (a capture out of time order whose late row joins a burst long gone by)."""
    op = {"interface_name": "lsarpc", "operation": "LsarLookupNames3", "opnum": 68}
    rows = [
        {**op, "client_ip": f"10.1.{i // 250}.{i % 250}", "t": 100.0 * i + k}
        for i in range(clients)
        for k in range(5 if i % 2 == 0 else 3)
    ]
    if late:
        rows.append({**op, "client_ip": "10.1.0.0", "t": 5.0})
    return calls(*[{**r, "frame": n + 1} for n, r in enumerate(rows)])


@pytest.mark.parametrize("late", [False, True])
def test_bursts_a_window_old_are_closed_and_forgotten_with_the_same_findings(
    late: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Groups whose last row is a window behind their capture are swept (so that the engine holds the
    clients active within a window, not every client of the run): the findings are those of keeping
    every group open, and a late row that belongs to a swept burst is still counted in it."""
    from analyzer.findings import stream

    table = _lookups(600, late)
    held: list[int] = []
    finish = stream.RuleStream.finish

    def finish_counting(self: stream.RuleStream) -> list[stream.Emitted]:
        held.append(len(self.groups))
        return finish(self)

    monkeypatch.setattr(stream.RuleStream, "finish", finish_counting)
    monkeypatch.setattr(stream, "SWEEP_GROUPS", 1 << 30)  # never swept: every group open to the end
    kept_open = findings.compute(Chunked({"calls": table}, 64))
    assert max(held) >= 600 // 2
    monkeypatch.setattr(stream, "SWEEP_GROUPS", 8)
    held.clear()
    swept = findings.compute(Chunked({"calls": table}, 64))
    pd.testing.assert_frame_equal(swept, kept_open)
    pd.testing.assert_frame_equal(swept, run(table.sort_values("ts", kind="stable")))
    assert len(swept) == 300
    first = swept[swept["client_ip"] == "10.1.0.0"]
    assert list(first["calls"]) == [6 if late else 5]
    if not late:  # in time order no rule needed its rows sorted: each held few groups at the end
        assert max(held) < 64, held
