"""Records -> the base tables: each table declared once, as its columns (`report.columns.Column`).

A declaration gives each column's name, dtype and values, so the schema and the conversions cannot
drift apart: a column is a record's field (`_field`: in a chunk its Arrow array as it is) or made of
some fields by one function (`_derived`: called once per distinct combination of values in a chunk,
or for a row from its record). Names (interfaces, operations, statuses, auth) are looked up here,
once per distinct key, from the registry (`report.names`). `report.builder.Builder` says what each
table is made of; `report.spooled` reads the tables through it, in chunks of `CHUNK_ROWS` records,
each table in its `ORDER`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.dcerpc.epm import EPM_OPERATIONS
from analyzer.model import (
    BindRecord,
    CallRecord,
    CaptureSummary,
    ConnectionRecord,
    EndpointRecord,
    Violation,
)
from analyzer.report.columns import BOOL, FLOAT, INT, STR, TIME, Column, Schema, frame, schema
from analyzer.report.connstats import ConnStats
from analyzer.report.flowid import (
    IN_C,
    community_id,
    community_id_array,
    connection_uid,
    transport_protocol,
    uid_array,
)
from analyzer.report.names import Names
from analyzer.report.vector import Batch, ints, known, seconds

CHUNK_ROWS = 4096  # records converted to one frame at a time: a chunk's objects are all that is transient


def _version(major: int | None, minor: int | None) -> str | None:
    if major is None:
        return None
    return f"{major}.{minor if minor is not None else 0}"


def _itself(row: Any) -> Any:
    return row


def _path(path: str) -> Callable[[Any], Any]:
    """A record's field by its spooled name: `frame`, or `flow.client_ip` for its flow's."""
    head, _, tail = path.partition(".")
    if tail:
        return lambda r: getattr(getattr(r, head), tail)
    return lambda r: getattr(r, head)


def _field(name: str, dtype: str, path: str | None = None, of: Callable[[Any], Any] = _itself) -> Column[Any, Any]:
    """A column that is a record's field (`path`, the column's name when None; `of` finds the record
    in a row): in a chunk, the field's Arrow array as it is."""
    field = path or name
    value = _path(field)
    return Column(name, dtype, lambda r, n: value(of(r)), lambda b, n: b[field])


def _derived(
    name: str,
    dtype: str,
    fn: Callable[..., Any],
    *paths: str,
    of: Callable[[Any], Any] = _itself,
    bulk: Callable[..., Any] | None = None,
    every_row: bool = False,
) -> Column[Any, Any]:
    """A column made of some fields by `fn(names, *values)`: for a row from its record, for a chunk
    once per distinct combination of the values (`report.vector.Batch.distinct`), or by `bulk` of
    them all at once when given (an Arrow array per field in, one out, equal to `fn`'s values):
    of the distinct combinations, or of every row when `every_row` (a `bulk` cheaper per row than
    finding the distinct ones)."""
    values = [_path(p) for p in paths]

    def get(row: Any, names: Any) -> Any:
        rec = of(row)
        return fn(names, *(v(rec) for v in values))

    if bulk is not None and every_row:
        return Column(name, dtype, get, lambda b, n: bulk(*(b[p] for p in paths)))
    if bulk is not None:
        return Column(name, dtype, get, lambda b, n: b.distinct_columns(bulk, paths, dtype))
    return Column(name, dtype, get, lambda b, n: b.distinct(lambda *v: fn(n, *v), paths, dtype))


def _flow_columns(of: Callable[[Any], Any] = _itself) -> list[Column[Any, Names]]:
    """Where a bind or call was seen: its flow's addresses, transport, pipe and stream."""
    return [
        _field("client_ip", STR, "flow.client_ip", of),
        _field("client_port", INT, "flow.client_port", of),
        _field("server_ip", STR, "flow.server_ip", of),
        _field("server_port", INT, "flow.server_port", of),
        _field("transport", STR, "flow.transport", of),
        _field("pipe_name", STR, "flow.pipe", of),
        _field("stream", INT, "flow.stream", of),
    ]


def _seen() -> list[Column[Any, Names]]:
    """capture, frame and time of a record, then its flow."""
    return [
        _field("capture", STR, "flow.capture"),
        _field("frame", INT),
        _field("ts", TIME),
        *_flow_columns(),
    ]


