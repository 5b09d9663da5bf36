"""Findings: the rule language, the rule engine on hand-built tables, and the shared captures scored
against what an expert concluded from them (../shared/detection/findings_expected.csv).

Acceptance on the shared captures: every `certain` row found (same capture, technique, client and
server, and its readable argument in ours), at least 90 % of the `likely` rows, and no finding of
severity medium or above on a capture whose expected row is `none`. Rows we cannot find yet are listed
with the reason in tests/findings_exceptions.csv; a listed row that is now found fails the test too, so
the list only shrinks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analyzer import findings
from analyzer.findings.conditions import evaluate, parse_conditions
from analyzer.findings.rules import RuleError, load_rules
from analyzer.report.columns import frame
from analyzer.report.source import Frames
from analyzer.report.tables import BINDS, CALLS
from tests.conftest import ROOT, SHARED, needs_shared
from tests.findings_expected import (
    Expected,
    analysed,
    argument_matched,
    expected_rows,
    matches,
    read_exceptions,
    tokens,
)

EXPECTED = SHARED / "detection" / "findings_expected.csv"
EXCEPTIONS = ROOT / "tests" / "findings_exceptions.csv"
T0 = 1_700_000_000_000_000_000


# -- hand-built tables ------------------------------------------------------------------------------


def calls(*rows: dict[str, Any]) -> pd.DataFrame:
    """A calls table from partial rows; `args` becomes arguments_json, `t` the seconds after T0."""
    base = {"capture": "c.pcap", "client_ip": "10.0.0.9", "server_ip": "10.0.0.1", "status": "ok", "request_bytes": 100}
    full = [{**base, **r} for r in rows]
    cols = {k: [r.get(k) for r in full] for k in CALLS}
    cols["frame"] = [r.get("frame", i + 1) for i, r in enumerate(full)]
    cols["ts"] = [T0 + int(r.get("t", i) * 1e9) for i, r in enumerate(full)]
    df = frame(CALLS, cols)
    df["arguments_json"] = pd.array([json.dumps(r["args"]) if "args" in r else None for r in full], dtype="string")
    df["arguments"] = pd.array([None] * len(full), dtype="string")
    return df


def run(
    c: pd.DataFrame, binds: pd.DataFrame | None = None, attempts: pd.DataFrame | None = None, **kw: Any
) -> pd.DataFrame:
    given = {"calls": c, "binds": binds, "attempts": attempts}
    return findings.compute(Frames({t: df for t, df in given.items() if df is not None}), **kw)


def svc(op: str, opnum: int, **kw: Any) -> dict[str, Any]:
    return {
        "interface_name": "svcctl",
        "interface_uuid": "367abb81-9844-35f1-ad32-98f038001003",
        "operation": op,
        "opnum": opnum,
        **kw,
    }


def test_psexec_sequence_is_one_finding_per_service() -> None:
    c = calls(
        svc("RCreateServiceW", 12, args={"service_name": "SDfL", "binary_path": "%systemroot%\\HtCOoeYd.exe"}),
        svc("RStartServiceW", 19, args={"service_name": "SDfL"}),
        svc("RDeleteService", 2, args={"service_name": "SDfL"}),
    )
    c["arguments"] = pd.array(["service_name=SDfL; binary_path=%systemroot%\\HtCOoeYd.exe", None, None], dtype="string")
    f = run(c)
    assert list(f["technique"]) == ["T1569.002"]
    row = f.iloc[0]
    assert row["frames"] == "1;2;3" and row["severity"] == "high" and row["confidence"] == "certain"
    assert "HtCOoeYd.exe" in row["argument"]
    assert (row["client_ip"], row["server_ip"]) == ("10.0.0.9", "10.0.0.1")


def test_bursts_split_on_the_window_and_merge_inside_it() -> None:
    create = svc("RCreateServiceW", 12)
    f = run(calls({**create, "t": 0}, {**create, "t": 100}, {**create, "t": 5000}))
    assert len(f) == 2 and sorted(f["calls"].tolist()) == [1, 2]


def test_dcsync_only_from_a_host_that_is_not_a_domain_controller() -> None:
    drs = {"interface_name": "drsuapi", "operation": "IDL_DRSGetNCChanges", "opnum": 3, "request_bytes": 300}
    # 10.0.0.2 answers netlogon, so it is a DC: its replication from 10.0.0.1 is routine
    dc_to_dc = calls(
        {
            "interface_name": "netlogon",
            "operation": "NetrLogonSamLogonWithFlags",
            "client_ip": "10.0.0.1",
            "server_ip": "10.0.0.2",
        },
        {**drs, "client_ip": "10.0.0.2", "server_ip": "10.0.0.1"},
    )
    assert "T1003.006" not in set(run(dc_to_dc)["technique"])
    f = run(calls({**drs, "client_ip": "10.0.0.7", "server_ip": "10.0.0.1"}))
    assert list(f["technique"]) == ["T1003.006"] and f.iloc[0]["severity"] == "critical"


def test_zerologon_burst_then_success_by_return_status() -> None:
    auth = {"interface_name": "netlogon", "operation": "NetrServerAuthenticate3", "opnum": 26}
    zero = {"client_credential_zero": True, "account_name": "DC01$"}
    rows = [{**auth, "t": i * 0.1, "args": zero, "return_status": "STATUS_ACCESS_DENIED"} for i in range(25)]
    rows.append({**auth, "t": 3.0, "args": zero, "return_status": "STATUS_SUCCESS"})
    c = calls(*rows)
    c["return_status"] = pd.array([r["return_status"] for r in rows], dtype="string")
    f = run(c).set_index("technique")
    assert f.loc["zerologon_attempt", "calls"] == 26 and f.loc["zerologon_attempt", "argument"] == "DC01$"
    assert f.loc["zerologon_success", "severity"] == "critical" and f.loc["zerologon_success", "calls"] == 1
    # a real secure channel (non-zero credential) accepted is not ZeroLogon
    ok = calls({**auth, "args": {"client_credential_zero": False}})
    ok["return_status"] = pd.array(["STATUS_SUCCESS"], dtype="string")
    assert run(ok).empty


def test_port135_scan_from_attempts_and_missing_attempts_table() -> None:
    att = pd.DataFrame(
        {
            "capture": "c.pcap",
            "frame": range(1, 13),
            "ts": pd.to_datetime([T0 + i * 10**9 for i in range(12)], utc=True),
            "client_ip": "10.0.0.66",
            "client_port": 40000,
            "server_ip": [f"10.0.1.{i}" for i in range(12)],
            "server_port": 135,
            "outcome": "syn_only",
        }
    )
    one_call = calls(svc("RQueryServiceStatus", 6))
    f = run(one_call, attempts=att)
    assert list(f["technique"]) == ["port135_scan"] and f.iloc[0]["client_ip"] == "10.0.0.66"
    assert run(one_call, attempts=att.head(5)).empty  # below the threshold of 10 hosts
    assert run(one_call, attempts=att.iloc[0:0]).empty and run(one_call, attempts=None).empty


def test_interface_bruteforce_from_rejected_binds() -> None:
    n = 25
    cols: dict[str, list[Any]] = {k: [None] * n for k in BINDS}
    cols.update(
        capture=["c.pcap"] * n,
        frame=list(range(1, n + 1)),
        ts=[T0 + i * 10**8 for i in range(n)],
        client_ip=["10.0.0.9"] * n,
        server_ip=["10.0.0.1"] * n,
        interface_uuid=[f"{i:08x}-0000-0000-0000-000000000000" for i in range(n)],
        ack_result=["provider_rejection"] * n,
        ack_reason=["abstract_syntax_not_supported"] * n,
    )
    f = run(calls(svc("RQueryServiceStatus", 6)), binds=frame(BINDS, cols))
    assert list(f["technique"]) == ["rpc_interface_bruteforce"] and f.iloc[0]["calls"] == n


# -- the rule language -------------------------------------------------------------------------------


def test_conditions_on_columns_arguments_and_other_columns() -> None:
    c = calls(
        {"args": {"local_machine": "\\\\10.0.0.66"}, "workstation": "WS1"},
        {"args": {"local_machine": "\\\\WS1"}, "workstation": "WS1"},
        {"args": {"local_machine": "\\\\10.0.0.9"}},
        {"status": None},
    )
    when = parse_conditions("arg.local_machine~\\\\; arg.local_machine!~$client_ip; arg.local_machine!~$workstation")
    assert evaluate(c, when).tolist() == [True, False, False, False]
    assert evaluate(c, parse_conditions("status=none")).tolist() == [False, False, False, True]
    assert evaluate(c, parse_conditions("request_bytes>=100; status=ok|fault")).tolist() == [True, True, True, False]
    with pytest.raises(ValueError, match="needs a number"):
        parse_conditions("request_bytes>=many")
    with pytest.raises(ValueError, match="FIELD OP VALUE"):
        parse_conditions("just words")


def test_user_rules_replace_add_and_switch_off(tmp_path: Path) -> None:
    shipped = {r.id: r for r in load_rules()}
    assert {"service-create", "dcsync", "zerologon-burst", "psexec-sequence"} <= set(shipped)
    user = tmp_path / "site.tsv"
    user.write_text(
        "id\tkind\tinterface\toperations\ttechnique\ttitle\tseverity\n"
        "service-create\t\t\t\t\t\tlow\n"
        "dcsync\toff\n"
        "my-query\tcall\tsvcctl\tRQueryServiceStatus\tT1007\tService status read\tinfo\n"
    )
    rules = {r.id: r for r in load_rules((str(user),))}
    assert rules["service-create"].severity == "low" and rules["service-create"].technique == "T1569.002"
    assert "dcsync" not in rules
    f = run(calls(svc("RQueryServiceStatus", 6)), rules=list(rules.values()))
    assert list(f["technique"]) == ["T1007"] and "my-query" in f.iloc[0]["detail"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id\tkind\nx\tmaybe\n", "kind 'maybe'"),
        ("id\tbogus\nx\tcall\n", "unknown column 'bogus'"),
        ("id\tkind\ttechnique\ttitle\tthreshold\nx\tcount\tT1\tt\tmany\n", "threshold 'many'"),
        ("id\tkind\ttechnique\ttitle\twhen\nx\tcall\tT1\tt\tnonsense\n", "FIELD OP VALUE"),
        ("id\tkind\nx\tcall\n", "needs a technique and a title"),
    ],
)
def test_bad_rule_files_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.tsv"
    p.write_text(text)
    with pytest.raises(RuleError, match=message) as e:
        load_rules((str(p),))
    assert f"{p}:2" in str(e.value) or f"{p}:1" in str(e.value)


def test_shipped_rules_are_documented_and_load() -> None:
    rules = load_rules()
    assert len(rules) >= 40
    readme = (ROOT / "README.md").read_text()
    section = re.split(r"\n##+ ", readme.split("### findings.csv", 1)[1], maxsplit=1)[0]
    documented = set()
    for line in section.splitlines():
        cell = re.match(r"\| ([a-z0-9_, ]+) \|", line)
        if cell and cell.group(1).strip() != "column":
            documented |= {c.strip() for c in cell.group(1).split(",")}
    assert documented == set(findings.FINDINGS)
    behaviour = {r.technique for r in rules if r.kind in ("count", "sequence")}
    assert {"rpc_endpoint_enum", "port135_scan", "rpc_interface_bruteforce", "rpc_opnum_bruteforce"} <= behaviour


def test_expected_argument_tokens() -> None:
    assert tokens("service SDfL, binary %systemroot%\\HtCOoeYd.exe (written to ADMIN$)") == {
        "sdfl",
        "%systemroot%\\htcooeyd.exe",
    }
    assert tokens("~200 services queried") == set()


# -- the shared captures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored() -> dict[str, Any]:
    rows = expected_rows(EXPECTED)
    results = {cap: analysed(cap).findings for cap in sorted({r.capture for r in rows})}
    out: dict[str, Any] = {"rows": rows, "findings": results, "missed": {}, "false_positives": []}
    for r in rows:
        f = results[r.capture]
        if r.technique == "none":
            loud = f[f["severity"].isin(["medium", "high", "critical"])]
            out["false_positives"].extend(
                f"{r.capture}: {t.technique} {t.client_ip}->{t.server_ip} ({t.severity})" for t in loud.itertuples()
            )
            continue
        found = matches(f, r)
        if found.empty:
            out["missed"][(*r.key, "finding")] = r
        elif argument_matched(found, r) is False:
            out["missed"][(*r.key, "argument")] = r
    return out


def _report(missed: dict[tuple[str, ...], Expected], exceptions: dict[tuple[str, ...], str]) -> str:
    lines = []
    for key, r in sorted(missed.items()):
        why = exceptions.get(key, "NOT LISTED in tests/findings_exceptions.csv")
        lines.append(f"  {r.confidence} {key[4]:8} {r.capture} {r.technique} {r.client_ip}->{r.server_ip}: {why}")
    return "\n".join(lines)


@needs_shared
def test_no_loud_finding_on_quiet_captures(scored: dict[str, Any]) -> None:
    assert not scored["false_positives"], "\n".join(scored["false_positives"])


@needs_shared
def test_every_certain_row_is_found_or_its_miss_explained(scored: dict[str, Any]) -> None:
    exceptions = read_exceptions(EXCEPTIONS)
    certain = {k: r for k, r in scored["missed"].items() if r.confidence == "certain"}
    unexplained = {k: r for k, r in certain.items() if k not in exceptions}
    rows = [r for r in scored["rows"] if r.confidence == "certain" and r.technique != "none"]
    found = len(rows) - len({k[:4] for k, r in certain.items() if k[4] == "finding"})
    print(f"\ncertain rows found {found}/{len(rows)}; missed or argument not matched:\n{_report(certain, exceptions)}")
    assert not unexplained, "missed certain rows:\n" + _report(unexplained, exceptions)


@needs_shared
def test_likely_rows_found_at_least_90_percent(scored: dict[str, Any]) -> None:
    rows = [r for r in scored["rows"] if r.confidence == "likely" and r.technique != "none"]
    missed = {k: r for k, r in scored["missed"].items() if r.confidence == "likely" and k[4] == "finding"}
    print(f"\nlikely rows found {len(rows) - len(missed)}/{len(rows)}:\n{_report(missed, read_exceptions(EXCEPTIONS))}")
    assert len(rows) - len(missed) >= 0.9 * len(rows)


@needs_shared
def test_listed_exceptions_are_still_missed(scored: dict[str, Any]) -> None:
    """A listed row that is now found (e.g. once decoded arguments arrive) must leave the list."""
    stale = [k for k in read_exceptions(EXCEPTIONS) if k not in scored["missed"]]
    assert not stale, "found now, remove from tests/findings_exceptions.csv:\n" + "\n".join(map(str, stale))


# -- the command line ----------------------------------------------------------------------------------


def test_findings_command_text_csv_severity_and_rules(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from analyzer.cli import main
    from tests.conftest import SAMPLES

    sample = str(SAMPLES / "multifrag_calls.pcap")
    res = CliRunner().invoke(main, ["findings", sample, "-q"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("2 finding(s): 1 high, 1 medium") and "== 10.0.0.10" in lines
    assert lines.index("== 10.0.0.10") < lines.index("== 10.0.0.5")  # the host with the worst finding first
    assert "frames: 10 " in res.output
    res = CliRunner().invoke(main, ["findings", sample, "-q", "--min-severity", "high", "--format", "csv"])
    assert res.exit_code == 0 and res.output.count("\n") == 2 and "T1053.005" in res.output
    off = tmp_path / "off.tsv"
    off.write_text("id\tkind\ntask-register\toff\n")
    res = CliRunner().invoke(main, ["findings", sample, "-q", "--rules", str(off)])
    assert res.exit_code == 0 and "T1053.005" not in res.output
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tkind\nx\tnope\n")
    res = CliRunner().invoke(main, ["findings", sample, "-q", "--rules", str(bad)])
    assert res.exit_code == 2 and f"{bad}:2" in res.output


def test_attack_column_on_calls_and_matrix_from_the_registry_tags() -> None:
    import analyzer
    from analyzer import registry
    from tests.conftest import SAMPLES, SVCCTL

    res = analyzer.analyze(SAMPLES / "epm_map_session.pcap")
    start = res.calls[res.calls["operation"] == "RStartServiceW"]
    tags = registry.operation_info(SVCCTL, 2, 19)
    assert tags is not None and tags.attack == ("T1569.002",)
    assert start["attack"].tolist() == ["T1569.002"]
    assert res.calls.loc[res.calls["operation"] == "RQueryServiceStatus", "attack"].isna().all()
    svc = res.matrix[res.matrix["interface_name"] == "svcctl"]
    assert svc["attack"].tolist() == ["T1569.002"]


def test_replication_with_the_kerberos_provider_marks_a_domain_controller() -> None:
    drs = {"interface_name": "drsuapi", "operation": "IDL_DRSGetNCChanges", "opnum": 3, "request_bytes": 300}
    assert list(run(calls({**drs, "auth_type": "spnego"}))["technique"]) == ["T1003.006"]
    assert run(calls({**drs, "auth_type": "kerberos"})).empty


def test_opnum_bruteforce_epm_sweep_and_sid_bruteforce() -> None:
    probe = {**svc("opnum-70", 70), "status": "nca_s_op_rng_error", "request_bytes": 0}
    f = run(calls(*[{**probe, "opnum": 60 + i, "t": i} for i in range(12)]))
    assert list(f["technique"]) == ["rpc_opnum_bruteforce"] and f.iloc[0]["calls"] == 12
    assert run(calls(*[{**probe, "opnum": 60 + i, "t": i} for i in range(9)])).empty  # below 10
    epm = {"interface_name": "epmapper", "operation": "ept_map", "opnum": 3}
    sweep = run(calls(*[{**epm, "server_ip": f"10.0.2.{i}", "t": i} for i in range(11)]))
    assert list(sweep["technique"]) == ["rpc_endpoint_enum"] and sweep.iloc[0]["client_ip"] == "10.0.0.9"
    assert "10.0.2.0" in sweep.iloc[0]["server_ip"] and "(+6 more)" in sweep.iloc[0]["server_ip"]
    lookup = {"interface_name": "lsarpc", "operation": "LsarLookupSids", "opnum": 15}
    sids = run(calls({**lookup, "args": {"count": 1000}}, {**lookup, "args": {"count": 3}, "t": 1000}))
    assert list(sids["technique"]) == ["sid_bruteforce"] and sids.iloc[0]["calls"] == 1


def test_junk_in_the_tables_never_raises() -> None:
    """Decoded values come off the wire: broken JSON, odd types and missing cells must not break a rule."""
    junk = ["{", "[1,2", "null", '"text"', "[]", '{"count": "many", "file_name": 5}', '{"a": {"b": {"c": {}}}}']
    rows = []
    for i in range(len(junk)):
        for iface, op, opnum in (
            ("lsarpc", "LsarLookupSids", 15),
            ("efsrpc", "EfsRpcOpenFileRaw", 0),
            ("netlogon", "NetrServerAuthenticate3", 26),
            ("spoolss", "RpcRemoteFindFirstPrinterChangeNotificationEx", 65),
        ):
            rows.append({"interface_name": iface, "operation": op, "opnum": opnum, "t": i, "status": None})
    c = calls(*rows)
    c["arguments_json"] = pd.array([junk[i // 4] for i in range(len(rows))], dtype="string")
    c.loc[::3, "client_ip"] = pd.NA
    f = run(c)
    assert set(f.columns) == set(findings.FINDINGS)
    assert run(calls(*[])).empty


def test_epm_sweep_by_binds_alone() -> None:
    n = 12
    cols: dict[str, list[Any]] = {k: [None] * n for k in BINDS}
    cols.update(
        capture=["c.pcap"] * n,
        frame=list(range(1, n + 1)),
        ts=[T0 + i * 10**9 for i in range(n)],
        client_ip=["10.0.0.66"] * n,
        server_ip=[f"10.0.3.{i}" for i in range(n)],
        server_port=[135] * n,
        interface_name=["epmapper"] * n,
        interface_uuid=["e1af8308-5d1f-11c9-91a4-08002b14a0fa"] * n,
        ack_result=["acceptance"] * n,
    )
    f = run(calls(svc("RQueryServiceStatus", 6)), binds=frame(BINDS, cols))
    assert list(f["technique"]) == ["rpc_endpoint_enum"] and f.iloc[0]["calls"] == n
    assert run(calls(svc("RQueryServiceStatus", 6)), binds=frame(BINDS, cols).head(9)).empty
