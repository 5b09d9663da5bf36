"""Firewall allow-lists: the netsh grammar of ../shared/detection/firewall.md, and hand-checked
expectations for two shared captures (checked against tshark's reading of the same packets)."""

from __future__ import annotations

import ipaddress
import re
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

import analyzer
from analyzer import firewall as fw
from analyzer.cli import main
from tests.conftest import CAPTURES, SAMPLES, needs_shared

TRACES = CAPTURES / "CVE-2021-1675" / "testing" / "Traces"
SPOOLSS = "12345678-1234-abcd-ef00-0123456789ab"
EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"

# firewall.md 1.1 and 1.2: the rule and condition syntax and the um layer's condition fields.
RULE = re.compile(
    r"^add rule layer=(um|epmap|ep_add|proxy_conn|proxy_if) actiontype=(permit|block|continue)"
    r"( filterkey=[0-9a-f-]{36})?( persistence=volatile)?( audit=enable)?( auditparameters=enable)?$"
)
CONDITION = re.compile(r"^add condition field=(\w+) matchtype=equal data=(\S+)$")
UM_FIELDS = {
    "if_uuid", "if_version", "if_flag", "dcom_app_id", "image_name", "protocol", "auth_type", "auth_level",
    "sec_encrypt_alg", "sec_key_size", "remote_user_token", "local_addr_v4", "local_addr_v6",
    "remote_addr_v4", "remote_addr_v6", "local_port", "pipe", "opnum",
}  # fmt: skip
ADVFIREWALL = re.compile(
    r'^advfirewall firewall add rule name="[^"\n]+" dir=in action=allow protocol=TCP '
    r"localport=(RPC|RPC-EPMap|\d+) remoteip=(any|[0-9a-fA-F.:,]+)$"
)


def check_grammar(script: str, opnums: bool) -> list[tuple[str, dict[str, list[str]]]]:
    """Parse a netsh script strictly; the filters as (action, {field: [values]}) in order."""
    filters: list[tuple[str, dict[str, list[str]]]] = []
    current: tuple[str, dict[str, list[str]]] | None = None
    in_rpc = False
    keys: set[str] = set()
    for line in script.splitlines():
        if not line or line.startswith("#"):
            continue
        if line == "rpc filter":
            assert current is None and not in_rpc
            in_rpc = True
        elif m := RULE.match(line):
            assert in_rpc and current is None, "a rule is committed (add filter) before the next starts"
            key = re.search(r"filterkey=(\S+)", line)
            assert key is not None and key.group(1) not in keys, "filter keys are unique"
            keys.add(key.group(1))
            assert m.group(1) == "um"
            current = (m.group(2), {})
        elif m := CONDITION.match(line):
            assert current is not None
            field, data = m.groups()
            assert field in UM_FIELDS, field
            current[1].setdefault(field, []).append(data)
            if field == "if_uuid":
                uuid.UUID(data)
            elif field == "remote_addr_v4":
                assert ipaddress.ip_address(data).version == 4
            elif field == "protocol":
                assert data in ("ncacn_np", "ncacn_ip_tcp", "ncacn_http")
            elif field == "opnum":
                assert opnums and data.isdigit()
        elif line == "add filter":
            assert current is not None
            filters.append(current)
            current = None
        else:
            assert not in_rpc and ADVFIREWALL.match(line), line
    assert current is None and in_rpc
    for _action, conds in filters:
        if conds.get("protocol") == ["ncacn_np"]:
            assert "remote_addr_v4" not in conds, "pipe callers' addresses are invisible to RPC filters"
    return filters


