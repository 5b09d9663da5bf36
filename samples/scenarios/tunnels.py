"""tunnel_*.pcap: the same two conversations inside six kinds of tunnel (samples/README.md)."""

from __future__ import annotations

from ..wire.capture import Capture, save_pcap
from ..wire.epm import Tower
from ..wire.link import TUNNEL_A, TUNNEL_B, make_link_tunnel
from ..wire.stubs import scmr_open_scmanager
from ..wire.tcp import TcpFlow
from .sessions import epm_map_exchange, simple_session

TUNNELS = {
    "gre": ("tunnel_gre.pcap", "plain GRE over IPv6 (checksum and key present) carrying IPv4", 93),
    "wccp": ("tunnel_wccp.pcap", "WCCPv2 redirection: GRE protocol 0x883E with a 4-byte redirect header", 94),
    "erspan2": ("tunnel_erspan2.pcap", "ERSPAN type II (GRE 0x88BE, sequence numbers, session 17)", 95),
    "erspan3": ("tunnel_erspan3.pcap", "ERSPAN type III (GRE 0x22EB, platform-specific subheader)", 96),
    "vxlan": ("tunnel_vxlan.pcap", "VXLAN on UDP 4789, VNI 4242, as AWS and Azure traffic mirroring send", 97),
    "geneve": ("tunnel_geneve.pcap", "Geneve on UDP 6081, VNI 4343, one 8-byte option", 98),
}
# The outer IPv4 IP-ID counters of the two tunnel ends (A, B) when each sample starts. The samples were first
# made in one run, the tunnel ends counting on from one sample to the next; setting the counters here gives
# the same bytes when a single sample is rebuilt (`make_samples.py tunnel_vxlan`).
TUNNEL_IPIDS = {
    "gre": (0x0A00, 0x0B00),
    "wccp": (0x0A00, 0x0B00),
    "erspan2": (0x0A0C, 0x0B08),
    "erspan3": (0x0A20, 0x0B08),
    "vxlan": (0x0A34, 0x0B08),
    "geneve": (0x0A48, 0x0B08),
}


def make_tunnel(kind: str) -> None:
    """An EPM lookup for svcctl and the svcctl session it leads to, every packet inside one tunnel."""
    file, what, seed = TUNNELS[kind]
    cap = Capture(
        file,
        f"Every packet inside a tunnel, {what}: an EPM lookup for svcctl and the session on the announced "
        "port. The tables must show the inner addresses.",
        seed=seed,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    TUNNEL_A.ipid, TUNNEL_B.ipid = TUNNEL_IPIDS[kind]
    link = make_link_tunnel(kind)
    group = 0x9000 + seed * 16
    f = TcpFlow(cap, ws, 49800 + seed, srv, 135, link=link)
    epm_map_exchange(cap, f, "svcctl", [Tower("svcctl", "ncacn_ip_tcp", port=49700 + seed, ip="10.0.0.10")], group)
    f = TcpFlow(cap, ws, 49900 + seed, srv, 49700 + seed, link=link)
    req, resp, _h = scmr_open_scmanager()
    simple_session(cap, f, "svcctl", 15, req, resp, "ROpenSCManagerW", group + 1)
    cap.man["tunnel"] = {"kind": kind, "outer": [TUNNEL_A.ip, TUNNEL_B.ip, TUNNEL_A.ip6, TUNNEL_B.ip6]}
    save_pcap(cap)


def make_tunnel_gre() -> None:
    make_tunnel("gre")


def make_tunnel_wccp() -> None:
    make_tunnel("wccp")


def make_tunnel_erspan2() -> None:
    make_tunnel("erspan2")


def make_tunnel_erspan3() -> None:
    make_tunnel("erspan3")


def make_tunnel_vxlan() -> None:
    make_tunnel("vxlan")


def make_tunnel_geneve() -> None:
    make_tunnel("geneve")
