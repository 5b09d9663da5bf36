"""Views ([analyzer.report.views]): schemas, empty frames, inventory statuses, counts that add up to the base
tables, data quality, text renderings, files, golden CSVs of the samples, and a per-host check against
facts counted by hand in a real capture."""

from __future__ import annotations

import csv
import difflib
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import analyzer
from analyzer.api import from_records
from analyzer.cli import main
from analyzer.limits import Limits
from analyzer.records import Records
from analyzer.report import views
from analyzer.report.source import Frames
from analyzer.report.tables import SCHEMAS
from analyzer.report.text import hosts_text, inventory_text
from tests.conftest import (
    BTFN,
    CAPTURES,
    NDR,
    ROOT,
    SAMPLES,
    SVCCTL,
    Conversation,
    bind,
    bind_ack,
    needs_shared,
    request,
    response,
)

GOLDEN = ROOT / "tests" / "golden"
VIEWS = list(views.VIEW_SCHEMAS)


def dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {str(c): str(d) for c, d in df.dtypes.items()}


@pytest.fixture(scope="module")
def samples() -> analyzer.AnalysisResult:
    return analyzer.analyze([SAMPLES])


def row(df: pd.DataFrame, **where: object) -> pd.Series:
    """The one row of df matching every column=value given."""
    mask = pd.Series(True, index=df.index)
    for col, value in where.items():
        mask &= df[col] == value
    hits = df[mask.fillna(False).astype(bool)]
    assert len(hits) == 1, (where, hits)
    found: pd.Series = hits.iloc[0]
    return found


# -- schemas and empty frames ----------------------------------------------------------------------


def test_view_schemas_use_the_report_vocabulary_and_do_not_clash_with_tables() -> None:
    allowed = {"string", "Int64", "Float64", "boolean", "datetime64[ns, UTC]"}
    for name, schema in views.VIEW_SCHEMAS.items():
        assert set(schema.values()) <= allowed, name
        assert name not in SCHEMAS  # a view's file must not overwrite a table's


def test_an_empty_run_gives_empty_but_shaped_views() -> None:
    res = from_records(Records())
    for name in VIEWS:
        df = getattr(res, name)
        assert df.empty, name
        assert list(df.columns) == list(views.VIEW_SCHEMAS[name]), name
        assert dtypes(df) == views.VIEW_SCHEMAS[name], name
    assert res.hosts_text() == "no hosts\n"
    assert inventory_text(res.endpoint_inventory).startswith("no endpoints")


def test_views_on_samples_have_their_dtypes_and_are_computed_once(samples: analyzer.AnalysisResult) -> None:
    for name in VIEWS:
        df = getattr(samples, name)
        assert not df.empty, name
        assert dtypes(df) == views.VIEW_SCHEMAS[name], name
        assert getattr(samples, name) is df, name  # cached, not rebuilt on every access


# -- endpoint inventory ----------------------------------------------------------------------------


def test_inventory_statuses_of_the_canonical_epm_session() -> None:
    res = analyzer.analyze([SAMPLES / "epm_map_session.pcap"])
    inv = res.endpoint_inventory
    svcctl = row(inv, interface_name="svcctl", port=49667)
    assert svcctl["status"] == views.ANNOUNCED_AND_USED
    assert svcctl["server"] == "10.0.0.10" and svcctl["protocol"] == "ncacn_ip_tcp"
    assert svcctl["string_binding"] == "ncacn_ip_tcp:10.0.0.10[49667]"
    # Frame 7 carries both svcctl towers (one says 0.0.0.0): one EPM answer, one inventory row.
    assert svcctl["epm_frames"] == 1 and svcctl["first_frame"] == 7
    assert svcctl["clients"] == "10.0.0.20" and svcctl["client_count"] == 1
    assert svcctl["binds"] == 2 and svcctl["calls"] == 7  # bind + alter_context accepted; 7 requests
    drsuapi = row(inv, interface_name="drsuapi", port=49668)
    assert drsuapi["status"] == views.ANNOUNCED_ONLY and drsuapi["client_count"] == 0
    epm = row(inv, interface_name="epmapper", port=135)
    assert epm["status"] == views.USED_WITHOUT_ANNOUNCEMENT and pd.isna(epm["epm_servers"])
    assert len(inv) == 3


