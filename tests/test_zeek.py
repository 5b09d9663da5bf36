"""Zeek-compatible logs: header grammar, escaping, zat reads them, field-by-field against Zeek's own
expected output for its test traces, Zeek's names, the rows Zeek logs, deterministic uids."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import analyzer
from analyzer.report import zeek_names
from analyzer.zeek.log import escape, log_text, tsv_line
from tests.conftest import CAPTURES, SAMPLES, SVCCTL, needs_shared

BASELINES = CAPTURES / "zeek" / "baselines"
TRACES = CAPTURES / "zeek" / "testing" / "btest" / "Traces"
DRSUAPI = "e3514235-4b06-11d1-ab04-00c04fc2dcd2"

_VALUE = {
    "time": re.compile(r"^\d+\.\d{6}$"),
    "interval": re.compile(r"^-?\d+\.\d{6}$"),
    "port": re.compile(r"^\d{1,5}$"),
    "count": re.compile(r"^\d+$"),
    "bool": re.compile(r"^[TF]$"),
}


def read_strict(path: Path) -> tuple[dict[str, str], list[str], list[str], list[list[str]]]:
    """A strict reader of the ASCII writer's grammar: (meta, fields, types, records). Every rule it
    checks is one Zeek's readers (zeek-cut, zat, Malcolm) rely on; any deviation fails the test."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", "the file ends with a newline"
    lines = lines[:-1]
    assert lines[0] == "#separator \\x09"
    meta: dict[str, str] = {}
    expected = ["#set_separator", "#empty_field", "#unset_field", "#path", "#open", "#fields", "#types"]
    for key, line in zip(expected, lines[1:8], strict=True):
        name, _, value = line.partition("\t")
        assert name == key, f"meta line {key} expected, got {line!r}"
        meta[key[1:]] = value
    assert meta["set_separator"] == "," and meta["empty_field"] == "(empty)" and meta["unset_field"] == "-"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d", meta["open"])
    fields, types = meta["fields"].split("\t"), meta["types"].split("\t")
    assert len(fields) == len(types) and len(set(fields)) == len(fields)
    assert re.fullmatch(r"#close\t\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d", lines[-1])
    records = []
    for line in lines[8:-1]:
        assert not line.startswith("#"), "a record never starts with #"
        cells = line.split("\t")
        assert len(cells) == len(fields), line
        for cell, kind in zip(cells, types, strict=True):
            assert cell != "", "empty strings are written (empty)"
            if cell == "-":
                continue
            if kind in _VALUE:
                assert _VALUE[kind].match(cell), (kind, cell)
            elif kind == "addr":
                ipaddress.ip_address(cell)
            else:
                assert kind == "string", kind
        records.append(cells)
    return meta, fields, types, records


def read_baseline(path: Path) -> tuple[list[str], list[list[str]]]:
    """Zeek's btest baseline: the same grammar, with the btest banner and masked #open/#close."""
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("### ")]
    fields = next(ln for ln in lines if ln.startswith("#fields")).split("\t")[1:]
    return fields, [ln.split("\t") for ln in lines if not ln.startswith("#")]


@pytest.fixture(scope="module")
def sample_logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[analyzer.AnalysisResult, Path, Path]:
    result = analyzer.analyze([SAMPLES])
    tsv, js = tmp_path_factory.mktemp("zeek"), tmp_path_factory.mktemp("zeekjson")
    result.write(tsv, "zeek")
    result.write(js, "zeek-json")
    return result, tsv, js


def test_escaping_follows_the_ascii_writer() -> None:
    assert escape("\\PIPE\\lsass") == "\\\\PIPE\\\\lsass"
    assert escape("a\tb\x01\x7f") == "a\\x09b\\x01\\x7f"
    assert escape("Grüße") == "Grüße"  # valid UTF-8 passes through
    fields = [("a", "string"), ("b", "string"), ("c", "string"), ("d", "count"), ("e", "interval")]
    assert tsv_line(["-", "(empty)", "", None, None], fields) == "\\x2d\t\\x28empty)\t(empty)\t-\t-"
    assert tsv_line(["#x", "y", "z", 1, 0.5], fields) == "\\x23x\ty\tz\t1\t0.500000"
    assert log_text("x", fields, []) == "", "no rows, no log (as Zeek)"