@needs_shared
def test_hand_checked_tcp_capture() -> None:
    """packetcapture_1.pcap (tshark): 172.16.5.67 binds the endpoint mapper on 172.16.5.58:135, ept_map
    answers port 49677; it binds spoolss there and calls opnum 89 (RpcAddPrinterDriverEx), which faults."""
    result = analyzer.analyze(TRACES / "packetcapture_1.pcap")
    allow = fw.allow_list(result.binds, result.calls)
    got = {
        (r.server_ip, r.interface_uuid, r.transport, r.endpoint, r.clients, r.opnums, r.faults)
        for r in allow.itertuples()
    }
    assert got == {
        ("172.16.5.58", EPM, "ncacn_ip_tcp", "135", "172.16.5.67", "3", 0),
        ("172.16.5.58", SPOOLSS, "ncacn_ip_tcp", "49677", "172.16.5.67", "89", 1),
    }
    ports = fw.dynamic_ports(result.connections, result.endpoints, "172.16.5.58")
    assert ports == [49677] and fw.narrowest_range(ports) == (49677, 255)
    script = fw.scripts(result)["172.16.5.58"]
    filters = check_grammar(script, opnums=False)
    permits = [c for a, c in filters if a == "permit" and "remote_addr_v4" in c]
    assert sorted(c["if_uuid"][0] for c in permits) == sorted([EPM, SPOOLSS])
    assert all(c["remote_addr_v4"] == ["172.16.5.67"] and c["protocol"] == ["ncacn_ip_tcp"] for c in permits)
    assert "localport=RPC-EPMap remoteip=172.16.5.67" in script and "localport=RPC remoteip=172.16.5.67" in script
    assert "# int ipv4 set dynamicport tcp start=49677 num=255" in script
    assert "localport=445" not in script
    assert fw.CANNOT_KNOW in script


@needs_shared
def test_hand_checked_pipe_capture_with_opnums_and_block() -> None:
    """PrintNightmare.pcap (tshark): 192.168.1.149 binds spoolss on \\PIPE\\spoolss of 192.168.1.157 and
    calls opnums 10 (twice) and 89 (three times), all answered."""
    result = analyzer.analyze(TRACES / "PrintNightmare.pcap")
    allow = fw.allow_list(result.binds, result.calls)
    assert len(allow) == 1
    row = allow.iloc[0]
    assert (row["server_ip"], row["interface_uuid"], row["transport"]) == ("192.168.1.157", SPOOLSS, "ncacn_np")
    assert row["endpoint"].lower() == "\\pipe\\spoolss" and row["clients"] == "192.168.1.149"
    assert (row["opnums"], row["calls"], row["faults"], row["subnets"]) == ("10;89", 5, 0, "192.168.1.0/24")
    script = fw.scripts(result, rest="block", opnums=True)["192.168.1.157"]
    filters = check_grammar(script, opnums=True)
    permits = [c for a, c in filters if a == "permit"]
    assert sorted(c["opnum"][0] for c in permits) == ["10", "89"]
    assert all(c["protocol"] == ["ncacn_np"] and c["if_uuid"] == [SPOOLSS] for c in permits)
    blocks = [c for a, c in filters if a == "block"]
    assert blocks == [{"if_uuid": [SPOOLSS]}, {}], "the interface's other callers, then everything unseen"
    assert "localport=445 remoteip=192.168.1.149" in script and "RPC-EPMap" not in script
    assert "Windows 11 24H2" in script and "dynamicport" not in script


def test_every_sample_script_parses_and_rest_none_has_no_catch_all() -> None:
    result = analyzer.analyze([SAMPLES])
    for opnums in (False, True):
        for server, script in fw.scripts(result, "audit", opnums).items():
            filters = check_grammar(script, opnums)
            assert filters[-1] == ("permit", {}), server
    for script in fw.scripts(result, "none").values():
        assert all(c for _a, c in check_grammar(script, False)), "no filter without conditions"


def test_wire_text_cannot_break_out_of_a_comment() -> None:
    assert fw._safe("\\PIPE\\x\nadd rule layer=um actiontype=block") == "\\PIPE\\x?add rule layer=um actiontype=block"