def test_a_bind_on_a_port_nobody_announced_is_used_without_announcement(tmp_path: Path) -> None:
    conv = Conversation(client="10.1.0.2", server="10.1.0.9", sport=50123).handshake()
    conv.send(True, bind(1, [(0, SVCCTL, 2, [NDR]), (1, SVCCTL, 2, [BTFN])]))
    conv.send(False, bind_ack(1, [(0, 0, NDR), (3, 3, "00000000-0000-0000-0000-000000000000")], sec_addr=b"50123\x00"))
    conv.send(True, request(2, 15, b"\x00" * 24)).send(False, response(2, b"\x00" * 24)).close()
    res = analyzer.analyze([conv.write(tmp_path / "unannounced.pcap")])
    inv = res.endpoint_inventory
    assert len(inv) == 1
    entry = inv.iloc[0]
    assert entry["status"] == views.USED_WITHOUT_ANNOUNCEMENT
    assert (entry["server"], entry["interface_name"], entry["port"]) == ("10.1.0.9", "svcctl", 50123)
    assert entry["binds"] == 1 and entry["calls"] == 1 and entry["epm_frames"] == 0


def test_pipes_match_without_case_and_netbios_towers_belong_to_the_epm_server() -> None:
    """An ncacn_np tower naming \\\\SRV and \\pipe\\SVCCTL is the pipe \\PIPE\\svcctl a client used on the
    EPM's address: SMB pipe names are case-insensitive and the NetBIOS name is that server."""
    res = analyzer.analyze([SAMPLES / "smb2_pipes.pcap"])
    tower = analyzer.analyze([SAMPLES / "epm_map_session.pcap"]).endpoints.head(1).copy()
    tower[["protocol", "port", "pipe_name", "endpoint", "host"]] = [
        "ncacn_np",
        pd.NA,
        "\\pipe\\SVCCTL",
        "\\pipe\\SVCCTL",
        "\\\\SRV",
    ]
    tower = tower.astype(SCHEMAS["endpoints"])
    inv = views.endpoint_inventory(Frames({"endpoints": tower, "binds": res.binds, "calls": res.calls}))
    svcctl = row(inv, interface_name="svcctl")
    assert svcctl["status"] == views.ANNOUNCED_AND_USED
    assert svcctl["server"] == "10.0.0.10" and svcctl["endpoint"] == "\\pipe\\SVCCTL"
    assert svcctl["string_binding"] == "ncacn_np:\\\\SRV[\\pipe\\SVCCTL]"
    assert set(inv.loc[inv["interface_name"] != "svcctl", "status"]) == {views.USED_WITHOUT_ANNOUNCEMENT}


def test_every_tower_and_every_used_interface_is_in_the_inventory(samples: analyzer.AnalysisResult) -> None:
    inv = samples.endpoint_inventory
    assert set(inv["status"]) == set(views.STATUSES)
    assert inv["interface_uuid"].notna().all()
    announced = samples.endpoints.dropna(subset=["interface_uuid"])
    assert set(announced["interface_uuid"]) <= set(inv.loc[inv["epm_frames"] > 0, "interface_uuid"])
    used = set(samples.binds.loc[samples.binds["ack_result"] == "acceptance", "interface_uuid"])
    assert used <= set(inv.loc[inv["status"] != views.ANNOUNCED_ONLY, "interface_uuid"])
    assert inv["binds"].sum() == (samples.binds["ack_result"] == "acceptance").sum()
    assert inv["calls"].sum() == samples.calls["interface_uuid"].notna().sum()
    keys = ["server", "interface_uuid", "protocol", "endpoint"]
    assert not inv.duplicated(keys).any()


# -- timeline and matrix ---------------------------------------------------------------------------


def test_timeline_and_matrix_add_up_to_the_base_tables(samples: analyzer.AnalysisResult) -> None:
    b, c, tl, m = samples.binds, samples.calls, samples.timeline, samples.matrix
    for view in (tl, m):
        assert view["binds"].sum() == len(b)
        assert view["calls"].sum() == len(c)
        assert view["faults"].sum() == c["fault_code"].notna().sum()
    assert tl["request_bytes"].sum() == c["request_bytes"].sum()
    assert (tl["minute"] == tl["minute"].dt.floor("min")).all()
    keys = ["client_ip", "server_ip", "interface_name"]
    per_bind = b.groupby(keys).size()
    per_call = c.groupby(keys).size()
    mm = m.set_index(keys)
    for key, n in per_bind.items():
        assert mm.loc[key, "binds"] == n, key
    for key, n in per_call.items():
        assert mm.loc[key, "calls"] == n, key
    assert (tl.groupby(keys)[["binds", "calls"]].sum() == mm[["binds", "calls"]].sort_index()).all().all()
    assert m["accepted"].sum() == (b["ack_result"] == "acceptance").sum()
    assert not m.duplicated(keys).any()


