"""Records -> the base tables: each table declared once, as its columns (`report.columns.Column`).

A declaration gives each column's name, dtype and value (got from a record and the run's memoised
`Names`), so the schema and the row conversion cannot drift apart. Names (interfaces, operations,
statuses, auth) are looked up here, once per distinct key, from the registry. `Builder.declaration`
says what each table is made of (its columns, its records, what a chunk of them becomes as rows:
late-named calls, connections with their totals); `report.spooled` reads the tables through it, in
chunks of `CHUNK_ROWS` records, each table in its `ORDER`.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from analyzer.dcerpc.epm import EPM_OPERATIONS
from analyzer.model import (
    BY_MIDSTREAM,
    BindRecord,
    CallRecord,
    CaptureSummary,
    ConnectionRecord,
    EndpointRecord,
    Flow,
    Violation,
)
from analyzer.records import Records, Spool
from analyzer.report.attempts import ATTEMPT_COLUMNS
from analyzer.report.columns import BOOL, FLOAT, INT, STR, TIME, Column, Schema, frame, schema
from analyzer.report.connstats import NOTHING, ConnStats, ConnTotals
from analyzer.report.flowid import flow_ids
from analyzer.report.memory import use_system_pool
from analyzer.report.names import Names
from analyzer.report.naming import LateNames

CHUNK_ROWS = 4096  # records converted to one frame at a time: a chunk's objects are all that is transient

_Flowed = BindRecord | CallRecord | EndpointRecord


def _version(major: int | None, minor: int | None) -> str | None:
    if major is None:
        return None
    return f"{major}.{minor if minor is not None else 0}"


def _flow_columns(flow: Any = lambda r: r.flow) -> list[Column[Any, Names]]:
    """Where a bind or call was seen: its flow's addresses, transport, pipe and stream."""
    return [
        Column("client_ip", STR, lambda r, n: flow(r).client_ip),
        Column("client_port", INT, lambda r, n: flow(r).client_port),
        Column("server_ip", STR, lambda r, n: flow(r).server_ip),
        Column("server_port", INT, lambda r, n: flow(r).server_port),
        Column("transport", STR, lambda r, n: flow(r).transport),
        Column("pipe_name", STR, lambda r, n: flow(r).pipe),
        Column("stream", INT, lambda r, n: flow(r).stream),
    ]


def _seen(flow: Any = lambda r: r.flow) -> list[Column[Any, Names]]:
    """capture, frame and time of a record, then its flow."""
    return [
        Column("capture", STR, lambda r, n: flow(r).capture),
        Column("frame", INT, lambda r, n: r.frame),
        Column("ts", TIME, lambda r, n: r.ts),
        *_flow_columns(flow),
    ]


def _ids(flow: Any = lambda r: r.flow) -> list[Column[Any, Names]]:
    """The flow identifiers other tools pivot on (see `analyzer.report.flowid`)."""
    return [
        Column("uid", STR, lambda r, n: flow_ids(flow(r))[0]),
        Column("community_id", STR, lambda r, n: flow_ids(flow(r))[1]),
    ]


BIND_COLUMNS: list[Column[BindRecord, Names]] = [
    *_seen(),
    Column("pdu_type", STR, lambda b, n: b.pdu_type),
    Column("call_id", INT, lambda b, n: b.call_id),
    Column("ctx_id", INT, lambda b, n: b.ctx_id),
    Column("interface_uuid", STR, lambda b, n: b.interface_uuid),
    Column("interface_version", STR, lambda b, n: _version(b.if_major, b.if_minor)),
    Column("interface_name", STR, lambda b, n: n.interface(b.interface_uuid, b.if_major)),
    Column("transfer_syntax", STR, lambda b, n: ";".join(n.syntax(t) or t for t in b.transfer_syntaxes) or None),
    Column("ack_result", STR, lambda b, n: b.ack_result),
    Column("ack_reason", STR, lambda b, n: b.ack_reason),
    Column("ack_frame", INT, lambda b, n: b.ack_frame),
    Column("ack_transfer_syntax", STR, lambda b, n: n.syntax(b.ack_transfer_syntax)),
    Column("sec_addr", STR, lambda b, n: b.sec_addr),
    Column("max_xmit_frag", INT, lambda b, n: b.max_xmit_frag),
    Column("max_recv_frag", INT, lambda b, n: b.max_recv_frag),
    Column("assoc_group", STR, lambda b, n: f"0x{b.assoc_group:08x}"),
    Column("auth_type", STR, lambda b, n: n.auth_type(b.auth_type)),
    Column("auth_level", STR, lambda b, n: n.auth_level(b.auth_level)),
    Column("identified_by", STR, lambda b, n: b.identified_by),
    *_ids(),
]

