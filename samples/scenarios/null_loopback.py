"""null_loopback.pcap: LINKTYPE_NULL (samples/README.md)."""

from __future__ import annotations

from ..wire.capture import Capture, save_pcap
from ..wire.epm import Tower
from ..wire.link import link_null
from ..wire.tcp import TcpFlow
from .sessions import epm_map_exchange


def make_null_loopback() -> None:
    cap = Capture(
        "null_loopback.pcap",
        "An EPM lookup over the loopback interface of a BSD/macOS host: "
        "LINKTYPE_NULL (0) with a 4-byte address family header, 127.0.0.1 on both ends.",
        seed=66,
        linktype=0,
    )
    lo = cap.h["lo"]
    f = TcpFlow(cap, lo, 49758, lo, 135, link=link_null)
    epm_map_exchange(cap, f, "svcctl", [Tower("svcctl", "ncacn_ip_tcp", port=49667, ip="127.0.0.1")], 0x6601)
    save_pcap(cap)
