"""ipv6_session.pcap: EPM and netlogon over IPv6 with extension headers (samples/README.md)."""

from __future__ import annotations

from ..wire.capture import Capture, save_pcap
from ..wire.epm import Tower
from ..wire.stubs import netr_req_challenge
from ..wire.tcp import TcpFlow
from .sessions import epm_map_exchange, simple_session


def make_ipv6_session() -> None:
    cap = Capture(
        "ipv6_session.pcap",
        "Over IPv6, with a Destination Options extension header on every client "
        "packet: EPM lookup for netlogon (tower floor 5 says 0.0.0.0: use the server's address), then the "
        "netlogon session on the announced port.",
        seed=64,
    )
    ws, dc = cap.h["ws01"], cap.h["dc01"]
    f = TcpFlow(cap, ws, 49755, dc, 135, ip6=True, ext_hdr=True)
    epm_map_exchange(cap, f, "netlogon", [Tower("netlogon", "ncacn_ip_tcp", port=49671, ip="0.0.0.0")], 0x6401)
    f = TcpFlow(cap, ws, 49756, dc, 49671, ip6=True, ext_hdr=True)
    simple_session(
        cap,
        f,
        "netlogon",
        4,
        netr_req_challenge(cap.rng, "WS01"),
        cap.rng.randbytes(8) + b"\0\0\0\0",
        "NetrServerReqChallenge",
        0x6402,
    )
    cap.man["epm_towers"][0]["effective_host_ip"] = dc.ip6
    save_pcap(cap)
