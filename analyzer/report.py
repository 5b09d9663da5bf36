"""Records -> pandas DataFrames: the only module that uses pandas.

One explicit schema (column -> dtype) per table, in a stable column order; an empty table still has
its columns and dtypes. Names (interfaces, operations, statuses, auth) are looked up here, once per
distinct key, from the registry. The per-host view is a group-by over the other tables.

Dtypes: text columns are pandas "string", integers nullable "Int64", fractions "Float64", flags
"boolean", times "datetime64[ns, UTC]". Missing is <NA>/NaT, never an empty string.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import pandas as pd

from analyzer import registry
from analyzer.dcerpc.epm import EPM_OPERATIONS
from analyzer.flowid import flow_ids
from analyzer.localise import localise
from analyzer.model import CallRecord, Flow
from analyzer.naming import LateNames
from analyzer.records import Records

STR = "string"
INT = "Int64"
FLOAT = "Float64"
BOOL = "boolean"
TIME = "datetime64[ns, UTC]"
_MAX_TS_NS = (1 << 63) - 1  # the last nanosecond datetime64[ns] holds (analyzer.capture.reader.MAX_TS_NS)

_FLOW = {
    "client_ip": STR,
    "client_port": INT,
    "server_ip": STR,
    "server_port": INT,
    "transport": STR,
    "pipe_name": STR,
    "stream": INT,
}

BINDS: dict[str, str] = {
    "capture": STR,
    "frame": INT,
    "ts": TIME,
    **_FLOW,
    "pdu_type": STR,
    "call_id": INT,
    "ctx_id": INT,
    "interface_uuid": STR,
    "interface_version": STR,
    "interface_name": STR,
    "transfer_syntax": STR,
    "ack_result": STR,
    "ack_reason": STR,
    "ack_frame": INT,
    "ack_transfer_syntax": STR,
    "sec_addr": STR,
    "max_xmit_frag": INT,
    "max_recv_frag": INT,
    "assoc_group": STR,
    "auth_type": STR,
    "auth_level": STR,
    "identified_by": STR,
    "uid": STR,
    "community_id": STR,
}

ENDPOINTS: dict[str, str] = {
    "capture": STR,
    "frame": INT,
    "ts": TIME,
    "epm_server_ip": STR,
    "epm_server_port": INT,
    "client_ip": STR,
    "client_port": INT,
    "transport": STR,
    "epm_pipe": STR,
    "stream": INT,
    "call_id": INT,
    "epm_opnum": INT,
    "epm_operation": STR,
    "request_frame": INT,
    "tower_index": INT,
    "object_uuid": STR,
    "interface_uuid": STR,
    "interface_version": STR,
    "interface_name": STR,
    "transfer_syntax": STR,
    "protocol": STR,
    "port": INT,
    "host": STR,
    "announced_host": STR,
    "pipe_name": STR,
    "endpoint": STR,
    "annotation": STR,
    "floors": STR,
    "status": STR,
    "entry_handle": STR,
}

CALLS: dict[str, str] = {
    "capture": STR,
    "frame": INT,
    "ts": TIME,
    **_FLOW,
    "call_id": INT,
    "ctx_id": INT,
    "interface_uuid": STR,
    "interface_version": STR,
    "interface_name": STR,
    "interface_source": STR,
    "opnum": INT,
    "operation": STR,
    "object_uuid": STR,
    "request_bytes": INT,
    "request_fragments": INT,
    "response_frame": INT,
    "response_bytes": INT,
    "response_fragments": INT,
    "status": STR,
    "fault_code": STR,
    "return_status": STR,
    "rtt_s": FLOAT,
    "auth_type": STR,
    "auth_level": STR,
    "user": STR,
    "domain": STR,
    "workstation": STR,
    "encrypted": BOOL,
    "first_frame": INT,
    "activity_uuid": STR,
    "seqnum": INT,
    "return_code": INT,
    "arguments": STR,
    "arguments_json": STR,
    "attack": STR,
    "uid": STR,
    "community_id": STR,
}

CONNECTIONS: dict[str, str] = {
    "capture": STR,
    "stream": INT,
    "transport": STR,
    "client_ip": STR,
    "client_port": INT,
    "server_ip": STR,
    "server_port": INT,
    "pipe_name": STR,
    "identified_by": STR,
    "first_frame": INT,
    "first_ts": TIME,
    "last_frame": INT,
    "last_ts": TIME,
    "duration_s": FLOAT,
    "epm_capture": STR,
    "epm_frame": INT,
    "epm_client_ip": STR,
    "epm_delay_s": FLOAT,
    "packets": INT,
    "client_bytes": INT,
    "server_bytes": INT,
    "pdus": INT,
    "binds": INT,
    "calls": INT,
    "faults": INT,
    "interfaces": STR,
    "gaps": INT,
    "violations": INT,
    "end": STR,
    "detail": STR,
    "midstream": BOOL,
    "uid": STR,
    "community_id": STR,
}

# TCP connection attempts to RPC ports that never became DCE/RPC conversations (issue 9 contract).
ATTEMPTS: dict[str, str] = {
    "capture": STR,
    "frame": INT,
    "ts": TIME,
    "client_ip": STR,
    "client_port": INT,
    "server_ip": STR,
    "server_port": INT,
    "outcome": STR,
}

HOSTS: dict[str, str] = {
    "host": STR,
    "role": STR,
    "captures": STR,
    "interfaces": STR,
    "interface_uuids": STR,
    "specs": STR,
    "transports": STR,
    "ports": STR,
    "dynamic_ports": STR,
    "pipes": STR,
    "peers": STR,
    "peer_count": INT,
    "connections": INT,
    "binds": INT,
    "accepted": INT,
    "rejected": INT,
    "calls": INT,
    "faults": INT,
    "epm_endpoints": INT,
    "auth_levels": STR,
    "users": STR,
    "first_seen": TIME,
    "last_seen": TIME,
}

VIOLATIONS: dict[str, str] = {
    "capture": STR,
    "frame": INT,
    "stream": INT,
    "layer": STR,
    "what": STR,
    "detail": STR,
    "occurrences": INT,
    "first_frame": INT,
    "last_frame": INT,
}

CAPTURES: dict[str, str] = {
    "capture": STR,
    "path": STR,
    "format": STR,
    "link_types": STR,
    "frames": INT,
    "bytes": INT,
    "first_ts": TIME,
    "last_ts": TIME,
    "truncated": BOOL,
    "error": STR,
}

SCHEMAS: dict[str, dict[str, str]] = {
    "binds": BINDS,
    "endpoints": ENDPOINTS,
    "calls": CALLS,
    "connections": CONNECTIONS,
    "hosts": HOSTS,
    "violations": VIOLATIONS,
    "captures": CAPTURES,
}


def frame(schema: dict[str, str], columns: dict[str, list[Any]]) -> pd.DataFrame:
    """A DataFrame with exactly the schema's columns, in order, with its dtypes."""
    data: dict[str, Any] = {}
    n = len(next(iter(columns.values()))) if columns else 0
    for col, dtype in schema.items():
        values = columns.get(col, [None] * n)
        if dtype == TIME:
            # 0 is the unknown time; the capture layer range-checks every time it reads, and anything
            # outside int64 here too becomes unknown rather than an OverflowError (issue 13).
            times = [v if v and 0 < v <= _MAX_TS_NS else None for v in values]
            data[col] = pd.to_datetime(pd.array(times, dtype="Int64"), unit="ns", utc=True)
        else:
            data[col] = pd.array(values, dtype=cast(Any, dtype))
    df: pd.DataFrame = pd.DataFrame(data, columns=list(schema))
    return df