ENDPOINT_COLUMNS: list[Column[EndpointRecord, Names]] = [
    Column("capture", STR, lambda e, n: e.flow.capture),
    Column("frame", INT, lambda e, n: e.frame),
    Column("ts", TIME, lambda e, n: e.ts),
    Column("epm_server_ip", STR, lambda e, n: e.flow.server_ip),
    Column("epm_server_port", INT, lambda e, n: e.flow.server_port),
    Column("client_ip", STR, lambda e, n: e.flow.client_ip),
    Column("client_port", INT, lambda e, n: e.flow.client_port),
    Column("transport", STR, lambda e, n: e.flow.transport),
    Column("epm_pipe", STR, lambda e, n: e.flow.pipe),
    Column("stream", INT, lambda e, n: e.flow.stream),
    Column("call_id", INT, lambda e, n: e.call_id),
    Column("epm_opnum", INT, lambda e, n: e.epm_opnum),
    Column("epm_operation", STR, lambda e, n: EPM_OPERATIONS.get(e.epm_opnum)),
    Column("request_frame", INT, lambda e, n: e.request_frame),
    Column("tower_index", INT, lambda e, n: e.tower_index),
    Column("object_uuid", STR, lambda e, n: e.object_uuid),
    Column("interface_uuid", STR, lambda e, n: e.interface_uuid),
    Column("interface_version", STR, lambda e, n: _version(e.if_major, e.if_minor)),
    Column("interface_name", STR, lambda e, n: n.interface(e.interface_uuid, e.if_major)),
    Column("transfer_syntax", STR, lambda e, n: n.syntax(e.transfer_syntax)),
    Column("protocol", STR, lambda e, n: e.protocol),
    Column("port", INT, lambda e, n: e.port),
    Column("host", STR, lambda e, n: e.host),
    Column("announced_host", STR, lambda e, n: e.announced_host),
    Column("pipe_name", STR, lambda e, n: e.pipe),
    Column("endpoint", STR, lambda e, n: e.endpoint),
    Column("annotation", STR, lambda e, n: e.annotation),
    Column("floors", STR, lambda e, n: e.floors),
    Column("status", STR, lambda e, n: n.status(e.status)),
    Column("entry_handle", STR, lambda e, n: e.entry_handle),
]

# An operation's declared return type -> the registry's status kind (analyzer.stubs.registry).
_KINDS = {"win32": "win32", "ntstatus": "ntstatus", "hresult": "hresult"}


def call_status(c: CallRecord, names: Names) -> str | None:
    """'ok' for a response, the fault's name for a fault, missing when nothing answered."""
    if c.fault_status is not None:
        return names.status(c.fault_status)
    return "ok" if c.answered else None


def _rtt(c: CallRecord) -> float | None:
    if c.response_ts and c.ts and c.response_ts >= c.ts:  # 0 is an unknown time (capture.reader)
        return round((c.response_ts - c.ts) / 1e9, 6)
    return None


CALL_COLUMNS: list[Column[CallRecord, Names]] = [
    *_seen(),
    Column("call_id", INT, lambda c, n: c.call_id),
    Column("ctx_id", INT, lambda c, n: c.ctx_id),
    Column("interface_uuid", STR, lambda c, n: c.interface_uuid),
    Column("interface_version", STR, lambda c, n: _version(c.if_major, c.if_minor)),
    Column("interface_name", STR, lambda c, n: n.interface(c.interface_uuid, c.if_major)),
    Column("interface_source", STR, lambda c, n: c.interface_source),
    Column("opnum", INT, lambda c, n: c.opnum),
    Column("operation", STR, lambda c, n: n.operation(c.interface_uuid, c.if_major, c.opnum)),
    Column("object_uuid", STR, lambda c, n: c.object_uuid),
    Column("request_bytes", INT, lambda c, n: c.request_bytes),
    Column("request_fragments", INT, lambda c, n: c.request_fragments),
    Column("response_frame", INT, lambda c, n: c.response_frame),
    Column("response_bytes", INT, lambda c, n: c.response_bytes),
    Column("response_fragments", INT, lambda c, n: c.response_fragments),
    Column("status", STR, call_status),
    Column("fault_code", STR, lambda c, n: f"0x{c.fault_status:08x}" if c.fault_status is not None else None),
    Column("return_status", STR, lambda c, n: n.status(c.return_status, _KINDS.get(c.return_kind or ""))),
    Column("rtt_s", FLOAT, lambda c, n: _rtt(c)),
    Column("auth_type", STR, lambda c, n: n.auth_type(c.auth_type)),
    Column("auth_level", STR, lambda c, n: n.auth_level(c.auth_level)),
    Column("user", STR, lambda c, n: c.user),
    Column("domain", STR, lambda c, n: c.domain),
    Column("workstation", STR, lambda c, n: c.workstation),
    Column("encrypted", BOOL, lambda c, n: c.encrypted),
    Column("first_frame", INT, lambda c, n: c.first_frame),
    Column("activity_uuid", STR, lambda c, n: c.activity_uuid),
    Column("seqnum", INT, lambda c, n: c.seqnum),
    Column("return_code", INT, lambda c, n: c.return_status),
    Column("arguments", STR, lambda c, n: c.arguments),
    Column("arguments_json", STR, lambda c, n: c.arguments_json),
    Column("attack", STR, lambda c, n: n.attack(c.interface_uuid, c.if_major, c.opnum)),
    *_ids(),
]