def test_dce_rpc_log_header_and_records_parse_strictly(sample_logs: tuple) -> None:
    result, tsv, _js = sample_logs
    meta, fields, types, records = read_strict(tsv / "dce_rpc.log")
    assert meta["path"] == "dce_rpc"
    assert [f for f, _t in zeek_names.DCE_RPC_FIELDS] == fields
    assert types == ["time", "string", "addr", "port", "addr", "port", "interval", "string", "string", "string"]
    logged = zeek_names.zeek_calls(result.calls, result.binds)["zeek_skipped"].isna()
    assert len(records) == int(logged.sum()) > 0
    for name in ("dce_rpc_ext", "dce_rpc_bind", "dce_rpc_conn"):
        meta, fields, _types, records = read_strict(tsv / f"{name}.log")
        assert meta["path"] == name and fields[:2] == ["ts", "uid"] and records
    _meta, fields, _types, records = read_strict(tsv / "dce_rpc_conn.log")
    assert len(records) == len(result.connections)
    assert {r[1] for r in records} == set(result.connections["uid"])


def test_zat_reads_our_logs_like_zeek_logs(sample_logs: tuple) -> None:
    from zat.log_to_dataframe import LogToDataFrame
    from zat.zeek_log_reader import ZeekLogReader

    _result, tsv, _js = sample_logs
    rows = list(ZeekLogReader(str(tsv / "dce_rpc.log")).readrows())
    _meta, _fields, _types, records = read_strict(tsv / "dce_rpc.log")
    assert len(rows) == len(records)
    for row, rec in zip(rows, records, strict=True):
        assert row["uid"] == rec[1] and row["id.orig_p"] == int(rec[3]) and row["endpoint"] == rec[8]
        assert f"{row['ts'].timestamp():.6f}" == rec[0]
    df = LogToDataFrame().create_dataframe(str(tsv / "dce_rpc_ext.log"))
    assert len(df) == len(_result.calls)
    assert set(df["uid"]) <= set(_result.connections["uid"])


def test_json_variant_matches_the_tsv(sample_logs: tuple) -> None:
    _result, tsv, js = sample_logs
    _meta, fields, _types, records = read_strict(tsv / "dce_rpc.log")
    lines = (js / "dce_rpc.log").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(records)
    for line, rec in zip(lines, records, strict=True):
        obj = json.loads(line)
        assert list(obj) == [f for f, v in zip(fields, rec, strict=True) if v != "-"], "field order, unset left out"
        assert obj["named_pipe"] == rec[7].replace("\\\\", "\\")
        assert isinstance(obj["id.resp_p"], int) and f"{obj['ts']:.6f}" == rec[0]


@needs_shared
@pytest.mark.parametrize("test", ["scripts.base.protocols.dce-rpc.context"])
def test_field_by_field_against_zeeks_baseline(test: str, tmp_path: Path) -> None:
    """Zeek's own expected dce_rpc.log for its trace: every field equal except the masked ts and
    Zeek's random uid (ours is deterministic; it must still be one uid per connection)."""
    script = (BASELINES / test / "btest.zeek").read_text(encoding="utf-8")
    trace = re.search(r"\$TRACES/(\S+)", script)
    assert trace is not None
    result = analyzer.analyze(TRACES / trace.group(1))
    result.write(tmp_path, "zeek")
    z_fields, z_rows = read_baseline(BASELINES / test / "dce_rpc.log")
    _meta, fields, _types, rows = read_strict(tmp_path / "dce_rpc.log")
    assert fields == z_fields
    assert len(rows) == len(z_rows)
    for ours, theirs in zip(rows, z_rows, strict=True):
        for name, a, b in zip(fields, ours, theirs, strict=True):
            if name not in ("ts", "uid"):
                assert a == b, (name, a, b)
    assert len({r[1] for r in rows}) == len({r[1] for r in z_rows})


