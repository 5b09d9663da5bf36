"""Name registry: interface UUIDs, operations, named pipes, status codes and protocol constants -> names.

A UUID means nothing to an analyst; ``svcctl [MS-SCMR] RCreateServiceW`` does. The tables shipped in
``analyzer/registry/data/`` are built by ``tools/build_registry.py`` from public tables (Zeek/Suricata,
impacket, Akamai's scrape of Windows binaries, MITRE BZAR, DSInternals) and hand-curated facts taken from the
specifications ([MS-*], [C706]); every entry says which source(s) it came from, and disagreements between sources
are listed in ``data/conflicts.tsv`` with the rule that resolved them.

Owns the loaded tables and the overrides (this module), the shipped tables' parser and records (``tables``), the
override file parser (``overrides``) and the browsing rows of ``rpc-analyzer names`` (``query``). A leaf: it
imports nothing from ``analyzer`` outside this package, so any layer may ask it for a name.

API (the rest of the analyzer only uses these names):

    interface_name(uuid, major=None) -> str
        Short name in Zeek/Sigma vocabulary ("svcctl", "epmapper", ...); never fails: "unknown-<uuid>" when the
        UUID is not known.
    interface_info(uuid, major=None) -> InterfaceInfo | None
        uuid, version ("major.minor" or None), name, spec ("[MS-SCMR]" or None), spec_title, provider (Windows
        binary or None), sources (tuple of source ids).
    operation_name(uuid, major, opnum) -> str
        The specification's name where one exists, else the common (Zeek) name, else the implementation name
        (Akamai's dispatch table); "opnum-N" when unknown.
    operation_names(uuid, major, opnum) -> tuple[str, ...]
        Every known name, specification name first ("RCreateServiceW", "CreateServiceW").
    pipe_interfaces(pipe) -> tuple[str, ...]
        UUIDs served on a well-known named pipe; accepts "\\PIPE\\lsarpc", "\\pipe\\lsarpc", "lsarpc".
    status_name(code, kind=None) -> str, status_names(code, kind=None) -> tuple[str, ...]
        nca_s_* / rpc_s_* / EPT_S_* / Win32 / NTSTATUS / HRESULT names; "0x%08x" when unknown; `kind`
        (win32 | ntstatus | hresult) puts names of that type first.
    auth_type_name(n), auth_level_name(n), floor_protocol_name(n), ptype_name(n) -> str   ("unknown-N")
    transfer_syntax_name(uuid) -> str   ("ndr", "ndr64", "bind_time_feature_negotiation", else the uuid)
    load_overrides(path) -> None

Lookups accept upper- or lower-case UUIDs (braces allowed) and key on (uuid, interface major version, opnum),
falling back to the uuid alone when the version is unknown (None) or not listed. The data files are read once,
lazily, at the first lookup.

User overrides: a CSV file with the header ``uuid,version,name,spec,provider,opnum,operation`` (every column but
uuid optional; lines starting with # are comments). A row with an opnum names that operation; a row without one
names (or re-specifies) the interface. An empty version applies to every version. Override entries win over the
shipped ones, and a later file wins over an earlier one. At the first lookup the registry reads, if present:
``$RPC_ANALYZER_NAMES`` when that variable is set (the file must then exist), else
``$XDG_CONFIG_HOME/rpc-analyzer/names.csv`` (``~/.config/rpc-analyzer/names.csv`` when XDG_CONFIG_HOME is unset).
A bad file raises ValueError("FILE:LINE: why").
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from analyzer.registry.overrides import IfaceOverride, merge_override, read_overrides
from analyzer.registry.tables import InterfaceInfo, OperationInfo, Tables, norm_uuid, pipe_key

__all__ = [
    "InterfaceInfo",
    "OperationInfo",
    "auth_level_name",
    "auth_type_name",
    "constant_name",
    "floor_protocol_name",
    "interface_aliases",
    "interface_info",
    "interface_name",
    "interface_pipes",
    "load_overrides",
    "operation_info",
    "operation_name",
    "operation_names",
    "pipe_interfaces",
    "ptype_name",
    "status_name",
    "status_names",
    "transfer_syntax_name",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
CONFIG_ENV = "RPC_ANALYZER_NAMES"


_lock = threading.RLock()
_tables: Tables | None = None
_iface_overrides: dict[tuple[str, int | None], IfaceOverride] = {}
_op_overrides: dict[tuple[str, int | None, int], tuple[str, str]] = {}


def _data() -> Tables:
    global _tables
    if _tables is None:
        with _lock:
            if _tables is None:
                tables = Tables(DATA_DIR)
                config = _config_path()
                if config is not None:
                    _apply_overrides(config)
                _tables = tables
    return _tables


def _config_path() -> Path | None:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    candidate = Path(base) / "rpc-analyzer" / "names.csv"
    try:
        return candidate if candidate.is_file() else None
    except OSError:  # an unreadable ~/.config is no names file, not a crash
        return None


def _reset() -> None:
    """Forget the loaded tables and every override (tests, or after changing the configuration)."""
    global _tables
    with _lock:
        _tables = None
        _iface_overrides.clear()
        _op_overrides.clear()


# ---- interfaces ----------------------------------------------------------------------------------------------


def interface_info(uuid: str, major: int | None = None) -> InterfaceInfo | None:
    """Facts about an interface: the entry for (uuid, major) if listed, else the entry for the uuid."""
    t = _data()
    u = norm_uuid(uuid)
    if u is None:
        return None
    base = t.by_major.get((u, major)) if major is not None else None
    if base is None:
        base = t.interfaces.get(u)
    ov_any = _iface_overrides.get((u, None))
    ov_major = _iface_overrides.get((u, major)) if major is not None else None
    if base is None and ov_any is None and ov_major is None:
        # an interface known only from a version-specific override: any version will do
        majors = sorted(m for ou, m in _iface_overrides if ou == u and m is not None)
        if majors and (major is None or major not in majors):
            major = majors[0]
            ov_major = _iface_overrides[(u, major)]
    if ov_any is None and ov_major is None:
        return base
    name = base.name if base else f"unknown-{u}"
    spec = base.spec if base else None
    provider = base.provider if base else None
    sources = list(base.sources) if base else []
    for ov in (ov_any, ov_major):
        if ov is None:
            continue
        name = ov.name or name
        spec = ov.spec or spec
        provider = ov.provider or provider
        if ov.source not in sources:
            sources.append(ov.source)
    version = base.version if base else (f"{major}.0" if ov_major is not None and major is not None else None)
    title = base.spec_title if base and spec == base.spec else None
    return InterfaceInfo(u, version, name, spec, title, provider, tuple(sources))


def interface_name(uuid: str, major: int | None = None) -> str:
    """Short interface name; "unknown-<uuid>" when the UUID is not known."""
    info = interface_info(uuid, major)
    if info is not None:
        return info.name
    u = norm_uuid(uuid)
    return f"unknown-{u if u is not None else uuid.strip().lower()}"


def interface_aliases(uuid: str) -> tuple[str, ...]:
    """Other names the sources give the interface (Zeek's, the specification's, seed and annotation texts)."""
    u = norm_uuid(uuid)
    return _data().aliases.get(u, ()) if u else ()


def interface_pipes(uuid: str) -> tuple[str, ...]:
    """Well-known named pipes the interface is served on."""
    u = norm_uuid(uuid)
    return tuple(_data().pipes_of.get(u, ())) if u else ()


# ---- operations ----------------------------------------------------------------------------------------------


def operation_info(uuid: str, major: int | None, opnum: int) -> OperationInfo | None:
    """The shipped entry for (uuid, major, opnum), else for (uuid, opnum); overrides are not included."""
    t = _data()
    u = norm_uuid(uuid)
    if u is None:
        return None
    row = t.ops.get((u, major, opnum)) if major is not None else None
    if row is None:
        row = t.ops.get((u, None, opnum))
    return _op_from_row(row) if row is not None else None


def _op_from_row(row: list[str]) -> OperationInfo:
    uuid, version, opnum, spec_n, common, impl, aliases, attack, sources = row
    return OperationInfo(
        uuid,
        version or None,
        int(opnum),
        spec_n or None,
        common or None,
        impl or None,
        tuple(aliases.split("|")) if aliases else (),
        tuple(attack.split("|")) if attack else (),
        tuple(sources.split("|")) if sources else (),
    )


def operation_names(uuid: str, major: int | None, opnum: int) -> tuple[str, ...]:
    """All known names of an operation, the specification's first; an override, when there is one, leads."""
    op = operation_info(uuid, major, opnum)
    names = list(op.names) if op is not None else []
    u = norm_uuid(uuid)
    if u is not None:
        for key in ((u, None, opnum), (u, major, opnum)) if major is not None else ((u, None, opnum),):
            ov = _op_overrides.get(key)
            if ov is not None:
                if ov[0] in names:
                    names.remove(ov[0])
                names.insert(0, ov[0])
    return tuple(names)