def empty(name: str) -> pd.DataFrame:
    return frame(SCHEMAS[name], {})


class _Names:
    """Registry lookups memoised per distinct key: thousands of rows share a handful of UUIDs."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], str] = {}

    def _get(self, key: tuple[Any, ...], fn: Callable[[], str]) -> str:
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = fn()
        return v

    def interface(self, uuid: str | None, major: int | None) -> str | None:
        if uuid is None:
            return None
        return self._get(("i", uuid, major), lambda: registry.interface_name(uuid, major))

    def operation(self, uuid: str | None, major: int | None, opnum: int) -> str:
        if uuid is None:
            return f"opnum-{opnum}"
        return self._get(("o", uuid, major, opnum), lambda: registry.operation_name(uuid, major, opnum))

    def attack(self, uuid: str | None, major: int | None, opnum: int) -> str | None:
        """The registry's ATT&CK tags of an operation, ';'-joined; missing when it has none."""
        if uuid is None:
            return None
        key = ("a", uuid, major, opnum)
        if key not in self._cache:
            op = registry.operation_info(uuid, major, opnum)
            self._cache[key] = ";".join(op.attack) if op is not None else ""
        return self._cache[key] or None

    def syntax(self, uuid: str | None) -> str | None:
        if uuid is None:
            return None
        return self._get(("t", uuid), lambda: registry.transfer_syntax_name(uuid))

    def status(self, code: int | None, kind: str | None = None) -> str | None:
        if code is None:
            return None
        return self._get(("s", code, kind), lambda: registry.status_name(code, kind))

    def auth_type(self, n: int | None) -> str | None:
        if n is None:
            return None
        return self._get(("at", n), lambda: registry.auth_type_name(n))

    def auth_level(self, n: int | None) -> str | None:
        if n is None:
            return None
        return self._get(("al", n), lambda: registry.auth_level_name(n))


