"""Link layers a frame can be written in: Ethernet, raw IP, BSD loopback, Linux SLL/SLL2, stacked VLAN tags,
and the tunnels (GRE, WCCP, ERSPAN II/III, VXLAN, Geneve) built with scapy.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from .capture import Host


def link_ether(l3: Packet, src: Host, dst: Host) -> bytes:
    """Ethernet II (LINKTYPE_ETHERNET 1)."""
    return bytes(Ether(src=src.mac, dst=dst.mac) / l3)


def link_raw(l3: Packet, src: Host, dst: Host) -> bytes:
    """No link header at all (LINKTYPE_RAW 101)."""
    return bytes(l3)


def link_null(l3: Packet, src: Host, dst: Host) -> bytes:
    """BSD loopback (LINKTYPE_NULL 0): a 4-byte address family in the writer's byte order (2 = AF_INET)."""
    return struct.pack("<I", 2) + bytes(l3)


def make_link_sll(local: Host) -> Callable[[Packet, Host, Host], bytes]:
    """Linux cooked capture v1 (LINKTYPE_LINUX_SLL 113) as seen on `local`: outgoing = 4, to us = 0."""

    def link(l3: Packet, src: Host, dst: Host) -> bytes:
        mac = bytes.fromhex(src.mac.replace(":", "")) + b"\0\0"
        return bytes(
            CookedLinux(
                pkttype=4 if src is local else 0,
                lladdrtype=1,
                lladdrlen=6,
                src=mac,
                proto=0x86DD if isinstance(l3, IPv6) else 0x0800,
            )
            / l3
        )

    return link


def make_link_sll2(local: Host, ifindex: int = 2) -> Callable[[Packet, Host, Host], bytes]:
    """Linux cooked capture v2 (LINKTYPE_LINUX_SLL2 276)."""

    def link(l3: Packet, src: Host, dst: Host) -> bytes:
        mac = bytes.fromhex(src.mac.replace(":", "")) + b"\0\0"
        return bytes(
            CookedLinuxV2(
                proto=0x0800, ifindex=ifindex, lladdrtype=1, pkttype=4 if src is local else 0, lladdrlen=6, src=mac
            )
            / l3
        )

    return link


def make_link_vlan(tags: list[tuple[int, int]]) -> Callable[[Packet, Host, Host], bytes]:
    """Ethernet with stacked tags: [(tpid, vid), ...], outermost first
    (0x88a8 = 802.1ad S-tag, 0x8100 = 802.1Q C-tag)."""

    def link(l3: Packet, src: Host, dst: Host) -> bytes:
        first_tpid = tags[0][0]
        p: Packet = Ether(src=src.mac, dst=dst.mac, type=first_tpid)
        for i, (_tpid, vid) in enumerate(tags):
            nxt = tags[i + 1][0] if i + 1 < len(tags) else 0x0800
            tag = Dot1AD(vlan=vid, type=nxt) if _tpid == 0x88A8 else Dot1Q(vlan=vid, type=nxt)
            p = p / tag
        return bytes(p / l3)

    return link


# Tunnel endpoints (documentation prefixes, RFC 5737 / RFC 3849): the router or mirror source on the
# client's side, and the one on the server's side (or the mirror collector).
TUNNEL_A = Host("TUN-A", "192.0.2.1", "02:00:5e:00:02:01", "2001:db8::1", 0x0A00, 255)
TUNNEL_B = Host("TUN-B", "192.0.2.2", "02:00:5e:00:02:02", "2001:db8::2", 0x0B00, 255)


def make_link_tunnel(kind: str) -> Callable[[Packet, Host, Host], bytes]:
    """Ethernet frames whose IP packet is the outer end of a tunnel carrying the session's packet.

    kind: `gre` (RFC 2784/2890 over IPv6, with checksum and key, carrying IPv4), `wccp` (GRE 0x883E
    with a WCCPv2 redirect header, draft-wilson-wrec-wccp-v2 4.12), `erspan2` (GRE 0x88BE with sequence
    numbers + ERSPAN type II header + the mirrored Ethernet frame), `erspan3` (GRE 0x22EB + ERSPAN type III
    header with the O bit and its platform-specific subheader), `vxlan` (UDP 4789, RFC 7348) and `geneve`
    (UDP 6081, RFC 8926, with one 8-byte option). Mirrors (ERSPAN, VXLAN, Geneve) send both directions
    from A to B; routed tunnels (GRE, WCCP) follow the packet's direction. Outer IP IDs, GRE sequence
    numbers and UDP source ports are counters: deterministic.
    """
    seq = [0]

    def link(l3: Packet, src: Host, dst: Host) -> bytes:
        seq[0] += 1
        inner_eth = bytes(Ether(src=src.mac, dst=dst.mac) / l3)
        forward = src.name.startswith("WS")  # the sample clients
        a, b = (
            (TUNNEL_A, TUNNEL_B)
            if forward or kind in ("erspan2", "erspan3", "vxlan", "geneve")
            else (
                TUNNEL_B,
                TUNNEL_A,
            )
        )
        outer: Packet
        if kind == "gre":
            outer = (
                IPv6(src=a.ip6, dst=b.ip6, hlim=64)
                / GRE(chksum_present=1, key_present=1, key=0x5A17, proto=0x0800)
                / Raw(bytes(l3))
            )
        elif kind == "wccp":
            redirect = bytes([0x05, 89, 0, 72])  # dynamic service, header valid: service 89, bucket 72
            outer = IP(src=a.ip, dst=b.ip, id=a.next_ipid(), ttl=253) / GRE(proto=0x883E) / Raw(redirect + bytes(l3))
        elif kind == "erspan2":
            outer = (
                IP(src=a.ip, dst=b.ip, id=a.next_ipid(), ttl=64)
                / GRE(seqnum_present=1, sequence_number=seq[0], proto=0x88BE)
                / ERSPAN_II(ver=1, vlan=0, session_id=17, index=3)
                / Raw(inner_eth)
            )
        elif kind == "erspan3":
            outer = (
                IP(src=a.ip, dst=b.ip, id=a.next_ipid(), ttl=64)
                / GRE(seqnum_present=1, sequence_number=seq[0], proto=0x22EB)
                / ERSPAN_III(ver=2, session_id=18, timestamp=seq[0] * 1000, ft=0, hw=5, o=1)
                / ERSPAN_PlatformSpecific(platf_id=3, info1=0, info2=0)
                / Raw(inner_eth)
            )
        elif kind == "vxlan":
            outer = (
                IP(src=a.ip, dst=b.ip, id=a.next_ipid(), ttl=64)
                / UDP(sport=49152 + seq[0] % 1000, dport=4789)
                / VXLAN(flags=0x08, vni=4242)
                / Raw(inner_eth)
            )
        elif kind == "geneve":
            opt = GeneveOptions(classid=0x0108, type=1, data=b"\x00\x00\x00\x2a")
            outer = (
                IP(src=a.ip, dst=b.ip, id=a.next_ipid(), ttl=64)
                / UDP(sport=49152 + seq[0] % 1000, dport=6081)
                / GENEVE(proto=0x6558, vni=4343, options=opt)
                / Raw(inner_eth)
            )
        else:
            raise ValueError(kind)
        return bytes(Ether(src=a.mac, dst=b.mac) / outer)

    return link