@needs_shared
def test_smb_pipe_row_shape_from_zeek_documentation(tmp_path: Path) -> None:
    """The SMB row of Zeek's dssetup trace as Zeek's baselines show it (../shared/detection/sigma_zeek.md D)."""
    result = analyzer.analyze(TRACES / "smb" / "dssetup_DsRoleGetPrimaryDomainInformation_standalone_workstation.cap")
    result.write(tmp_path, "zeek")
    _meta, _f, _t, rows = read_strict(tmp_path / "dce_rpc.log")
    assert [r[5:] for r in rows] == [
        ["445", "0.002138", "\\\\PIPE\\\\lsass", "dssetup", "DsRolerGetPrimaryDomainInformation"]
    ]


def _first_frames(pcap: bytes, n: int) -> bytes:
    """A classic little-endian pcap cut after its first n records (a capture that ends there)."""
    off = 24
    for _ in range(n):
        off += 16 + int.from_bytes(pcap[off + 8 : off + 12], "little")
    return pcap[:off]


@pytest.mark.parametrize("fmt", ["zeek", "zeek-json"])
def test_a_bind_whose_ack_was_not_captured_writes_the_logs(tmp_path: Path, fmt: str) -> None:
    """The capture ends after the client's bind (no bind_ack, no call): the bind's log has it. The
    join that names pipes kept no rows of that bind and, indexed with an empty list, lost its
    columns too: a KeyError (found by fuzz/run.py end_to_end)."""
    path = tmp_path / "bind_only.pcap"
    path.write_bytes(_first_frames((SAMPLES / "epm_map_session.pcap").read_bytes(), 4))
    result = analyzer.analyze(path)
    assert len(result.binds) == 3 and result.binds["ack_frame"].isna().all()
    written = {p.name for p in result.write(tmp_path / "out", fmt)}
    assert "dce_rpc_bind.log" in written and "dce_rpc.log" not in written


@needs_shared
def test_the_ntlm_trace_is_the_connection_zeek_logged(tmp_path: Path) -> None:
    """Zeek's ntlm.log for dce_rpc_ntlm.pcapng names one connection; our bind log has the same one
    (as an unordered pair: the capture starts mid-connection and Zeek oriented it the other way) and
    no dce_rpc.log, as the trace has binds but no call."""
    result = analyzer.analyze(TRACES / "dce-rpc" / "dce_rpc_ntlm.pcapng")
    written = {p.name for p in result.write(tmp_path, "zeek")}
    assert "dce_rpc.log" not in written
    _z_fields, z_rows = read_baseline(BASELINES / "scripts.base.protocols.dce-rpc.dce_rpc_ntlm" / "ntlm.log")
    theirs = {tuple(z_rows[0][2:4]), tuple(z_rows[0][4:6])}
    _m, _f, _t, rows = read_strict(tmp_path / "dce_rpc_bind.log")
    assert {(r[2], r[3]) for r in rows} | {(r[4], r[5]) for r in rows} == theirs


def test_zeek_names_not_ours() -> None:
    assert zeek_names.endpoint_name(SVCCTL) == "svcctl"
    assert zeek_names.operation_name(SVCCTL, 12) == "CreateServiceW"  # ours: RCreateServiceW
    assert zeek_names.operation_name(DRSUAPI, 3) == "DRSGetNCChanges"  # ours: IDL_DRSGetNCChanges
    assert zeek_names.operation_name("1ff70682-0a51-30e8-076d-740be8cee98b", 0) == "NetrJobAdd"
    assert zeek_names.endpoint_name("12b81e99-f207-4a4c-85d3-77b42f76fd14") == "ISeclogon"
    # Zeek's name wins where the registry chose another source's name
    assert zeek_names.endpoint_name("9a653086-174f-11d2-b5f9-00104b703efd") == "IWbemClassObject interface"
    assert zeek_names.operation_name("3dde7c30-165d-11d1-ab8f-00805f14db40", 0) == "bkrp_BackupKey"
    assert zeek_names.operation_name("c681d488-d850-11d0-8c52-00c04fd90f7e", 5) == "EfsDecryptFileSrv"
    unknown = "01234567-89ab-cdef-0123-456789abcdef"
    assert zeek_names.endpoint_name(unknown) == f"unknown-{unknown}"
    assert zeek_names.operation_name(SVCCTL, 999) == "unknown-999"


