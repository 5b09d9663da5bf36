"""Late naming: the interface of a conversation whose bind the capture did not show, from what the
whole run learned. Applied when records become tables, so records already emitted (and perhaps
spilled to disk) are never changed: each call and connection is looked up as it is read.

A call on a context no bind named (`interface_source` unknown) takes its interface from, in order:
- an alter_context of the same conversation, seen later, that bound the same ctx_id and was
  accepted (`alter_context`) — [C706] 12.6.4.3: a context id keeps its abstract syntax;
- the endpoint book: an EPM answer (`epm`) or a bind_ack secondary address (`sec_addr`) for the
  conversation's server address and port, made at any time in the run (`EndpointBook.naming`).
A connection found by its PDUs alone (`midstream`) that such an EPM answer names gets `epm_frame`
and `epm_delay_s` from it; the delay is
negative when the answer came after the connection's first packet. Nothing known: nothing named.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from analyzer.book import SOURCE_EPM, Announcement, EndpointBook
from analyzer.model import (
    BY_MIDSTREAM,
    NCACN_HTTP,
    NCACN_IP_TCP,
    BindRecord,
    CallRecord,
    ConnectionRecord,
    Flow,
)

SOURCE_ALTER_CONTEXT = "alter_context"
_TRANSPORTS = {NCACN_IP_TCP: "tcp", NCACN_HTTP: "http"}
# Connections found by their PDUs alone (their bind, if any, was not seen): a link to an EPM answer is news.
_UNLINKED = (BY_MIDSTREAM,)

_FlowKey = tuple[str, int]  # (capture, stream)


class LateNames:
    """Built from a run's binds, connections and endpoint book; then `call` and `connection` give
    each record as it should appear in the tables."""

    def __init__(
        self, book: EndpointBook, binds: Iterable[BindRecord], connections: Iterable[ConnectionRecord]
    ) -> None:
        self._book = book
        # (capture, stream, ctx_id) -> accepted context items, in frame order
        self._contexts: dict[tuple[str, int, int], list[BindRecord]] = {}
        for b in binds:
            if b.ack_result == "acceptance":
                self._contexts.setdefault((b.flow.capture, b.flow.stream, b.ctx_id), []).append(b)
        self._starts: dict[_FlowKey, int] = {
            (c.flow.capture, c.flow.stream): c.first_ts
            for c in connections
            if c.flow.transport in _TRANSPORTS and c.epm_frame is None
        }
        self._named: dict[_FlowKey, Announcement | None] = {}

    def _announcement(self, flow: Flow) -> Announcement | None:
        key = (flow.capture, flow.stream)
        if key not in self._named:
            start = self._starts.get(key)
            transport = _TRANSPORTS.get(flow.transport)
            found = None
            if start is not None and transport is not None:
                found = self._book.naming((transport, flow.server_ip, flow.server_port), flow.client_ip, start)
            self._named[key] = found
        return self._named[key]

    def call(self, c: CallRecord) -> CallRecord:
        if c.interface_uuid is not None or c.flow.transport not in _TRANSPORTS:
            return c
        later = self._contexts.get((c.flow.capture, c.flow.stream, c.ctx_id), ())
        b = next((b for b in later if b.frame > c.frame and b.pdu_type == "alter_context"), None)
        if b is not None:
            return dataclasses.replace(
                c,
                interface_uuid=b.interface_uuid,
                if_major=b.if_major,
                if_minor=b.if_minor,
                interface_source=SOURCE_ALTER_CONTEXT,
            )
        a = self._announcement(c.flow)
        if a is None:
            return c
        return dataclasses.replace(
            c, interface_uuid=a.interface_uuid, if_major=a.if_major, if_minor=a.if_minor, interface_source=a.source
        )

    def connection(self, conn: ConnectionRecord) -> ConnectionRecord:
        if conn.epm_frame is not None or conn.identified_by not in _UNLINKED:
            return conn
        a = self._announcement(conn.flow)
        if a is None or a.source != SOURCE_EPM:
            return conn
        return dataclasses.replace(
            conn,
            epm_capture=a.capture,
            epm_frame=a.frame,
            epm_client_ip=a.client_ip,
            epm_delay_s=round((conn.first_ts - a.ts) / 1e9, 6),
        )
