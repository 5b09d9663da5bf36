#!/usr/bin/env python3
"""Build the analyzer's name registry (analyzer/registry/data/*.tsv) from public tables and curated facts.

Usage:
    python tools/build_registry.py [INPUT_DIR] [--sources DIR] [--out DIR] [--check]

INPUT_DIR holds the public tables described in its README.md (default: ../shared/registry relative to the
repository root). The hand-curated facts live in tools/registry_sources/*.tsv (spec knowledge, seed names and
corrections, named pipes, status codes, protocol constants, extracted third-party facts), every row with its
source. ``--check`` builds in memory and exits 1 when the shipped files differ from a fresh build.

Sources (the id used in the ``sources`` columns):
    suricata            OISF/suricata rust/src/dcerpc/data/dcerpc_interfaces.json (Zeek consts.zeek + BZAR):
                        the short interface names of Zeek's dce_rpc.log and Sigma rules, and operation names
    impacket-protocols  fortra/impacket epm.py KNOWN_PROTOCOLS: uuid -> "[MS-XXXX]: title"
    impacket-uuids      fortra/impacket epm.py KNOWN_UUIDS: (uuid, version) -> hosting binary
    akamai              akamai-security-research rpc_interfaces.json: binary -> server interface -> dispatch-table
                        function names in opnum order (implementation names)
    akamai-server22     akamai-security-research Server 2022 scrape (raw output and CSV): binary -> interface
    bzar                mitre-attack/bzar: ATT&CK technique -> endpoint::operation
    dsinternals         tools/registry_sources/dsinternals_interfaces.tsv (interface names from DSInternals)
    epm-annotation      tools/registry_sources/epm_annotations.tsv (annotations read from a capture's ept_lookup)
    seed:portqry        tools/registry_sources/seed_portqry.tsv (../shared/seeds/000_*.txt, with corrections)
    spec:[..], ...      tools/registry_sources/interfaces.tsv, operations.tsv, pipes.tsv, status.tsv,
                        constants.tsv, specs.tsv: one source per row, named in the row
    derived:spec        a name made from the interface's specification id, for an interface no source names
    derived:provider    a name made from the binary serving the interface, when neither a name nor a spec is known

Conflict rule (the same text heads analyzer/registry/data/conflicts.tsv):
    Every fact is kept with its source; when sources disagree on a field, the value from the highest-ranked
    source is shipped, the others stay as aliases, and the disagreement is written to conflicts.tsv.
    1. A fact about one interface version beats a fact about any version of that interface.
    2. Interface name: suricata (Zeek's vocabulary) > curated (interfaces.tsv) > dsinternals > epm-annotation >
       seed:portqry > derived:spec > derived:provider. Exception: a Zeek name that Zeek gives to several UUIDs
       is ambiguous, so a curated or dsinternals name that tells those UUIDs apart wins over it.
    3. Specification: curated > impacket-protocols > dsinternals. Title: specs.tsv, else impacket's text.
    4. Provider: curated > akamai (Windows Server 2022 binaries) > impacket-uuids > akamai-server22.
       Within one source, several binaries are listed in name order.
    5. Operation names are three columns, never one overwriting another: spec_name (operations.tsv, the
       specification's spelling), common_name (suricata/Zeek), impl_name (akamai's dispatch-table name).
       A spec name and a common name conflict when neither contains the other (case-insensitive), e.g.
       EfsRpcDecryptFileSrv vs EfsDecryptFileSrv; RCreateServiceW vs CreateServiceW is the same name spelt two
       ways and is no conflict. An implementation name that neither contains nor is contained in the
       spec/common name is listed too (kind operation-impl): Akamai's table then holds another function there.
    Seed descriptions and endpoint-mapper annotations are descriptions, not identifiers: they become aliases and
    are never reported as conflicts with an identifier.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO.parent / "shared" / "registry"
DEFAULT_SOURCES = REPO / "tools" / "registry_sources"
DEFAULT_OUT = REPO / "analyzer" / "registry" / "data"

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SPEC_RE = re.compile(r"^\[([A-Z]+-[A-Z0-9]+)\]")

NAME_RANK = {
    "suricata": 0,
    "curated": 1,
    "dsinternals": 2,
    "epm-annotation": 3,
    "seed:portqry": 4,
    "derived:spec": 5,
    "derived:provider": 6,
}
IDENTIFIER_SOURCES = {"suricata", "curated", "dsinternals"}
SPEC_RANK = {"curated": 0, "impacket-protocols": 1, "dsinternals": 2}
PROVIDER_RANK = {"curated": 0, "akamai": 1, "impacket-uuids": 2, "akamai-server22": 3}

CONFLICT_HEADER = """\
# Conflicts between sources found while building the registry (tools/build_registry.py).
# Rule: every fact is kept with its source; where sources disagree on a field the highest-ranked source's value
# is shipped and the others stay as aliases. A fact about one interface version beats a fact about any version.
# Ranks - name: suricata (Zeek's dce_rpc.log vocabulary) > curated > dsinternals > epm-annotation > seed:portqry >
# derived; except that a Zeek name given to several UUIDs loses to a curated/dsinternals name that tells them
# apart. spec: curated > impacket-protocols > dsinternals. provider: curated > akamai (Server 2022) >
# impacket-uuids > akamai-server22. Operations keep spec_name, common_name and impl_name side by side; two names
# conflict when neither contains the other (case-insensitive). kind operation-impl: Akamai's dispatch table holds
# a different function at that opnum than the specification/Zeek name.
"""


def canonical_uuid(text: str) -> str:
    u = text.strip().lower().strip("{}")
    if not UUID_RE.match(u):
        raise ValueError(f"not a canonical UUID: {text!r}")
    return u


def parse_version(text: str) -> str:
    """'1.0' -> '1.0', '1' -> '1.0', '' -> ''."""
    t = text.strip()
    if not t:
        return ""
    if re.fullmatch(r"\d+", t):
        return f"{int(t)}.0"
    m = re.fullmatch(r"(\d+)\.(\d+)", t)
    if not m:
        raise ValueError(f"not a version: {text!r}")
    return f"{int(m.group(1))}.{int(m.group(2))}"


def read_tsv(path: Path) -> Iterator[dict[str, str]]:
    """Rows of a TSV whose leading '#' lines are comments and whose first other line is the header."""
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    header = lines[0].split("\t")
    for n, line in enumerate(lines[1:], 2):
        cells = line.split("\t")
        if len(cells) != len(header):
            raise ValueError(f"{path.name}: data line {n}: {len(cells)} cells, header has {len(header)}")
        yield dict(zip(header, cells, strict=True))


@dataclass
class Fact:
    """One value from one source (a name, a spec, a binary), optionally about one interface version."""

    value: str
    source: str  # rank key (suricata, curated, ...)
    cite: str  # what goes into the sources column (spec:[MS-SCMR], suricata, ...)
    version: str = ""


@dataclass
class Iface:
    uuid: str
    names: list[Fact] = field(default_factory=list)
    aliases: list[Fact] = field(default_factory=list)  # descriptions (seed text, annotations)
    specs: list[Fact] = field(default_factory=list)
    titles: list[Fact] = field(default_factory=list)
    providers: list[Fact] = field(default_factory=list)
    versions: set[str] = field(default_factory=set)
    spec_versions: set[str] = field(default_factory=set)  # versions the curated rows give
    cites: set[str] = field(default_factory=set)


@dataclass
class Op:
    spec: list[Fact] = field(default_factory=list)
    common: list[Fact] = field(default_factory=list)
    impl: list[Fact] = field(default_factory=list)
    aliases: list[Fact] = field(default_factory=list)
    attack: set[str] = field(default_factory=set)


class Builder:
    def __init__(self, input_dir: Path, sources_dir: Path) -> None:
        self.input_dir = input_dir
        self.sources_dir = sources_dir
        self.ifaces: dict[str, Iface] = {}
        self.ops: dict[tuple[str, str, int], Op] = {}
        self.spec_titles: dict[str, tuple[str, str]] = {}
        self.pipes: list[tuple[str, str, str]] = []
        self.status: list[tuple[str, str, str, str]] = []
        self.constants: list[tuple[str, str, str, str]] = []
        self.conflicts: list[tuple[str, ...]] = []
        self.akamai_tables: dict[str, list[tuple[str, list[str]]]] = {}

    # ---- collection -------------------------------------------------------------------------------------
    @staticmethod
    def check_value(value: str, where: str) -> str:
        if "|" in value or "\t" in value or not value.strip():
            raise ValueError(f"{where}: unusable value {value!r} (empty, or holds | or a tab)")
        return value

    def iface(self, uuid: str) -> Iface:
        u = canonical_uuid(uuid)
        if u not in self.ifaces:
            self.ifaces[u] = Iface(u)
        return self.ifaces[u]

    def op(self, uuid: str, version: str, opnum: int) -> Op:
        key = (canonical_uuid(uuid), version, opnum)
        if key not in self.ops:
            self.ops[key] = Op()
        return self.ops[key]

    def load_all(self) -> None:
        self.load_suricata()
        self.load_impacket()
        self.load_akamai()
        self.load_curated()
        self.load_bzar()

    def load_suricata(self) -> None:
        path = self.input_dir / "suricata_dcerpc_interfaces.ndjson"
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            obj = json.loads(line)
            it = self.iface(obj["uuid"])
            it.names.append(Fact(obj["service"], "suricata", "suricata"))
            it.cites.add("suricata")
            for opnum, name in obj.get("opcodes", {}).items():
                self.op(it.uuid, "", int(opnum)).common.append(Fact(name, "suricata", "suricata"))

    def load_impacket(self) -> None:
        path = self.input_dir / "impacket_known_protocols.tsv"
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                it = self.iface(row["uuid"])
                text = row["protocol"].strip()
                m = SPEC_RE.match(text)
                if m:
                    spec = f"[{m.group(1)}]"
                    it.specs.append(Fact(spec, "impacket-protocols", "impacket-protocols"))
                    title = re.sub(r"^(\[[A-Z]+-[A-Z0-9]+\]/?)+:?\s*", "", text)
                    if title:
                        it.titles.append(Fact(title, "impacket-protocols", "impacket-protocols"))
                it.cites.add("impacket-protocols")
        path = self.input_dir / "impacket_known_uuids.tsv"
        listed: dict[str, list[tuple[str, str]]] = defaultdict(list)
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                listed[canonical_uuid(row["uuid"])].append((parse_version(row["version"]), row["provider"].strip()))
        for uuid, entries in listed.items():
            it = self.iface(uuid)
            it.cites.add("impacket-uuids")
            # the version only qualifies the provider where impacket gives different binaries per version
            per_version = len({p.lower() for _, p in entries}) > 1
            for version, provider in entries:
                it.versions.add(version)
                it.providers.append(Fact(provider, "impacket-uuids", "impacket-uuids", version if per_version else ""))

    def load_akamai(self) -> None:
        data = json.loads((self.input_dir / "akamai_rpc_interfaces.json").read_text(encoding="utf-8"))
        tables: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
        for binary in sorted(data):
            for key, entry in data[binary].items():
                if not isinstance(entry, dict) or entry.get("role") != "server":
                    continue
                it = self.iface(key)
                it.providers.append(Fact(binary, "akamai", "akamai"))
                it.cites.add("akamai")
                names = entry.get("function_names") or []
                if names:
                    tables[it.uuid].append((binary, list(names)))
        self.akamai_tables = dict(tables)
        raw = json.loads((self.input_dir / "akamai_server22_raw_output.json").read_text(encoding="utf-8"))
        for binary in sorted(raw):
            for key, entry in raw[binary].items():
                if isinstance(entry, dict) and entry.get("role") == "server":
                    it = self.iface(key)
                    it.providers.append(Fact(binary, "akamai-server22", "akamai-server22"))
                    it.cites.add("akamai-server22")
        with (self.input_dir / "akamai_server22_rpc_servers_scrape.csv").open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                u = row["interface_uuid"].strip().lower()
                if UUID_RE.match(u):
                    it = self.iface(u)
                    it.providers.append(Fact(row["dll_name"].strip(), "akamai-server22", "akamai-server22"))
                    it.cites.add("akamai-server22")

    def load_bzar(self) -> None:
        by_name: dict[str, list[str]] = defaultdict(list)
        for it in self.ifaces.values():
            for fct in it.names:
                if fct.source == "suricata":
                    by_name[fct.value.lower()].append(it.uuid)
        with (self.input_dir / "bzar_rpc_techniques.tsv").open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                uuids = by_name.get(row["endpoint"].lower(), [])
                wanted = row["operation"]
                placed = False
                for uuid in uuids:
                    mine = [
                        (op, [x.value.lower() for x in op.spec + op.common + op.impl])
                        for (u, _v, _n), op in self.ops.items()
                        if u == uuid
                    ]
                    hits = [op for op, names in mine if wanted.lower() in names]
                    if not hits:  # BZAR drops prefixes Zeek keeps (JobAdd for NetrJobAdd)
                        hits = [op for op, names in mine if any(n.endswith(wanted.lower()) for n in names)]
                    for op in hits:
                        op.attack.add(row["technique"])
                        if all(x.value != wanted for x in op.spec + op.common + op.impl):
                            op.aliases.append(Fact(wanted, "bzar", "bzar"))
                        placed = True
                    if hits:
                        self.iface(uuid).cites.add("bzar")
                if not placed:
                    raise ValueError(f"bzar: {row['endpoint']}::{wanted} matches no known operation")

    def load_curated(self) -> None:
        src = self.sources_dir
        for row in read_tsv(src / "specs.tsv"):
            self.spec_titles[row["spec"]] = (row["title"], "specs.tsv")
        for row in read_tsv(src / "dsinternals_interfaces.tsv"):
            it = self.iface(row["uuid"])
            it.cites.add("dsinternals")
            if row["name"]:
                it.names.append(Fact(row["name"], "dsinternals", "dsinternals"))
            if row["spec"]:
                it.specs.append(Fact(row["spec"], "dsinternals", "dsinternals"))
        for row in read_tsv(src / "epm_annotations.tsv"):
            it = self.iface(row["uuid"])
            it.names.append(Fact(row["annotation"], "epm-annotation", "epm-annotation"))
            it.cites.add("epm-annotation")
        for row in read_tsv(src / "seed_portqry.tsv"):
            it = self.iface(row["uuid"])
            it.cites.add("seed:portqry")
            if row["description"]:
                it.names.append(Fact(row["description"], "seed:portqry", "seed:portqry"))
        for row in read_tsv(src / "interfaces.tsv"):
            it = self.iface(row["uuid"])
            given = parse_version(row["version"])
            if row["scope"] not in ("", "version") or (row["scope"] and not given):
                raise ValueError(f"interfaces.tsv: {row['uuid']}: bad scope {row['scope']!r}")
            version = given if row["scope"] == "version" else ""
            cite = row["source"]
            it.cites.add(cite)
            if given:
                it.versions.add(given)
                if row["scope"] != "version":
                    it.spec_versions.add(given)
            if row["name"]:
                it.names.append(Fact(row["name"], "curated", cite, version))
            if row["spec"]:
                it.specs.append(Fact(row["spec"], "curated", cite, version))
            if row["provider"]:
                it.providers.append(Fact(row["provider"], "curated", cite, version))
        for row in read_tsv(src / "operations.tsv"):
            uuid = canonical_uuid(row["uuid"])
            self.iface(uuid).cites.add(row["source"])
            self.op(uuid, parse_version(row["version"]), int(row["opnum"])).spec.append(
                Fact(row["name"], "curated", row["source"])
            )
        for row in read_tsv(src / "pipes.tsv"):
            self.pipes.append((row["pipe"], canonical_uuid(row["uuid"]), row["source"]))
        for row in read_tsv(src / "status.tsv"):
            code = int(row["code"], 16)
            self.status.append((f"0x{code:08x}", row["name"], row["kind"], row["source"]))
        for row in read_tsv(src / "constants.tsv"):
            self.constants.append((row["kind"], row["value"], row["name"], row["source"]))

    # ---- resolution -------------------------------------------------------------------------------------
    def resolve(self) -> tuple[list[list[str]], list[list[str]]]:
        zeek_owners: dict[str, set[str]] = defaultdict(set)
        for it in self.ifaces.values():
            for fct in it.names:
                if fct.source == "suricata":
                    zeek_owners[fct.value].add(it.uuid)
        iface_rows: list[list[str]] = []
        for uuid in sorted(self.ifaces):
            it = self.ifaces[uuid]
            versions = sorted(it.versions - {""}, key=_version_key)
            by_major: dict[str, list[str]] = defaultdict(list)
            for v in versions:
                by_major[v.split(".")[0]].append(v)
            if len(it.spec_versions) == 1:
                default_version = next(iter(it.spec_versions))
            elif len(versions) == 1:
                default_version = versions[0]
            else:
                default_version = ""
            iface_rows.append(["", *self.resolve_iface(it, "", default_version, zeek_owners)])
            for major in sorted(by_major, key=int):
                mine = by_major[major]
                preferred = [v for v in mine if v in it.spec_versions]
                shown = preferred[0] if preferred else mine[-1]
                iface_rows.append([major, *self.resolve_iface(it, major, shown, zeek_owners)])
        for row in iface_rows:  # key columns first: uuid, major
            row[0], row[1] = row[1], row[0]
        providers = {r[0]: r[6] for r in iface_rows if r[1] == ""}
        for uuid, tables in sorted(self.akamai_tables.items()):
            self.attach_akamai_table(uuid, providers[uuid], tables)
        op_rows: list[list[str]] = []
        for uuid, version, opnum in sorted(self.ops, key=lambda k: (k[0], _version_key(k[1]), k[2])):
            op_rows.append(self.resolve_op(uuid, version, opnum, self.ops[(uuid, version, opnum)]))
        return iface_rows, op_rows

    def attach_akamai_table(self, uuid: str, provider: str, tables: list[tuple[str, list[str]]]) -> None:
        """Implementation names come from the dispatch table of the binary that serves the interface.

        Akamai's scrape can hold a table for the same UUID in another binary (IPSECSVC.DLL registers
        12345678-1234-abcd-ef00-0123456789ab, the UUID of spoolss): such a table names another program's
        functions and is left out, with a conflict row.
        """
        matching = [(b, names) for b, names in tables if b.lower() == provider.lower()]
        for binary, names in tables:
            if not matching:
                self.conflicts.append(
                    ("operation-table", uuid, "", "", "impl_name", provider, "provider", binary, "akamai")
                )
            elif names != matching[0][1]:
                self.conflicts.append(
                    ("operation-table", uuid, "", "", "impl_name", matching[0][0], "akamai", binary, "akamai")
                )
        if matching:
            for opnum, name in enumerate(matching[0][1]):
                if name:  # binaries without symbols leave the slot unnamed
                    self.op(uuid, "", opnum).impl.append(Fact(name, "akamai", "akamai"))

    def resolve_iface(self, it: Iface, major: str, shown: str, zeek_owners: dict[str, set[str]]) -> list[str]:
        """Resolve the facts for one major version of an interface ("" = any version, the default row)."""
        version = major  # facts carry full versions; compare their major part

        def fmajor(f: Fact) -> str:
            return f.version.split(".")[0] if f.version else ""

        def applicable(facts: list[Fact]) -> list[Fact]:
            return [f for f in facts if fmajor(f) in ("", major)] if major else list(facts)

        def order(facts: list[Fact], rank: dict[str, int]) -> list[Fact]:
            # version-specific facts first (rule 1), then source rank
            return sorted(facts, key=lambda f: (0 if major and fmajor(f) == major else 1, rank[f.source]))

        names = order(applicable(it.names), NAME_RANK)
        if names and names[0].source == "suricata" and len(zeek_owners[names[0].value]) > 1:
            better = [f for f in names if f.source in ("curated", "dsinternals")]
            if better:
                names = [better[0]] + [f for f in names if f is not better[0]]
        specs = order(applicable(it.specs), SPEC_RANK)
        spec = specs[0].value if specs else ""
        providers = order(applicable(it.providers), PROVIDER_RANK)
        provider = providers[0].value if providers else ""
        if version:
            exact = [f for f in providers if fmajor(f) == version]
            if exact:
                provider = exact[0].value
        title = ""
        if spec and spec in self.spec_titles:
            title = self.spec_titles[spec][0]
        elif it.titles:
            title = it.titles[0].value
        if names:
            name, name_source = names[0].value, names[0].cite
        elif spec:
            name, name_source = spec.strip("[]"), "derived:spec"
        elif provider:
            name, name_source = provider.lower(), "derived:provider"
        else:
            name, name_source = "", ""
        if not version:
            self.record_iface_conflicts(it, name, names, spec, specs, provider, providers)
        aliases: list[str] = []
        for fct in names[1:] + applicable(it.aliases):
            if fct.value != name and fct.value not in aliases:
                aliases.append(fct.value)
        cites = set(it.cites)
        if name_source.startswith("derived:"):
            cites.add(name_source)
        return [
            it.uuid,
            shown,
            name,
            spec,
            title,
            provider,
            "|".join(aliases),
            "|".join(sorted(cites)),
            name_source,
        ]

    def record_iface_conflicts(
        self,
        it: Iface,
        name: str,
        names: list[Fact],
        spec: str,
        specs: list[Fact],
        provider: str,
        providers: list[Fact],
    ) -> None:
        chosen_name = names[0] if names else None
        for fct in names[1:]:
            if fct.source in IDENTIFIER_SOURCES and chosen_name and fct.value != name and not fct.version:
                self.conflicts.append(("name", it.uuid, "", "", "name", name, chosen_name.cite, fct.value, fct.cite))
        if specs:
            for fct in specs[1:]:
                if fct.value != spec:
                    self.conflicts.append(("spec", it.uuid, "", "", "spec", spec, specs[0].cite, fct.value, fct.cite))
        if providers:
            seen = {provider.lower()}
            for fct in providers[1:]:
                if fct.value.lower() not in seen and fct.source != providers[0].source:
                    seen.add(fct.value.lower())
                    self.conflicts.append(
                        (
                            "provider",
                            it.uuid,
                            fct.version,
                            "",
                            "provider",
                            provider,
                            providers[0].cite,
                            fct.value,
                            fct.cite,
                        )
                    )

    def resolve_op(self, uuid: str, version: str, opnum: int, op: Op) -> list[str]:
        spec = op.spec[0].value if op.spec else ""
        common = op.common[0].value if op.common else ""
        impl = op.impl[0].value if op.impl else ""
        if spec and common and not _same_op(spec, common):
            self.conflicts.append(
                ("operation", uuid, version, str(opnum), "name", spec, op.spec[0].cite, common, "suricata")
            )
        ref = spec or common
        ref_cite = op.spec[0].cite if spec else "suricata"
        if ref and impl and not _same_op(ref, impl) and not (common and _same_op(common, impl)):
            self.conflicts.append(("operation-impl", uuid, version, str(opnum), "name", ref, ref_cite, impl, "akamai"))
        aliases = [a.value for a in op.aliases if a.value not in (spec, common, impl)]
        cites = sorted({f.cite for f in op.spec + op.common + op.impl + op.aliases})
        return [
            uuid,
            version,
            str(opnum),
            spec,
            common,
            impl,
            "|".join(dict.fromkeys(aliases)),
            "|".join(sorted(op.attack)),
            "|".join(cites),
        ]

    # ---- output -----------------------------------------------------------------------------------------
    def render(self) -> dict[str, str]:
        for it in self.ifaces.values():
            for fct in it.names + it.specs + it.providers:
                self.check_value(fct.value, f"{it.uuid} ({fct.cite})")
        for (uuid, _v, opnum), op in self.ops.items():
            for fct in op.spec + op.common + op.impl + op.aliases:
                self.check_value(fct.value, f"{uuid} opnum {opnum} ({fct.cite})")
        iface_rows, op_rows = self.resolve()
        known = {r[0] for r in iface_rows}
        for pipe, uuid, _src in self.pipes:
            if uuid not in known:
                raise ValueError(f"pipes.tsv: {pipe} names unknown interface {uuid}")
        names_by_uuid = {r[0]: r[3] for r in iface_rows if r[1] == ""}
        pipe_rows = sorted(([p, u, names_by_uuid[u], s] for p, u, s in self.pipes), key=lambda r: (r[0].lower(), r[1]))
        conflicts = sorted(set(self.conflicts))
        return {
            "interfaces.tsv": _tsv(
                [
                    "uuid",
                    "major",
                    "version",
                    "name",
                    "spec",
                    "spec_title",
                    "provider",
                    "aliases",
                    "sources",
                    "name_source",
                ],
                iface_rows,
            ),
            "operations.tsv": _tsv(
                ["uuid", "version", "opnum", "spec_name", "common_name", "impl_name", "aliases", "attack", "sources"],
                op_rows,
            ),
            "pipes.tsv": _tsv(["pipe", "uuid", "name", "source"], pipe_rows),
            "status.tsv": _tsv(["code", "name", "kind", "source"], [list(r) for r in self.status]),
            "constants.tsv": _tsv(["kind", "value", "name", "source"], [list(r) for r in self.constants]),
            "conflicts.tsv": CONFLICT_HEADER
            + _tsv(
                [
                    "kind",
                    "uuid",
                    "version",
                    "opnum",
                    "field",
                    "chosen",
                    "chosen_source",
                    "other",
                    "other_source",
                ],
                [list(c) for c in conflicts],
            ),
        }


def _same_op(a: str, b: str) -> bool:
    x, y = a.lower(), b.lower()
    return x in y or y in x


def _version_key(v: str) -> tuple[int, int]:
    if not v:
        return (-1, -1)
    major, minor = v.split(".")
    return (int(major), int(minor))


def _tsv(header: list[str], rows: Iterable[list[str]]) -> str:
    out = io.StringIO()
    out.write("\t".join(header) + "\n")
    joined = {i for i, h in enumerate(header) if h in ("aliases", "sources", "attack")}
    for row in rows:
        for i, cell in enumerate(row):
            if "\t" in cell or "\n" in cell:
                raise ValueError(f"cell with a tab or newline: {cell!r}")
            if i in joined and cell and "" in cell.split("|"):
                raise ValueError(f"empty item in a |-joined cell: {cell!r}")
        out.write("\t".join(row) + "\n")
    return out.getvalue()


def build(input_dir: Path = DEFAULT_INPUT, sources_dir: Path = DEFAULT_SOURCES) -> dict[str, str]:
    """Return {file name: content} of a fresh build."""
    builder = Builder(input_dir, sources_dir)
    builder.load_all()
    return builder.render()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input_dir", nargs="?", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--sources", type=Path, default=DEFAULT_SOURCES)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if the shipped files differ from a build")
    args = parser.parse_args(argv)
    files = build(args.input_dir, args.sources)
    if args.check:
        stale = [n for n, text in files.items() if not (args.out / n).exists() or (args.out / n).read_text() != text]
        for n in stale:
            print(f"stale: {args.out / n}", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for n, text in files.items():
        (args.out / n).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