def test_only_calls_zeek_would_log_reach_dce_rpc_log(sample_logs: tuple) -> None:
    result, tsv, _js = sample_logs
    z = zeek_names.zeek_calls(result.calls, result.binds)
    assert (z.loc[z["transport"] == "ncadg_ip_udp", "zeek_skipped"] == "transport").all()
    faulted = z[result.calls["fault_code"].notna()]
    assert not faulted.empty and (faulted["zeek_skipped"] == "fault").all()
    assert (z.loc[result.calls["status"].isna(), "zeek_skipped"] == "unanswered").all()
    view = zeek_names.dce_rpc_view(result.calls, result.binds)
    everything = zeek_names.dce_rpc_view(result.calls, result.binds, all_calls=True)
    assert len(view) < len(everything) == len(result.calls)
    ignored = z[z["zeek_skipped"] == "ignored_operation"]
    for endpoint, op in zip(ignored["endpoint"], ignored["zeek_operation"], strict=True):
        assert op in zeek_names.IGNORED_OPERATIONS[endpoint]
    ext = (tsv / "dce_rpc_ext.log").read_text(encoding="utf-8")
    assert ext.count("\tfault\t") >= len(faulted)


def test_uid_is_deterministic_and_joins_the_tables() -> None:
    a = analyzer.analyze([SAMPLES])
    b = analyzer.analyze([SAMPLES])
    pd.testing.assert_series_equal(a.calls["uid"], b.calls["uid"])
    conns = a.connections
    assert conns["uid"].notna().all() and conns["uid"].str.fullmatch(r"C[0-9A-Za-z]{10,17}").all()
    tcp = conns[conns["transport"] == "ncacn_ip_tcp"]
    assert tcp["uid"].is_unique, "one uid per TCP connection"
    pipes = conns[conns["transport"] == "ncacn_np"]
    by_tcp = pipes.groupby(["capture", "client_ip", "client_port", "server_ip", "server_port"])["uid"].nunique()
    assert (by_tcp == 1).all(), "every pipe of one SMB connection carries that connection's uid"
    merged = a.calls.merge(conns[["capture", "stream", "uid"]], on=["capture", "stream"], suffixes=("", "_conn"))
    same_tcp = merged["transport"] != "ncacn_np"
    assert (merged.loc[same_tcp, "uid"] == merged.loc[same_tcp, "uid_conn"]).all()


FINDINGS_COLUMNS = [
    "capture", "first_frame", "frames", "first_ts", "last_ts", "technique", "attack_id", "tactic", "title",
    "severity", "confidence", "client_ip", "server_ip", "interface_name", "operation", "user", "argument",
    "calls", "detail",
]  # fmt: skip


def test_findings_log_when_the_run_has_findings(tmp_path: Path) -> None:
    result = analyzer.analyze(SAMPLES / "epm_map_session.pcap")
    assert "rpc_findings.log" not in {p.name for p in result.write(tmp_path / "none", "zeek")}, "no table, no log"
    call = result.calls.iloc[-1]
    findings = pd.DataFrame(
        {
            "capture": pd.array([call["capture"]], dtype="string"),
            "first_frame": pd.array([call["frame"]], dtype="Int64"),
            "frames": pd.array([f"{call['frame']};{call['frame'] + 1}"], dtype="string"),
            "first_ts": [call["ts"]],
            "last_ts": [call["ts"]],
            "technique": pd.array(["T1569.002"], dtype="string"),
            "attack_id": pd.array(["T1569.002"], dtype="string"),
            "tactic": pd.array(["execution"], dtype="string"),
            "title": pd.array(["Service created remotely\tvia svcctl"], dtype="string"),
            "severity": pd.array(["high"], dtype="string"),
            "confidence": pd.array(["certain"], dtype="string"),
            "client_ip": pd.array([call["client_ip"]], dtype="string"),
            "server_ip": pd.array([call["server_ip"]], dtype="string"),
            "interface_name": pd.array(["svcctl"], dtype="string"),
            "operation": pd.array(["RCreateServiceW"], dtype="string"),
            "user": pd.array([None], dtype="string"),
            "argument": pd.array([""], dtype="string"),
            "calls": pd.array([1], dtype="Int64"),
            "detail": pd.array(["-"], dtype="string"),
        }
    )
    assert list(findings.columns) == FINDINGS_COLUMNS
    result.findings = findings  # type: ignore[attr-defined]  # the findings helper's table
    result.write(tmp_path, "zeek")
    _meta, fields, types, rows = read_strict(tmp_path / "rpc_findings.log")
    assert fields[:2] == ["ts", "uid"] and fields[2:] == FINDINGS_COLUMNS
    row = dict(zip(fields, rows[0], strict=True))
    assert row["uid"] == call["uid"], "joined to its call's connection"
    assert row["title"] == "Service created remotely\\x09via svcctl" and row["user"] == "-"
    assert row["argument"] == "(empty)" and row["detail"] == "\\x2d"
    assert dict(zip(fields, types, strict=True))["client_ip"] == "addr"


