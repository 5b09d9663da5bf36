"""Conversations several samples repeat: an ept_map exchange on TCP 135 and a one-call session."""

from __future__ import annotations

from ..wire.assoc import Assoc, TcpChannel
from ..wire.capture import Capture
from ..wire.dcerpc import CtxItem
from ..wire.epm import Tower, ept_map_request, ept_map_response, record_towers
from ..wire.ids import NDR
from ..wire.tcp import TcpFlow


def epm_map_exchange(cap: Capture, flow: TcpFlow, iface: str, towers: list[Tower], assoc_group: int) -> None:
    """bind to the endpoint mapper and one ept_map whose answer announces `towers`; then FIN."""
    flow.handshake()
    ch = TcpChannel(flow)
    a = Assoc(cap, ch, assoc_group=assoc_group)
    a.bind(1, [CtxItem(0, "epmapper", [NDR])], sec_addr="135")
    rf, pf = a.call(2, 0, 3, ept_map_request(True, iface), ept_map_response(True, towers), name="ept_map")
    assert pf is not None
    record_towers(cap, ch, pf, rf, 2, 3, towers)
    flow.close()


def simple_session(
    cap: Capture,
    flow: TcpFlow,
    iface: str,
    opnum: int,
    req: bytes,
    resp: bytes,
    name: str,
    assoc_group: int,
    close: bool = True,
) -> Assoc:
    """bind (one NDR context) + bind_ack + one request/response on an already chosen port."""
    flow.handshake()
    a = Assoc(cap, TcpChannel(flow), assoc_group=assoc_group)
    a.bind(1, [CtxItem(0, iface, [NDR])], sec_addr=str(flow.sport))
    a.call(2, 0, opnum, req, resp, name=name)
    if close:
        flow.close()
    return a