def operation_name(uuid: str, major: int | None, opnum: int) -> str:
    """Specification name where one exists, else the common or implementation name; "opnum-N" when unknown."""
    names = operation_names(uuid, major, opnum)
    return names[0] if names else f"opnum-{opnum}"


# ---- pipes, status codes, constants -----------------------------------------------------------------------------


def pipe_interfaces(pipe: str) -> tuple[str, ...]:
    """UUIDs served on a well-known named pipe ("\\PIPE\\lsarpc", "\\pipe\\lsarpc" or "lsarpc")."""
    return tuple(_data().pipes.get(pipe_key(pipe), ()))


def _preferred_kinds(code: int) -> tuple[str, ...]:
    if 0x1C000000 <= code <= 0x1C01FFFF:
        return ("nca",)
    if 0x16C9A000 <= code <= 0x16C9AFFF:
        return ("dce",)
    if code < 0x10000:
        return ("win32", "nca", "ntstatus")
    if code >= 0xC0000000:
        return ("ntstatus",)
    if code >= 0x80000000:
        return ("hresult", "ntstatus")
    return ("ntstatus",)


def status_names(code: int, kind: str | None = None) -> tuple[str, ...]:
    """Every name of a status or fault code, the primary one first. `kind` (win32, ntstatus,
    hresult) is the code's type when the caller knows it (an operation's declared return type):
    names of that kind come first, e.g. 0 is STATUS_SUCCESS as an NTSTATUS, S_OK as an HRESULT."""
    code &= 0xFFFFFFFF
    rows = _data().status.get(code, [])
    order = _preferred_kinds(code)
    if kind is not None:
        order = (kind, *(k for k in order if k != kind))
    ranked = sorted(rows, key=lambda r: order.index(r[1]) if r[1] in order else len(order))
    return tuple(name for name, _kind in ranked)