def test_matrix_says_where_and_as_whom() -> None:
    res = analyzer.analyze([SAMPLES / "epm_map_session.pcap"])
    svcctl = row(res.matrix, interface_name="svcctl")
    assert (svcctl["client_ip"], svcctl["server_ip"], svcctl["endpoints"]) == ("10.0.0.20", "10.0.0.10", "49667")
    assert svcctl["users"] == "CORP\\alice" and svcctl["auth_levels"] == "integrity;privacy"
    assert svcctl["connections"] == 1 and svcctl["faults"] == 1
    assert "RStartServiceW" in svcctl["operations"].split(";")
    epm = row(res.matrix, interface_name="epmapper")
    assert (epm["binds"], epm["accepted"], epm["rejected"]) == (3, 1, 1)


# -- data quality ----------------------------------------------------------------------------------


def test_data_quality_reports_the_gap_of_tcp_segmentation(samples: analyzer.AnalysisResult) -> None:
    dq = samples.data_quality
    name = str(SAMPLES / "tcp_segmentation.pcap")
    cap = row(dq, capture=name, scope="capture")
    conn = row(dq, capture=name, scope="connection", stream=0)
    for r in (cap, conn):
        assert r["gaps"] == 1
        assert r["violations"] == 5
        assert {"tcp_gap", "resync", "pdu_lost_in_gap"} <= set(r["violation_kinds"].split(";"))
        assert "1 TCP gap" in r["summary"] and "5 violations" in r["summary"]
    assert pd.isna(cap["stream"]) and conn["server_port"] == 135


def test_data_quality_reports_the_truncation(samples: analyzer.AnalysisResult) -> None:
    dq, calls = samples.data_quality, samples.calls
    name = str(SAMPLES / "truncated.pcap")
    cap = row(dq, capture=name, scope="capture")
    assert cap["truncated"] and cap["violation_kinds"] == "truncated" and cap["violations"] == 1
    assert cap["summary"].startswith("file truncated")
    conn = row(dq, capture=name, scope="connection", stream=0)
    assert conn["end"] == "capture_end" and "open at capture end" in conn["summary"]
    unanswered = int(calls.loc[calls["capture"] == name, "status"].isna().sum())
    assert unanswered >= 1 and conn["calls_unanswered"] == unanswered
    assert pd.isna(conn["truncated"])  # a file-level fact, not a connection's


def test_data_quality_counts_encryption_unknown_interfaces_and_complete_connections(
    samples: analyzer.AnalysisResult,
) -> None:
    dq = samples.data_quality
    enc = row(dq, capture=str(SAMPLES / "epm_map_session.pcap"), scope="connection", stream=1)
    assert enc["encrypted_calls"] == 1 and enc["summary"] == "1 encrypted call"
    # the Task Scheduler session (client port 49740) also offers an interface nobody knows, refused
    unk = row(dq, capture=str(SAMPLES / "two_interfaces.pcapng"), scope="connection", client_port=49740)
    assert unk["unknown_interfaces"] == 1
    clean = row(dq, capture=str(SAMPLES / "epm_lookup_dump.pcap"), scope="connection", stream=0)
    assert clean["summary"] == "complete"
    assert (dq["scope"] == "capture").sum() == len(samples.captures)
    assert (dq["scope"] == "connection").sum() == len(samples.connections)
    # Connectionless calls carry their interface in every header: no bind is missing there.
    assert (dq.loc[dq["transport"] == "ncadg_ip_udp", "calls_without_bind"] == 0).all()


def test_data_quality_counts_caps_hit() -> None:
    res = analyzer.analyze([SAMPLES / "multifrag_calls.pcap"], limits=Limits(max_call_stub_bytes=16))
    capped = res.violations[res.violations["what"].str.startswith("cap_")]
    # One row per cap and connection, counting its hits: both connections here (the task scheduler's
    # and the endpoint mapper's) keep request and response stubs for the stub decoders.
    assert len(capped) == capped["stream"].nunique() == 2 and (capped["occurrences"] >= 2).all()
    hits = capped["occurrences"].sum()
    cap = row(res.data_quality, scope="capture")
    assert cap["caps_hit"] == hits and "caps hit" in cap["summary"]
    per_conn = res.data_quality[res.data_quality["scope"] == "connection"]
    assert per_conn["caps_hit"].sum() == hits


