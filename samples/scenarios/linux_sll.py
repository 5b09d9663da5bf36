"""linux_sll.pcap and linux_sll2.pcap: Linux cooked captures (samples/README.md)."""

from __future__ import annotations

from ..wire.capture import Capture, save_pcap
from ..wire.epm import Tower
from ..wire.link import make_link_sll, make_link_sll2
from ..wire.stubs import TSCH_HIGHEST
from ..wire.tcp import TcpFlow
from .sessions import epm_map_exchange, simple_session


def make_linux_sll() -> None:
    cap = Capture(
        "linux_sll.pcap",
        "An EPM lookup captured with `tcpdump -i any` on the client: Linux cooked "
        "capture v1 (LINKTYPE_LINUX_SLL 113) headers instead of Ethernet.",
        seed=61,
        linktype=113,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49751, srv, 135, link=make_link_sll(ws))
    epm_map_exchange(cap, f, "atsvc_tsch", [Tower("atsvc_tsch", "ncacn_ip_tcp", port=49670, ip="10.0.0.10")], 0x6101)
    save_pcap(cap)


def make_linux_sll2() -> None:
    cap = Capture(
        "linux_sll2.pcap",
        "A Task Scheduler session on a dynamic port captured with Linux cooked "
        "capture v2 headers (LINKTYPE_LINUX_SLL2 276).",
        seed=62,
        linktype=276,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49752, srv, 49670, link=make_link_sll2(ws))
    op, req, resp, name = TSCH_HIGHEST
    simple_session(cap, f, "atsvc_tsch", op, req, resp, name, 0x6201)
    save_pcap(cap)