def test_cli_formats(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["firewall", str(SAMPLES / "smb2_pipes.pcap"), "--format", "csv", "-q"])
    assert res.exit_code == 0, res.output
    header = res.output.splitlines()[0].split(",")
    assert header == list(fw.ALLOW_LIST)
    res = runner.invoke(main, ["firewall", str(SAMPLES / "smb2_pipes.pcap"), "--format", "md", "-q"])
    assert res.exit_code == 0 and res.output.startswith("# RPC allow-list")
    res = runner.invoke(main, ["firewall", str(SAMPLES), "-o", str(tmp_path), "-q"])
    assert res.exit_code == 0, res.output
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files and all(f.endswith(".netsh.txt") for f in files)
    for f in tmp_path.iterdir():
        check_grammar(f.read_text(encoding="utf-8"), False)


@pytest.mark.parametrize(
    "ports,expected", [([], None), ([49700], (49700, 255)), ([50000, 60000], (50000, 10001)), ([65500], (65281, 255))]
)
def test_narrowest_range(ports: list[int], expected: tuple[int, int] | None) -> None:
    assert fw.narrowest_range(ports) == expected


def test_markdown_is_a_table_per_server_without_wire_markup() -> None:
    result = analyzer.analyze([SAMPLES])
    allow = fw.allow_list(result.binds, result.calls)
    text = fw.markdown(allow, fw.server_ports(result, allow))
    for server, rows in allow.groupby("server_ip"):
        section = text.split(f"## {server}\n")[1].split("\n## ")[0]
        table = [ln for ln in section.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
        assert len(table) == len(rows)
        assert all(ln.count(" | ") == 8 for ln in table), "nine cells: a | in wire text is escaped"
        assert all(cell in ("yes", "no") for ln in table for cell in ln.split(" | ")[4:6])
    assert fw._md("a|b\x1b[0m") == "a\\|b?[0m"


def test_rpc_over_http_ports_get_their_own_firewall_rules() -> None:
    result = analyzer.analyze([SAMPLES / "rpc_http_v1.pcap", SAMPLES / "rpc_http_v2.pcap"])
    script = fw.scripts(result)["10.0.0.10"]
    check_grammar(script, False)
    assert "localport=593 remoteip=10.0.0.20" in script, "v1's endpoint mapper port"
    assert "localport=80 remoteip=10.0.0.20" in script, "v2 through the proxy's web port"
    assert "data=ncacn_http" in script


RPCFW = re.compile(
    r"^fw:(uuid:[0-9a-f-]{36}( prot:(ncacn_np|ncacn_ip_tcp|ncacn_http))?( addr:[0-9a-fA-F.:]+)?( opnum:\d+)? )?"
    r"action:(allow|block) audit:true$"
)


@needs_shared
def test_rpc_firewall_config_for_the_pipe_capture() -> None:
    """RpcFw.conf (firewall.md section 2): first match wins, so the allows come first; pipes keep their
    caller address here (the injected DLL sees it), and opnums work on every Windows version."""
    result = analyzer.analyze(TRACES / "PrintNightmare.pcap")
    conf = fw.scripts(result, "block", True, "rpcfw")["192.168.1.157"]
    rules = [ln for ln in conf.splitlines() if ln and not ln.startswith("#")]
    assert all(RPCFW.match(ln) for ln in rules), rules
    prefix = f"fw:uuid:{SPOOLSS} prot:ncacn_np addr:192.168.1.149"
    assert rules == [
        f"{prefix} opnum:10 action:allow audit:true",
        f"{prefix} opnum:89 action:allow audit:true",
        f"fw:uuid:{SPOOLSS} action:block audit:true",
        "fw:action:block audit:true",
    ]
    res = CliRunner().invoke(main, ["firewall", str(TRACES / "PrintNightmare.pcap"), "--format", "rpcfw", "-q"])
    assert res.exit_code == 0 and "fw:action:allow audit:true" in res.output