def _version(major: int | None, minor: int | None) -> str | None:
    if major is None:
        return None
    return f"{major}.{minor if minor is not None else 0}"


def _where(f: Flow, frame: int, ts: int) -> tuple[tuple[str, Any], ...]:
    """The columns that say where a bind or call was seen: capture, frame, time and its flow."""
    return (
        ("capture", f.capture),
        ("frame", frame),
        ("ts", ts),
        ("client_ip", f.client_ip),
        ("client_port", f.client_port),
        ("server_ip", f.server_ip),
        ("server_port", f.server_port),
        ("transport", f.transport),
        ("pipe_name", f.pipe),
        ("stream", f.stream),
    )


def _ids(f: Flow) -> tuple[tuple[str, Any], ...]:
    """The flow identifiers other tools pivot on (see `analyzer.flowid`)."""
    uid, cid = flow_ids(f)
    return (("uid", uid), ("community_id", cid))


def binds_frame(records: Records, names: _Names) -> pd.DataFrame:
    cols: dict[str, list[Any]] = defaultdict(list)
    for b in records.binds:
        f = b.flow
        row = (
            *_where(f, b.frame, b.ts),
            ("pdu_type", b.pdu_type),
            ("call_id", b.call_id),
            ("ctx_id", b.ctx_id),
            ("interface_uuid", b.interface_uuid),
            ("interface_version", _version(b.if_major, b.if_minor)),
            ("interface_name", names.interface(b.interface_uuid, b.if_major)),
            ("transfer_syntax", ";".join(names.syntax(t) or t for t in b.transfer_syntaxes) or None),
            ("ack_result", b.ack_result),
            ("ack_reason", b.ack_reason),
            ("ack_frame", b.ack_frame),
            ("ack_transfer_syntax", names.syntax(b.ack_transfer_syntax)),
            ("sec_addr", b.sec_addr),
            ("max_xmit_frag", b.max_xmit_frag),
            ("max_recv_frag", b.max_recv_frag),
            ("assoc_group", f"0x{b.assoc_group:08x}"),
            ("auth_type", names.auth_type(b.auth_type)),
            ("auth_level", names.auth_level(b.auth_level)),
            ("identified_by", b.identified_by),
            *_ids(f),
        )
        for k, v in row:
            cols[k].append(v)
    return frame(BINDS, cols)