SIGMA_ZEEK = CAPTURES.parent / "detection" / "sigma" / "zeek"
# The one selection no Zeek log can match (../shared/detection/sigma_zeek.md A: endpoint and operation
# are swapped, and Zeek names atsvc opnum 0 NetrJobAdd anyway).
UNMATCHABLE = {("JobAdd", "atsvc")}


def _sigma_values(path: Path) -> list[tuple[str | None, str, bool]]:
    """(endpoint, operation, is_prefix) of each selection of a zeek/dce_rpc rule (a reading of these
    few flat rules, not a Sigma parser: the findings helper runs them through pySigma)."""
    detection = path.read_text(encoding="utf-8").split("\ndetection:")[1].split("\n    condition:")[0]
    out = []
    for block in re.split(r"\n    \w+:\n", detection)[1:]:
        endpoint = re.search(r"endpoint: '([^']+)'", block)
        prefix = "operation|startswith" in block
        values = re.findall(r"operation(?:\|\w+)?: '([^']+)'", block) + re.findall(r"\n\s+- '([^']+)'", block)
        out += [(endpoint.group(1) if endpoint else None, v, prefix) for v in values]
    return out


@needs_shared
def test_sigma_zeek_rule_values_exist_in_our_zeek_vocabulary() -> None:
    """Every endpoint/operation a Sigma zeek dce_rpc rule looks for is a name our dce_rpc.log can
    carry (Sigma compares case-insensitively): with the specification's names (RCreateServiceW,
    IDL_DRSGetNCChanges) most would never match."""
    from analyzer import registry

    pairs: set[tuple[str, str]] = set()
    for uuid, endpoint in zeek_names._endpoint_table().items():
        for op in registry._operations_of(uuid):
            pairs.add((endpoint.lower(), zeek_names.operation_name(uuid, op.opnum).lower()))
    operations = {op for _e, op in pairs}
    checked = 0
    for rule in sorted(SIGMA_ZEEK.glob("zeek_dce_rpc_*.yml")):
        for endpoint, value, prefix in _sigma_values(rule):
            checked += 1
            if (endpoint, value) in UNMATCHABLE:
                assert (endpoint.lower(), value.lower()) not in pairs
                continue
            v = value.lower()
            if endpoint is not None:
                assert (endpoint.lower(), v) in pairs, (rule.name, endpoint, value)
            elif prefix:
                assert any(op.startswith(v) for op in operations), (rule.name, value)
            else:
                assert v in operations, (rule.name, value)
    assert checked >= 20


def _unescape(cell: str) -> str:
    """Zeek's reading of an escaped string: \\\\ and \\xNN (the bytes as UTF-8)."""
    out, i = bytearray(), 0
    while i < len(cell):
        if cell.startswith("\\\\", i):
            out += b"\\"
            i += 2
        elif cell.startswith("\\x", i):
            out.append(int(cell[i + 2 : i + 4], 16))
            i += 4
        else:
            out += cell[i].encode()
            i += 1
    return out.decode("utf-8")


@given(st.lists(st.text(), min_size=1, max_size=4))
def test_any_wire_string_stays_in_its_field_and_reads_back(values: list[str]) -> None:
    fields = [(f"f{i}", "string") for i in range(len(values))]
    line = tsv_line(values, fields)
    assert "\n" not in line and "\r" not in line
    cells = line.split("\t")
    assert len(cells) == len(values)
    for cell, value in zip(cells, values, strict=True):
        if value == "":
            assert cell == "(empty)"
        elif value in ("-", "(empty)"):
            assert cell != value and _unescape(cell) == value
        else:
            assert cell not in ("-", "(empty)") and _unescape(cell) == value