# What names a connection for its flow ids: the transport protocol, both addresses and ports, its opening
# (the Community ID leaves the opening out; sharing the fields, a chunk groups its rows by flow once).
_FLOW_ID = (
    "flow.transport",
    "flow.client_ip",
    "flow.client_port",
    "flow.server_ip",
    "flow.server_port",
    "flow.opened_ts",
)


def _uid(n: Any, transport: str, cip: str, cport: int, sip: str, sport: int, opened: int) -> str:
    return connection_uid(transport_protocol(transport), cip, cport, sip, sport, opened)


def _community(n: Any, transport: str, cip: str, cport: int, sip: str, sport: int, _opened: int) -> str | None:
    return community_id(transport_protocol(transport), cip, cport, sip, sport)


def _uids(transport: Any, cip: Any, cport: Any, sip: Any, sport: Any, opened: Any) -> Any:
    return uid_array(transport, cip, cport, sip, sport, opened)


def _communities(transport: Any, cip: Any, cport: Any, sip: Any, sport: Any, _opened: Any) -> Any:
    return community_id_array(transport, cip, cport, sip, sport)


def _ids(of: Callable[[Any], Any] = _itself) -> list[Column[Any, Names]]:
    """The flow identifiers other tools pivot on (see `analyzer.report.flowid`): for a chunk, all
    at once, of every row in C (about 0.65 us a row for both: less than grouping the rows by flow
    costs), else of its distinct flows."""
    return [
        _derived("uid", STR, _uid, *_FLOW_ID, of=of, bulk=_uids, every_row=IN_C),
        _derived("community_id", STR, _community, *_FLOW_ID, of=of, bulk=_communities, every_row=IN_C),
    ]


def _version_column(of: Callable[[Any], Any] = _itself) -> Column[Any, Names]:
    return _derived(
        "interface_version", STR, lambda n, major, minor: _version(major, minor), "if_major", "if_minor", of=of
    )


def _interface_name() -> Column[Any, Names]:
    return _derived(
        "interface_name", STR, lambda n, uuid, major: n.interface(uuid, major), "interface_uuid", "if_major"
    )


def _syntaxes(b: BindRecord, n: Names) -> str | None:
    return ";".join(n.syntax(t) or t for t in b.transfer_syntaxes) or None


def _syntaxes_vector(b: Batch, n: Names) -> Any:
    """`_syntaxes` of a chunk: each distinct offered syntax named once, the lists joined in Arrow."""
    offered = b["transfer_syntaxes"]
    flat = offered.flatten()
    named = pa.array([n.syntax(t) or t for t in flat.unique().to_pylist()], type=pa.string())
    offsets = pc.subtract(offered.offsets, offered.offsets[0])
    lists = pa.ListArray.from_arrays(offsets, named.take(pc.index_in(flat, flat.unique())))
    joined = pc.binary_join(lists, ";")
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)


BIND_COLUMNS: list[Column[BindRecord, Names]] = [
    *_seen(),
    _field("pdu_type", STR),
    _field("call_id", INT),
    _field("ctx_id", INT),
    _field("interface_uuid", STR),
    _version_column(),
    _interface_name(),
    Column("transfer_syntax", STR, _syntaxes, _syntaxes_vector),
    _field("ack_result", STR),
    _field("ack_reason", STR),
    _field("ack_frame", INT),
    _derived("ack_transfer_syntax", STR, lambda n, t: n.syntax(t), "ack_transfer_syntax"),
    _field("sec_addr", STR),
    _field("max_xmit_frag", INT),
    _field("max_recv_frag", INT),
    _derived("assoc_group", STR, lambda n, g: f"0x{g:08x}", "assoc_group"),
    _derived("auth_type", STR, lambda n, t: n.auth_type(t), "auth_type"),
    _derived("auth_level", STR, lambda n, level: n.auth_level(level), "auth_level"),
    _field("identified_by", STR),
    *_ids(),
]