def endpoints_frame(records: Records, names: _Names) -> pd.DataFrame:
    cols: dict[str, list[Any]] = defaultdict(list)
    for e in records.endpoints:
        f = e.flow
        row = (
            ("capture", f.capture),
            ("frame", e.frame),
            ("ts", e.ts),
            ("epm_server_ip", f.server_ip),
            ("epm_server_port", f.server_port),
            ("client_ip", f.client_ip),
            ("client_port", f.client_port),
            ("transport", f.transport),
            ("epm_pipe", f.pipe),
            ("stream", f.stream),
            ("call_id", e.call_id),
            ("epm_opnum", e.epm_opnum),
            ("epm_operation", EPM_OPERATIONS.get(e.epm_opnum)),
            ("request_frame", e.request_frame),
            ("tower_index", e.tower_index),
            ("object_uuid", e.object_uuid),
            ("interface_uuid", e.interface_uuid),
            ("interface_version", _version(e.if_major, e.if_minor)),
            ("interface_name", names.interface(e.interface_uuid, e.if_major)),
            ("transfer_syntax", names.syntax(e.transfer_syntax)),
            ("protocol", e.protocol),
            ("port", e.port),
            ("host", e.host),
            ("announced_host", e.announced_host),
            ("pipe_name", e.pipe),
            ("endpoint", e.endpoint),
            ("annotation", e.annotation),
            ("floors", e.floors),
            ("status", names.status(e.status)),
            ("entry_handle", e.entry_handle),
        )
        for k, v in row:
            cols[k].append(v)
    return frame(ENDPOINTS, cols)


# An operation's declared return type -> the registry's status kind (analyzer.stubs.registry).
_KINDS = {"win32": "win32", "ntstatus": "ntstatus", "hresult": "hresult"}


def call_status(c: CallRecord, names: _Names) -> str | None:
    """'ok' for a response, the fault's name for a fault, missing when nothing answered."""
    if c.fault_status is not None:
        return names.status(c.fault_status)
    return "ok" if c.answered else None


def calls_frame(records: Records, names: _Names, late: LateNames | None = None) -> pd.DataFrame:
    cols: dict[str, list[Any]] = defaultdict(list)
    for c in records.calls if late is None else map(late.call, records.calls):
        f = c.flow
        rtt = None
        if c.response_ts and c.ts and c.response_ts >= c.ts:  # 0 is an unknown time (capture.reader)
            rtt = round((c.response_ts - c.ts) / 1e9, 6)
        row = (
            *_where(f, c.frame, c.ts),
            ("call_id", c.call_id),
            ("ctx_id", c.ctx_id),
            ("interface_uuid", c.interface_uuid),
            ("interface_version", _version(c.if_major, c.if_minor)),
            ("interface_name", names.interface(c.interface_uuid, c.if_major)),
            ("interface_source", c.interface_source),
            ("opnum", c.opnum),
            ("operation", names.operation(c.interface_uuid, c.if_major, c.opnum)),
            ("object_uuid", c.object_uuid),
            ("request_bytes", c.request_bytes),
            ("request_fragments", c.request_fragments),
            ("response_frame", c.response_frame),
            ("response_bytes", c.response_bytes),
            ("response_fragments", c.response_fragments),
            ("status", call_status(c, names)),
            ("fault_code", f"0x{c.fault_status:08x}" if c.fault_status is not None else None),
            ("return_status", names.status(c.return_status, _KINDS.get(c.return_kind or ""))),
            ("rtt_s", rtt),
            ("auth_type", names.auth_type(c.auth_type)),
            ("auth_level", names.auth_level(c.auth_level)),
            ("user", c.user),
            ("domain", c.domain),
            ("workstation", c.workstation),
            ("encrypted", c.encrypted),
            ("first_frame", c.first_frame),
            ("activity_uuid", c.activity_uuid),
            ("seqnum", c.seqnum),
            ("return_code", c.return_status),
            ("arguments", c.arguments),
            ("arguments_json", c.arguments_json),
            ("attack", names.attack(c.interface_uuid, c.if_major, c.opnum)),
            *_ids(f),
        )
        for k, v in row:
            cols[k].append(v)
    return frame(CALLS, cols)


def _join(values: Iterable[Any]) -> str | None:
    """Distinct values, sorted by `list_order`, ';'-joined; missing when there are none."""
    out = sorted({str(v) for v in values if v is not None and v is not pd.NA and v == v}, key=list_order)
    return ";".join(out) if out else None


