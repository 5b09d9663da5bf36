"""vlan_qinq.pcap: 802.1Q and QinQ tags (samples/README.md)."""

from __future__ import annotations

from ..wire.capture import Capture, save_pcap
from ..wire.epm import Tower
from ..wire.link import make_link_vlan
from ..wire.ndr import Ndr
from ..wire.tcp import TcpFlow
from .sessions import epm_map_exchange, simple_session


def make_vlan_qinq() -> None:
    cap = Capture(
        "vlan_qinq.pcap",
        "Two sessions behind VLAN tags: an EPM lookup in 802.1Q VLAN 100 and the "
        "eventlog session it leads to in a QinQ frame (802.1ad S-tag 200 over C-tag 300).",
        seed=63,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49753, srv, 135, link=make_link_vlan([(0x8100, 100)]))
    epm_map_exchange(cap, f, "eventlog6", [Tower("eventlog6", "ncacn_ip_tcp", port=49665, ip="10.0.0.10")], 0x6301)
    f = TcpFlow(cap, ws, 49754, srv, 49665, link=make_link_vlan([(0x88A8, 200), (0x8100, 300)]))
    req = Ndr().u32(0).bytes()
    resp = Ndr().u32(2).ptr().u32(2).ptr().ptr().wstr("Application").align(4).wstr("System").align(4).u32(0).bytes()
    simple_session(cap, f, "eventlog6", 19, req, resp, "EvtRpcGetChannelList", 0x6302)
    cap.man["vlan"] = {
        "frames_8021q": "stream 49753 <-> 135: one 802.1Q tag, VID 100",
        "frames_qinq": "stream 49754 <-> 49665: S-tag 0x88a8 VID 200, then C-tag 0x8100 VID 300",
    }
    save_pcap(cap)
