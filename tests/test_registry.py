"""Tests of the name registry (analyzer.registry, analyzer.registry.query, tools/build_registry.py)."""

from __future__ import annotations

import ast
import csv
import dataclasses
import importlib.util
import re
import sys
import uuid as uuidlib
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from analyzer import registry
from analyzer.registry import query

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = REPO / "analyzer" / "registry" / "data"
SOURCES = REPO / "tools" / "registry_sources"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SEED_LINE = re.compile(r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{11,12})\b")

# Interface UUIDs as the specifications assign them (section 1.9 of each), used to check lookups.
SVCCTL = "367abb81-9844-35f1-ad32-98f038001003"  # [MS-SCMR]
SAMR = "12345778-1234-abcd-ef00-0123456789ac"  # [MS-SAMR]
LSARPC = "12345778-1234-abcd-ef00-0123456789ab"  # [MS-LSAD]
NETLOGON = "12345678-1234-abcd-ef00-01234567cffb"  # [MS-NRPC]
DSSETUP = "3919286a-b10c-11d0-9ba8-00c04fd92ef5"  # [MS-DSSP]
DRSUAPI = "e3514235-4b06-11d1-ab04-00c04fc2dcd2"  # [MS-DRSR]
SRVSVC = "4b324fc8-1670-01d3-1278-5a47bf6ee188"  # [MS-SRVS]