def connections_frame(records: Records, names: _Names, late: LateNames | None = None) -> pd.DataFrame:
    per: dict[tuple[str, int], dict[str, Any]] = defaultdict(
        lambda: {"binds": 0, "calls": 0, "faults": 0, "violations": 0, "interfaces": set()}
    )
    for b in records.binds:
        s = per[(b.flow.capture, b.flow.stream)]
        s["binds"] += 1
        if b.ack_result in ("acceptance", "none"):
            s["interfaces"].add(names.interface(b.interface_uuid, b.if_major))
    for c in records.calls if late is None else map(late.call, records.calls):
        s = per[(c.flow.capture, c.flow.stream)]
        s["calls"] += 1
        s["faults"] += c.fault_status is not None
        if c.interface_uuid is not None:
            s["interfaces"].add(names.interface(c.interface_uuid, c.if_major))
    for viol in records.violations:
        if viol.stream is not None:
            per[(viol.capture, viol.stream)]["violations"] += viol.count
    cols: dict[str, list[Any]] = defaultdict(list)
    nothing = {"binds": 0, "calls": 0, "faults": 0, "violations": 0, "interfaces": set()}
    for conn in records.connections if late is None else map(late.connection, records.connections):
        f = conn.flow
        s = per.get((f.capture, f.stream), nothing)  # not per[...]: a flood of empty ones adds no entries
        row = (
            ("capture", f.capture),
            ("stream", f.stream),
            ("transport", f.transport),
            ("client_ip", f.client_ip),
            ("client_port", f.client_port),
            ("server_ip", f.server_ip),
            ("server_port", f.server_port),
            ("pipe_name", f.pipe),
            ("identified_by", conn.identified_by),
            ("first_frame", conn.first_frame),
            ("first_ts", conn.first_ts),
            ("last_frame", conn.last_frame),
            ("last_ts", conn.last_ts),
            ("duration_s", round((conn.last_ts - conn.first_ts) / 1e9, 6) if conn.first_ts and conn.last_ts else None),
            ("epm_capture", conn.epm_capture),
            ("epm_frame", conn.epm_frame),
            ("epm_client_ip", conn.epm_client_ip),
            ("epm_delay_s", conn.epm_delay_s),
            ("packets", conn.packets),
            ("client_bytes", conn.client_bytes),
            ("server_bytes", conn.server_bytes),
            ("pdus", conn.pdus),
            ("binds", s["binds"]),
            ("calls", s["calls"]),
            ("faults", s["faults"]),
            ("interfaces", _join(s["interfaces"])),
            ("gaps", conn.gaps),
            ("violations", s["violations"]),
            ("end", conn.end),
            ("detail", conn.detail),
            ("midstream", conn.midstream),
            *_ids(f),
        )
        for k, v in row:
            cols[k].append(v)
    return frame(CONNECTIONS, cols)


@lru_cache(maxsize=65536)
def list_order(value: str) -> tuple[int, int, int, str]:
    """How the values of a `;`-joined list are ordered: numbers as numbers (80 before 135 before 49665,
    never 135, 445, 49665, 593, 80), then addresses in numeric order (10.0.0.5 before 10.0.0.10), then
    text."""
    if value.isdigit():
        return (0, 0, int(value), "")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return (2, 0, 0, value)
    return (1, ip.version, int(ip), "")


# Ports further apart than this are different ranges: 6004 (RPC over HTTP) and 49665-49670 (the
# Windows dynamic range) must not read as one range 6004-49670.
RANGE_GAP = 1024


def port_ranges(ports: Iterable[Any]) -> str | None:
    """Sorted distinct ports as `;`-joined ranges, a new range wherever two ports are RANGE_GAP or
    more apart: `6004;49665-49670`."""
    values = sorted({int(p) for p in ports if p is not None and p is not pd.NA and p == p})
    if not values:
        return None
    runs: list[list[int]] = [[values[0], values[0]]]
    for port in values[1:]:
        if port - runs[-1][1] < RANGE_GAP:
            runs[-1][1] = port
        else:
            runs.append([port, port])
    return ";".join(f"{lo}-{hi}" if lo != hi else f"{lo}" for lo, hi in runs)


def attempts_frame(records: Records) -> pd.DataFrame:
    """One row per connection attempt (SYN only, rejected, no PDU), in capture and frame order."""
    cols: dict[str, list[Any]] = defaultdict(list)
    for a in records.attempts:
        for k in ATTEMPTS:
            cols[k].append(getattr(a, k))
    return _sorted(localise(frame(ATTEMPTS, cols), "attempts", records.frame_maps), ["capture", "frame"])


