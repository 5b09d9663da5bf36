"""rpc_http_v1.pcap: RPC over HTTP v1 (samples/README.md)."""

from __future__ import annotations

from ..wire.assoc import Assoc, TcpChannel
from ..wire.capture import Capture, save_pcap
from ..wire.dcerpc import CtxItem
from ..wire.epm import Tower, ept_map_request, ept_map_response, record_towers
from ..wire.http import BANNER
from ..wire.ids import NDR
from ..wire.stubs import nspi_bind_req, nspi_bind_resp
from ..wire.tcp import TcpFlow


def make_rpc_http_v1() -> None:
    cap = Capture(
        "rpc_http_v1.pcap",
        "RPC over HTTP version 1 ([MS-RPCH] 2.1.1): the endpoint mapper on TCP 593 greets with the "
        "ncacn_http/1.0 banner, answers an ept_map with an ncacn_http tower (port 6004), and the NSPI "
        "session on 6004 (banner again, then ordinary bind/bind_ack/request/response).",
        seed=91,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49788, srv, 593)
    f.handshake()
    f.send("s", BANNER, "banner ncacn_http/1.0")
    ch = TcpChannel(f, transport="ncacn_http")
    a = Assoc(cap, ch, assoc_group=0x9101)
    a.bind(1, [CtxItem(0, "epmapper", [NDR])], sec_addr="593")
    towers = [Tower("nspi", "ncacn_http", port=6004, ip="10.0.0.10")]
    rf, pf = a.call(
        2, 0, 3, ept_map_request(True, "nspi", proto="ncacn_http"), ept_map_response(True, towers), name="ept_map"
    )
    assert pf is not None
    record_towers(cap, ch, pf, rf, 2, 3, towers)
    f.close()
    cap.wait(2)
    f = TcpFlow(cap, ws, 49789, srv, 6004)
    f.handshake()
    f.send("s", BANNER, "banner ncacn_http/1.0")
    a = Assoc(cap, TcpChannel(f, transport="ncacn_http"), assoc_group=0x9102)
    a.extra["tshark_skip"] = "tshark 4.0 dissects TCP port 6004 as X11 (its 6000-6063 range)"
    a.bind(1, [CtxItem(0, "nspi", [NDR])], sec_addr="6004")
    a.call(
        2,
        0,
        0,
        nspi_bind_req(cap.rng),
        nspi_bind_resp(cap.rng, "5e1f0a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b"),
        name="NspiBind",
    )
    f.close()
    cap.man["banners"] = [
        {"frame": i + 1, "text": BANNER.decode()} for i, fr in enumerate(cap.frames) if fr.data.endswith(BANNER)
    ]
    cap.man.note(
        "the NSPI session is on TCP 6004, which tshark 4.0 dissects as X11 (ports 6000-6063): its bind and "
        "call are marked tshark_skip. Forcing '-d tcp.port==6004,dcerpc' does not help either: the server's "
        "14-byte ncacn_http/1.0 banner is then taken for the start of a PDU. On the registered port 593 "
        "tshark skips the banner and dissects the rest."
    )
    save_pcap(cap)
