"""Tables: schemas, dtypes, empty frames, names, and files ([analyzer.report.tables], [analyzer.report.output])."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd

import analyzer
from analyzer.records import Records
from analyzer.report.csv_rows import neutralise
from analyzer.report.hosts import build
from analyzer.report.tables import SCHEMAS
from tests.conftest import SAMPLES

REQUIRED = {
    "binds": "capture frame ts client_ip client_port server_ip server_port transport pipe_name pdu_type call_id ctx_id "
    "interface_uuid interface_version interface_name transfer_syntax ack_result ack_reason sec_addr auth_type "
    "auth_level identified_by",
    "endpoints": "capture frame ts epm_server_ip epm_server_port client_ip client_port transport call_id epm_opnum "
    "tower_index interface_uuid interface_version interface_name protocol port host pipe_name annotation",
    "calls": "capture frame ts client_ip client_port server_ip server_port transport pipe_name call_id ctx_id "
    "interface_uuid interface_name opnum operation request_bytes response_frame response_bytes status rtt_s "
    "auth_type auth_level user",
    "violations": "capture frame stream what",
}


def test_required_columns_are_there() -> None:
    for table, cols in REQUIRED.items():
        missing = set(cols.split()) - set(SCHEMAS[table])
        assert not missing, (table, missing)


def test_empty_run_gives_shaped_empty_frames() -> None:
    t = build(Records())
    for name, df in t.items():
        assert df.empty
        assert list(df.columns) == list(SCHEMAS[name])
        assert {c: str(d) for c, d in df.dtypes.items()} == SCHEMAS[name], name


def test_sample_tables_have_their_dtypes_and_names() -> None:
    res = analyzer.analyze([SAMPLES / "epm_map_session.pcap"])
    for name, df in res.tables.items():
        assert {c: str(d) for c, d in df.dtypes.items()} == SCHEMAS[name], name
    b = res.binds
    assert (b["interface_uuid"] == b["interface_uuid"].str.lower()).all()
    assert b["interface_name"].notna().all() and not b["interface_name"].str.startswith("unknown-").any()
    assert set(b["transfer_syntax"]) >= {"ndr"}
    c = res.calls
    assert c["operation"].notna().all()
    assert (c.loc[c["status"] == "ok", "rtt_s"] >= 0).all()
    assert c.loc[c["fault_code"].notna(), "status"].str.startswith("nca_s_").all()


def test_unknown_interfaces_and_operations_have_placeholders() -> None:
    from analyzer import registry

    u = "01234567-89ab-cdef-0123-456789abcdef"
    assert registry.interface_name(u) == f"unknown-{u}"
    assert registry.operation_name(u, 1, 7) == "opnum-7"


def test_formulas_from_the_wire_are_neutralised(tmp_path: Path) -> None:
    assert neutralise("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert neutralise("@SUM(1)") == "'@SUM(1)" and neutralise("-2+3") == "'-2+3"
    assert neutralise("\\PIPE\\lsarpc") == "\\PIPE\\lsarpc"
    res = analyzer.analyze([SAMPLES / "epm_map_session.pcap"])
    res.binds.loc[0, "sec_addr"] = '=HYPERLINK("http://x")'
    res.write(tmp_path)
    with (tmp_path / "binds.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["sec_addr"].startswith("'=")


def test_csv_conventions(tmp_path: Path) -> None:
    res = analyzer.analyze([SAMPLES / "epm_map_session.pcap"])
    res.write(tmp_path)
    with (tmp_path / "calls.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["ts"].endswith("Z") and "T" in r["ts"] for r in rows)
    assert all(r["client_port"].isdigit() for r in rows)
    unanswered = [r for r in rows if not r["response_frame"]]
    assert all(r["status"] == "" for r in unanswered)  # missing is empty, not a word


def test_jsonl_and_parquet(tmp_path: Path) -> None:
    res = analyzer.analyze([SAMPLES / "epm_map_session.pcap"])
    res.write(tmp_path / "j", "jsonl")
    lines = (tmp_path / "j" / "binds.jsonl").read_text().splitlines()
    assert len(lines) == len(res.binds) and json.loads(lines[0])["interface_uuid"] == res.binds.loc[0, "interface_uuid"]
    res.write(tmp_path / "p", "parquet")
    back = pd.read_parquet(tmp_path / "p" / "calls.parquet")
    assert len(back) == len(res.calls) and list(back.columns) == list(SCHEMAS["calls"])


def test_hosts_view_counts_what_the_tables_hold() -> None:
    res = analyzer.analyze([SAMPLES / "epm_map_session.pcap"])
    h = res.hosts.set_index(["host", "role"])
    for (host, role), row in h.iterrows():
        key = "server_ip" if role == "server" else "client_ip"
        assert row["connections"] == (res.connections[key] == host).sum()
        assert row["binds"] == (res.binds[key] == host).sum()
        assert row["calls"] == (res.calls[key] == host).sum()
    servers = h.xs("server", level="role")
    assert servers["epm_endpoints"].sum() == len(res.endpoints)


def test_readme_column_dictionary_matches_the_schemas() -> None:
    """Every column of every table and view is described in the README, and nothing else is."""
    import re

    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text()
    sections = re.split(r"^### ", text, flags=re.M)
    documented: dict[str, set[str]] = {}
    for sec in sections:
        m = re.match(r"(\w+)\.csv", sec)
        if not m:
            continue
        sec = sec.split("\n## ", 1)[0]  # the dictionary's last table ends at the next chapter
        cols: set[str] = set()
        for line in sec.splitlines():
            cell = re.match(r"\| ([a-z0-9_, ]+) \|", line)
            if cell and cell.group(1).strip() != "column":
                cols |= {c.strip() for c in cell.group(1).split(",")}
        documented[m.group(1)] = cols
    from analyzer.report.views import VIEW_SCHEMAS

    for table, schema in {**SCHEMAS, **VIEW_SCHEMAS}.items():
        assert documented.get(table) == set(schema), (table, set(schema) ^ documented.get(table, set()))


def test_no_column_is_named_after_a_dataframe_attribute() -> None:
    """`result.calls.pipe` once returned DataFrame.pipe, not the column: every column must be reachable
    as an attribute, so none may share a name with a DataFrame method or property."""
    from analyzer.report.views import VIEW_SCHEMAS

    taken = set(dir(pd.DataFrame))
    for table, schema in {**SCHEMAS, **VIEW_SCHEMAS}.items():
        assert not taken & set(schema), (table, sorted(taken & set(schema)))
    calls = analyzer.analyze([SAMPLES / "smb2_pipes.pcap"]).calls
    assert calls.pipe_name.fillna("-").str.lower().str.contains("pipe").any()