def test_data_quality_names_an_unreadable_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all")
    dq = analyzer.analyze([junk]).data_quality
    assert len(dq) == 1
    first = dq.iloc[0]
    assert str(first["summary"]).startswith("unreadable: ") and str(first["summary"]).endswith(str(first["error"]))


# -- text renderings -------------------------------------------------------------------------------


def test_hosts_text_shows_services_per_peer_and_filters_by_role() -> None:
    res = analyzer.analyze([SAMPLES / "epm_map_session.pcap"])
    text = res.hosts_text()
    assert "10.0.0.10 as server: 2 connections" in text and "10.0.0.20 as client" in text
    assert "dynamic 49667" in text and "CORP\\alice" in text
    svcctl_line = next(line for line in text.splitlines() if line.strip().startswith("svcctl"))
    assert svcctl_line.split()[:7] == ["svcctl", "10.0.0.20", "49667", "3", "2", "0", "7"]
    servers = res.hosts_text("server")
    assert "as server" in servers and "as client" not in servers
    assert hosts_text(res.hosts.iloc[0:0], role="client") == "no hosts seen as client\n"


def test_text_renderings_strip_control_characters_from_the_wire() -> None:
    res = analyzer.analyze([SAMPLES / "epm_map_session.pcap"])
    hosts = res.hosts.copy()
    hosts["users"] = "EVIL\\\x1b[31mroot\x07"
    text = hosts_text(hosts)
    assert "\x1b" not in text and "\x07" not in text and "EVIL\\?[31mroot?" in text
    inv = res.endpoint_inventory.copy()
    inv["annotation"] = "svc\x1b]0;pwned\x07"
    assert "\x1b" not in inventory_text(inv)


def test_inventory_text_has_the_portqry_layout() -> None:
    res = analyzer.analyze([SAMPLES / "epm_lookup_dump.pcap"])
    text = inventory_text(res.endpoint_inventory)
    lines = text.splitlines()
    assert lines[0].startswith("Server 10.0.0.5: ")
    i = lines.index("UUID: 897e2e5f-93f3-4376-9c9c-fd2277495c27 Frs2 Service")
    assert lines[i + 2].strip() == "ncacn_ip_tcp:10.0.0.5[49671]"
    assert "  ncacn_np:\\\\DC01[\\PIPE\\lsass]" in lines
    assert "  ncalrpc:[LRPC-5f6b7e2a9c8d1e0f3a]" in lines
    assert lines[-1] == f"Total endpoints: {len(res.endpoint_inventory)} on 1 server"


# -- files -----------------------------------------------------------------------------------------


def test_write_adds_the_views_in_every_format(tmp_path: Path) -> None:
    res = analyzer.analyze([SAMPLES / "epm_map_session.pcap"])
    written = {p.name for p in res.write(tmp_path / "c")}
    assert {f"{n}.csv" for n in [*SCHEMAS, *VIEWS, "findings", "attempts"]} == written
    with (tmp_path / "c" / "endpoint_inventory.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["status"] for r in rows] == list(res.endpoint_inventory["status"])
    assert rows[0]["first_seen"].endswith("Z")
    res.write(tmp_path / "j", "jsonl")
    lines = (tmp_path / "j" / "matrix.jsonl").read_text().splitlines()
    assert len(lines) == len(res.matrix) and json.loads(lines[0])["server_ip"] == "10.0.0.10"
    res.write(tmp_path / "p", "parquet")
    back = pd.read_parquet(tmp_path / "p" / "data_quality.parquet")
    assert list(back.columns) == list(views.DATA_QUALITY) and len(back) == len(res.data_quality)


def test_view_csv_cells_from_the_wire_are_spreadsheet_safe(tmp_path: Path) -> None:
    res = analyzer.analyze([SAMPLES / "epm_lookup_dump.pcap"])
    res.endpoints["annotation"] = res.endpoints["annotation"].fillna('=HYPERLINK("http://x")')
    res.write(tmp_path)  # the inventory is built now, from the poisoned endpoints
    with (tmp_path / "endpoint_inventory.csv").open() as fh:
        cells = [r["annotation"] for r in csv.DictReader(fh) if "HYPERLINK" in r["annotation"]]
    assert cells and all(c.startswith("'=") for c in cells)


# -- golden CSVs -----------------------------------------------------------------------------------


def test_golden_csvs_of_the_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, update_golden: bool) -> None:
    """Every table and view of `analyze(samples/pcaps)`, line for line. A difference is a change in
    what the analyzer reports: review the diff, then regenerate with `pytest --update-golden`."""
    monkeypatch.chdir(ROOT)  # capture names as given: samples/pcaps/..., the same on every clone
    res = analyzer.analyze(["samples/pcaps"])
    written = res.write(tmp_path)
    if update_golden:
        if GOLDEN.exists():
            shutil.rmtree(GOLDEN)
        GOLDEN.mkdir(parents=True)
        for path in written:  # stored with LF: the CSVs end records in CRLF, compared line by line
            (GOLDEN / path.name).write_text("\n".join(path.read_text().splitlines()) + "\n")
    assert sorted(p.name for p in GOLDEN.glob("*.csv")) == sorted(p.name for p in written), "golden files differ"
    problems = []
    for path in written:
        want = (GOLDEN / path.name).read_text().splitlines()
        got = path.read_text().splitlines()
        if want != got:
            diff = difflib.unified_diff(want, got, f"golden/{path.name}", f"now/{path.name}", lineterm="", n=0)
            problems.append("\n".join(list(diff)[:40]))
    assert not problems, "\n\n".join(problems) + "\n\nReview, then run: pytest --update-golden"