ENDPOINT_COLUMNS: list[Column[EndpointRecord, Names]] = [
    _field("capture", STR, "flow.capture"),
    _field("frame", INT),
    _field("ts", TIME),
    _field("epm_server_ip", STR, "flow.server_ip"),
    _field("epm_server_port", INT, "flow.server_port"),
    _field("client_ip", STR, "flow.client_ip"),
    _field("client_port", INT, "flow.client_port"),
    _field("transport", STR, "flow.transport"),
    _field("epm_pipe", STR, "flow.pipe"),
    _field("stream", INT, "flow.stream"),
    _field("call_id", INT),
    _field("epm_opnum", INT),
    _derived("epm_operation", STR, lambda n, op: EPM_OPERATIONS.get(op), "epm_opnum"),
    _field("request_frame", INT),
    _field("tower_index", INT),
    _field("object_uuid", STR),
    _field("interface_uuid", STR),
    _version_column(),
    _interface_name(),
    _derived("transfer_syntax", STR, lambda n, t: n.syntax(t), "transfer_syntax"),
    _field("protocol", STR),
    _field("port", INT),
    _field("host", STR),
    _field("announced_host", STR),
    _field("pipe_name", STR, "pipe"),
    _field("endpoint", STR),
    _field("annotation", STR),
    _field("floors", STR),
    _derived("status", STR, lambda n, code: n.status(code), "status"),
    _field("entry_handle", STR),
]

# An operation's declared return type -> the registry's status kind (analyzer.stubs.registry).
_KINDS = {"win32": "win32", "ntstatus": "ntstatus", "hresult": "hresult"}


def _call_status(names: Names, fault_status: int | None, answered: bool) -> str | None:
    """'ok' for a response, the fault's name for a fault, missing when nothing answered."""
    if fault_status is not None:
        return names.status(fault_status)
    return "ok" if answered else None


def _rtt(c: CallRecord) -> float | None:
    if c.response_ts and c.ts and c.response_ts >= c.ts:  # 0 is an unknown time (capture.reader)
        return round((c.response_ts - c.ts) / 1e9, 6)
    return None


def _rtt_vector(b: Batch, n: Names) -> Any:
    later, earlier = b["response_ts"], b["ts"]
    keep = known(later) & known(earlier) & (ints(later) >= ints(earlier))
    return seconds(later, earlier, keep)


CALL_COLUMNS: list[Column[CallRecord, Names]] = [
    *_seen(),
    _field("call_id", INT),
    _field("ctx_id", INT),
    _field("interface_uuid", STR),
    _version_column(),
    _interface_name(),
    _field("interface_source", STR),
    _field("opnum", INT),
    _derived("operation", STR, lambda n, u, m, op: n.operation(u, m, op), "interface_uuid", "if_major", "opnum"),
    _field("object_uuid", STR),
    _field("request_bytes", INT),
    _field("request_fragments", INT),
    _field("response_frame", INT),
    _field("response_bytes", INT),
    _field("response_fragments", INT),
    _derived("status", STR, _call_status, "fault_status", "answered"),
    _derived("fault_code", STR, lambda n, f: f"0x{f:08x}" if f is not None else None, "fault_status"),
    _derived("return_status", STR, lambda n, s, k: n.status(s, _KINDS.get(k or "")), "return_status", "return_kind"),
    Column("rtt_s", FLOAT, lambda c, n: _rtt(c), _rtt_vector),
    _derived("auth_type", STR, lambda n, t: n.auth_type(t), "auth_type"),
    _derived("auth_level", STR, lambda n, level: n.auth_level(level), "auth_level"),
    _field("user", STR),
    _field("domain", STR),
    _field("workstation", STR),
    _field("encrypted", BOOL),
    _field("first_frame", INT),
    _field("activity_uuid", STR),
    _field("seqnum", INT),
    _field("return_code", INT, "return_status"),
    _field("arguments", STR),
    _field("arguments_json", STR),
    _derived("attack", STR, lambda n, u, m, op: n.attack(u, m, op), "interface_uuid", "if_major", "opnum"),
    *_ids(),
]


_ConnRow = tuple[ConnectionRecord, ConnStats]


def _duration(c: ConnectionRecord) -> float | None:
    return round((c.last_ts - c.first_ts) / 1e9, 6) if c.first_ts and c.last_ts else None


def _duration_vector(b: Batch, n: Names) -> Any:
    return seconds(b["last_ts"], b["first_ts"], known(b["last_ts"]) & known(b["first_ts"]))


def _record(row: _ConnRow) -> ConnectionRecord:
    return row[0]


def _conn(name: str, dtype: str, path: str | None = None) -> Column[_ConnRow, Names]:
    return _field(name, dtype, path, _record)


