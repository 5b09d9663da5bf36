"""Sigma rules on captures, through pySigma: the shared rules load and convert, fire where their technique
is expected, and stay quiet on quiet captures except where their own logic is broader (documented).

The rules are read from ../shared/detection/sigma (never copied). A rule "should fire" on a capture when
one of its ATT&CK tags (or a parent of it) is the technique an expert found there
(findings_expected.csv; behaviour codes through the shipped rules' ATT&CK ids).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import analyzer
from analyzer.cli import main
from analyzer.findings import FINDINGS, load_rules, sigma
from tests.conftest import SAMPLES, SHARED, needs_shared
from tests.findings_expected import analysed, expected_rows

SIGMA = SHARED / "detection" / "sigma"
RULE_DIRS = [SIGMA / "zeek", SIGMA / "rpc_firewall"]

# pySigma refuses to convert these, for the reason given (the test checks the message).
NOT_CONVERTIBLE = {"66a0bdc6-ee04-441a-9125-99d2eb547942": "pipe syntax in Sigma conditions has been deprecated"}

# Rules that cannot fire by their own logic (../shared/detection/anchors.md section 3, sigma_zeek.md B).
CANNOT_FIRE = {
    "dde85b37-40cd-4a94-b00c-0b8794f956b5": "compares path with a literal \\*\\IPC$, which Zeek never writes",
    "021310d9-30a6-480a-84b7-eaa69aeb92bb": "compares path with a literal \\\\*\\IPC$, which Zeek never writes",
    "92dae1ed-1c9d-4eff-a567-33acbd95b00e": "expects SYSTEM32\\*.tmp; secretsdump now writes ..\\Temp\\<8>.tmp",
}

# Rules that do not fire on some capture whose technique they are tagged with, and why.
MISSES = {
    "b640c0b8-87f8-4daa-aef8-95a24261dd1d": "op1 (AT jobs) has endpoint and operation swapped and says JobAdd, not "
    "NetrJobAdd: it cannot match the atsvc captures (anchors.md)",
    "4096842a-8f9f-4d36-92b4-d0b2a62f9b2a": "coercion there is over srvsvc opnum 74 or inside SMB3 encryption, "
    "not an efs* operation",
    "68050b10-e477-4377-a99b-3721b422d6ef": "LM_dcom_mmc20 starts mid-stream: no bind, so no interface UUID",
    "0fcd1c79-4eeb-4746-aba9-1b458f7a79cb": "its tag t1053 covers ITaskSchedulerService tasks; it names atsvc only",
    "ace3ff54-e7fd-46bd-8ea0-74b49a0aca1d": "its tag t1053 covers AT jobs; it names ITaskSchedulerService only",
    "aff229ab-f8cd-447b-b215-084d11e79eb0": "no capture schedules tasks over SASec",
    "56fda488-113e-4ce9-8076-afc2457922c3": "tagged t1033 but about drsuapi; the t1033 capture is PsLoggedOn "
    "(winreg and lsarpc)",
    "6d580420-ff3f-4e0e-b6b0-41b90c787e28": "needs srvsvc NetrSessionEnum; the t1033 capture is PsLoggedOn (winreg)",
    "65f77b1e-8e79-45bf-bb67-5988a8ce45a5": "needs wkssvc NetrWkstaUserEnum; the t1087 captures enumerate over SAMR",
    "10018e73-06ec-46ec-8107-9172f1e04ff2": "wmiexec-pro starts its service through WMI, without svcctl",
}

# Rules whose logic also matches routine traffic on quiet captures: interface-wide audit rules meant for
# servers that allow-list their administrators, and pipe or interface names any client uses.
BROAD = {
    "b6ea3cc7-542f-43ef-bbe4-980fbed444c7": "any srvsvc call, e.g. NetrShareGetInfo on every share connect",
    "68050b10-e477-4377-a99b-3721b422d6ef": "any DCOM activation or IRemUnknown call",
    "10018e73-06ec-46ec-8107-9172f1e04ff2": "any svcctl call, e.g. a read-only service listing",
    "bc3a4b0c-e167-48e1-aa88-b3020950e560": "any print-spooler call, e.g. printing",
    "bae2865c-5565-470d-b505-9496c87d0c30": "the spoolss pipe, which printing uses",
    "d8ffe17e-04be-4886-beb9-c1dd1944b9a8": "any remote-registry read",
    "0fcd1c79-4eeb-4746-aba9-1b458f7a79cb": "the synthetic arkime trace calls NetrJobAdd with an empty stub",
    "56fda488-113e-4ce9-8076-afc2457922c3": "the synthetic arkime trace calls DRSGetNCChanges with an empty stub",
    "5f92fff9-82e2-48eb-8fc1-8b133556a551": "the synthetic arkime trace calls an EFSRPC method with an empty stub",
    "4096842a-8f9f-4d36-92b4-d0b2a62f9b2a": "the synthetic arkime trace calls an EFSRPC method with an empty stub",
}


@pytest.fixture(scope="module")
def converted() -> tuple[list[sigma.Converted], list[str]]:
    return sigma.convert(sigma.load(RULE_DIRS))


def _fired(converted: list[sigma.Converted], capture: str) -> set[str]:
    r = analysed(capture)
    found = sigma.evaluate(converted, r.calls, r.connections)
    return {d.split()[2] for d in found["detail"]}


@pytest.fixture(scope="module")
def fired(converted: tuple[list[sigma.Converted], list[str]]) -> dict[str, set[str]]:
    caps = sorted({r.capture for r in expected_rows(SHARED / "detection" / "findings_expected.csv")})
    return {cap: _fired(converted[0], cap) for cap in caps}


def _tags(rule: Any) -> list[str]:
    return [str(t.name).lower() for t in rule.tags if str(t.namespace) == "attack" and str(t.name)[:1] in "tT"]


@needs_shared
def test_every_shared_rule_loads_and_converts(converted: tuple[list[sigma.Converted], list[str]]) -> None:
    rules, errors = converted
    files = sorted(p for d in RULE_DIRS for p in d.glob("*.yml"))
    assert len(rules) + len(errors) == len(files) == 29
    assert len(errors) == len(NOT_CONVERTIBLE)
    for rid, why in NOT_CONVERTIBLE.items():
        assert any(rid in e and why in e for e in errors), errors
    for c in rules:
        assert c.queries and all(q.startswith("SELECT") for q in c.queries), c.id
        assert c.table in ("dce_rpc", "smb_files", "rpc_firewall")


@needs_shared
def test_rules_fire_where_their_technique_is_expected(
    converted: tuple[list[sigma.Converted], list[str]], fired: dict[str, set[str]]
) -> None:
    attack = {r.technique: r.attack_id for r in load_rules()}
    rows = [r for r in expected_rows(SHARED / "detection" / "findings_expected.csv") if r.technique != "none"]
    missing: dict[str, list[str]] = {}
    hits: dict[str, int] = {}
    for c in converted[0]:
        tags = _tags(c.rule)
        for r in rows:
            a = (attack.get(r.technique) or r.technique).lower()
            if not any(a == t or a.startswith(t + ".") for t in tags):
                continue
            if c.id in fired[r.capture]:
                hits[c.id] = hits.get(c.id, 0) + 1
            else:
                missing.setdefault(c.id, []).append(r.capture)
    unexplained = {k: v for k, v in missing.items() if k not in MISSES and k not in CANNOT_FIRE}
    assert not unexplained, unexplained
    assert not set(MISSES) - set(missing), "stale MISSES entries"
    assert hits["b640c0b8-87f8-4daa-aef8-95a24261dd1d"] >= 30  # BZAR execution: PsExec, smbexec, WMI, tasks


@needs_shared
def test_rules_stay_quiet_on_quiet_captures_unless_broader(fired: dict[str, set[str]]) -> None:
    quiet = {r.capture for r in expected_rows(SHARED / "detection" / "findings_expected.csv") if r.technique == "none"}
    loud = {rid for cap in quiet for rid in fired[cap]}
    assert loud - set(BROAD) == set(), {cap: fired[cap] - set(BROAD) for cap in quiet if fired[cap] - set(BROAD)}
    assert set(BROAD) - loud == set(), "stale BROAD entries"
    for rid in CANNOT_FIRE:
        assert all(rid not in f for f in fired.values()), rid


def test_field_mapping_and_matches_become_findings(tmp_path: Path) -> None:
    """A rule of our own over the bundled sample: Sigma's src_ip, Zeek's endpoint and operation names,
    an rpc_firewall opnum list, and a keyword."""
    (tmp_path / "zeek.yml").write_text(
        "title: svcctl start from the client\nid: 11111111-1111-1111-1111-111111111111\nstatus: test\n"
        "logsource:\n  product: zeek\n  service: dce_rpc\n"
        "detection:\n  sel:\n    src_ip: 10.0.0.20\n    endpoint: SVCCTL\n    operation: StartServiceW\n"
        "  condition: sel\nlevel: high\ntags:\n  - attack.execution\n  - attack.t1569.002\n"
    )
    (tmp_path / "fw.yml").write_text(
        "title: svcctl open\nid: 22222222-2222-2222-2222-222222222222\nstatus: test\n"
        "logsource:\n  product: rpc_firewall\n  category: application\n"
        "detection:\n  sel:\n    EventID: 3\n    InterfaceUuid: 367abb81-9844-35f1-ad32-98f038001003\n"
        "    OpNum:\n      - 15\n      - 16\n  condition: sel\nlevel: low\n"
    )
    (tmp_path / "kw.yml").write_text(
        "title: keyword\nid: 33333333-3333-3333-3333-333333333333\nstatus: test\n"
        "logsource:\n  product: zeek\n  service: dce_rpc\ndetection:\n  keywords:\n    - ept_map\n"
        "  condition: keywords\nlevel: informational\n"
    )
    r = analyzer.analyze(SAMPLES / "epm_map_session.pcap")
    rules, errors = sigma.convert(sigma.load([tmp_path]))
    assert errors == []
    f = sigma.evaluate(rules, r.calls, r.connections).set_index("title")
    assert list(f.columns) == [c for c in FINDINGS if c != "title"]
    start = f.loc["svcctl start from the client"]
    assert (start["technique"], start["severity"], start["calls"], start["first_frame"]) == ("T1569.002", "high", 1, 30)
    assert "11111111-1111-1111-1111-111111111111" in start["detail"]
    assert f.loc["svcctl open", "calls"] == 2 and f.loc["svcctl open", "severity"] == "low"
    assert f.loc["keyword", "calls"] == 2 and f.loc["keyword", "severity"] == "info"


def test_unsupported_logsource_and_bad_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "win.yml").write_text(
        "title: windows\nid: 44444444-4444-4444-4444-444444444444\nlogsource:\n  product: windows\n"
        "detection:\n  sel:\n    EventID: 1\n  condition: sel\n"
    )
    rules, errors = sigma.convert(sigma.load([tmp_path]))
    assert rules == [] and len(errors) == 1 and "zeek/dce_rpc" in errors[0]
    (tmp_path / "broken.yml").write_text("title: [unclosed\n")
    with pytest.raises(sigma.SigmaRuleError):
        sigma.load([tmp_path / "broken.yml"])


def test_sigma_command_and_analyze_option(tmp_path: Path) -> None:
    rule = tmp_path / "r.yml"
    rule.write_text(
        "title: any svcctl\nid: 55555555-5555-5555-5555-555555555555\nstatus: test\n"
        "logsource:\n  product: rpc_firewall\n  category: application\n"
        "detection:\n  sel:\n    InterfaceUuid: 367abb81-9844-35f1-ad32-98f038001003\n  condition: sel\nlevel: medium\n"
    )
    sample = str(SAMPLES / "epm_map_session.pcap")
    res = CliRunner().invoke(main, ["sigma", str(rule), sample, "--format", "csv", "-q"])
    assert res.exit_code == 0, res.output
    assert "55555555-5555-5555-5555-555555555555" in res.output and res.output.startswith("capture,first_frame")
    res = CliRunner().invoke(main, ["analyze", sample, "-o", str(tmp_path / "out"), "-q", "--sigma", str(rule)])
    assert res.exit_code == 0, res.output
    assert "55555555" in (tmp_path / "out" / "findings.csv").read_text()
    res = CliRunner().invoke(main, ["sigma", sample])
    assert res.exit_code == 2 and "Sigma rule files" in res.output