def joined_columns(df: pd.DataFrame, keys: str | list[str], cols: dict[str, str], sep: str = ";") -> pd.DataFrame:
    """Per key (one column or several): for each output column, the distinct non-missing, non-empty
    values of its source column, sorted by `list_order` and sep-joined. `cols` maps output column -> source column.

    Plain Python in one pass over the rows: a group-by that joins per group costs a Python call per
    group and column anyway, and building one index for all columns is what makes it cheap."""
    keys = [keys] if isinstance(keys, str) else keys
    key_cols = [df[k].tolist() for k in keys]
    sources = {out: df[src].tolist() for out, src in cols.items()}
    values: dict[Any, dict[str, set[str]]] = {}
    na = pd.NA
    for i in range(len(df)):
        k = key_cols[0][i] if len(keys) == 1 else tuple(c[i] for c in key_cols)
        sets = values.get(k)
        if sets is None:
            sets = values[k] = {out: set() for out in cols}
        for out, vals in sources.items():
            v = vals[i]
            if v is not None and v is not na and v == v:
                text = str(v)
                if text:
                    sets[out].add(text)
    index = (
        pd.MultiIndex.from_tuples(list(values), names=keys)
        if len(keys) > 1 and values
        else pd.Index(list(values), name=keys[0] if len(keys) == 1 else None)
    )
    data = {
        out: pd.array(
            [sep.join(sorted(sets[out], key=list_order)) or None for sets in values.values()], dtype=cast(Any, STR)
        )
        for out in cols
    }
    table: pd.DataFrame = pd.DataFrame(data, index=index, columns=list(cols))
    return table


def joined(df: pd.DataFrame, keys: str | list[str], col: str, sep: str = ";") -> pd.Series:
    """`joined_columns` for one column."""
    out: pd.Series = joined_columns(df, keys, {col: col}, sep)[col]
    return out


def _spec(uuid: object) -> str | None:
    if not isinstance(uuid, str):
        return None
    info = registry.interface_info(uuid)
    return info.spec if info is not None else None


def hosts_frame(
    binds: pd.DataFrame, calls: pd.DataFrame, endpoints: pd.DataFrame, connections: pd.DataFrame
) -> pd.DataFrame:
    """Per host and role: the services it offered (server) or negotiated (client).

    Built from group-bys over the other tables: connections give the conversations, ports, peers and
    times; binds the context items and their answers; calls the calls, faults and identities.
    Interfaces are those accepted in a bind or used by a call.
    """
    if connections.empty:
        return empty("hosts")
    rejected = binds["ack_result"].isin(["user_rejection", "provider_rejection", "nak"])
    who = calls["user"].where(calls["domain"].isna(), calls["domain"] + "\\" + calls["user"])
    calls = calls.assign(identity=who, faulted=calls["fault_code"].notna())
    binds = binds.assign(accepted=binds["ack_result"] == "acceptance", rejected=rejected)
    parts = []
    for role, me, peer in (("server", "server_ip", "client_ip"), ("client", "client_ip", "server_ip")):
        conn = connections.rename(columns={me: "host"})
        b = binds.rename(columns={me: "host"})
        c = calls.rename(columns={me: "host"})
        used = pd.concat(
            [
                b.loc[b["accepted"], ["host", "interface_name", "interface_uuid"]],
                c[["host", "interface_name", "interface_uuid"]],
            ]
        )
        g = conn.groupby("host")
        out = pd.DataFrame(
            {
                "connections": g.size(),
                "peer_count": g[peer].nunique(),
                "first_seen": g["first_ts"].min(),
                "last_seen": g["last_ts"].max(),
            }
        )
        out["role"] = role
        conn_text = conn.assign(server_port=conn["server_port"].astype("Int64").astype("string"))
        out = out.join(
            joined_columns(
                conn_text,
                "host",
                {
                    "captures": "capture",
                    "transports": "transport",
                    "ports": "server_port",
                    "pipes": "pipe_name",
                    "peers": peer,
                },
            )
        )
        specs = {u: _spec(u) for u in used["interface_uuid"].dropna().unique()}
        out = out.join(
            joined_columns(
                used.assign(spec=used["interface_uuid"].map(specs)),
                "host",
                {"interfaces": "interface_name", "interface_uuids": "interface_uuid", "specs": "spec"},
            )
        )
        dyn = conn[conn["server_port"] >= 1024].groupby("host")["server_port"].agg(port_ranges)
        out["dynamic_ports"] = dyn.astype("string")
        levels = pd.concat([b[["host", "auth_level"]], c[["host", "auth_level"]]])
        out["auth_levels"] = joined(levels, "host", "auth_level")
        bg = b.groupby("host")
        out["binds"] = bg.size()
        out["accepted"] = bg["accepted"].sum()
        out["rejected"] = bg["rejected"].sum()
        cg = c.groupby("host")
        out["calls"] = cg.size()
        out["faults"] = cg["faulted"].sum()
        out["users"] = joined(c, "host", "identity")
        if role == "server" and not endpoints.empty:
            out["epm_endpoints"] = endpoints.groupby("epm_server_ip").size()
        parts.append(out.reset_index())
    df = pd.concat(parts, ignore_index=True)
    for col in ("binds", "accepted", "rejected", "calls", "faults", "epm_endpoints"):
        df[col] = df[col].fillna(0) if col in df else 0
    df = df.reindex(columns=list(HOSTS))
    for col, dtype in HOSTS.items():
        df[col] = df[col].astype(dtype)
    hosts: pd.DataFrame = df.sort_values(["host", "role"], ignore_index=True)
    return hosts