# -- a real capture, counted by hand ---------------------------------------------------------------

PSEXEC = CAPTURES / "PCAP-ATTACK" / "Lateral_Movement" / "LM_psexec_smb_dcerpc_epm_svcctl.pcapng"


@needs_shared
def test_per_host_view_matches_facts_counted_by_hand_in_the_psexec_capture() -> None:
    """Facts counted with tshark 4.0 (default preferences) on LM_psexec_smb_dcerpc_epm_svcctl.pcapng:

    - `tshark -q -z conv,tcp` and `-Y dcerpc`: DCE/RPC runs on two TCP connections from 172.16.66.1 to
      172.16.66.36, ports 135 (frames 122-125) and 49688 (frames 126-146). SMB on 445 carries the
      PSEXESVC pipes, on which tshark decodes no DCE/RPC.
    - `-Y "dcerpc.pkt_type==11"` with dcerpc.cn_num_ctx_items: two binds (frames 122, 126) of two context
      items each (epmapper, then svcctl), so 4 items; `-Y "dcerpc.pkt_type==12"` with dcerpc.cn_ack_result:
      "0,3" twice, one acceptance and one negotiate_ack per bind: 2 accepted, 0 rejected.
    - `-Y "dcerpc.pkt_type==0"`: 10 requests (ept_map opnum 3 on 135; svcctl opnums 15, 45, 0, 16, 19, 6,
      6, 0, 0 on 49688), 10 responses (`pkt_type==2`), no fault (`pkt_type==3`).
    - dcerpc.auth_level is 6 (packet privacy) on the svcctl bind and its 9 requests; the NTLMSSP
      AUTHENTICATE of that association (frame 128, `-Y "ntlmssp.messagetype==3"`) is 3B\\backdoor.
    - `-Y epm`: the ept_map response (frame 125) has one tower, svcctl at 172.16.66.36 TCP 49688.
    - frame.time_epoch of frame 122, the first DCE/RPC packet: 1595164481.202751.
    """
    if not PSEXEC.exists():
        pytest.skip(f"{PSEXEC} not found")
    res = analyzer.analyze([PSEXEC])
    h = res.hosts.set_index(["host", "role"])
    first = pd.Timestamp(1595164481202751000, unit="ns", tz="UTC")
    for key, peer in ((("172.16.66.36", "server"), "172.16.66.1"), (("172.16.66.1", "client"), "172.16.66.36")):
        r = h.loc[key]
        assert r["interfaces"] == "epmapper;svcctl", key
        assert r["specs"] == "[C706];[MS-SCMR]", key
        assert r["dynamic_ports"] == "49688", key
        assert {"135", "49688"} <= set(r["ports"].split(";")), key
        assert (r["peers"], r["peer_count"]) == (peer, 1), key
        assert (r["binds"], r["accepted"], r["rejected"]) == (4, 2, 0), key
        assert (r["calls"], r["faults"]) == (10, 0), key
        assert r["auth_levels"] == "privacy" and r["users"] == "3B\\backdoor", key
        assert r["first_seen"] == first, key
        # the PSEXESVC pipes carry a console, not DCE/RPC: they are no RPC conversation
        assert r["connections"] == 2 and r["transports"] == "ncacn_ip_tcp", key
    assert res.violations.empty
    assert h.loc[("172.16.66.36", "server"), "epm_endpoints"] == 1
    assert h.loc[("172.16.66.1", "client"), "epm_endpoints"] == 0

    m = res.matrix.set_index("interface_name")
    assert (m.loc["svcctl", "binds"], m.loc["svcctl", "accepted"], m.loc["svcctl", "calls"]) == (2, 1, 9)
    assert (m.loc["epmapper", "binds"], m.loc["epmapper", "accepted"], m.loc["epmapper", "calls"]) == (2, 1, 1)
    assert m.loc["svcctl", "endpoints"] == "49688" and m.loc["epmapper", "endpoints"] == "135"
    assert m.loc["svcctl", "connections"] == 1 and m.loc["svcctl", "users"] == "3B\\backdoor"
    ops = set(m.loc["svcctl", "operations"].split(";"))
    assert {"ROpenSCManagerW", "ROpenServiceW", "RStartServiceW", "RQueryServiceStatus"} <= ops

    svc = row(res.endpoint_inventory, interface_name="svcctl")
    assert (svc["server"], svc["port"], svc["status"]) == ("172.16.66.36", 49688, views.ANNOUNCED_AND_USED)
    assert (svc["epm_frames"], svc["first_frame"], svc["clients"]) == (1, 125, "172.16.66.1")
    assert row(res.endpoint_inventory, interface_name="epmapper")["status"] == views.USED_WITHOUT_ANNOUNCEMENT

    dq = res.data_quality
    tcp49688 = row(dq, scope="connection", server_port=49688)
    assert tcp49688["encrypted_calls"] == 9 and tcp49688["calls_unanswered"] == 0
    assert res.timeline["calls"].sum() == 10