def status_name(code: int, kind: str | None = None) -> str:
    """Name of a status or fault code; "0x%08x" when unknown."""
    names = status_names(code, kind)
    return names[0] if names else f"0x{code & 0xFFFFFFFF:08x}"


def constant_name(kind: str, value: int) -> str:
    """Name of a protocol constant (kinds: auth_type, auth_level, floor_protocol, ptype, bind_result,
    bind_reason, bind_nak_reason); "unknown-N" when unknown."""
    return _data().constants.get(kind, {}).get(value, f"unknown-{value}")


def auth_type_name(n: int) -> str:
    """[MS-RPCE] 2.2.1.1.7 security provider: "ntlmssp", "spnego", "kerberos", "netlogon", ..."""
    return constant_name("auth_type", n)


def auth_level_name(n: int) -> str:
    """[MS-RPCE] 2.2.1.1.8 authentication level: "connect", "integrity", "privacy", ..."""
    return constant_name("auth_level", n)


def floor_protocol_name(n: int) -> str:
    """Endpoint-mapper tower floor protocol identifier ([C706] Appendix I, [MS-RPCE] 2.2.1.2)."""
    return constant_name("floor_protocol", n)


def ptype_name(n: int) -> str:
    """DCE/RPC packet type ([C706] 12.6.4, 14.3.9): "request", "bind_ack", ..."""
    return constant_name("ptype", n)


def transfer_syntax_name(uuid: str) -> str:
    """Name of a transfer syntax ("ndr", "ndr64", "bind_time_feature_negotiation"); the uuid when unknown."""
    t = _data()
    u = norm_uuid(uuid)
    if u is None:
        return uuid
    if u in t.syntaxes:
        return t.syntaxes[u]
    for prefix, name in t.syntax_prefixes:
        if u.startswith(prefix):
            return name
    return u


# ---- overrides ----------------------------------------------------------------------------------------------


def load_overrides(path: str | os.PathLike[str]) -> None:
    """Read a user CSV of names (see the module docstring); its entries win over the shipped ones."""
    _data()
    _apply_overrides(Path(path))


def _apply_overrides(path: Path) -> None:
    ifaces, ops = read_overrides(path)
    with _lock:
        for key, ov in ifaces.items():
            _iface_overrides[key] = merge_override(_iface_overrides.get(key), ov)
        _op_overrides.update(ops)


# ---- whole-table access for analyzer.registry.query ---------------------------------------------------------------


def _all_uuids() -> list[str]:
    t = _data()
    extra = {u for u, _m in _iface_overrides} | {u for u, _m, _o in _op_overrides}
    return sorted(set(t.interfaces) | extra)


def _operations_of(uuid: str) -> list[OperationInfo]:
    u = norm_uuid(uuid)
    if u is None:
        return []
    t = _data()
    ops = {(op.version, op.opnum): op for op in map(_op_from_row, t.ops_by_uuid.get(u, []))}
    for (ou, major, opnum), (name, source) in _op_overrides.items():
        if ou != u:
            continue
        version = f"{major}.0" if major is not None else None
        base = ops.get((version, opnum)) or ops.get((None, opnum))
        aliases = tuple(n for n in (base.names if base else ()) if n != name)
        ops[(version, opnum)] = OperationInfo(
            u,
            version,
            opnum,
            name,
            base.common_name if base else None,
            base.impl_name if base else None,
            aliases,
            base.attack if base else (),
            (*(base.sources if base else ()), source),
        )
    return sorted(ops.values(), key=lambda o: (o.opnum, o.version or ""))


def _operation_name_index(uuid: str) -> list[str]:
    """Every operation name of an interface, shipped and overridden (a cheap pre-filter for searches)."""
    names: list[str] = []
    for row in _data().ops_by_uuid.get(uuid, []):
        names.extend(n for n in row[3:6] if n)
        if row[6]:
            names.extend(row[6].split("|"))
    names.extend(name for (u, _m, _o), (name, _s) in _op_overrides.items() if u == uuid)
    return names


def _all_pipes() -> dict[str, tuple[str, ...]]:
    t = _data()
    return {t.pipe_display[k]: tuple(v) for k, v in t.pipes.items()}