_ConnRow = tuple[ConnectionRecord, ConnStats]


def _duration(c: ConnectionRecord) -> float | None:
    return round((c.last_ts - c.first_ts) / 1e9, 6) if c.first_ts and c.last_ts else None


def _conn_flow(row: _ConnRow) -> Flow:
    return row[0].flow


CONNECTION_COLUMNS: list[Column[_ConnRow, Names]] = [
    Column("capture", STR, lambda r, n: r[0].flow.capture),
    Column("stream", INT, lambda r, n: r[0].flow.stream),
    Column("transport", STR, lambda r, n: r[0].flow.transport),
    Column("client_ip", STR, lambda r, n: r[0].flow.client_ip),
    Column("client_port", INT, lambda r, n: r[0].flow.client_port),
    Column("server_ip", STR, lambda r, n: r[0].flow.server_ip),
    Column("server_port", INT, lambda r, n: r[0].flow.server_port),
    Column("pipe_name", STR, lambda r, n: r[0].flow.pipe),
    Column("identified_by", STR, lambda r, n: r[0].identified_by),
    Column("first_frame", INT, lambda r, n: r[0].first_frame),
    Column("first_ts", TIME, lambda r, n: r[0].first_ts),
    Column("last_frame", INT, lambda r, n: r[0].last_frame),
    Column("last_ts", TIME, lambda r, n: r[0].last_ts),
    Column("duration_s", FLOAT, lambda r, n: _duration(r[0])),
    Column("epm_capture", STR, lambda r, n: r[0].epm_capture),
    Column("epm_frame", INT, lambda r, n: r[0].epm_frame),
    Column("epm_client_ip", STR, lambda r, n: r[0].epm_client_ip),
    Column("epm_delay_s", FLOAT, lambda r, n: r[0].epm_delay_s),
    Column("packets", INT, lambda r, n: r[0].packets),
    Column("client_bytes", INT, lambda r, n: r[0].client_bytes),
    Column("server_bytes", INT, lambda r, n: r[0].server_bytes),
    Column("pdus", INT, lambda r, n: r[0].pdus),
    Column("binds", INT, lambda r, n: r[1].binds),
    Column("calls", INT, lambda r, n: r[1].calls),
    Column("faults", INT, lambda r, n: r[1].faults),
    Column("interfaces", STR, lambda r, n: r[1].interfaces),
    Column("gaps", INT, lambda r, n: r[0].gaps),
    Column("violations", INT, lambda r, n: r[1].violations),
    Column("end", STR, lambda r, n: r[0].end),
    Column("detail", STR, lambda r, n: r[0].detail),
    Column("midstream", BOOL, lambda r, n: r[0].midstream),
    *_ids(_conn_flow),
]

VIOLATION_COLUMNS: list[Column[Violation, None]] = [
    Column("capture", STR, lambda v, _: v.capture),
    Column("frame", INT, lambda v, _: v.frame),
    Column("stream", INT, lambda v, _: v.stream),
    Column("layer", STR, lambda v, _: v.layer),
    Column("what", STR, lambda v, _: v.what),
    Column("detail", STR, lambda v, _: v.detail),
    Column("occurrences", INT, lambda v, _: v.count),
    Column("first_frame", INT, lambda v, _: v.frame),
    Column("last_frame", INT, lambda v, _: v.last_frame if v.last_frame is not None else v.frame),
]