# -- the commands ----------------------------------------------------------------------------------


def test_endpoints_command_prints_the_inventory_as_text_and_csv() -> None:
    cap = str(SAMPLES / "epm_map_session.pcap")
    res = CliRunner().invoke(main, ["endpoints", cap])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == (
        "Server 10.0.0.10: 3 interfaces, 3 bindings (1 announced-only, 1 announced-and-used, "
        "1 used-without-announcement); endpoint mapper answers from 10.0.0.10"
    )
    i = lines.index("UUID    : 367ABB81-9844-35F1-AD32-98F038001003 v2.0 svcctl")  # rpcdump's layout
    assert lines[i - 2].startswith("Protocol: [MS-SCMR]") and lines[i - 1] == "Provider: services.exe"
    binding, status = lines[i + 2].split(maxsplit=1)
    assert binding == "ncacn_ip_tcp:10.0.0.10[49667]" and status.startswith("announced-and-used")
    res = CliRunner().invoke(main, ["endpoints", "--format", "csv", cap])
    assert res.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0]) == list(views.ENDPOINT_INVENTORY)
    assert {(r["interface_name"], r["port"], r["status"]) for r in rows} == {
        ("epmapper", "135", views.USED_WITHOUT_ANNOUNCEMENT),
        ("svcctl", "49667", views.ANNOUNCED_AND_USED),
        ("drsuapi", "49668", views.ANNOUNCED_ONLY),
    }


def test_hosts_command_prints_blocks_by_role_and_csv() -> None:
    cap = str(SAMPLES / "epm_map_session.pcap")
    res = CliRunner().invoke(main, ["hosts", cap, "--role", "server"])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("10.0.0.10 as server: 2 connections") and "as client" not in res.stdout
    assert "negotiated" in res.stdout and "CORP\\alice" in res.stdout
    res = CliRunner().invoke(main, ["hosts", cap, "--format", "csv", "--role", "client"])
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [(r["host"], r["role"], r["calls"]) for r in rows] == [("10.0.0.20", "client", "9")]
    assert list(rows[0]) == list(SCHEMAS["hosts"])


def test_reporting_commands_share_the_exit_codes(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all")
    (tmp_path / "empty").mkdir()
    for cmd in ("endpoints", "hosts"):
        res = CliRunner().invoke(main, [cmd, str(junk), str(SAMPLES / "epm_map_session.pcap")])
        assert res.exit_code == 1, cmd
        assert len(res.stderr.splitlines()) == 1 and "junk.pcap" in res.stderr, cmd
        assert "10.0.0.10" in res.stdout, cmd  # the readable capture is still shown
        res = CliRunner().invoke(main, [cmd, str(tmp_path / "empty")])
        assert res.exit_code == 3 and "no capture files" in res.stderr, cmd
        res = CliRunner().invoke(main, [cmd, "--format", "xml", str(junk)])
        assert res.exit_code == 2, cmd