needs_shared = pytest.mark.skipif(
    not (SHARED / "registry").is_dir(), reason=f"{SHARED} (the shared reference data) is not present"
)


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> object:
    """No user configuration leaks in; every test starts from the shipped tables."""
    monkeypatch.delenv(registry.CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    registry._reset()
    yield
    registry._reset()


def data_rows(name: str) -> list[dict[str, str]]:
    text = (DATA / name).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_registry", REPO / "tools" / "build_registry.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_registry"] = module
    spec.loader.exec_module(module)
    return module


# ---- the shipped tables ---------------------------------------------------------------------------------------


def test_no_duplicate_keys() -> None:
    def dupes(keys: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        return [k for k, n in Counter(keys).items() if n > 1]

    assert dupes([(r["uuid"], r["major"]) for r in data_rows("interfaces.tsv")]) == []
    assert dupes([(r["uuid"], r["version"], r["opnum"]) for r in data_rows("operations.tsv")]) == []
    assert dupes([(r["pipe"].lower(), r["uuid"]) for r in data_rows("pipes.tsv")]) == []
    assert dupes([(r["code"], r["name"]) for r in data_rows("status.tsv")]) == []
    assert dupes([(r["kind"], r["value"]) for r in data_rows("constants.tsv")]) == []


def test_uuids_are_lower_case_and_canonical() -> None:
    for name in ("interfaces.tsv", "operations.tsv", "pipes.tsv"):
        for row in data_rows(name):
            assert UUID_RE.match(row["uuid"]), (name, row["uuid"])
            assert str(uuidlib.UUID(row["uuid"])) == row["uuid"]
    for path in SOURCES.glob("*.tsv"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or line.startswith("uuid\t") or "\t" not in line:
                continue
            first = line.split("\t")[0]
            if path.name in ("pipes.tsv", "status.tsv", "constants.tsv", "specs.tsv"):
                continue
            assert UUID_RE.match(first), (path.name, first)


def test_every_entry_has_a_name_and_a_source() -> None:
    for row in data_rows("interfaces.tsv"):
        assert row["name"], row["uuid"]
        assert row["sources"], row["uuid"]
        assert row["name_source"], row["uuid"]
    for row in data_rows("operations.tsv"):
        assert row["sources"], (row["uuid"], row["opnum"])
        assert row["spec_name"] or row["common_name"] or row["impl_name"], (row["uuid"], row["opnum"])
    for name in ("pipes.tsv", "status.tsv", "constants.tsv"):
        for row in data_rows(name):
            assert row["source"], (name, row)


def test_sources_are_documented() -> None:
    documented = re.compile(
        r"^(suricata|impacket-protocols|impacket-uuids|akamai|akamai-server22|bzar|dsinternals|epm-annotation"
        r"|seed:portqry|derived:spec|derived:provider|spec:\[[^\]]+\]|hsc:win_net_srv|rpc-traceparse"
        r"|winsdk:IDL|scapy:opc_da|scapy:pnio_rpc|akamai:fnames|test:[a-z-]+|common)$"
    )
    seen: set[str] = set()
    for row in data_rows("interfaces.tsv"):
        seen.update(row["sources"].split("|"))
    for row in data_rows("operations.tsv"):
        seen.update(row["sources"].split("|"))
    for name in ("pipes.tsv", "status.tsv", "constants.tsv"):
        seen.update(row["source"] for row in data_rows(name))
    undocumented = sorted(s for s in seen if not documented.match(s))
    assert undocumented == []
    build_doc = (REPO / "tools" / "build_registry.py").read_text(encoding="utf-8")
    for family in ("suricata", "impacket-protocols", "akamai", "dsinternals", "seed:portqry", "derived:provider"):
        assert family in build_doc


def test_figures_reached() -> None:
    named = {r["uuid"] for r in data_rows("interfaces.tsv") if r["major"] == "" and r["name"]}
    assert len(named) >= 1000
    ops = [r for r in data_rows("operations.tsv") if r["spec_name"] or r["common_name"] or r["impl_name"]]
    assert len(ops) >= 6000
    assert all(not registry.interface_name(u).startswith("unknown-") for u in named)


def test_pipes_point_at_known_interfaces() -> None:
    known = {r["uuid"] for r in data_rows("interfaces.tsv")}
    for row in data_rows("pipes.tsv"):
        assert row["uuid"] in known, row
        assert row["pipe"].lower().startswith("\\pipe\\"), row


def test_conflicts_file_states_the_rule_and_lists_known_rows() -> None:
    text = (DATA / "conflicts.tsv").read_text(encoding="utf-8")
    header = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert any("Rule" in ln for ln in header)
    build_doc = (REPO / "tools" / "build_registry.py").read_text(encoding="utf-8")
    assert "Conflict rule" in build_doc
    rows = data_rows("conflicts.tsv")
    assert rows, "a registry built from several tables has conflicts to show"
    known = {r["uuid"] for r in data_rows("interfaces.tsv")}
    for row in rows:
        assert row["uuid"] in known
        assert row["chosen"] != row["other"], row
        assert row["chosen_source"] and row["other_source"], row


def test_registry_package_uses_only_the_standard_library() -> None:
    allowed_first = {"analyzer", "__future__"}
    for path in (REPO / "analyzer" / "registry").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                assert top in allowed_first or top in sys.stdlib_module_names, (path.name, mod)


# ---- lookups ----------------------------------------------------------------------------------------------------


def test_lookups_ignore_case_and_braces() -> None:
    lower = registry.interface_info(SVCCTL)
    assert lower is not None
    assert registry.interface_info(SVCCTL.upper()) == lower
    assert registry.interface_info("{" + SVCCTL.upper() + "}") == lower
    assert registry.operation_names(SVCCTL.upper(), 2, 12) == registry.operation_names(SVCCTL, 2, 12)
    assert registry.transfer_syntax_name("8A885D04-1CEB-11C9-9FE8-08002B104860") == "ndr"


def test_interface_facts_carry_spec_and_provider() -> None:
    info = registry.interface_info(SVCCTL, 2)
    assert info is not None
    assert info.name == "svcctl"
    assert info.spec == "[MS-SCMR]"
    assert info.spec_title is not None and "Service Control Manager" in info.spec_title
    assert info.provider == "services.exe"
    assert info.version is not None and info.version.startswith("2.")
    assert len(info.sources) >= 2


def test_version_keys_with_fallback_to_the_uuid() -> None:
    default = registry.interface_info(SRVSVC)
    unlisted = registry.interface_info(SRVSVC, 99)
    assert default is not None and unlisted == default
    v0 = registry.interface_info(SRVSVC, 0)
    v3 = registry.interface_info(SRVSVC, 3)
    assert v0 is not None and v3 is not None
    assert v0.provider != v3.provider  # version 0.0 is another server (impacket lists two binaries)
    assert v3.name == default.name
    assert registry.operation_name(SVCCTL, 77, 12) == registry.operation_name(SVCCTL, None, 12)


def test_operation_names_put_the_specification_first() -> None:
    names = registry.operation_names(SVCCTL, 2, 12)
    assert names[0] == "RCreateServiceW"
    assert "CreateServiceW" in names
    assert registry.operation_name(SVCCTL, 2, 12) == "RCreateServiceW"
    drs = registry.operation_info(DRSUAPI, 4, 3)
    assert drs is not None and drs.names[0] == drs.spec_name
    assert drs.common_name is not None and drs.common_name in drs.spec_name


def test_unknown_lookups_return_the_documented_placeholders() -> None:
    stranger = str(uuidlib.uuid4())
    assert registry.interface_info(stranger) is None
    assert registry.interface_name(stranger) == f"unknown-{stranger}"
    assert registry.interface_name(stranger.upper()) == f"unknown-{stranger}"
    assert registry.interface_name("not-a-uuid") == "unknown-not-a-uuid"
    assert registry.operation_name(stranger, 1, 7) == "opnum-7"
    assert registry.operation_names(stranger, None, 7) == ()
    assert registry.operation_name(SVCCTL, 2, 4000) == "opnum-4000"
    assert registry.status_name(0x7EADBEEF) == "0x7eadbeef"
    assert registry.auth_type_name(200) == "unknown-200"
    assert registry.auth_level_name(42) == "unknown-42"
    assert registry.floor_protocol_name(0xEE) == "unknown-238"
    assert registry.transfer_syntax_name(stranger) == stranger
    assert registry.pipe_interfaces("\\PIPE\\no-such-pipe") == ()


def test_pipe_names_in_every_spelling() -> None:
    forms = ["\\PIPE\\lsarpc", "\\pipe\\lsarpc", "lsarpc", "LSARPC", "/pipe/lsarpc", "\\\\dc01\\pipe\\lsarpc"]
    results = {registry.pipe_interfaces(f) for f in forms}
    assert len(results) == 1
    served = results.pop()
    for wanted in (LSARPC, SAMR, DSSETUP, NETLOGON):
        assert wanted in served
    assert served[0] == LSARPC  # the interface the specification assigns comes first
    assert SAMR in registry.pipe_interfaces("samr")
    assert SVCCTL in registry.pipe_interfaces("\\PIPE\\svcctl")
    for pipe in ("spoolss", "netlogon", "epmapper", "atsvc", "efsrpc", "winreg", "srvsvc", "wkssvc", "eventlog"):
        assert registry.pipe_interfaces(pipe), pipe
    for pipe in ("protected_storage", "ntsvcs", "browser", "lsass", "W32TIME_ALT", "InitShutdown", "netdfs"):
        assert registry.pipe_interfaces(pipe), pipe
    assert registry.pipe_interfaces("drsuapi") == (DRSUAPI,)


def test_status_codes() -> None:
    assert registry.status_name(0x16C9A0D6) == "EPT_S_NOT_REGISTERED"
    assert registry.status_name(0xC0000022) == "STATUS_ACCESS_DENIED"
    assert registry.status_name(0x1C010002) == "nca_s_op_rng_error"
    assert registry.status_name(0x1C010003) == "nca_s_unk_if"
    assert registry.status_name(0x1C01000B) == "nca_s_proto_error"
    assert registry.status_name(5) == "ERROR_ACCESS_DENIED"
    assert {"RPC_S_ACCESS_DENIED", "nca_s_fault_access_denied"} <= set(registry.status_names(5))
    assert registry.status_name(1753) == "EPT_S_NOT_REGISTERED"
    assert registry.status_name(-1 & 0xFFFFFFFF) == registry.status_name(-1)


def test_auth_floor_and_syntax_constants() -> None:
    expected_types = {0: "none", 9: "spnego", 10: "ntlmssp", 14: "schannel", 16: "kerberos", 68: "netlogon"}
    for value, name in expected_types.items():
        assert registry.auth_type_name(value) == name
    assert registry.auth_type_name(255) == "default"
    levels = [registry.auth_level_name(n) for n in range(1, 7)]
    assert levels == ["none", "connect", "call", "packet", "integrity", "privacy"]
    floors = {0x0D: "uuid", 0x07: "tcp", 0x08: "udp", 0x09: "ip", 0x0F: "named_pipe", 0x10: "ncalrpc", 0x1F: "http"}
    for value, name in floors.items():
        assert registry.floor_protocol_name(value) == name
    assert registry.floor_protocol_name(0x0A) != registry.floor_protocol_name(0x0B)
    assert registry.transfer_syntax_name("71710533-beba-4937-8319-b5dbef9ccc36") == "ndr64"
    for bits in ("0100", "0300", "0200"):
        tail = f"6cb71c2c-9812-4540-{bits}-000000000000"
        assert registry.transfer_syntax_name(tail) == "bind_time_feature_negotiation"
    assert registry.ptype_name(12) == "bind_ack"


# ---- overrides --------------------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_overrides_win_over_shipped_entries(tmp_path: Path) -> None:
    stranger = str(uuidlib.uuid4())
    shipped_op = registry.operation_name(SVCCTL, 2, 12)
    f = write(
        tmp_path / "names.csv",
        "uuid,version,name,spec,provider,opnum,operation\n"
        f"{SVCCTL.upper()},,service-control,,,,\n"
        f"{SVCCTL},2,,,,12,MakeService\n"
        f"{stranger},1.0,inhouse,,inhouse.exe,,\n"
        f"{stranger},,,,,3,DoThing\n",
    )
    registry.load_overrides(f)
    assert registry.interface_name(SVCCTL) == "service-control"
    assert registry.interface_name(SVCCTL, 2) == "service-control"
    info = registry.interface_info(SVCCTL)
    assert info is not None and info.spec == "[MS-SCMR]" and any(s.startswith("override") for s in info.sources)
    assert registry.operation_name(SVCCTL, 2, 12) == "MakeService"
    assert shipped_op in registry.operation_names(SVCCTL, 2, 12)
    assert registry.interface_name(stranger, 1) == "inhouse"
    assert registry.operation_name(stranger, None, 3) == "DoThing"
    rows = query.search(stranger)
    assert [r.operation for r in rows] == ["DoThing"]


def test_configured_file_is_read_at_first_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "xdg" / "rpc-analyzer"
    config.mkdir(parents=True)
    write(config / "names.csv", f"uuid,name\n{SAMR},sam-from-xdg\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    registry._reset()
    assert registry.interface_name(SAMR) == "sam-from-xdg"
    explicit = write(tmp_path / "explicit.csv", f"uuid,name\n{SAMR},sam-from-env\n")
    monkeypatch.setenv(registry.CONFIG_ENV, str(explicit))
    registry._reset()
    assert registry.interface_name(SAMR) == "sam-from-env"
    monkeypatch.setenv(registry.CONFIG_ENV, str(tmp_path / "missing.csv"))
    registry._reset()
    with pytest.raises(ValueError, match=r"missing\.csv"):
        registry.interface_name(SAMR)


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("uuid,name\nnot-a-uuid,x\n", 2, "not a UUID"),
        ("uuid,colour\n" + SAMR + ",red\n", 1, "unknown column"),
        ("name\nx\n", 1, "no uuid column"),
        ("uuid,opnum,operation\n" + SAMR + ",x1,Foo\n", 2, "opnum"),
        ("uuid,opnum,operation\n" + SAMR + ",3,\n", 2, "needs an operation"),
        ("uuid,operation\n" + SAMR + ",Foo\n", 2, "needs an opnum"),
        ("uuid,version,name\n" + SAMR + ",v2,x\n", 2, "version"),
        ("uuid,name\n" + SAMR + ",x,y\n", 2, "cells"),
        ("uuid,name\n" + SAMR + ",\n", 2, "names nothing"),
        ("# only a comment\n", 1, "empty"),
    ],
)
def test_bad_override_files_raise_one_clear_line(tmp_path: Path, text: str, line: int, why: str) -> None:
    f = write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError) as excinfo:
        registry.load_overrides(f)
    message = str(excinfo.value)
    assert message.startswith(f"{f}:{line}:")
    assert why in message
    assert "\n" not in message
    assert registry.interface_name(SAMR) == "samr"  # a bad file changes nothing


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        registry.load_overrides(tmp_path / "nope.csv")


# ---- query --------------------------------------------------------------------------------------------------------


def test_search_by_name_prefix_pipe_and_spec() -> None:
    by_name = query.search("svcctl")
    assert by_name and {r.uuid for r in by_name} == {SVCCTL}
    assert len(by_name) == len({r.opnum for r in by_name})
    by_prefix = query.search("367abb81")
    assert {r.uuid for r in by_prefix} == {SVCCTL}
    assert [r.opnum for r in by_prefix] == sorted(r.opnum for r in by_prefix if r.opnum is not None)
    by_pipe = query.search("\\pipe\\samr")
    assert SAMR in {r.uuid for r in by_pipe}
    assert all("\\PIPE\\samr" in r.pipes.split("|") for r in by_pipe if r.uuid == SAMR)
    by_spec = query.search("MS-DRSR")
    assert DRSUAPI in {r.uuid for r in by_spec}
    assert {r.spec for r in by_spec} == {"[MS-DRSR]"}
    assert query.search("[MS-DRSR]") == by_spec
    assert query.search("") == []


def test_search_finds_operations_and_substrings() -> None:
    rows = query.search("CreateServiceW")
    assert [(r.uuid, r.opnum) for r in rows] == [(SVCCTL, 12)]
    assert rows[0].operation == "RCreateServiceW"
    loose = query.search("getncchanges")
    assert (DRSUAPI, 3) in {(r.uuid, r.opnum) for r in loose}
    assert "T1003.006" in next(r for r in loose if r.uuid == DRSUAPI).attack.split("|")


def test_all_rows_cover_every_operation_and_interface() -> None:
    rows = query.all_rows()
    uuids = {r["uuid"] for r in data_rows("interfaces.tsv")}
    assert {r.uuid for r in rows} == uuids
    op_keys = {(r["uuid"], r["version"] or None, int(r["opnum"])) for r in data_rows("operations.tsv")}
    row_keys = {(r.uuid, r.opnum) for r in rows if r.opnum is not None}
    assert row_keys == {(u, o) for u, _v, o in op_keys}
    with_ops = {u for u, _v, _o in op_keys}
    assert len([r for r in rows if r.opnum is None]) == len(uuids - with_ops)
    cells = rows[0].as_dict()
    assert set(cells) >= {"uuid", "version", "name", "spec", "provider", "opnum", "operation", "source"}
    assert all(isinstance(v, str) for v in cells.values())
    for row in rows[:200]:  # plain values only: a row is a CSV row as it stands
        assert all(v is None or isinstance(v, (str, int)) for v in dataclasses.astuple(row))


# ---- against the shared reference data ------------------------------------------------------------------------


def seed_uuids() -> list[str]:
    path = next((SHARED / "seeds").glob("000_*.txt"))
    return [m.group(1).lower() for ln in path.read_text(encoding="utf-8").splitlines() if (m := SEED_LINE.match(ln))]


@needs_shared
def test_every_seed_uuid_is_named() -> None:
    corrections = {
        r["printed"]: r["uuid"]
        for r in csv.DictReader(
            [ln for ln in (SOURCES / "seed_portqry.tsv").read_text().splitlines() if not ln.startswith("#")],
            delimiter="\t",
        )
        if r["printed"]
    }
    uuids = seed_uuids()
    assert len(set(uuids)) > 100
    short = [u for u in uuids if len(u) == 35]
    assert sorted(short) == sorted(corrections)  # every short one is corrected, and only those
    for u in uuids:
        real = corrections.get(u, u)
        assert UUID_RE.match(real)
        assert real.startswith(u)
        name = registry.interface_name(real)
        assert not name.startswith("unknown-"), u


@needs_shared
def test_every_truth_uuid_is_named() -> None:
    seen: set[str] = set()
    for path in (SHARED / "captures" / "truth").glob("*.csv"):
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                u = (row.get("if_uuid") or "").strip()
                if u:
                    seen.add(u.lower())
    assert len(seen) > 20
    unnamed = sorted(u for u in seen if registry.interface_info(u) is None)
    assert unnamed == []
    for u in seen:
        assert not registry.interface_name(u).startswith("unknown-")


@needs_shared
def test_every_bzar_operation_carries_its_technique() -> None:
    with (SHARED / "registry" / "bzar_rpc_techniques.tsv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    tagged = {(r["uuid"], r["attack"]) for r in data_rows("operations.tsv") if r["attack"]}
    for row in rows:
        assert any(row["technique"] in attack.split("|") for _u, attack in tagged), row


@needs_shared
def test_shipped_data_equals_a_fresh_build() -> None:
    builder = load_builder()
    fresh = builder.build(SHARED / "registry", SOURCES)
    shipped = {p.name: p.read_text(encoding="utf-8") for p in DATA.glob("*.tsv")}
    assert sorted(fresh) == sorted(shipped)
    stale = [name for name, text in fresh.items() if shipped[name] != text]
    assert stale == [], f"run: python tools/build_registry.py  (stale: {stale})"