def violations_frame(records: Records) -> pd.DataFrame:
    cols: dict[str, list[Any]] = defaultdict(list)
    for v in records.violations:
        for k, val in (
            ("capture", v.capture),
            ("frame", v.frame),
            ("stream", v.stream),
            ("layer", v.layer),
            ("what", v.what),
            ("detail", v.detail),
            ("occurrences", v.count),
            ("first_frame", v.frame),
            ("last_frame", v.last_frame if v.last_frame is not None else v.frame),
        ):
            cols[k].append(val)
    return frame(VIOLATIONS, cols)


def captures_frame(records: Records) -> pd.DataFrame:
    cols: dict[str, list[Any]] = defaultdict(list)
    for c in records.captures:
        for k, val in (
            ("capture", c.capture),
            ("path", c.path),
            ("format", c.format),
            ("link_types", c.link_types or None),
            ("frames", c.frames),
            ("bytes", c.bytes),
            ("first_ts", c.first_ts),
            ("last_ts", c.last_ts),
            ("truncated", c.truncated),
            ("error", c.error),
        ):
            cols[k].append(val)
    return frame(CAPTURES, cols)


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys, kind="stable", ignore_index=True) if not df.empty else df


@dataclass
class Tables:
    """One DataFrame per table; empty frames keep their columns and dtypes."""

    binds: pd.DataFrame
    endpoints: pd.DataFrame
    calls: pd.DataFrame
    connections: pd.DataFrame
    hosts: pd.DataFrame
    violations: pd.DataFrame
    captures: pd.DataFrame

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        return [(name, getattr(self, name)) for name in SCHEMAS]


def build(records: Records) -> Tables:
    """All tables from the records of one run, each sorted by capture and frame."""
    names = _Names()
    # Interfaces of conversations whose bind was not seen, from what the whole run learned.
    late = LateNames(records.book, records.binds, records.connections)
    maps = records.frame_maps  # multi-file sessions: rows named by file and local frame

    def local(df: pd.DataFrame, table: str) -> pd.DataFrame:
        return localise(df, table, maps)

    binds = _sorted(local(binds_frame(records, names), "binds"), ["capture", "frame", "ctx_id"])
    endpoints = _sorted(local(endpoints_frame(records, names), "endpoints"), ["capture", "frame", "tower_index"])
    calls = _sorted(local(calls_frame(records, names, late), "calls"), ["capture", "frame", "call_id"])
    connections = _sorted(local(connections_frame(records, names, late), "connections"), ["capture", "stream"])
    hosts = hosts_frame(binds, calls, endpoints, connections)
    violations = _sorted(local(violations_frame(records), "violations"), ["capture", "frame"])
    return Tables(binds, endpoints, calls, connections, hosts, violations, captures_frame(records))