def _total(name: str, dtype: str) -> Column[_ConnRow, Names]:
    """What the connection's binds, calls and violations add (`report.connstats`): a chunk's `name` column."""
    return Column(name, dtype, lambda r, n: getattr(r[1], name), lambda b, n: b[name])


CONNECTION_COLUMNS: list[Column[_ConnRow, Names]] = [
    _conn("capture", STR, "flow.capture"),
    _conn("stream", INT, "flow.stream"),
    _conn("transport", STR, "flow.transport"),
    _conn("client_ip", STR, "flow.client_ip"),
    _conn("client_port", INT, "flow.client_port"),
    _conn("server_ip", STR, "flow.server_ip"),
    _conn("server_port", INT, "flow.server_port"),
    _conn("pipe_name", STR, "flow.pipe"),
    _conn("identified_by", STR),
    _conn("first_frame", INT),
    _conn("first_ts", TIME),
    _conn("last_frame", INT),
    _conn("last_ts", TIME),
    Column("duration_s", FLOAT, lambda r, n: _duration(r[0]), _duration_vector),
    _conn("epm_capture", STR),
    _conn("epm_frame", INT),
    _conn("epm_client_ip", STR),
    _conn("epm_delay_s", FLOAT),
    _conn("packets", INT),
    _conn("client_bytes", INT),
    _conn("server_bytes", INT),
    _conn("pdus", INT),
    _total("binds", INT),
    _total("calls", INT),
    _total("faults", INT),
    _total("interfaces", STR),
    _conn("gaps", INT),
    _total("violations", INT),
    _conn("end", STR),
    _conn("detail", STR),
    _conn("midstream", BOOL),
    *_ids(_record),
]


def _last_frame(b: Batch, _: None) -> Any:
    return pc.coalesce(b["last_frame"], b["frame"])


VIOLATION_COLUMNS: list[Column[Violation, None]] = [
    _field("capture", STR),
    _field("frame", INT),
    _field("stream", INT),
    _field("layer", STR),
    _field("what", STR),
    _field("detail", STR),
    _field("occurrences", INT, "count"),
    _field("first_frame", INT, "frame"),
    Column("last_frame", INT, lambda v, _: v.last_frame if v.last_frame is not None else v.frame, _last_frame),
]

CAPTURE_COLUMNS: list[Column[CaptureSummary, None]] = [  # kept in memory, row by row: no `vector`
    Column("capture", STR, lambda c, _: c.capture),
    Column("path", STR, lambda c, _: c.path),
    Column("format", STR, lambda c, _: c.format),
    Column("link_types", STR, lambda c, _: c.link_types or None),
    Column("frames", INT, lambda c, _: c.frames),
    Column("bytes", INT, lambda c, _: c.bytes),
    Column("first_ts", TIME, lambda c, _: c.first_ts),
    Column("last_ts", TIME, lambda c, _: c.last_ts),
    Column("truncated", BOOL, lambda c, _: c.truncated),
    Column("error", STR, lambda c, _: c.error),
]

BINDS = schema(BIND_COLUMNS)
ENDPOINTS = schema(ENDPOINT_COLUMNS)
CALLS = schema(CALL_COLUMNS)
CONNECTIONS = schema(CONNECTION_COLUMNS)
VIOLATIONS = schema(VIOLATION_COLUMNS)
CAPTURES = schema(CAPTURE_COLUMNS)

# The per-host table (`report.hosts`): for each host as server and as client, what it offered or used.
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

SCHEMAS: dict[str, Schema] = {
    "binds": BINDS,
    "endpoints": ENDPOINTS,
    "calls": CALLS,
    "connections": CONNECTIONS,
    "hosts": HOSTS,
    "violations": VIOLATIONS,
    "captures": CAPTURES,
}

# How each table's rows are ordered (a stable sort: equal keys keep the order records were made in).
ORDER: dict[str, list[str]] = {
    "binds": ["capture", "frame", "ctx_id"],
    "endpoints": ["capture", "frame", "tower_index"],
    "calls": ["capture", "frame", "call_id"],
    "connections": ["capture", "stream"],
    "violations": ["capture", "frame"],
    "attempts": ["capture", "frame"],
}


def empty(name: str) -> pd.DataFrame:
    return frame(SCHEMAS[name], {})


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