CAPTURE_COLUMNS: list[Column[CaptureSummary, None]] = [
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


# What late naming can change in a row (`report.naming`): a reader of none of these columns skips it.
_LATE_CALL = {"interface_uuid", "interface_version", "interface_name", "interface_source", "operation", "attack"}
_LATE_CONNECTION = {"epm_capture", "epm_frame", "epm_client_ip", "epm_delay_s"}
_TOTALS = {"binds", "calls", "faults", "interfaces", "violations"}  # a connection's ConnTotals


@dataclass(frozen=True)
class Declaration:
    """How one table is made: its columns, the records it comes from (a `records.Spool`, or a list),
    what a chunk of them becomes as rows for the columns read (`rows(records, columns)`), and the
    context its getters are given."""

    columns: Sequence[Column[Any, Any]]
    records: Any
    rows: Callable[[list[Any], set[str]], list[Any]]
    context: Any


def _same(recs: list[Any], _columns: set[str]) -> list[Any]:
    return recs


def _positions(spool: Spool[Any], fields: list[str], keep: Callable[..., bool]) -> np.ndarray:
    """Positions of the records whose `fields` satisfy `keep`, read from the fields alone."""
    out, at = array("q"), 0
    for batch in spool.fields(fields):
        for row in zip(*(batch[f] for f in fields), strict=True):
            if keep(*row):
                out.append(at)
            at += 1
    return np.frombuffer(out, dtype=np.int64) if out else np.zeros(0, dtype=np.int64)


def _taken(spool: Spool[Any], positions: np.ndarray) -> Iterator[Any]:
    for start in range(0, len(positions), CHUNK_ROWS):
        yield from spool.take(positions[start : start + CHUNK_ROWS])


class Builder:
    """The tables of one run's records: each table's `Declaration`, and the memoised names and late
    naming its rows share. `report.spooled.Spooled` reads the tables through it."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self.names = Names()
        use_system_pool()

    @cached_property
    def late(self) -> LateNames:
        """Interfaces of conversations whose bind was not seen, from what the whole run learned (only
        calls and connections need it). Late naming looks only at accepted alter_context items and at
        the connections a lookup can concern (midstream ones, those with a call on an unnamed
        context), so only those records are made, found from their fields: a flood of binds or
        connections costs a pass over a few columns here."""
        r = self.records
        binds, calls, conns = r.spool("binds"), r.spool("calls"), r.spool("connections")
        alters = _positions(binds, ["pdu_type"], lambda t: t == "alter_context")
        unnamed: set[tuple[str, int]] = set()
        for batch in calls.fields(["flow.capture", "flow.stream", "interface_uuid"]):
            keys = zip(batch["flow.capture"], batch["flow.stream"], batch["interface_uuid"], strict=True)
            unnamed.update((capture, stream) for capture, stream, uuid in keys if uuid is None)
        wanted = _positions(
            conns,
            ["identified_by", "flow.capture", "flow.stream"],
            lambda by, capture, stream: by == BY_MIDSTREAM or (capture, stream) in unnamed,
        )
        return LateNames(r.book, _taken(binds, alters), _taken(conns, wanted))

    @cached_property
    def totals(self) -> ConnTotals:
        return ConnTotals(self.records, self.names, self.late)

    def _calls(self, calls: list[CallRecord], columns: set[str]) -> list[Any]:
        return list(map(self.late.call, calls)) if columns & _LATE_CALL else calls

    def _connections(self, conns: list[ConnectionRecord], columns: set[str]) -> list[Any]:
        if columns & _LATE_CONNECTION:
            conns = list(map(self.late.connection, conns))
        stats = self.totals.rows(conns) if columns & _TOTALS else [NOTHING] * len(conns)
        return list(zip(conns, stats, strict=True))

    def declaration(self, table: str) -> Declaration:
        """How `table` is made (see `Declaration`)."""
        r, names = self.records, self.names
        if table == "captures":
            return Declaration(CAPTURE_COLUMNS, r.captures, _same, None)
        made: dict[str, tuple[Sequence[Column[Any, Any]], Any, Any]] = {
            "binds": (BIND_COLUMNS, _same, names),
            "endpoints": (ENDPOINT_COLUMNS, _same, names),
            "calls": (CALL_COLUMNS, self._calls, names),
            "connections": (CONNECTION_COLUMNS, self._connections, names),
            "violations": (VIOLATION_COLUMNS, _same, None),
            "attempts": (ATTEMPT_COLUMNS, _same, None),
        }
        columns, rows, context = made[table]
        return Declaration(columns, r.spool(table), rows, context)


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
