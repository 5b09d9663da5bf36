"""The endpoint learner: what the endpoint mapper and bind_acks teach the run, and what it answers.

Two kinds of announcement say where an interface listens ([C706] Appendix L, 12.6.4.4): an EPM
answer's towers (ept_map / ept_lookup: transport, address, port) and an accepted bind_ack's
secondary address (the port the association runs on). `EndpointLearner` writes them into the run's
`EndpointBook` and makes the packet selector let that port through from then on; the classifier
asks it `announced()`: who announced this server address and port before a connection began.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Protocol

from analyzer.book import Announcement, EndpointBook
from analyzer.capture.decode import Selector
from analyzer.model import BY_EPM, BY_SEC_ADDR, NCACN_IP_TCP, BindRecord, EndpointRecord, Flow

# The book's transport names, by the endpoint mapper's protocol names.
_TRANSPORTS = {"ncacn_ip_tcp": "tcp", "ncadg_ip_udp": "udp", "ncacn_http": "http"}
_BIND_FIELDS = [f.name for f in fields(BindRecord)]
# Where a bind row holds what `bind_ack` reads (its flow is first).
_FRAME, _TS, _IF_UUID, _IF_MAJOR, _IF_MINOR, _RESULT, _ACK_FRAME, _SEC_ADDR = (
    _BIND_FIELDS.index(n)
    for n in ("frame", "ts", "interface_uuid", "if_major", "if_minor", "ack_result", "ack_frame", "sec_addr")
)


class _Reporter(Protocol):
    capture: str

    def violation(self, flow: Flow | None, frame: int | None, layer: str, what: str, detail: str) -> None: ...


class EndpointLearner:
    """The run's book of announced endpoints, and the selector ports it opens."""

    def __init__(self, book: EndpointBook, selector: Selector) -> None:
        self.book = book
        self._selector = selector

    def epm_tower(self, out: _Reporter, rec: EndpointRecord) -> None:
        """A tower of an EPM answer: its transport, host and port are an endpoint."""
        transport = _TRANSPORTS.get(rec.protocol or "")
        if not rec.port or rec.host is None or transport is None:
            return
        a = Announcement(
            out.capture, rec.frame, rec.ts, rec.flow.client_ip, rec.interface_uuid, rec.if_major, rec.if_minor, BY_EPM
        )
        self._learn(out, transport, rec.host, rec.port, a)

    def bind_ack(self, out: _Reporter, row: tuple[Any, ...]) -> None:
        """A bind item (its row: `BindRecord`'s fields in order, `co_bind.bind_rows`) answered with a
        secondary address ([C706] 12.6.4.4: the port the server listens on) on ncacn_ip_tcp: that
        port is an endpoint of the interface, unless it is the conversation's own and already known."""
        flow, addr = row[0], row[_SEC_ADDR]  # the rest read only for an endpoint learned
        if not (addr and addr.isdigit() and flow.transport == NCACN_IP_TCP and row[_RESULT] == "acceptance"):
            return
        port = int(addr)
        if not 0 < port < 65536 or (port == flow.server_port and ("tcp", flow.server_ip, port) in self.book):
            return
        a = Announcement(
            out.capture,
            row[_ACK_FRAME] or row[_FRAME],
            row[_TS],
            flow.client_ip,
            row[_IF_UUID],
            row[_IF_MAJOR],
            row[_IF_MINOR],
            BY_SEC_ADDR,
        )
        self._learn(out, "tcp", flow.server_ip, port, a)

    def _learn(self, out: _Reporter, transport: str, ip: str, port: int, a: Announcement) -> None:
        forgotten = self.book.learn((transport, ip, port), a)
        if forgotten is not None:
            _t, old_ip, old_port = forgotten
            out.violation(None, a.frame, "limits", "cap_learned_endpoints", f"{old_ip}:{old_port} forgotten")
        if transport in ("tcp", "http"):
            self._selector.tcp_ports.add(port)
        else:
            self._selector.udp_ports.add(port)

    def announced(
        self, transport: str, ip: str, port: int, client_ip: str, ts: int
    ) -> tuple[str, Announcement | None] | None:
        """(identified_by, the EPM answer) for a connection to an endpoint the book knows from
        before `ts` (an answer can only lead to a connection that starts after it): the answer
        given to this client, else the latest to anyone; a secondary address links no answer.
        None when nothing announced it."""
        found = self.book.before((transport, ip, port), ts)
        if not found:
            return None
        epm = [a for a in found if a.source == BY_EPM]
        if not epm:
            return BY_SEC_ADDR, None
        mine = [a for a in epm if a.client_ip == client_ip]
        return BY_EPM, (mine or epm)[-1]