def test_a_finding_on_a_bind_frame_takes_the_binds_uid() -> None:
    from analyzer.zeek.logs import findings_frame

    result = analyzer.analyze(SAMPLES / "smb2_pipes.pcap")
    bind = result.binds.iloc[0]
    findings = pd.DataFrame(
        {
            "capture": pd.array([bind["capture"], bind["capture"]], dtype="string"),
            "first_frame": pd.array([bind["frame"], 10**6], dtype="Int64"),
            "first_ts": [bind["ts"], bind["ts"]],
        }
    )
    frame, fields = findings_frame(findings, result.calls, result.binds)
    assert [f for f, _t in fields] == ["ts", "uid", "capture", "first_frame", "first_ts"]
    assert frame["uid"].iloc[0] == bind["uid"] and frame["uid"].isna().iloc[1]


def test_every_ignored_operation_is_a_name_of_its_endpoint() -> None:
    """Zeek's ignored_operations are keyed by Zeek's names: each must be one our Zeek view produces,
    or the filter would silently let those rows through."""
    uuids = {name: uuid for uuid, name in zeek_names._endpoint_table().items()}
    for endpoint, ops in zeek_names.IGNORED_OPERATIONS.items():
        names = {zeek_names.operation_name(uuids[endpoint], n) for n in range(128)}
        assert ops <= names, (endpoint, ops - names)


def test_a_log_written_a_chunk_at_a_time_is_the_whole_log(tmp_path: Path) -> None:
    from analyzer.zeek.log import write_log

    fields = (("ts", "time"), ("uid", "string"), ("n", "count"))
    df = pd.DataFrame(
        {
            "ts": pd.to_datetime([1_700_000_000_123_456_789, None, 1_700_000_001_000_000_000], utc=True),
            "uid": pd.array(["C1", "-", None], dtype="string"),
            "n": pd.array([1, None, 3], dtype="Int64"),
        }
    )
    for fmt in ("zeek", "zeek-json"):
        path = write_log(tmp_path, f"x-{fmt}", fields, (df.iloc[i : i + 1] for i in range(3)), fmt)
        assert path is not None
        streamed = [ln for ln in path.read_text().splitlines() if not ln.startswith(("#open", "#close"))]
        whole = log_text("x-" + fmt, fields, df.astype(object).itertuples(index=False, name=None), fmt)
        assert streamed == [ln for ln in whole.splitlines() if not ln.startswith(("#open", "#close"))]
    assert write_log(tmp_path, "empty", fields, iter([df.iloc[:0]])) is None
    assert not (tmp_path / "empty.log").exists()


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(1, 2**62)),
            st.one_of(st.none(), st.text(max_size=5), st.sampled_from(["-", "(empty)", "#x", "a\tb", "\\"])),
            st.one_of(st.none(), st.integers(0, 2**40)),
            st.one_of(st.none(), st.floats(allow_nan=False, width=64)),
            st.one_of(st.none(), st.booleans()),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_tsv_lines_column_wise_are_the_row_by_row_lines(rows: list[tuple[object, ...]]) -> None:
    from analyzer.zeek.log import tsv_lines

    fields = (("ts", "time"), ("name", "string"), ("n", "count"), ("rtt", "interval"), ("ok", "bool"))
    df = pd.DataFrame(
        {
            "ts": pd.to_datetime(pd.array([r[0] for r in rows], dtype="Int64"), unit="ns", utc=True),
            "name": pd.array([r[1] for r in rows], dtype="string"),
            "n": pd.array([r[2] for r in rows], dtype="Int64"),
            "rtt": pd.array([r[3] for r in rows], dtype="Float64"),
            "ok": pd.array([r[4] for r in rows], dtype="boolean"),
        }
    )
    expected = [tsv_line(r, fields) for r in df.astype(object).itertuples(index=False, name=None)]
    assert tsv_lines(df, fields) == expected
