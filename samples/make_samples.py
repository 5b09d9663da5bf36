#!/usr/bin/env python3
"""Generate the bundled sample captures in samples/pcaps/ and their manifests in samples/expected/.

Every capture is built from scratch with scapy (Ethernet/SLL/IP/IPv6/TCP/UDP and the NTLMSSP/SPNEGO
tokens) and with ``struct`` for the DCE/RPC, EPM, SMB1/SMB2 and RPC-over-HTTP payloads, following the
specification sections named in each builder's docstring.  The analyzer's own decoder is never imported:
the manifests state what the generator put on the wire (known by construction), and
``samples/check_samples.py`` compares them with what tshark makes of the files.

The output is deterministic: fixed seeds, fixed addresses and a clock that starts at
2024-03-01T10:00:00Z for every capture.  Running the script twice gives byte-identical files.

    /work/venv/bin/python samples/make_samples.py            # writes every sample
    /work/venv/bin/python samples/make_samples.py cl_udp      # only the samples whose name contains "cl_udp"

References: [C706] DCE 1.1 RPC (12.5 CL PDUs, 12.6 CO PDUs, 14 NDR, Appendix I/L towers and EPM);
[MS-RPCE] 2.2 (extensions: BTFN, NDR64, sec_trailer); [MS-NLMP] 2.2 (NTLMSSP); [MS-SMB2] 2.2;
[MS-CIFS]/[MS-SMB] 2.2 (SMB1); [RFC 1002] 4.3 (NetBIOS session service); [MS-RPCH] 2.1-2.2 (RPC over HTTP).
"""

from __future__ import annotations

import gzip
import json
import random
import struct
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scapy.config import conf

conf.verb = 0

from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific  # noqa: E402
from scapy.contrib.geneve import GENEVE, GeneveOptions  # noqa: E402
from scapy.layers.gssapi import GSSAPI_BLOB  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP, fragment  # noqa: E402
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, PadN  # noqa: E402
from scapy.layers.l2 import GRE, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether  # noqa: E402
from scapy.layers.ntlm import (  # noqa: E402
    AV_PAIR,
    NTLM_AUTHENTICATE_V2,
    NTLM_CHALLENGE,
    NTLM_NEGOTIATE,
    NTLMv2_RESPONSE,
)
from scapy.layers.spnego import (  # noqa: E402
    SPNEGO_MechType,
    SPNEGO_negToken,
    SPNEGO_negTokenInit,
    SPNEGO_negTokenResp,
    SPNEGO_Token,
)
from scapy.layers.vxlan import VXLAN  # noqa: E402
from scapy.packet import Packet, Raw  # noqa: E402

HERE = Path(__file__).resolve().parent
PCAP_DIR = HERE / "pcaps"
EXPECTED_DIR = HERE / "expected"

T0 = 1709287200  # 2024-03-01T10:00:00Z, the first timestamp of every capture
FILETIME_T0 = (T0 + 11644473600) * 10_000_000  # the same instant as a Windows FILETIME

# --------------------------------------------------------------------------------------------------
# Well-known syntaxes and interfaces (uuid, (major, minor))
# --------------------------------------------------------------------------------------------------

NDR = ("8a885d04-1ceb-11c9-9fe8-08002b104860", (2, 0))
NDR64 = ("71710533-beba-4937-8319-b5dbef9ccc36", (1, 0))


def btfn(bits: int) -> tuple[str, tuple[int, int]]:
    """Bind-time feature negotiation pseudo transfer syntax ([MS-RPCE] 3.3.1.5.3): bitmask in byte 8."""
    return (f"6cb71c2c-9812-4540-{bits:02x}00-000000000000", (1, 0))


IFACES: dict[str, tuple[str, tuple[int, int]]] = {
    "epmapper": ("e1af8308-5d1f-11c9-91a4-08002b14a0fa", (3, 0)),
    "svcctl": ("367abb81-9844-35f1-ad32-98f038001003", (2, 0)),
    "drsuapi": ("e3514235-4b06-11d1-ab04-00c04fc2dcd2", (4, 0)),
    "lsarpc": ("12345778-1234-abcd-ef00-0123456789ab", (0, 0)),
    "samr": ("12345778-1234-abcd-ef00-0123456789ac", (1, 0)),
    "netlogon": ("12345678-1234-abcd-ef00-01234567cffb", (1, 0)),
    "srvsvc": ("4b324fc8-1670-01d3-1278-5a47bf6ee188", (3, 0)),
    "wkssvc": ("6bffd098-a112-3610-9833-46c3f87e345a", (1, 0)),
    "atsvc_tsch": ("86d35949-83c9-4044-b424-db363231fd0c", (1, 0)),
    "IObjectExporter": ("99fcfec4-5260-101b-bbcb-00aa0021347a", (0, 0)),
    "ISystemActivator": ("000001a0-0000-0000-c000-000000000046", (0, 0)),
    "eventlog6": ("f6beaff7-1e19-4fbb-9f8f-b89e2018337c", (1, 0)),
    "nspi": ("f5cc5a18-4264-101a-8c59-08002b2f8426", (56, 0)),
    "pnio_device": ("dea00001-6c97-11d1-8271-00a02442df7d", (1, 0)),
    "pnio_controller": ("dea00002-6c97-11d1-8271-00a02442df7d", (1, 0)),
    "winreg": ("338cd001-2244-31f1-aaaa-900038001003", (1, 0)),
    "msgsvc": ("5a7b91f8-ff00-11d0-a9b2-00c04fb6e6fc", (1, 0)),
    "IRemoteWinspool": ("76f03f96-cdfd-44fc-a22c-64950a001209", (1, 0)),
    "frs2": ("897e2e5f-93f3-4376-9c9c-fd2277495c27", (1, 0)),
    "IRemUnknown2": ("00000143-0000-0000-c000-000000000046", (0, 0)),
    "unknown_iface": ("6e7a1a15-2a4b-4c2d-9e0f-1a2b3c4d5e6f", (1, 0)),
}

# Status codes used on the wire
NCA_S_OP_RNG_ERROR = 0x1C010002
NCA_S_UNK_IF = 0x1C010003
EPT_S_NOT_REGISTERED = 0x16C9A0D6
STATUS_PENDING = 0x00000103
STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016

# CO packet types ([C706] 12.6.4) and CL packet types ([C706] 12.5.2)
PTYPE = {
    "request": 0,
    "ping": 1,
    "response": 2,
    "fault": 3,
    "working": 4,
    "nocall": 5,
    "reject": 6,
    "ack": 7,
    "cl_cancel": 8,
    "fack": 9,
    "cancel_ack": 10,
    "bind": 11,
    "bind_ack": 12,
    "bind_nak": 13,
    "alter_context": 14,
    "alter_context_resp": 15,
    "auth3": 16,
    "shutdown": 17,
    "co_cancel": 18,
    "orphaned": 19,
    "rts": 20,
}
PTNAME = {v: k for k, v in PTYPE.items()}
PFC_FIRST, PFC_LAST, PFC_SUPPORT_HEADER_SIGN, PFC_DID_NOT_EXECUTE, PFC_OBJECT_UUID = (0x01, 0x02, 0x04, 0x20, 0x80)
ACK_RESULT = {0: "acceptance", 1: "user_rejection", 2: "provider_rejection", 3: "negotiate_ack"}
PROVIDER_REASON = {  # [C706] 12.6.3.1 p_provider_reason_t
    0: "reason_not_specified",
    1: "abstract_syntax_not_supported",
    2: "proposed_transfer_syntaxes_not_supported",
    3: "local_limit_exceeded",
}
NAK_REASON = {  # [C706] 12.6.3.1 p_reject_reason_t, [MS-RPCE] 2.2.2.5
    0: "reason_not_specified",
    1: "temporary_congestion",
    2: "local_limit_exceeded",
    3: "called_paddr_unknown",
    4: "protocol_version_not_supported",
    5: "default_context_not_supported",
    6: "user_data_not_readable",
    7: "no_psap_available",
    8: "authentication_type_not_recognized",
    9: "invalid_checksum",
}
AUTH_NTLMSSP, AUTH_NETLOGON = 10, 68
LEVEL_CONNECT, LEVEL_INTEGRITY, LEVEL_PRIVACY = 2, 5, 6


def uuid_bytes(u: str, le: bool = True) -> bytes:
    """A UUID as NDR encodes it ([C706] Appendix A): the first three fields follow the byte order."""
    x = uuid.UUID(u)
    return x.bytes_le if le else x.bytes


def ver_u32(ver: tuple[int, int]) -> int:
    """p_syntax_id_t.if_version ([C706] 12.6.3.1): major in the low 16 bits, minor in the high ones."""
    return ver[0] | (ver[1] << 16)


def vstr(ver: tuple[int, int]) -> str:
    return f"{ver[0]}.{ver[1]}"


# --------------------------------------------------------------------------------------------------
# Hosts, captures and link layers
# --------------------------------------------------------------------------------------------------


@dataclass
class Host:
    name: str
    ip: str
    mac: str
    ip6: str = ""
    ipid: int = 0x1000
    ttl: int = 128

    def next_ipid(self) -> int:
        self.ipid = (self.ipid + 1) & 0xFFFF
        return self.ipid


def hosts() -> dict[str, Host]:
    """A fresh set of the sample network's hosts (fresh IP-ID counters for each capture)."""
    return {
        "ws01": Host("WS01", "10.0.0.20", "00:15:5d:01:02:14", "fd00:10::20", 0x2A00),
        "ws02": Host("WS02", "10.0.0.21", "00:15:5d:01:02:15", "fd00:10::21", 0x3100),
        "srv01": Host("SRV01", "10.0.0.10", "00:15:5d:01:02:0a", "fd00:10::10", 0x5C00),
        "dc01": Host("DC01", "10.0.0.5", "00:15:5d:01:02:05", "fd00:10::5", 0x6E00),
        "plc": Host("PLC1", "10.0.0.30", "00:0e:8c:aa:bb:01", "", 0x0100, 64),
        "hmi": Host("HMI1", "10.0.0.31", "00:1b:1b:aa:bb:02", "", 0x0200, 128),
        "lo": Host("localhost", "127.0.0.1", "00:00:00:00:00:00", "::1", 0x7700),
    }


@dataclass
class Frame:
    ts_ns: int
    data: bytes
    iface: int = 0
    block: str = "epb"  # pcapng block kind: epb (enhanced), spb (simple), pb (obsolete packet block)
    desc: str = ""


class Manifest:
    """The facts a capture holds, written as samples/expected/<file>.json."""

    def __init__(self, file: str, description: str) -> None:
        self.data: dict[str, Any] = {
            "file": file,
            "description": description,
            "format": {},
            "frame_count": 0,
            "first_timestamp": "2024-03-01T10:00:00Z",
            "binds": [],
            "epm_towers": [],
            "requests": [],
            "cl_pdus": [],
            "ntlm_auth": [],
            "tshark_notes": [],
        }

    def __getitem__(self, k: str) -> Any:
        return self.data[k]

    def __setitem__(self, k: str, v: Any) -> None:
        self.data[k] = v

    def note(self, text: str) -> None:
        self.data["tshark_notes"].append(text)


class Capture:
    """A list of frames with a deterministic clock, plus the manifest being written alongside."""

    def __init__(self, file: str, description: str, seed: int, linktype: int = 1, ts_resolution: str = "us") -> None:
        self.file = file
        self.rng = random.Random(seed)
        self.frames: list[Frame] = []
        self.t_ns = T0 * 1_000_000_000
        self.linktype = linktype
        self.ts_resolution = ts_resolution
        self.man = Manifest(file, description)
        self.h = hosts()
        self.iface_res: dict[int, str] = {0: ts_resolution}

    def tick(self, lo_us: int = 40, hi_us: int = 900) -> None:
        step = self.rng.randint(lo_us, hi_us) * 1000
        if self.ts_resolution == "ns":
            step += self.rng.randint(1, 999)
        self.t_ns += step

    def wait(self, ms: float) -> None:
        self.t_ns += int(ms * 1_000_000)

    def add(self, data: bytes, desc: str = "", iface: int = 0, block: str = "epb", tick: bool = True) -> int:
        if tick and self.frames:
            self.tick()
        ts = self.t_ns
        if self.iface_res.get(iface, "us") == "us":
            ts -= ts % 1000
        self.frames.append(Frame(ts, bytes(data), iface, block, desc))
        return len(self.frames)

    def ts_of(self, frame: int) -> int:
        return self.frames[frame - 1].ts_ns


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


# --------------------------------------------------------------------------------------------------
# File writers
# --------------------------------------------------------------------------------------------------


def pcap_bytes(cap: Capture, big_endian: bool = False, nano: bool = False, snaplen: int = 262144) -> bytes:
    """Classic libpcap file: magic a1b2c3d4 (us) or a1b23c4d (ns), written in either byte order."""
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = bytearray(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, cap.linktype))
    div = 1 if nano else 1000
    for fr in cap.frames:
        sec, frac = divmod(fr.ts_ns, 1_000_000_000)
        out += struct.pack(e + "IIII", sec, frac // div, len(fr.data), len(fr.data)) + fr.data
    return bytes(out)


def write_file(name: str, data: bytes) -> None:
    PCAP_DIR.mkdir(parents=True, exist_ok=True)
    (PCAP_DIR / name).write_bytes(data)


def write_manifest(cap: Capture, fmt: dict[str, Any], frame_count: int | None = None) -> None:
    m = cap.man.data
    m["format"] = fmt
    m["frame_count"] = len(cap.frames) if frame_count is None else frame_count
    m["frame_log"] = [f"{i + 1} {f.desc}" for i, f in enumerate(cap.frames)]
    EXPECTED_DIR.mkdir(parents=True, exist_ok=True)
    (EXPECTED_DIR / f"{cap.file}.json").write_text(json.dumps(m, indent=1) + "\n")


def save_pcap(cap: Capture, **kw: Any) -> None:
    data = pcap_bytes(cap, **kw)
    write_file(cap.file, data)
    write_manifest(
        cap,
        {
            "container": "pcap",
            "linktype": cap.linktype,
            "ts_resolution": "ns" if kw.get("nano") else "us",
            "byte_order": "big" if kw.get("big_endian") else "little",
        },
    )


# --------------------------------------------------------------------------------------------------
# TCP
# --------------------------------------------------------------------------------------------------


class TcpFlow:
    """One TCP connection between a client and a server (RFC 793): handshake, data, ACKs, FIN close.

    Sequence numbers are tracked per direction ('c' = client to server, 's' = server to client).
    `send` cuts data into MSS-sized segments; `segment` emits one segment at an arbitrary stream offset
    without moving the send pointer (for retransmissions, overlaps and reordering); `skip` advances the
    send pointer as if a segment had been sent but not captured.
    """

    def __init__(
        self,
        cap: Capture,
        client: Host,
        cport: int,
        server: Host,
        sport: int,
        link: Callable[[Packet, Host, Host], bytes] = link_ether,
        mss: int = 1460,
        ip6: bool = False,
        ext_hdr: bool = False,
        iface: int = 0,
    ) -> None:
        self.cap, self.client, self.server, self.cport, self.sport = cap, client, server, cport, sport
        self.link, self.mss, self.ip6, self.ext_hdr, self.iface = link, mss, ip6, ext_hdr, iface
        self.isn = {"c": cap.rng.getrandbits(32), "s": cap.rng.getrandbits(32)}
        self.pos = {"c": 0, "s": 0}  # bytes sent so far in each direction
        self.fin = {"c": False, "s": False}
        self.win = {"c": 1026, "s": 8212}  # scaled windows, as Windows shows them

    def ends(self, side: str) -> tuple[Host, int, Host, int]:
        if side == "c":
            return self.client, self.cport, self.server, self.sport
        return self.server, self.sport, self.client, self.cport

    @staticmethod
    def other(side: str) -> str:
        return "s" if side == "c" else "c"

    def seq(self, side: str, offset: int | None = None) -> int:
        return (self.isn[side] + 1 + (self.pos[side] if offset is None else offset)) & 0xFFFFFFFF

    def ack_value(self, side: str) -> int:
        o = self.other(side)
        return (self.isn[o] + 1 + self.pos[o] + (1 if self.fin[o] else 0)) & 0xFFFFFFFF

    def packet(
        self,
        side: str,
        flags: str,
        seq: int,
        ack: int | None,
        payload: bytes = b"",
        options: list[Any] | None = None,
        desc: str = "",
        emit: bool = True,
        block: str = "epb",
    ) -> int:
        src, sp, dst, dp = self.ends(side)
        tcp = TCP(sport=sp, dport=dp, seq=seq, ack=ack or 0, flags=flags, window=self.win[side], options=options or [])
        l3: Packet
        if self.ip6:
            l3 = IPv6(src=src.ip6, dst=dst.ip6, hlim=src.ttl)
            if self.ext_hdr and side == "c":
                l3 = l3 / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00\x00\x00\x00")])
            l3 = l3 / tcp
        else:
            l3 = IP(src=src.ip, dst=dst.ip, id=src.next_ipid(), flags="DF", ttl=src.ttl) / tcp
        if payload:
            l3 = l3 / Raw(payload)
        data = self.link(l3, src, dst)
        if not emit:
            return 0
        text = f"{src.ip}:{sp} > {dst.ip}:{dp} [{flags}] len={len(payload)}"
        if desc:
            text += " " + desc
        return self.cap.add(data, text, iface=self.iface, block=block)

    def handshake(self) -> None:
        opts = [("MSS", self.mss), ("NOP", None), ("WScale", 8), ("NOP", None), ("NOP", None), ("SAckOK", b"")]
        self.win = {"c": 64240, "s": 65535}
        self.packet("c", "S", self.isn["c"], None, options=opts, desc="SYN")
        self.packet("s", "SA", self.isn["s"], self.seq("c"), options=opts, desc="SYN-ACK")
        self.win = {"c": 1026, "s": 8212}
        self.packet("c", "A", self.seq("c"), self.seq("s"), desc="ACK")

    def send(self, side: str, data: bytes, desc: str = "", mss: int | None = None) -> int:
        """Send `data` as MSS-sized segments (PSH on the last); returns the frame of the last segment."""
        mss = mss or self.mss
        last = 0
        chunks = [data[i : i + mss] for i in range(0, len(data), mss)] or [b""]
        for i, chunk in enumerate(chunks):
            flags = "PA" if i == len(chunks) - 1 else "A"
            last = self.packet(side, flags, self.seq(side), self.ack_value(side), chunk, desc=desc)
            self.pos[side] += len(chunk)
        if len(chunks) > 1:
            self.ack(self.other(side))
        return last

    def segment(self, side: str, offset: int, data: bytes, desc: str = "", flags: str = "PA") -> int:
        """One segment at stream offset `offset` of direction `side`; the send pointer is not moved."""
        return self.packet(side, flags, self.seq(side, offset), self.ack_value(side), data, desc=desc)

    def send_ip_fragments(self, side: str, data: bytes, fragsize: int, order: list[int], desc: str = "") -> list[int]:
        """One TCP segment in an IPv4 datagram cut into fragments (RFC 791) of `fragsize` payload bytes,
        emitted in `order`; returns the frame of each fragment in fragment order."""
        src, sp, dst, dp = self.ends(side)
        tcp = TCP(sport=sp, dport=dp, seq=self.seq(side), ack=self.ack_value(side), flags="PA", window=self.win[side])
        whole = IP(bytes(IP(src=src.ip, dst=dst.ip, id=src.next_ipid(), ttl=src.ttl) / tcp / Raw(data)))
        frags = fragment(whole, fragsize)
        frames = {}
        for i in order:
            fr = frags[i]
            frames[i] = self.cap.add(
                self.link(fr, src, dst),
                f"{src.ip}:{sp} > {dst.ip}:{dp} IP fragment {i + 1}/{len(frags)} offset={fr.frag * 8} {desc}",
                iface=self.iface,
            )
        self.pos[side] += len(data)
        return [frames[i] for i in range(len(frags))]

    def advance(self, side: str, n: int) -> None:
        self.pos[side] += n

    def ack(self, side: str, desc: str = "ACK") -> int:
        return self.packet(side, "A", self.seq(side), self.ack_value(side), desc=desc)

    def close(self, first: str = "c") -> None:
        second = self.other(first)
        self.packet(first, "FA", self.seq(first), self.ack_value(first), desc="FIN")
        self.fin[first] = True
        self.packet(second, "FA", self.seq(second), self.ack_value(second), desc="FIN")
        self.fin[second] = True
        self.packet(first, "A", (self.seq(first) + 1) & 0xFFFFFFFF, self.ack_value(first), desc="ACK")


# --------------------------------------------------------------------------------------------------
# NDR ([C706] 14) and DCE/RPC connection-oriented PDUs ([C706] 12.6)
# --------------------------------------------------------------------------------------------------


class Ndr:
    """NDR 1.0 stub writer ([C706] 14.2-14.3): primitives aligned to their size, in the drep byte order."""

    def __init__(self, le: bool = True, ref: int = 0x00020000, ref_step: int = 4) -> None:
        self.e = "<" if le else ">"
        self.le = le
        self.b = bytearray()
        self.ref, self.ref_step = ref, ref_step

    def align(self, n: int) -> Ndr:
        self.b += b"\0" * ((-len(self.b)) % n)
        return self

    def u8(self, v: int) -> Ndr:
        self.b += struct.pack("B", v)
        return self

    def u16(self, v: int) -> Ndr:
        self.align(2).b += struct.pack(self.e + "H", v)
        return self

    def u32(self, v: int) -> Ndr:
        self.align(4).b += struct.pack(self.e + "I", v)
        return self

    def u64(self, v: int) -> Ndr:
        self.align(8).b += struct.pack(self.e + "Q", v)
        return self

    def raw(self, data: bytes) -> Ndr:
        self.b += data
        return self

    def uuid(self, u: str) -> Ndr:
        self.align(4).b += uuid_bytes(u, self.le)
        return self

    def ptr(self, null: bool = False) -> Ndr:
        """A unique/full pointer's referent id (a Windows client numbers them 0x00020000, 0x00020004, ...;
        a Windows server numbers the full pointers of a response 1, 2, 3, ...)."""
        if null:
            return self.u32(0)
        self.u32(self.ref)
        self.ref += self.ref_step
        return self

    def handle(self, u: str, attr: int = 0) -> Ndr:
        """A context handle ([C706] Appendix N, ndr_context_handle): attributes u32 + uuid."""
        return self.u32(attr).uuid(u)

    def wstr(self, s: str) -> Ndr:
        """A conformant varying UTF-16 string with its terminating NUL ([string] wchar_t *)."""
        n = len(s) + 1
        self.u32(n).u32(0).u32(n)
        self.b += (s + "\0").encode("utf-16-le" if self.le else "utf-16-be")
        return self

    def cstr(self, s: str) -> Ndr:
        n = len(s) + 1
        self.u32(n).u32(0).u32(n)
        self.b += s.encode("ascii") + b"\0"
        return self

    def bytes(self) -> bytes:
        return bytes(self.b)


@dataclass
class Auth:
    """An auth verifier: [MS-RPCE] 2.2.2.11 sec_trailer (auth_type, auth_level, auth_pad_length,
    auth_reserved, auth_context_id) followed by the token; auth_length counts the token only."""

    auth_type: int
    level: int
    ctx_id: int
    token: bytes


def co_pdu(
    ptype: int,
    call_id: int,
    body: bytes,
    *,
    flags: int = PFC_FIRST | PFC_LAST,
    le: bool = True,
    auth: Auth | None = None,
    pad_align: int = 4,
    rpc_vers_minor: int = 0,
) -> bytes:
    """[C706] 12.6.3.1 common header (rpc_vers 5, rpc_vers_minor, PTYPE, pfc_flags, packed_drep[4],
    frag_length, auth_length, call_id) + body (+ auth padding + sec_trailer + token when `auth`).

    The padding before the sec_trailer makes the stub a multiple of `pad_align` bytes and is counted in
    auth_pad_length; the caller passes pad_align=16 for request/response stubs, as Windows does."""
    e = "<" if le else ">"
    drep = bytes([0x10 if le else 0x00, 0, 0, 0])
    tail = b""
    if auth is not None:
        pad = (-len(body)) % pad_align
        body = body + b"\0" * pad
        tail = struct.pack(e + "BBBBI", auth.auth_type, auth.level, pad, 0, auth.ctx_id) + auth.token
    frag_len = 16 + len(body) + len(tail)
    hdr = struct.pack(
        e + "BBBB4sHHI", 5, rpc_vers_minor, ptype, flags, drep, frag_len, len(auth.token) if auth else 0, call_id
    )
    return hdr + body + tail


@dataclass
class CtxItem:
    """One presentation context element of a bind/alter_context ([C706] 12.6.3.1 p_cont_elem_t) and the
    result the server is going to give it in the bind_ack ([C706] 12.6.3.1 p_result_t)."""

    ctx_id: int
    iface: str  # a key of IFACES, or a raw uuid
    syntaxes: list[tuple[str, tuple[int, int]]]
    result: int = 0  # 0 acceptance, 1 user_rejection, 2 provider_rejection, 3 negotiate_ack
    reason: int = 0  # rejection reason, or the BTFN feature bits for a negotiate_ack

    @property
    def if_uuid(self) -> str:
        return IFACES[self.iface][0] if self.iface in IFACES else self.iface

    @property
    def if_ver(self) -> tuple[int, int]:
        return IFACES[self.iface][1] if self.iface in IFACES else (1, 0)


def bind_body(
    items: list[CtxItem], le: bool, max_xmit: int = 5840, max_recv: int = 5840, assoc_group: int = 0
) -> bytes:
    """bind / alter_context body ([C706] 12.6.4.3 / 12.6.4.1): max_xmit_frag, max_recv_frag,
    assoc_group_id, p_cont_list_t {n_context_elem, reserved, reserved2, p_cont_elem_t[]}."""
    e = "<" if le else ">"
    b = struct.pack(e + "HHIBBH", max_xmit, max_recv, assoc_group, len(items), 0, 0)
    for it in items:
        b += struct.pack(e + "HBB", it.ctx_id, len(it.syntaxes), 0)
        b += uuid_bytes(it.if_uuid, le) + struct.pack(e + "I", ver_u32(it.if_ver))
        for ts, tv in it.syntaxes:
            b += uuid_bytes(ts, le) + struct.pack(e + "I", ts_ver_u32(tv))
    return b


def ts_ver_u32(v: tuple[int, int]) -> int:
    return ver_u32(v)


def bind_ack_body(
    items: list[CtxItem], le: bool, sec_addr: str, max_xmit: int = 5840, max_recv: int = 5840, assoc_group: int = 0x1234
) -> bytes:
    """bind_ack / alter_context_resp body ([C706] 12.6.4.4 / 12.6.4.2): max_xmit_frag, max_recv_frag,
    assoc_group_id, port_any_t sec_addr {length incl. NUL, chars}, pad to 4 (from the PDU start),
    p_result_list_t {n_results, reserved, reserved2, p_result_t[] {result, reason, transfer_syntax}}."""
    e = "<" if le else ">"
    b = struct.pack(e + "HHI", max_xmit, max_recv, assoc_group)
    sa = (sec_addr.encode("ascii") + b"\0") if sec_addr else b""
    b += struct.pack(e + "H", len(sa)) + sa
    b += b"\0" * ((-(16 + len(b))) % 4)
    b += struct.pack(e + "BBH", len(items), 0, 0)
    for it in items:
        if it.result == 0:
            ts, tv = it.syntaxes[0]
            b += struct.pack(e + "HH", 0, 0) + uuid_bytes(ts, le) + struct.pack(e + "I", ts_ver_u32(tv))
        else:
            b += struct.pack(e + "HH", it.result, it.reason) + b"\0" * 16 + struct.pack(e + "I", 0)
    return b


def request_body(alloc_hint: int, ctx_id: int, opnum: int, stub: bytes, le: bool, obj: str | None = None) -> bytes:
    """request body ([C706] 12.6.4.9): alloc_hint, p_cont_id, opnum, [object uuid when PFC_OBJECT_UUID],
    stub."""
    e = "<" if le else ">"
    b = struct.pack(e + "IHH", alloc_hint, ctx_id, opnum)
    if obj:
        b += uuid_bytes(obj, le)
    return b + stub


def response_body(alloc_hint: int, ctx_id: int, stub: bytes, le: bool) -> bytes:
    """response body ([C706] 12.6.4.10): alloc_hint, p_cont_id, cancel_count, reserved, stub."""
    e = "<" if le else ">"
    return struct.pack(e + "IHBB", alloc_hint, ctx_id, 0, 0) + stub


def fault_body(ctx_id: int, status: int, le: bool) -> bytes:
    """fault body ([C706] 12.6.4.7): alloc_hint, p_cont_id, cancel_count, reserved, status, reserved2."""
    e = "<" if le else ">"
    return struct.pack(e + "IHBBII", 32, ctx_id, 0, 0, status, 0)


# --------------------------------------------------------------------------------------------------
# NTLMSSP ([MS-NLMP] 2.2.1) and SPNEGO ([RFC 4178], [MS-SPNG]) tokens, built with scapy
# --------------------------------------------------------------------------------------------------

NTLM_OID = "1.3.6.1.4.1.311.2.2.10"


def ntlm_negotiate() -> bytes:
    """NEGOTIATE_MESSAGE ([MS-NLMP] 2.2.1.1), Windows 10 flags and version."""
    return bytes(
        NTLM_NEGOTIATE(
            NegotiateFlags=0xE2088297,
            ProductMajorVersion=10,
            ProductMinorVersion=0,
            ProductBuild=19041,
            NTLMRevisionCurrent=15,
        )
    )


def ntlm_challenge(rng: random.Random, domain: str = "CORP", server: str = "SRV01") -> bytes:
    """CHALLENGE_MESSAGE ([MS-NLMP] 2.2.1.2) with a target-info AV_PAIR list."""
    dns_domain = domain.lower() + ".local"
    return bytes(
        NTLM_CHALLENGE(
            TargetName=domain,
            NegotiateFlags=0xE28A8215,
            ServerChallenge=rng.randbytes(8),
            ProductMajorVersion=10,
            ProductMinorVersion=0,
            ProductBuild=17763,
            NTLMRevisionCurrent=15,
            TargetInfo=[
                AV_PAIR(AvId="MsvAvNbDomainName", Value=domain),
                AV_PAIR(AvId="MsvAvNbComputerName", Value=server),
                AV_PAIR(AvId="MsvAvDnsDomainName", Value=dns_domain),
                AV_PAIR(AvId="MsvAvDnsComputerName", Value=f"{server.lower()}.{dns_domain}"),
                AV_PAIR(AvId="MsvAvTimestamp", Value=FILETIME_T0),
                AV_PAIR(AvId="MsvAvEOL"),
            ],
        )
    )


def ntlm_authenticate(rng: random.Random, user: str, domain: str, workstation: str, server: str = "SRV01") -> bytes:
    """AUTHENTICATE_MESSAGE ([MS-NLMP] 2.2.1.3), Unicode, with an NTLMv2 response and a MIC."""
    resp = NTLMv2_RESPONSE(
        NTProofStr=rng.randbytes(16),
        TimeStamp=FILETIME_T0,
        ChallengeFromClient=rng.randbytes(8),
        AvPairs=[
            AV_PAIR(AvId="MsvAvNbDomainName", Value=domain),
            AV_PAIR(AvId="MsvAvNbComputerName", Value=server),
            AV_PAIR(AvId="MsvAvTimestamp", Value=FILETIME_T0),
            AV_PAIR(AvId="MsvAvFlags", Value=2),
            AV_PAIR(AvId="MsvAvEOL"),
        ],
    )
    return bytes(
        NTLM_AUTHENTICATE_V2(
            NegotiateFlags=0xE2888215,
            DomainName=domain,
            UserName=user,
            Workstation=workstation,
            LmChallengeResponse=b"\0" * 24,
            NtChallengeResponse=resp,
            EncryptedRandomSessionKey=rng.randbytes(16),
            ProductMajorVersion=10,
            ProductMinorVersion=0,
            ProductBuild=19041,
            NTLMRevisionCurrent=15,
            MIC=rng.randbytes(16),
        )
    )


def ntlm_signature(rng: random.Random, seq: int) -> bytes:
    """NTLMSSP_MESSAGE_SIGNATURE with extended session security ([MS-NLMP] 2.2.2.9.1): version 1,
    8-byte checksum, sequence number."""
    return struct.pack("<I", 1) + rng.randbytes(8) + struct.pack("<I", seq)


def spnego_init(token: bytes) -> bytes:
    """GSS-API InitialContextToken carrying a SPNEGO NegTokenInit with an NTLMSSP mechToken."""
    return bytes(
        GSSAPI_BLOB(
            innerToken=SPNEGO_negToken(
                token=SPNEGO_negTokenInit(
                    mechTypes=[SPNEGO_MechType(oid=NTLM_OID)], mechToken=SPNEGO_Token(value=Raw(token))
                )
            )
        )
    )


def spnego_resp(token: bytes | None, state: int | None, mech: bool = True) -> bytes:
    """SPNEGO NegTokenResp (negState 0 accept-completed, 1 accept-incomplete, None = absent, as in the
    client's last leg) with an optional token."""
    kw: dict[str, Any] = {} if state is None else {"negState": state}
    if mech:
        kw["supportedMech"] = SPNEGO_MechType(oid=NTLM_OID)
    if token is not None:
        kw["responseToken"] = SPNEGO_Token(value=Raw(token))
    return bytes(SPNEGO_negToken(token=SPNEGO_negTokenResp(**kw)))


def spnego_hint() -> bytes:
    """The NegTokenInit2 a server puts in its SMB NEGOTIATE response ([MS-SPNG] 2.2.1)."""
    return bytes(
        GSSAPI_BLOB(innerToken=SPNEGO_negToken(token=SPNEGO_negTokenInit(mechTypes=[SPNEGO_MechType(oid=NTLM_OID)])))
    )


# --------------------------------------------------------------------------------------------------
# Associations: DCE/RPC CO over any byte channel, recording the manifest as it goes
# --------------------------------------------------------------------------------------------------


class Channel:
    """Carries whole CO PDUs; c2s/s2c return the frame number that completes the PDU."""

    transport = "ncacn_ip_tcp"
    pipe: str | None = None
    client: Host
    server: Host
    cport: int
    sport: int

    def c2s(self, pdu: bytes, desc: str) -> int:
        raise NotImplementedError

    def s2c(self, pdu: bytes, desc: str) -> int:
        raise NotImplementedError

    def endpoint(self) -> dict[str, Any]:
        return {
            "client_ip": self.client.ip,
            "client_port": self.cport,
            "server_ip": self.server.ip,
            "server_port": self.sport,
            "transport": self.transport,
            "pipe": self.pipe,
        }


class TcpChannel(Channel):
    def __init__(self, flow: TcpFlow, transport: str = "ncacn_ip_tcp") -> None:
        self.flow = flow
        self.transport = transport
        self.client, self.server, self.cport, self.sport = flow.client, flow.server, flow.cport, flow.sport
        if flow.ip6:
            self.ip6 = True

    def endpoint(self) -> dict[str, Any]:
        d = super().endpoint()
        if self.flow.ip6:
            d["client_ip"], d["server_ip"] = self.client.ip6, self.server.ip6
        return d

    def c2s(self, pdu: bytes, desc: str) -> int:
        return self.flow.send("c", pdu, desc)

    def s2c(self, pdu: bytes, desc: str) -> int:
        return self.flow.send("s", pdu, desc)


@dataclass
class SecCtx:
    """An NTLMSSP security context of an association (one per auth_context_id)."""

    level: int
    user: str
    domain: str
    workstation: str
    ctx_id: int = 0
    seq_c: int = 0
    seq_s: int = 0
    auth_type: int = AUTH_NTLMSSP


class Assoc:
    """A DCE/RPC connection-oriented association ([C706] 12.6, [MS-RPCE] 3.3) on one channel.

    Its methods build the PDUs, hand them to the channel and record what was sent in the manifest
    (binds, requests, NTLM authentications)."""

    def __init__(self, cap: Capture, chan: Channel, le: bool = True, assoc_group: int = 0x1234) -> None:
        self.cap, self.chan, self.le = cap, chan, le
        self.man = cap.man
        self.rng = cap.rng
        self.assoc_group = assoc_group
        self.ctx: dict[int, tuple[str, tuple[int, int]]] = {}
        self.sec: dict[int, SecCtx] = {}
        self.extra: dict[str, Any] = {}

    # -- manifest rows ------------------------------------------------------------------------------

    def record_bind(
        self,
        frame: int,
        ptype: int,
        call_id: int,
        items: list[CtxItem],
        ack_frame: int | None,
        ack_ptype: int | None,
        auth_type: int | None,
        nak_reason: int | None = None,
        recoverable: bool = True,
        **extra: Any,
    ) -> None:
        for it in items:
            row: dict[str, Any] = {
                "frame": frame,
                "ts_ns": self.cap.ts_of(frame),
                **self.chan.endpoint(),
                **self.extra,
                "pdu_type": PTNAME[ptype],
                "call_id": call_id,
                "ctx_id": it.ctx_id,
                "if_uuid": it.if_uuid,
                "if_name": it.iface if it.iface in IFACES else None,
                "if_version": vstr(it.if_ver),
                "if_ver_major": it.if_ver[0],
                "if_ver_minor": it.if_ver[1],
                "transfer_syntaxes": [f"{s}/{v[0]}.{v[1]}" for s, v in it.syntaxes],
                "auth_type": auth_type,
                "ack_frame": ack_frame,
                "ack_pdu_type": PTNAME[ack_ptype] if ack_ptype is not None else None,
            }
            if ack_ptype == PTYPE["bind_nak"]:
                row["ack_result"], row["ack_reason"] = "nak", nak_reason
                row["ack_reason_name"] = NAK_REASON.get(nak_reason or 0)
            elif ack_ptype is None:
                row["ack_result"], row["ack_reason"], row["ack_reason_name"] = "none", None, None
            else:
                row["ack_result"], row["ack_reason"] = ACK_RESULT[it.result], it.reason
                row["ack_reason_name"] = (
                    PROVIDER_REASON.get(it.reason)
                    if it.result in (1, 2)
                    else (f"bind_time_features=0x{it.reason:04x}" if it.result == 3 else None)
                )
                row["ack_transfer_syntax"] = (
                    f"{it.syntaxes[0][0]}/{it.syntaxes[0][1][0]}.{it.syntaxes[0][1][1]}" if it.result == 0 else None
                )
            row["recoverable"] = recoverable
            row.update(extra)
            self.man["binds"].append(row)

    def record_request(
        self,
        frame: int,
        call_id: int,
        ctx_id: int,
        opnum: int,
        *,
        stub_len: int,
        resp_frame: int | None,
        resp_stub_len: int | None = None,
        fault: int | None = None,
        sec: SecCtx | None = None,
        fragments: int = 1,
        resp_fragments: int = 1,
        obj: str | None = None,
        recoverable: bool = True,
        response_recoverable: bool = True,
        **extra: Any,
    ) -> None:
        iface = self.ctx.get(ctx_id)
        row: dict[str, Any] = {
            "frame": frame,
            "ts_ns": self.cap.ts_of(frame),
            **self.chan.endpoint(),
            **self.extra,
            "call_id": call_id,
            "ctx_id": ctx_id,
            "opnum": opnum,
            "if_uuid": iface[0] if iface else None,
            "if_version": vstr(iface[1]) if iface else None,
            "object_uuid": obj,
            "stub_len": stub_len,
            "fragments": fragments,
            "drep": "little" if self.le else "big",
            "response_frame": resp_frame,
            "response_stub_len": resp_stub_len,
            "response_fragments": resp_fragments if resp_frame else None,
            "fault_status": fault,
            "fault_status_hex": f"0x{fault:08x}" if fault is not None else None,
            "auth_type": sec.auth_type if sec else None,
            "auth_level": sec.level if sec else None,
            "auth_context_id": sec.ctx_id if sec else None,
            "auth_user": sec.user if sec else None,
            "auth_domain": sec.domain if sec else None,
            "encrypted": bool(sec and sec.level == LEVEL_PRIVACY),
            "recoverable": recoverable,
            "response_recoverable": response_recoverable,
        }
        row.update(extra)
        self.man["requests"].append(row)

    def record_ntlm(self, frame: int, pdu: str, sec: SecCtx) -> None:
        self.man["ntlm_auth"].append(
            {
                "frame": frame,
                **self.chan.endpoint(),
                "carrier": pdu,
                "user": sec.user,
                "domain": sec.domain,
                "workstation": sec.workstation,
                "auth_level": sec.level,
                "auth_context_id": sec.ctx_id,
            }
        )

    # -- PDUs -----------------------------------------------------------------------------------------

    def pdu(self, ptype: int, call_id: int, body: bytes, **kw: Any) -> bytes:
        return co_pdu(ptype, call_id, body, le=self.le, **kw)

    def bind_pdu(
        self,
        call_id: int,
        items: list[CtxItem],
        ptype: int = PTYPE["bind"],
        auth: Auth | None = None,
        max_frag: int = 5840,
        flags: int = PFC_FIRST | PFC_LAST,
    ) -> bytes:
        body = bind_body(items, self.le, max_frag, max_frag, 0 if ptype == PTYPE["bind"] else self.assoc_group)
        return self.pdu(ptype, call_id, body, auth=auth, flags=flags)

    def ack_pdu(
        self,
        call_id: int,
        items: list[CtxItem],
        ptype: int = PTYPE["bind"],
        sec_addr: str = "",
        auth: Auth | None = None,
        max_frag: int = 5840,
        flags: int = PFC_FIRST | PFC_LAST,
    ) -> bytes:
        ack_type = PTYPE["bind_ack"] if ptype == PTYPE["bind"] else PTYPE["alter_context_resp"]
        for it in items:
            if it.result == 0:
                self.ctx[it.ctx_id] = (it.if_uuid, it.if_ver)
        ab = bind_ack_body(items, self.le, sec_addr, max_frag, max_frag, self.assoc_group)
        return self.pdu(ack_type, call_id, ab, auth=auth, flags=flags)

    def bind(
        self,
        call_id: int,
        items: list[CtxItem],
        *,
        ptype: int = PTYPE["bind"],
        sec_addr: str = "",
        ntlm: SecCtx | None = None,
        max_frag: int = 5840,
        flags: int = PFC_FIRST | PFC_LAST,
        nak_reason: int | None = None,
        answer: bool = True,
        auth3: bool = True,
        ack_max_frag: int | None = None,
        auth: Auth | None = None,
    ) -> tuple[int, int | None]:
        """bind or alter_context and its answer; with `ntlm`, the three-leg NTLMSSP exchange
        (NEGOTIATE in the bind, CHALLENGE in the ack, AUTHENTICATE in an auth3 with the same call_id)."""
        name = PTNAME[ptype]
        if ntlm:
            auth = Auth(AUTH_NTLMSSP, ntlm.level, ntlm.ctx_id, ntlm_negotiate())
        bf = self.chan.c2s(self.bind_pdu(call_id, items, ptype, auth, max_frag, flags), f"{name} call_id={call_id}")
        if not answer:
            self.record_bind(bf, ptype, call_id, items, None, None, auth.auth_type if auth else None)
            return bf, None
        if nak_reason is not None:
            e = "<" if self.le else ">"
            nb = struct.pack(e + "HB", nak_reason, 1) + bytes([5, 0]) + b"\0\0\0"
            af = self.chan.s2c(self.pdu(PTYPE["bind_nak"], call_id, nb), f"bind_nak call_id={call_id}")
            self.record_bind(
                bf,
                ptype,
                call_id,
                items,
                af,
                PTYPE["bind_nak"],
                auth.auth_type if auth else None,
                nak_reason=nak_reason,
            )
            return bf, af
        ack_type = PTYPE["bind_ack"] if ptype == PTYPE["bind"] else PTYPE["alter_context_resp"]
        ack_auth = Auth(AUTH_NTLMSSP, ntlm.level, ntlm.ctx_id, ntlm_challenge(self.rng)) if ntlm else None
        af = self.chan.s2c(
            self.ack_pdu(call_id, items, ptype, sec_addr, ack_auth, ack_max_frag or max_frag, flags),
            f"{PTNAME[ack_type]} call_id={call_id}",
        )
        self.record_bind(
            bf,
            ptype,
            call_id,
            items,
            af,
            ack_type,
            auth.auth_type if auth else None,
            sec_addr=sec_addr if ptype == PTYPE["bind"] else "",
        )
        if ntlm and auth3:
            tok = ntlm_authenticate(self.rng, ntlm.user, ntlm.domain, ntlm.workstation)
            a3 = self.pdu(
                PTYPE["auth3"], call_id, b"\0\0\0\0", auth=Auth(AUTH_NTLMSSP, ntlm.level, ntlm.ctx_id, tok), flags=flags
            )
            f3 = self.chan.c2s(a3, f"auth3 call_id={call_id} user={ntlm.domain}\\{ntlm.user}")
            self.sec[ntlm.ctx_id] = ntlm
            self.record_ntlm(f3, "auth3", ntlm)
        return bf, af

    def _verifier(self, sec: SecCtx | None, side: str) -> Auth | None:
        if sec is None:
            return None
        if side == "c":
            sec.seq_c += 1
            seq = sec.seq_c - 1
        else:
            sec.seq_s += 1
            seq = sec.seq_s - 1
        return Auth(sec.auth_type, sec.level, sec.ctx_id, ntlm_signature(self.rng, seq))

    def fragments(self, stub: bytes, frag: int | None) -> list[bytes]:
        if not frag or len(stub) <= frag:
            return [stub]
        assert frag % 8 == 0, "every fragment but the last carries a multiple of 8 stub bytes"
        return [stub[i : i + frag] for i in range(0, len(stub), frag)]

    def request_pdus(
        self,
        call_id: int,
        ctx_id: int,
        opnum: int,
        stub: bytes,
        *,
        sec: SecCtx | None = None,
        frag: int | None = None,
        obj: str | None = None,
    ) -> list[bytes]:
        """The request fragments of one call ([C706] 12.6.4.9; PFC_FIRST_FRAG / PFC_LAST_FRAG, alloc_hint =
        the stub bytes still to come)."""
        if sec and sec.level == LEVEL_PRIVACY:
            stub = self.rng.randbytes(len(stub))  # sealed: opaque bytes of the same length
        parts = self.fragments(stub, frag)
        out, remaining = [], len(stub)
        for i, part in enumerate(parts):
            flags = (PFC_FIRST if i == 0 else 0) | (PFC_LAST if i == len(parts) - 1 else 0)
            if obj:
                flags |= PFC_OBJECT_UUID
            body = request_body(remaining, ctx_id, opnum, part, self.le, obj)
            out.append(
                self.pdu(PTYPE["request"], call_id, body, flags=flags, auth=self._verifier(sec, "c"), pad_align=16)
            )
            remaining -= len(part)
        return out

    def response_pdus(
        self, call_id: int, ctx_id: int, stub: bytes, *, sec: SecCtx | None = None, frag: int | None = None
    ) -> list[bytes]:
        if sec and sec.level == LEVEL_PRIVACY:
            stub = self.rng.randbytes(len(stub))
        parts = self.fragments(stub, frag)
        out, remaining = [], len(stub)
        for i, part in enumerate(parts):
            flags = (PFC_FIRST if i == 0 else 0) | (PFC_LAST if i == len(parts) - 1 else 0)
            out.append(
                self.pdu(
                    PTYPE["response"],
                    call_id,
                    response_body(remaining, ctx_id, part, self.le),
                    flags=flags,
                    auth=self._verifier(sec, "s"),
                    pad_align=16,
                )
            )
            remaining -= len(part)
        return out

    def fault_pdu(self, call_id: int, ctx_id: int, status: int) -> bytes:
        return self.pdu(
            PTYPE["fault"],
            call_id,
            fault_body(ctx_id, status, self.le),
            flags=PFC_FIRST | PFC_LAST | PFC_DID_NOT_EXECUTE,
        )

    def call(
        self,
        call_id: int,
        ctx_id: int,
        opnum: int,
        stub: bytes,
        resp: bytes | None = None,
        *,
        fault: int | None = None,
        sec: SecCtx | None = None,
        frag: int | None = None,
        resp_frag: int | None = None,
        obj: str | None = None,
        answer: bool = True,
        name: str = "",
    ) -> tuple[int, int | None]:
        """One request (possibly fragmented) and its response or fault.

        Returns (request frame, answer frame)."""
        label = f"request call_id={call_id} opnum={opnum}" + (f" {name}" if name else "")
        reqs = self.request_pdus(call_id, ctx_id, opnum, stub, sec=sec, frag=frag, obj=obj)
        rf = 0
        for i, p in enumerate(reqs):
            rf = self.chan.c2s(p, label + (f" frag {i + 1}/{len(reqs)}" if len(reqs) > 1 else ""))
        pf: int | None = None
        resp_len: int | None = None
        nresp = 1
        if answer and fault is not None:
            pf = self.chan.s2c(self.fault_pdu(call_id, ctx_id, fault), f"fault call_id={call_id} status=0x{fault:08x}")
        elif answer:
            assert resp is not None
            resps = self.response_pdus(call_id, ctx_id, resp, sec=sec, frag=resp_frag)
            nresp = len(resps)
            for i, p in enumerate(resps):
                pf = self.chan.s2c(p, f"response call_id={call_id}" + (f" frag {i + 1}/{nresp}" if nresp > 1 else ""))
            resp_len = len(resp)
        self.record_request(
            rf,
            call_id,
            ctx_id,
            opnum,
            stub_len=len(stub),
            resp_frame=pf,
            resp_stub_len=resp_len,
            fault=fault,
            sec=sec,
            fragments=len(reqs),
            resp_fragments=nresp,
            obj=obj,
            operation=name or None,
        )
        return rf, pf


# --------------------------------------------------------------------------------------------------
# Endpoint mapper ([C706] Appendix I and L, [MS-RPCE] 2.2.1.2)
# --------------------------------------------------------------------------------------------------


@dataclass
class Tower:
    """A protocol tower (twr_t octets, [C706] Appendix L): floor count u16 LE, then floors of
    lhs_len u16 LE + lhs (protocol id + data) and rhs_len u16 LE + rhs. Ports and IPv4 addresses in the
    rhs are big-endian; the floor-1 uuid and versions are little-endian whatever the drep."""

    iface: str
    protocol: str  # ncacn_ip_tcp, ncadg_ip_udp, ncacn_np, ncalrpc, ncacn_http
    port: int | None = None
    ip: str | None = None
    pipe: str | None = None
    netbios: str | None = None
    lrpc: str | None = None

    @property
    def if_uuid(self) -> str:
        return IFACES[self.iface][0] if self.iface in IFACES else self.iface

    @property
    def if_ver(self) -> tuple[int, int]:
        return IFACES[self.iface][1] if self.iface in IFACES else (1, 0)

    def encode(self) -> bytes:
        def floor(lhs: bytes, rhs: bytes) -> bytes:
            return struct.pack("<H", len(lhs)) + lhs + struct.pack("<H", len(rhs)) + rhs

        ma, mi = self.if_ver
        floors = [
            floor(b"\x0d" + uuid_bytes(self.if_uuid) + struct.pack("<H", ma), struct.pack("<H", mi)),
            floor(b"\x0d" + uuid_bytes(NDR[0]) + struct.pack("<H", 2), struct.pack("<H", 0)),
        ]
        if self.protocol == "ncalrpc":
            floors += [floor(b"\x0c", b"\0\0"), floor(b"\x10", (self.lrpc or "").encode() + b"\0")]
        else:
            floors.append(floor(b"\x0a" if self.protocol == "ncadg_ip_udp" else b"\x0b", b"\0\0"))
            if self.protocol == "ncacn_np":
                floors.append(floor(b"\x0f", (self.pipe or "").encode() + b"\0"))
                floors.append(floor(b"\x11", (self.netbios or "").encode() + b"\0"))
            else:
                pid = {"ncacn_ip_tcp": 0x07, "ncadg_ip_udp": 0x08, "ncacn_http": 0x1F}[self.protocol]
                floors.append(floor(bytes([pid]), struct.pack(">H", self.port or 0)))
                floors.append(floor(b"\x09", bytes(int(x) for x in (self.ip or "0.0.0.0").split("."))))
        return struct.pack("<H", len(floors)) + b"".join(floors)


def ndr_tower(n: Ndr, t: Tower) -> None:
    """twr_t ([C706] Appendix L): conformant struct, so max_count comes first, then tower_length, octets."""
    octets = t.encode()
    n.u32(len(octets)).u32(len(octets)).raw(octets)


def ept_map_request(le: bool, iface: str, proto: str = "ncacn_ip_tcp", max_towers: int = 4) -> bytes:
    """ept_map request stub ([C706] Appendix O, opnum 3): [ptr] object uuid, [ptr] map_tower,
    entry_handle (20 bytes), max_towers."""
    n = Ndr(le, ref=1, ref_step=1)
    n.ptr().uuid("00000000-0000-0000-0000-000000000000")
    n.ptr()
    ndr_tower(n, Tower(iface, proto, port=0, ip="0.0.0.0"))
    n.align(4).handle("00000000-0000-0000-0000-000000000000")
    n.u32(max_towers)
    return n.bytes()


def ept_map_response(
    le: bool,
    towers: list[Tower],
    max_towers: int = 4,
    status: int = 0,
    handle: str = "00000000-0000-0000-0000-000000000000",
) -> bytes:
    """ept_map response stub: entry_handle, num_towers, conformant-varying array of tower pointers
    (max_count, offset, actual_count, referent ids), the deferred twr_t's, status."""
    n = Ndr(le, ref=3, ref_step=1)
    n.handle(handle)
    n.u32(len(towers))
    n.u32(max_towers).u32(0).u32(len(towers))
    for _ in towers:
        n.ptr()
    for t in towers:
        n.align(4)
        ndr_tower(n, t)
    n.align(4).u32(status)
    return n.bytes()


def ept_lookup_request(le: bool, handle: str, max_ents: int, inquiry: int = 0, vers_option: int = 1) -> bytes:
    """ept_lookup request stub ([C706] Appendix O, opnum 2): inquiry_type, [ptr] object, [ptr] interface id,
    vers_option, entry_handle, max_ents (object and interface are NULL pointers, as rpcdump sends them)."""
    n = Ndr(le)
    n.u32(inquiry).ptr(null=True).ptr(null=True).u32(vers_option).handle(handle).u32(max_ents)
    return n.bytes()


@dataclass
class EptEntry:
    obj: str
    tower: Tower
    annotation: str


def ept_lookup_response(le: bool, handle: str, entries: list[EptEntry], max_ents: int, status: int = 0) -> bytes:
    """ept_lookup response stub: entry_handle, num_ents, conformant-varying array of ept_entry_t
    {object uuid, [ptr] tower, annotation as a varying string (offset, actual_count, chars incl. NUL)},
    the deferred towers, status."""
    n = Ndr(le, ref=1, ref_step=1)
    n.handle(handle)
    n.u32(len(entries))
    n.u32(max_ents).u32(0).u32(len(entries))
    for en in entries:
        n.uuid(en.obj)
        n.ptr()
        a = en.annotation.encode("ascii") + b"\0"
        n.u32(0).u32(len(a)).raw(a)
        n.align(4)
    for en in entries:
        n.align(4)
        ndr_tower(n, en.tower)
    n.align(4).u32(status)
    return n.bytes()


def record_towers(
    cap: Capture,
    chan: Channel,
    frame: int,
    req_frame: int,
    call_id: int,
    opnum: int,
    towers: list[Tower],
    entries: list[EptEntry] | None = None,
    ip6: bool = False,
    **extra: Any,
) -> None:
    ep = chan.endpoint()
    for i, t in enumerate(towers):
        en = entries[i] if entries else None
        host = t.ip if t.protocol in ("ncacn_ip_tcp", "ncadg_ip_udp", "ncacn_http") else None
        cap.man["epm_towers"].append(
            {
                "frame": frame,
                "ts_ns": cap.ts_of(frame),
                "server_ip": ep["server_ip"],
                "server_port": ep["server_port"],
                "client_ip": ep["client_ip"],
                "client_port": ep["client_port"],
                "transport": ep["transport"],
                "call_id": call_id,
                "opnum": opnum,
                "request_frame": req_frame,
                "tower_index": i,
                "object_uuid": en.obj if en else None,
                "if_uuid": t.if_uuid,
                "if_name": t.iface if t.iface in IFACES else None,
                "if_version": vstr(t.if_ver),
                "if_ver_major": t.if_ver[0],
                "if_ver_minor": t.if_ver[1],
                "protocol": t.protocol,
                "port": t.port if host is not None else None,
                "host_ip": host,
                "effective_host_ip": (ep["server_ip"] if host == "0.0.0.0" else host) if host else None,
                "pipe": t.pipe,
                "netbios_name": t.netbios,
                "lrpc_endpoint": t.lrpc,
                "annotation": en.annotation if en else None,
                **extra,
            }
        )


def zero_uuid() -> str:
    return "00000000-0000-0000-0000-000000000000"


def det_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(bytes=rng.randbytes(16), version=4))


# --------------------------------------------------------------------------------------------------
# Stubs for the operations the samples call (NDR per the interfaces' IDL)
# --------------------------------------------------------------------------------------------------


def scmr_open_scmanager(le: bool = True) -> tuple[bytes, bytes, str]:
    """[MS-SCMR] 3.1.4.15 ROpenSCManagerW (opnum 15): lpMachineName, lpDatabaseName, dwDesiredAccess."""
    h = "1b7c2a3e-4d5f-4a6b-8c7d-9e0f1a2b3c4d"
    req = Ndr(le).ptr().wstr("\\\\SRV01").align(4).ptr().wstr("ServicesActive").align(4).u32(0x000F003F).bytes()
    resp = Ndr(le).handle(h).u32(0).bytes()
    return req, resp, h


def scmr_handle_call(handle: str, extra: bytes = b"", le: bool = True) -> bytes:
    return Ndr(le).handle(handle).raw(extra).bytes()


def scmr_open_service(handle: str, name: str, le: bool = True) -> bytes:
    """[MS-SCMR] 3.1.4.16 ROpenServiceW (opnum 16): hSCManager, lpServiceName, dwDesiredAccess."""
    return Ndr(le).handle(handle).wstr(name).align(4).u32(0x000F01FF).bytes()


def handle_status(handle: str, status: int = 0, le: bool = True) -> bytes:
    return Ndr(le).handle(handle).u32(status).bytes()


def service_status(le: bool = True) -> bytes:
    """SERVICE_STATUS ([MS-SCMR] 2.2.47) + return value: a stopped own-process service."""
    n = Ndr(le)
    for v in (0x10, 1, 0, 0, 0, 0, 0):
        n.u32(v)
    return n.u32(0).bytes()


# --------------------------------------------------------------------------------------------------
# 1. epm_map_session.pcap
# --------------------------------------------------------------------------------------------------


def make_epm_map_session() -> None:
    cap = Capture(
        "epm_map_session.pcap",
        "The canonical flow: EPM bind with NDR/NDR64/BTFN on TCP 135, ept_map for svcctl and drsuapi, "
        "then an NTLMSSP-authenticated svcctl session on the announced dynamic port 49667.",
        seed=1,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]

    # --- endpoint mapper on 135
    f = TcpFlow(cap, ws, 49701, srv, 135)
    f.handshake()
    ch = TcpChannel(f)
    a = Assoc(cap, ch, assoc_group=0x0000A3F1)
    a.bind(
        1,
        [
            CtxItem(0, "epmapper", [NDR]),
            CtxItem(1, "epmapper", [NDR64], result=2, reason=2),
            CtxItem(2, "epmapper", [btfn(0x03)], result=3, reason=0x0003),
        ],
        sec_addr="135",
        flags=PFC_FIRST | PFC_LAST | PFC_SUPPORT_HEADER_SIGN,
    )
    towers = [
        Tower("svcctl", "ncacn_ip_tcp", port=49667, ip="10.0.0.10"),
        Tower("svcctl", "ncacn_ip_tcp", port=49667, ip="0.0.0.0"),
    ]
    rf, pf = a.call(2, 0, 3, ept_map_request(True, "svcctl"), ept_map_response(True, towers), name="ept_map")
    record_towers(cap, ch, pf, rf, 2, 3, towers)
    towers = [Tower("drsuapi", "ncacn_ip_tcp", port=49668, ip="0.0.0.0")]
    rf, pf = a.call(3, 0, 3, ept_map_request(True, "drsuapi"), ept_map_response(True, towers), name="ept_map")
    record_towers(cap, ch, pf, rf, 3, 3, towers)
    f.close()

    # --- svcctl on the dynamic port, NTLMSSP at packet integrity, then a second security context at privacy
    cap.wait(3)
    f = TcpFlow(cap, ws, 49702, srv, 49667)
    f.handshake()
    ch = TcpChannel(f)
    a = Assoc(cap, ch, assoc_group=0x0000A3F2)
    alice = SecCtx(LEVEL_INTEGRITY, "alice", "CORP", "WS01", ctx_id=0)
    a.bind(
        1,
        [CtxItem(0, "svcctl", [NDR]), CtxItem(1, "svcctl", [btfn(0x03)], result=3, reason=0x0003)],
        sec_addr="49667",
        ntlm=alice,
        flags=PFC_FIRST | PFC_LAST | PFC_SUPPORT_HEADER_SIGN,
    )
    req, resp, h = scmr_open_scmanager()
    a.call(2, 0, 15, req, resp, sec=alice, name="ROpenSCManagerW")
    hs = "6a0b1c2d-3e4f-4051-8263-748596a7b8c9"
    a.call(3, 0, 16, scmr_open_service(h, "Spooler"), handle_status(hs), sec=alice, name="ROpenServiceW")
    a.call(4, 0, 6, scmr_handle_call(hs), service_status(), sec=alice, name="RQueryServiceStatus")
    a.call(5, 0, 61, scmr_handle_call(hs), fault=NCA_S_OP_RNG_ERROR, sec=alice, name="opnum out of range")
    sealed = SecCtx(LEVEL_PRIVACY, "alice", "CORP", "WS01", ctx_id=1)
    a.bind(6, [CtxItem(0, "svcctl", [NDR])], ptype=PTYPE["alter_context"], ntlm=sealed)
    a.call(
        7,
        0,
        19,
        scmr_handle_call(hs, Ndr().u32(0).ptr(null=True).bytes()),
        Ndr().u32(0).bytes(),
        sec=sealed,
        name="RStartServiceW (sealed)",
    )
    a.call(8, 0, 0, scmr_handle_call(hs), handle_status(zero_uuid()), sec=alice, name="RCloseServiceHandle")
    a.call(9, 0, 0, scmr_handle_call(h), handle_status(zero_uuid()), sec=alice, name="RCloseServiceHandle")
    f.close()
    save_pcap(cap)


# --------------------------------------------------------------------------------------------------
# 2. epm_lookup_dump.pcap
# --------------------------------------------------------------------------------------------------


def make_epm_lookup_dump() -> None:
    cap = Capture(
        "epm_lookup_dump.pcap",
        "An rpcdump-style ept_lookup loop against a domain controller's endpoint mapper: towers for "
        "every protocol family, annotations, entry handles, EPT_S_NOT_REGISTERED at the end.",
        seed=2,
    )
    ws, dc = cap.h["ws02"], cap.h["dc01"]
    f = TcpFlow(cap, ws, 49713, dc, 135)
    f.handshake()
    ch = TcpChannel(f)
    a = Assoc(cap, ch, assoc_group=0x00005D10)
    a.bind(1, [CtxItem(0, "epmapper", [NDR])], sec_addr="135")
    batches = [
        [
            EptEntry(zero_uuid(), Tower("atsvc_tsch", "ncacn_ip_tcp", port=49670, ip="10.0.0.5"), ""),
            EptEntry(zero_uuid(), Tower("msgsvc", "ncadg_ip_udp", port=49672, ip="10.0.0.5"), "Messenger Service"),
            EptEntry(zero_uuid(), Tower("samr", "ncacn_np", pipe="\\PIPE\\lsass", netbios="\\\\DC01"), ""),
            EptEntry(
                zero_uuid(),
                Tower("IRemoteWinspool", "ncalrpc", lrpc="LRPC-5f6b7e2a9c8d1e0f3a"),
                "Spooler function endpoint",
            ),
        ],
        [
            EptEntry(zero_uuid(), Tower("epmapper", "ncacn_http", port=593, ip="10.0.0.5"), ""),
            EptEntry(
                zero_uuid(), Tower("drsuapi", "ncacn_ip_tcp", port=49668, ip="0.0.0.0"), "MS NT Directory DRS Interface"
            ),
            EptEntry(zero_uuid(), Tower("netlogon", "ncacn_np", pipe="\\pipe\\lsass", netbios="\\\\DC01"), ""),
            EptEntry(
                "897e2e5f-93f3-4376-9c9c-fd2277495c27",
                Tower("frs2", "ncacn_ip_tcp", port=49671, ip="10.0.0.5"),
                "Frs2 Service",
            ),
        ],
        [
            EptEntry(
                zero_uuid(), Tower("drsuapi", "ncacn_http", port=49669, ip="10.0.0.5"), "MS NT Directory DRS Interface"
            ),
            EptEntry(zero_uuid(), Tower("netlogon", "ncadg_ip_udp", port=49673, ip="10.0.0.5"), ""),
        ],
    ]
    handle = zero_uuid()
    call_id = 2
    for i, batch in enumerate(batches):
        new_handle = f"4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c{i:02x}"
        rf, pf = a.call(
            call_id,
            0,
            2,
            ept_lookup_request(True, handle, 4),
            ept_lookup_response(True, new_handle, batch, 4),
            name="ept_lookup",
        )
        record_towers(cap, ch, pf, rf, call_id, 2, [e.tower for e in batch], batch)
        handle, call_id = new_handle, call_id + 1
    a.call(
        call_id,
        0,
        2,
        ept_lookup_request(True, handle, 4),
        ept_lookup_response(True, zero_uuid(), [], 4, status=EPT_S_NOT_REGISTERED),
        name="ept_lookup (end)",
    )
    cap.man["requests"][-1]["epm_status"] = EPT_S_NOT_REGISTERED
    cap.man.note(
        "truth.py numbers ept_lookup towers in tshark's JSON order, which groups entries with identical "
        "labels (all entries with an empty annotation come first): its tower_index is not the wire order "
        "for opnum 2; check_samples.py compares tower_index for ept_map only."
    )
    cap.man.note(
        "tshark shows only towers carrying a TCP/UDP/HTTP port in the truth file; the ncacn_np and ncalrpc "
        "towers (floors 0x0f/0x11 and 0x0c/0x10) are in the manifest but not checked by tshark "
        "(tshark 4.0 says 'RightHandSide not decoded yet' for the ncalrpc floor 3)."
    )
    f.close()
    save_pcap(cap)


# --------------------------------------------------------------------------------------------------
# 3. tcp_segmentation.pcap
# --------------------------------------------------------------------------------------------------


def dcom_server_alive2_resp(host: str = "SRV01") -> bytes:
    """[MS-DCOM] 3.1.2.5.1.6 ServerAlive2 out: COMVERSION, [unique] DUALSTRINGARRAY (ncacn_ip_tcp binding +
    security bindings), reserved, error_status_t."""
    words = [0x0007] + [ord(c) for c in host] + [0, 0]
    sec_off = len(words)
    words += [0x000A, 0xFFFF, 0, 0x0010, 0xFFFF, 0, 0, 0]
    n = Ndr().u16(5).u16(7).ptr().u32(len(words)).u16(len(words)).u16(sec_off)
    for w in words:
        n.u16(w)
    return n.align(4).u32(0).u32(0).bytes()


def dcom_remote_create_instance(rng: random.Random) -> bytes:
    """[MS-DCOM] 3.1.2.5.2.3.2 RemoteCreateInstance in: ORPCTHIS, [unique] pUnkOuter (NULL),
    [unique] MInterfacePointer pActProperties {ulCntData, abData[] = an OBJREF_CUSTOM 'MEOW' blob}."""
    blob = (
        b"MEOW"
        + struct.pack("<I", 4)
        + uuid_bytes("000001a2-0000-0000-c000-000000000046")
        + uuid_bytes("00000338-0000-0000-c000-000000000046")
        + struct.pack("<II", 0, 0)
        + rng.randbytes(424)
    )
    n = Ndr().u16(5).u16(7).u32(0).u32(0).uuid(det_uuid(rng)).ptr(null=True)
    n.ptr(null=True).ptr().u32(len(blob)).u32(len(blob)).raw(blob)
    return n.align(4).bytes()


def dcom_remote_create_instance_resp(rng: random.Random) -> bytes:
    """RemoteCreateInstance out: ORPCTHAT, [unique] MInterfacePointer ppActProperties, HRESULT."""
    blob = (
        b"MEOW"
        + struct.pack("<I", 4)
        + uuid_bytes("000001a3-0000-0000-c000-000000000046")
        + uuid_bytes("00000338-0000-0000-c000-000000000046")
        + struct.pack("<II", 0, 0)
        + rng.randbytes(360)
    )
    n = Ndr().u32(0).ptr(null=True).ptr().u32(len(blob)).u32(len(blob)).raw(blob)
    return n.align(4).u32(0).bytes()


def make_tcp_segmentation() -> None:
    cap = Capture(
        "tcp_segmentation.pcap",
        "DCOM activation on TCP 135 whose PDUs are cut, repeated, reordered and partly lost at the TCP "
        "layer: what a reassembler must survive.",
        seed=3,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49720, srv, 135)
    f.handshake()
    ch = TcpChannel(f)
    a = Assoc(cap, ch, assoc_group=0x0000C0DE)
    ev = cap.man.data.setdefault("tcp_events", [])

    def segs(
        side: str, data: bytes, cuts: list[int], what: str, order: list[int] | None = None, lost: set[int] | None = None
    ) -> list[int]:
        """Send `data` cut at `cuts`, in `order`, leaving out the pieces in `lost`; returns their frames."""
        bounds = [0, *cuts, len(data)]
        pieces = [(bounds[i], data[bounds[i] : bounds[i + 1]]) for i in range(len(bounds) - 1)]
        base = f.pos[side]
        frames = [0] * len(pieces)
        for i in order or list(range(len(pieces))):
            off, chunk = pieces[i]
            if lost and i in lost:
                ev.append(
                    {
                        "frame": None,
                        "event": "lost segment (not in the capture, acknowledged by the peer)",
                        "direction": side,
                        "stream_offset": base + off,
                        "length": len(chunk),
                        "what": what,
                    }
                )
                continue
            frames[i] = f.segment(side, base + off, chunk, desc=f"{what} bytes {off}-{off + len(chunk)}")
        f.advance(side, len(data))
        return frames

    # 1. bind cut inside the 16-byte common header (10 | 30 | rest)
    bind_items = [CtxItem(0, "IObjectExporter", [NDR]), CtxItem(1, "ISystemActivator", [NDR])]
    bind = a.bind_pdu(1, bind_items)
    fr = segs("c", bind, [10, 40], "bind")
    ev.append({"frame": fr[0], "event": "PDU split inside the 16-byte header", "what": "bind call_id=1"})
    f.ack("s")
    # 2. bind_ack, then the same segment again (retransmission)
    ack = a.ack_pdu(1, bind_items, sec_addr="135")
    base = f.pos["s"]
    af = f.segment("s", base, ack, desc="bind_ack")
    f.advance("s", len(ack))
    cap.wait(200)
    rt = f.segment("s", base, ack, desc="bind_ack (retransmission)")
    ev.append({"frame": rt, "event": "retransmission of an identical segment", "what": "bind_ack call_id=1"})
    a.record_bind(
        fr[-1],
        PTYPE["bind"],
        1,
        bind_items,
        af,
        PTYPE["bind_ack"],
        None,
        sec_addr="135",
        tshark_skip="tshark 4.0 does not take a TCP segment shorter than the 16-byte DCE/RPC header as "
        "the start of a PDU, so it never dissects this bind",
    )
    f.ack("c")
    # 3. two requests in one segment, and their two responses in one segment
    r2 = a.request_pdus(2, 0, 5, b"")
    r3 = a.request_pdus(3, 0, 1, Ndr().u64(0x0000BEEF00C0FFEE).bytes())
    rq = f.send("c", r2[0] + r3[0], desc="2 requests (call_id 2, 3)")
    ev.append({"frame": rq, "event": "two PDUs in one segment", "what": "requests call_id=2,3"})
    p2 = a.response_pdus(2, 0, dcom_server_alive2_resp())
    p3 = a.response_pdus(3, 0, Ndr().u32(0).bytes())
    rs = f.send("s", p2[0] + p3[0], desc="2 responses (call_id 2, 3)")
    ev.append({"frame": rs, "event": "two PDUs in one segment", "what": "responses call_id=2,3"})
    a.record_request(
        rq, 2, 0, 5, stub_len=0, resp_frame=rs, resp_stub_len=len(dcom_server_alive2_resp()), operation="ServerAlive2"
    )
    a.record_request(rq, 3, 0, 1, stub_len=8, resp_frame=rs, resp_stub_len=4, operation="SimplePing")
    # 4. a request in three segments; the peer acknowledges only the first, and the sender retransmits
    #    the other two as one segment (an overlapping, repacketised retransmission)
    stub4 = dcom_remote_create_instance(cap.rng)
    r4 = a.request_pdus(4, 1, 4, stub4)[0]
    base = f.pos["c"]
    f.segment("c", base, r4[:200], desc="request call_id=4 bytes 0-200", flags="A")
    fb = f.segment("c", base + 200, r4[200:450], desc="request call_id=4 bytes 200-450", flags="A")
    fr4 = f.segment("c", base + 450, r4[450:], desc=f"request call_id=4 bytes 450-{len(r4)}")
    f.packet("s", "A", f.seq("s"), f.seq("c", base + 200), desc="ACK (only the first segment)")
    cap.wait(300)
    frt = f.segment("c", base + 200, r4[200:], desc=f"request call_id=4 bytes 200-{len(r4)} (retransmission)")
    f.advance("c", len(r4))
    ev.append(
        {
            "frame": frt,
            "event": f"overlapping retransmission: one segment re-sends bytes 200-{len(r4)} first "
            f"sent in frames {fb} and {fr4}",
            "what": "request call_id=4",
        }
    )
    f.ack("s")
    # 5. the response in two segments captured in the wrong order
    stub4r = dcom_remote_create_instance_resp(cap.rng)
    p4 = a.response_pdus(4, 1, stub4r)[0]
    fo = segs("s", p4, [250], "response call_id=4", order=[1, 0])
    ev.append(
        {
            "frame": fo[1],
            "event": "out of order: the second half of the PDU is captured first",
            "what": "response call_id=4",
        }
    )
    ev.append(
        {
            "frame": fo[0],
            "event": "out of order: the first half arrives last and completes the PDU",
            "what": "response call_id=4",
        }
    )
    a.record_request(
        fr4,
        4,
        1,
        4,
        stub_len=len(stub4),
        resp_frame=fo[0],
        resp_stub_len=len(stub4r),
        operation="RemoteCreateInstance",
        response_tshark_skip="tshark 4.0 does not reassemble out-of-order segments by default "
        "(tcp.reassemble_out_of_order is off)",
    )
    f.ack("c")
    # 6. alter_context cut exactly after the common header
    alter_items = [CtxItem(2, "IRemUnknown2", [NDR])]
    alt = a.bind_pdu(5, alter_items, PTYPE["alter_context"])
    fr = segs("c", alt, [16], "alter_context call_id=5")
    ev.append({"frame": fr[0], "event": "PDU split right after the 16-byte header", "what": "alter_context call_id=5"})
    af = f.send("s", a.ack_pdu(5, alter_items, PTYPE["alter_context"]), desc="alter_context_resp call_id=5")
    a.record_bind(fr[-1], PTYPE["alter_context"], 5, alter_items, af, PTYPE["alter_context_resp"], None, sec_addr="")
    # 7. an ordinary call
    stub6 = Ndr().u64(0x1122334455667788).u16(3).u16(1).ptr().u32(1).u16(7).bytes()
    a.call(
        6,
        0,
        4,
        stub6,
        Ndr().ptr().u32(3).u16(3).u16(0).u16(7).u16(0).u16(0).align(4).u32(0).u32(0).bytes(),
        name="ResolveOxid2",
    )
    # 8. a segment missing from the capture: it holds the tail of call 7 and the head of call 8; the next
    #    segment holds the rest of call 8 and a complete call 9 (which starts mid-segment)
    r7 = a.request_pdus(7, 0, 5, b"")[0]
    r8 = a.request_pdus(8, 0, 1, Ndr().u64(0x0000BEEF00C0FFEE).bytes())[0]
    r9 = a.request_pdus(
        9, 0, 2, Ndr().u64(0x0000BEEF00C0FFEE).u16(2).u16(0).u16(0).ptr(null=True).ptr(null=True).bytes()
    )[0]
    data = r7 + r8 + r9
    fr = segs("c", data, [12, len(r7) + 20], "requests call_id=7,8,9", lost={1})
    f.ack("s", desc="ACK (covers the lost segment)")
    ev.append(
        {
            "frame": fr[2],
            "event": "first segment after the gap: tail of call 8, then call 9 complete",
            "what": "requests call_id=8,9",
        }
    )
    q7 = f.send("s", a.response_pdus(7, 0, dcom_server_alive2_resp())[0], desc="response call_id=7")
    q8 = f.send("s", a.response_pdus(8, 0, Ndr().u32(0).bytes())[0], desc="response call_id=8")
    q9 = f.send(
        "s",
        a.response_pdus(9, 0, Ndr().u64(0x0000BEEF00C0FFEE).u16(2).u16(0).align(4).u32(0).bytes())[0],
        desc="response call_id=9",
    )
    a.record_request(
        fr[0],
        7,
        0,
        5,
        stub_len=0,
        resp_frame=q7,
        resp_stub_len=len(dcom_server_alive2_resp()),
        recoverable=False,
        operation="ServerAlive2",
        lost="the PDU's last 12 bytes are in the lost segment",
    )
    a.record_request(
        fr[2],
        8,
        0,
        1,
        stub_len=8,
        resp_frame=q8,
        resp_stub_len=4,
        recoverable=False,
        operation="SimplePing",
        lost="the PDU's first 20 bytes are in the lost segment",
    )
    a.record_request(
        fr[2],
        9,
        0,
        2,
        stub_len=len(r9) - 24,
        resp_frame=q9,
        resp_stub_len=16,
        operation="ComplexPing",
        note="starts in the middle of the first segment after the gap: needs resynchronisation",
        tshark_skip="tshark does not look for a PDU header inside a segment that follows a gap",
    )
    # 9. after the gap, ordinary traffic again
    a.call(10, 0, 5, b"", dcom_server_alive2_resp(), name="ServerAlive2")
    f.close()
    cap.man["lost_bytes"] = [e for e in ev if e["frame"] is None]
    cap.man.note(
        "the bind (call 1) is cut after 10 bytes, inside the common header: tshark 4.0 does not recognise "
        "a DCE/RPC PDU in a segment shorter than 16 bytes and never dissects the bind (its bind_ack it does)."
    )
    cap.man.note(
        "tshark 4.0 with default preferences (tcp.reassemble_out_of_order off) does not reassemble the "
        "out-of-order response of call 4 (marked response_tshark_skip); with that preference on it stalls "
        "for good at the lost segment instead and loses every later client PDU."
    )
    cap.man.note(
        "call 9 starts in the middle of the first segment after the lost one: tshark does not find it "
        "(it only tries a PDU at the start of a segment after a gap), an analyzer that resynchronises does."
    )
    save_pcap(cap)


# --------------------------------------------------------------------------------------------------
# 4. multifrag_calls.pcap
# --------------------------------------------------------------------------------------------------


TASK_XML = r"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Author>CORP\alice</Author>
    <Description>Collects the nightly software inventory and uploads it to the share.</Description>
    <URI>\Inventory\NightlyCollect</URI>
  </RegistrationInfo>
  <Triggers>
    <CalendarTrigger>
      <StartBoundary>2024-03-01T23:30:00</StartBoundary>
      <Enabled>true</Enabled>
      <ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay>
    </CalendarTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>S-1-5-18</UserId>
      <RunLevel>HighestAvailable</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>true</RunOnlyIfNetworkAvailable>
    <IdleSettings><StopOnIdleEnd>false</StopOnIdleEnd><RestartOnIdle>false</RestartOnIdle></IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <ExecutionTimeLimit>PT1H</ExecutionTimeLimit>
    <Priority>7</Priority>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe</Command>
      <Arguments>-NoProfile -File \\SRV01\inventory$\collect.ps1 -OutDir \\SRV01\inventory$</Arguments>
    </Exec>
  </Actions>
</Task>
""".replace("\n", "\r\n")
TASK_PATH = "\\Inventory\\NightlyCollect"
TSCH_HIGHEST = (0, b"", Ndr().u32(0x00010006).u32(0).bytes(), "SchRpcHighestVersion")


def tsch_register_task(xml: str) -> bytes:
    """[MS-TSCH] 3.2.5.4.2 SchRpcRegisterTask in: [unique, string] path, [string] xml, flags
    (TASK_CREATE_OR_UPDATE), [unique] sddl NULL, logonType, cCreds 0, [unique] pCreds NULL."""
    return (
        Ndr()
        .ptr()
        .wstr(TASK_PATH)
        .align(4)
        .wstr(xml)
        .align(4)
        .u32(6)
        .ptr(null=True)
        .u32(0)
        .u32(0)
        .ptr(null=True)
        .bytes()
    )


def tsch_register_task_resp() -> bytes:
    """out: [string] pActualPath, [unique] pErrorInfo NULL, HRESULT."""
    return Ndr().ptr().wstr(TASK_PATH).align(4).ptr(null=True).u32(0).bytes()


def tsch_retrieve_task() -> bytes:
    """[MS-TSCH] 3.2.5.4.3 SchRpcRetrieveTask in: [string] path, [string] languages, pulNumLanguages."""
    return Ndr().wstr(TASK_PATH).align(4).wstr("").align(4).u32(0).bytes()


def tsch_retrieve_task_resp(xml: str) -> bytes:
    return Ndr().ptr().wstr(xml).align(4).u32(0).bytes()


def make_multifrag_calls() -> None:
    cap = Capture(
        "multifrag_calls.pcap",
        "Calls whose request or response is split into several DCE/RPC fragments (PFC_FIRST_FRAG/"
        "PFC_LAST_FRAG, alloc_hint): a Task Scheduler task registered and read back (little-endian), and "
        "a big-endian endpoint-mapper association whose ept_lookup answer spans two fragments.",
        seed=4,
    )
    ws, ws2, srv, dc = cap.h["ws01"], cap.h["ws02"], cap.h["srv01"], cap.h["dc01"]
    # --- little-endian Task Scheduler on a dynamic port: fragments of at most 1424 bytes, one per segment
    f = TcpFlow(cap, ws, 49730, srv, 49670)
    f.handshake()
    a = Assoc(cap, TcpChannel(f), assoc_group=0x0000D5A1)
    a.bind(
        1,
        [CtxItem(0, "atsvc_tsch", [NDR]), CtxItem(1, "atsvc_tsch", [NDR64], result=2, reason=2)],
        sec_addr="49670",
        max_frag=1432,
    )
    op, req, resp, name = TSCH_HIGHEST
    a.call(2, 0, op, req, resp, name=name)
    a.call(3, 0, 1, tsch_register_task(TASK_XML), tsch_register_task_resp(), frag=1400, name="SchRpcRegisterTask")
    a.call(4, 0, 2, tsch_retrieve_task(), tsch_retrieve_task_resp(TASK_XML), resp_frag=1400, name="SchRpcRetrieveTask")
    a.call(5, 0, 13, Ndr().wstr(TASK_PATH).align(4).u32(0).bytes(), Ndr().u32(0).bytes(), name="SchRpcDelete")
    f.close()
    # --- big-endian (drep 0x00) EPM association; MSS 536, so a 624-byte fragment takes two segments
    cap.wait(5)
    f = TcpFlow(cap, ws2, 49731, dc, 135, mss=536)
    f.handshake()
    ch = TcpChannel(f)
    a = Assoc(cap, ch, le=False, assoc_group=0x0000D5A2)
    a.bind(1, [CtxItem(0, "epmapper", [NDR])], sec_addr="135", max_frag=1432)
    entries = [
        EptEntry(
            zero_uuid(), Tower("drsuapi", "ncacn_ip_tcp", port=49668, ip="10.0.0.5"), "MS NT Directory DRS Interface"
        ),
        EptEntry(zero_uuid(), Tower("netlogon", "ncacn_ip_tcp", port=49671, ip="10.0.0.5"), ""),
        EptEntry(zero_uuid(), Tower("lsarpc", "ncacn_ip_tcp", port=49667, ip="0.0.0.0"), ""),
        EptEntry(zero_uuid(), Tower("samr", "ncacn_np", pipe="\\PIPE\\lsass", netbios="\\\\DC01"), ""),
        EptEntry(zero_uuid(), Tower("netlogon", "ncadg_ip_udp", port=49673, ip="10.0.0.5"), ""),
        EptEntry(zero_uuid(), Tower("frs2", "ncacn_ip_tcp", port=49672, ip="10.0.0.5"), "Frs2 Service"),
    ]
    hnd = "0badcafe-0000-4000-8000-00000000beef"
    resp = ept_lookup_response(False, hnd, entries, 8)
    rf, pf = a.call(2, 0, 2, ept_lookup_request(False, zero_uuid(), 8), resp, resp_frag=600, name="ept_lookup")
    record_towers(cap, ch, pf, rf, 2, 2, [e.tower for e in entries], entries)
    a.call(
        3,
        0,
        2,
        ept_lookup_request(False, hnd, 8),
        ept_lookup_response(False, zero_uuid(), [], 8, status=EPT_S_NOT_REGISTERED),
        name="ept_lookup (end)",
    )
    f.close()
    save_pcap(cap)


# --------------------------------------------------------------------------------------------------
# 5. two_interfaces.pcapng
# --------------------------------------------------------------------------------------------------


def pcapng_block(btype: int, body: bytes) -> bytes:
    """A pcapng block (draft-ietf-opsawg-pcapng 3.1): type, total length, body padded to 32 bits,
    total length again."""
    body += b"\0" * ((-len(body)) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def pcapng_options(opts: list[tuple[int, bytes]]) -> bytes:
    """Options: code u16, length u16, value padded to 32 bits; opt_endofopt last."""
    out = b""
    for code, val in opts:
        out += struct.pack("<HH", code, len(val)) + val + b"\0" * ((-len(val)) % 4)
    return out + struct.pack("<HH", 0, 0)


def pcapng_bytes(cap: Capture, interfaces: list[dict[str, Any]]) -> bytes:
    """Section header, one interface description block per interface (link type, if_name, if_tsresol), then
    one block per frame: enhanced packet blocks (type 6), a simple packet block (type 3: no interface id,
    no timestamp, interface 0 implied) or an obsolete packet block (type 2: 16-bit interface id,
    drops count)."""
    out = pcapng_block(
        0x0A0D0D0A,
        struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        + pcapng_options([(3, b"Linux 6.1 x86_64"), (4, b"samples/make_samples.py")]),
    )
    for itf in interfaces:
        out += pcapng_block(
            1,
            struct.pack("<HHI", itf["linktype"], 0, 262144)
            + pcapng_options([(2, itf["name"].encode()), (9, bytes([6 if itf["tsresol"] == "us" else 9]))]),
        )
    for fr in cap.frames:
        ts = fr.ts_ns // 1000 if interfaces[fr.iface]["tsresol"] == "us" else fr.ts_ns
        hi, lo = ts >> 32, ts & 0xFFFFFFFF
        n = len(fr.data)
        if fr.block == "spb":
            out += pcapng_block(3, struct.pack("<I", n) + fr.data)
        elif fr.block == "pb":
            out += pcapng_block(
                2,
                struct.pack("<HHIIII", fr.iface, 0, hi, lo, n, n)
                + fr.data
                + b"\0" * ((-n) % 4)
                + pcapng_options([(1, b"obsolete packet block")]),
            )
        else:
            out += pcapng_block(6, struct.pack("<IIIII", fr.iface, hi, lo, n, n) + fr.data)
    return out


def netlogon_auth_negotiate(domain: str, computer: str) -> bytes:
    """NL_AUTH_MESSAGE ([MS-NRPC] 2.2.1.3.1): MessageType 0 (negotiate), Flags (NetBIOS domain and computer
    names present), the two OEM names."""
    return struct.pack("<II", 0, 3) + domain.encode() + b"\0" + computer.encode() + b"\0"


def netr_req_challenge(rng: random.Random, computer: str) -> bytes:
    """[MS-NRPC] 3.5.4.4.1 NetrServerReqChallenge in: [unique, string] PrimaryName, [string] ComputerName,
    NETLOGON_CREDENTIAL ClientChallenge (8 bytes, byte-aligned)."""
    return Ndr().ptr().wstr("\\\\DC01").align(4).wstr(computer).raw(rng.randbytes(8)).bytes()


def make_two_interfaces() -> None:
    cap = Capture(
        "two_interfaces.pcapng",
        "A pcapng with two interfaces (Ethernet with microsecond timestamps, raw IPv4 with nanosecond "
        "timestamps), one DCE/RPC session on each, interleaved in time; one frame in a simple packet "
        "block and one in an obsolete packet block.",
        seed=5,
        ts_resolution="ns",
    )
    cap.iface_res = {0: "us", 1: "ns"}
    ws, ws2, srv, dc = cap.h["ws01"], cap.h["ws02"], cap.h["srv01"], cap.h["dc01"]
    fa = TcpFlow(cap, ws, 49740, srv, 49670, iface=0)
    fb = TcpFlow(cap, ws2, 49741, dc, 49671, link=link_raw, iface=1)
    fa.handshake()
    cap.frames[-1].block = "spb"  # the handshake's last ACK, without interface id or timestamp
    spb = len(cap.frames)
    fb.handshake()
    aa = Assoc(cap, TcpChannel(fa), assoc_group=0x00007001)
    ab = Assoc(cap, TcpChannel(fb), assoc_group=0x00007002)
    aa.bind(
        1, [CtxItem(0, "unknown_iface", [NDR], result=2, reason=1), CtxItem(1, "atsvc_tsch", [NDR])], sec_addr="49670"
    )
    ab.bind(
        1,
        [CtxItem(0, "netlogon", [NDR])],
        nak_reason=8,
        auth=Auth(AUTH_NETLOGON, LEVEL_PRIVACY, 0, netlogon_auth_negotiate("CORP", "WS02")),
    )
    aa.call(2, 1, 0, b"", Ndr().u32(0x00010006).u32(0).bytes(), name="SchRpcHighestVersion")
    ab.bind(2, [CtxItem(0, "netlogon", [NDR])], sec_addr="49671")
    req = netr_req_challenge(cap.rng, "WS02")
    _rf, pf = ab.call(3, 0, 4, req, cap.rng.randbytes(8) + b"\0\0\0\0", name="NetrServerReqChallenge")
    assert pf is not None
    cap.frames[pf - 1].block = "pb"  # the response travels in an obsolete packet block
    cap.frames[pf - 1].desc += " (obsolete packet block)"
    cap.frames[spb - 1].desc += " (simple packet block)"
    aa.call(3, 1, 0, b"", Ndr().u32(0x00010006).u32(0).bytes(), name="SchRpcHighestVersion")
    fa.close()
    fb.close()
    interfaces = [
        {"id": 0, "linktype": 1, "name": "eth0", "tsresol": "us"},
        {"id": 1, "linktype": 101, "name": "tun0", "tsresol": "ns"},
    ]
    write_file(cap.file, pcapng_bytes(cap, interfaces))
    for row in cap.man["binds"] + cap.man["requests"]:
        row["interface_id"] = cap.frames[row["frame"] - 1].iface
    write_manifest(
        cap,
        {
            "container": "pcapng",
            "interfaces": interfaces,
            "frame_interfaces": [fr.iface for fr in cap.frames],
            "simple_packet_block_frames": [i + 1 for i, fr in enumerate(cap.frames) if fr.block == "spb"],
            "obsolete_packet_block_frames": [i + 1 for i, fr in enumerate(cap.frames) if fr.block == "pb"],
            "note": "the simple packet block has no timestamp; its frame's ts is unknown",
        },
    )


# --------------------------------------------------------------------------------------------------
# 6. link-layer and file-format variants
# --------------------------------------------------------------------------------------------------


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


def make_ip_fragments() -> None:
    cap = Capture(
        "ip_fragments.pcap",
        "A bind carried in an IPv4 datagram cut into three fragments that arrive "
        "out of order (last, first, middle), and a response in two in-order fragments.",
        seed=65,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49757, srv, 49667)
    f.handshake()
    ch = TcpChannel(f)
    a = Assoc(cap, ch, assoc_group=0x6501)
    items = [
        CtxItem(0, "svcctl", [NDR]),
        CtxItem(1, "svcctl", [NDR64], result=2, reason=2),
        CtxItem(2, "svcctl", [btfn(0x03)], result=3, reason=3),
    ]
    auth = Auth(AUTH_NTLMSSP, LEVEL_CONNECT, 0, ntlm_negotiate())
    bind = a.bind_pdu(1, items, auth=auth)
    frs = f.send_ip_fragments("c", bind, 96, [2, 0, 1], desc="bind call_id=1")
    af = f.send(
        "s",
        a.ack_pdu(1, items, sec_addr="49667", auth=Auth(AUTH_NTLMSSP, LEVEL_CONNECT, 0, ntlm_challenge(cap.rng))),
        "bind_ack call_id=1",
    )
    a.record_bind(
        max(frs), PTYPE["bind"], 1, items, af, PTYPE["bind_ack"], AUTH_NTLMSSP, sec_addr="49667", ip_fragment_frames=frs
    )
    carol = SecCtx(LEVEL_CONNECT, "carol", "CORP", "WS01")
    a3 = a.pdu(
        PTYPE["auth3"],
        1,
        b"\0\0\0\0",
        auth=Auth(AUTH_NTLMSSP, LEVEL_CONNECT, 0, ntlm_authenticate(cap.rng, "carol", "CORP", "WS01")),
    )
    a.record_ntlm(f.send("c", a3, "auth3 call_id=1"), "auth3", carol)
    a.sec[0] = carol
    req, resp, _h = scmr_open_scmanager()
    rq = f.send("c", a.request_pdus(2, 0, 15, req)[0], "request call_id=2 opnum=15")
    resp_pdu = a.response_pdus(2, 0, resp + cap.rng.randbytes(0))[0]
    frs2 = f.send_ip_fragments("s", resp_pdu, 48, [0, 1], desc="response call_id=2")
    a.record_request(
        rq,
        2,
        0,
        15,
        stub_len=len(req),
        resp_frame=frs2[-1],
        resp_stub_len=len(resp),
        sec=carol,
        operation="ROpenSCManagerW",
        response_ip_fragment_frames=frs2,
    )
    f.close()
    save_pcap(cap)


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


def make_nanosecond_bigendian() -> None:
    cap = Capture(
        "nanosecond_bigendian.pcap",
        "A svcctl session in a pcap file written big-endian with "
        "nanosecond timestamps (magic a1b23c4d stored as bytes a1 b2 3c 4d).",
        seed=67,
        ts_resolution="ns",
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49759, srv, 49667)
    req, resp, _h = scmr_open_scmanager()
    simple_session(cap, f, "svcctl", 15, req, resp, "ROpenSCManagerW", 0x6701)
    save_pcap(cap, big_endian=True, nano=True)


def make_gzip_session() -> None:
    cap = Capture(
        "gzip_session.pcap.gz", "An EPM lookup in a gzip-compressed pcap (gzip header mtime 0, no file name).", seed=68
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49760, srv, 135)
    epm_map_exchange(
        cap, f, "IRemoteWinspool", [Tower("IRemoteWinspool", "ncacn_ip_tcp", port=49669, ip="10.0.0.10")], 0x6801
    )
    write_file(cap.file, gzip.compress(pcap_bytes(cap), compresslevel=9, mtime=0))
    write_manifest(
        cap, {"container": "pcap", "compression": "gzip", "linktype": 1, "ts_resolution": "us", "byte_order": "little"}
    )


def make_truncated() -> None:
    cap = Capture(
        "truncated.pcap",
        "A capture whose last record is cut in half (the record header promises "
        "more bytes than the file holds): the reader must keep what came before and warn.",
        seed=69,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49761, srv, 49670)
    op, req, resp, name = TSCH_HIGHEST
    a = simple_session(cap, f, "atsvc_tsch", op, req, resp, name, 0x6901, close=False)
    resp2 = Ndr().u32(0x00010006).u32(0).bytes()
    _rq, rs = a.call(3, 0, 0, b"", resp2, name=name)
    data = pcap_bytes(cap)
    last = len(cap.frames[-1].data)
    data = data[: len(data) - last // 2]  # keep the record header and the first half of the frame
    write_file(cap.file, data)
    row = cap.man["requests"][-1]
    row.update(
        response_frame=None,
        response_stub_len=None,
        response_fragments=None,
        response_recoverable=False,
        response_note=f"frame {rs} (the response) is the truncated last record",
    )
    cap.frames[-1].desc += " (truncated record: only the first half is in the file)"
    cap.man.note(
        "tshark stops at the cut record with an error ('cut short in the middle of a packet') and shows "
        "the frames before it."
    )
    fmt = {"container": "pcap", "linktype": 1, "ts_resolution": "us", "byte_order": "little"}
    fmt.update(truncated_record=rs, truncated_record_bytes_present=last - last // 2, truncated_record_incl_len=last)
    write_manifest(cap, fmt, frame_count=rs - 1)


# --------------------------------------------------------------------------------------------------
# SMB2 ([MS-SMB2] 2.2) and named pipes
# --------------------------------------------------------------------------------------------------

SMB2_NEGOTIATE, SMB2_SESSION_SETUP, SMB2_TREE_CONNECT, SMB2_CREATE, SMB2_CLOSE = 0, 1, 3, 5, 6
SMB2_READ, SMB2_WRITE, SMB2_IOCTL = 8, 9, 11
SMB2_FLAGS_SERVER_TO_REDIR, SMB2_FLAGS_ASYNC, SMB2_FLAGS_RELATED = 0x1, 0x2, 0x4
FSCTL_PIPE_TRANSCEIVE = 0x0011C017
SMB2_CMD_NAME = {
    0: "NEGOTIATE",
    1: "SESSION_SETUP",
    3: "TREE_CONNECT",
    5: "CREATE",
    6: "CLOSE",
    8: "READ",
    9: "WRITE",
    11: "IOCTL",
}


def nbss(msg: bytes, mtype: int = 0) -> bytes:
    """NetBIOS session service framing ([RFC 1002] 4.3.1), also the 'direct TCP' framing of port 445
    ([MS-SMB2] 2.1): type, then a 24-bit big-endian length (17 bits in RFC 1002, 24 on port 445)."""
    return struct.pack(">I", (mtype << 24) | len(msg)) + msg


def smb2_header(
    cmd: int,
    mid: int,
    *,
    resp: bool = False,
    status: int = 0,
    session: int = 0,
    tree: int = 0,
    flags: int = 0,
    next_cmd: int = 0,
    async_id: int | None = None,
    credits: int = 1,
) -> bytes:
    """SMB2 packet header ([MS-SMB2] 2.2.1.1 async / 2.2.1.2 sync): ProtocolId, StructureSize 64,
    CreditCharge, Status, Command, CreditRequest/Response, Flags, NextCommand, MessageId,
    (AsyncId | Reserved + TreeId), SessionId, Signature."""
    if resp:
        flags |= SMB2_FLAGS_SERVER_TO_REDIR
    h = b"\xfeSMB" + struct.pack("<HHIHHIIQ", 64, 1, status, cmd, credits, flags, next_cmd, mid)
    if async_id is not None:
        h = h[:16] + struct.pack("<I", flags | SMB2_FLAGS_ASYNC) + h[20:]
        h += struct.pack("<Q", async_id)
    else:
        h += struct.pack("<II", 0x0000FEFF, tree)
    return h + struct.pack("<Q", session) + b"\0" * 16


def smb2_file_id(persistent: int, volatile: int) -> bytes:
    return struct.pack("<QQ", persistent, volatile)


class Smb2Conn:
    """An SMB2 conversation on one TCP connection: message ids, session id, tree id, one NBSS-framed
    message per send (several SMB2 messages chained with NextCommand when compounded)."""

    def __init__(self, cap: Capture, flow: TcpFlow) -> None:
        self.cap, self.flow = cap, flow
        self.mid = 0
        self.session = 0
        self.tree = 0
        self.user: tuple[str, str] | None = None

    def request(self, cmd: int, body: bytes, desc: str = "", **kw: Any) -> tuple[int, int]:
        mid = self.mid
        self.mid += 1
        kw.setdefault("session", self.session)
        kw.setdefault("tree", self.tree)
        fr = self.flow.send("c", nbss(smb2_header(cmd, mid, **kw) + body), f"SMB2 {SMB2_CMD_NAME[cmd]} request {desc}")
        return fr, mid

    def response(self, cmd: int, mid: int, body: bytes, desc: str = "", **kw: Any) -> int:
        kw.setdefault("session", self.session)
        kw.setdefault("tree", self.tree)
        return self.flow.send(
            "s", nbss(smb2_header(cmd, mid, resp=True, **kw) + body), f"SMB2 {SMB2_CMD_NAME[cmd]} response {desc}"
        )

    def compound(self, side: str, parts: list[bytes], desc: str) -> int:
        """Several SMB2 messages in one transport message, each padded to 8 bytes and linked by
        NextCommand."""
        out = b""
        for i, p in enumerate(parts):
            if i < len(parts) - 1:
                p += b"\0" * ((-len(p)) % 8)
                p = p[:20] + struct.pack("<I", len(p)) + p[24:]
            out += p
        return self.flow.send(side, nbss(out), desc)

    # -- session establishment ---------------------------------------------------------------------

    def negotiate(self, rng: random.Random, dialect: int = 0x0302) -> None:
        """NEGOTIATE request ([MS-SMB2] 2.2.3) and response (2.2.4) with a SPNEGO hint."""
        dialects = [0x0202, 0x0210, 0x0300, 0x0302]
        req = struct.pack("<HHHHI", 36, len(dialects), 1, 0, 0x7F) + rng.randbytes(16) + b"\0" * 8
        req += b"".join(struct.pack("<H", d) for d in dialects)
        _, mid = self.request(SMB2_NEGOTIATE, req)
        blob = spnego_hint()
        resp = (
            struct.pack("<HHHH", 65, 1, dialect, 0)
            + rng.randbytes(16)
            + struct.pack("<IIIIQQHHI", 0x2F, 8388608, 8388608, 8388608, FILETIME_T0, 0, 128, len(blob), 0)
            + blob
        )
        self.response(SMB2_NEGOTIATE, mid, resp, f"dialect 0x{dialect:04x}")

    def session_setup(self, rng: random.Random, user: str, domain: str, workstation: str) -> int:
        """Two SESSION_SETUP round trips ([MS-SMB2] 2.2.5/2.2.6) carrying SPNEGO-wrapped NTLMSSP; returns the
        frame of the request with the AUTHENTICATE message."""

        def ss_req(blob: bytes) -> bytes:
            return struct.pack("<HBBIIHHQ", 25, 0, 1, 1, 0, 88, len(blob), 0) + blob

        def ss_resp(blob: bytes) -> bytes:
            return struct.pack("<HHHH", 9, 0, 72, len(blob)) + blob

        _, mid = self.request(SMB2_SESSION_SETUP, ss_req(spnego_init(ntlm_negotiate())), "NTLMSSP_NEGOTIATE")
        self.session = 0x0000040000000015
        self.response(
            SMB2_SESSION_SETUP,
            mid,
            ss_resp(spnego_resp(ntlm_challenge(rng), 1)),
            "NTLMSSP_CHALLENGE",
            status=STATUS_MORE_PROCESSING_REQUIRED,
        )
        auth = ntlm_authenticate(rng, user, domain, workstation)
        fr, mid = self.request(
            SMB2_SESSION_SETUP, ss_req(spnego_resp(auth, None, mech=False)), f"NTLMSSP_AUTH {domain}\\{user}"
        )
        self.response(SMB2_SESSION_SETUP, mid, ss_resp(spnego_resp(None, 0, mech=False)))
        self.user = (user, domain)
        return fr

    def tree_connect(self, path: str, tree_id: int = 1) -> None:
        """TREE_CONNECT ([MS-SMB2] 2.2.9/2.2.10) to a pipe share (ShareType 0x02)."""
        p = path.encode("utf-16-le")
        _, mid = self.request(SMB2_TREE_CONNECT, struct.pack("<HHHH", 9, 0, 72, len(p)) + p, path)
        self.tree = tree_id
        self.response(SMB2_TREE_CONNECT, mid, struct.pack("<HBBIII", 16, 2, 0, 0x30, 0, 0x001F01FF))

    def create(self, name: str, fid: bytes) -> int:
        """CREATE ([MS-SMB2] 2.2.13/2.2.14) of a named pipe; returns the request frame."""
        n = name.encode("utf-16-le")
        req = struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x0012019F, 0, 3, 1, 0x40, 120, len(n), 0, 0) + n
        fr, mid = self.request(SMB2_CREATE, req, name)
        resp = struct.pack("<HBBIQQQQQQII", 89, 0, 0, 1, 0, 0, 0, 0, 4096, 0, 0x80, 0) + fid + struct.pack("<II", 0, 0)
        self.response(SMB2_CREATE, mid, resp, name)
        return fr

    def close(self, fid: bytes) -> None:
        """CLOSE ([MS-SMB2] 2.2.15/2.2.16)."""
        _, mid = self.request(SMB2_CLOSE, struct.pack("<HHI", 24, 0, 0) + fid)
        self.response(SMB2_CLOSE, mid, struct.pack("<HHI", 60, 0, 0) + b"\0" * 48 + struct.pack("<I", 0))

    # -- pipe i/o bodies ---------------------------------------------------------------------------

    @staticmethod
    def write_req(fid: bytes, data: bytes) -> bytes:
        """WRITE request ([MS-SMB2] 2.2.21): data at offset 0x70 from the header."""
        return struct.pack("<HHIQ", 49, 112, len(data), 0) + fid + struct.pack("<IIHHI", 0, 0, 0, 0, 0) + data

    @staticmethod
    def write_resp(n: int) -> bytes:
        return struct.pack("<HHIIHH", 17, 0, n, 0, 0, 0)

    @staticmethod
    def read_req(fid: bytes, length: int = 4280) -> bytes:
        """READ request ([MS-SMB2] 2.2.19)."""
        return struct.pack("<HBBIQ", 49, 0x50, 0, length, 0) + fid + struct.pack("<IIIHH", 0, 0, 0, 0, 0) + b"\0"

    @staticmethod
    def read_resp(data: bytes) -> bytes:
        """READ response ([MS-SMB2] 2.2.20): data at offset 0x50."""
        return struct.pack("<HBBIII", 17, 80, 0, len(data), 0, 0) + data

    @staticmethod
    def ioctl_req(fid: bytes, data: bytes) -> bytes:
        """IOCTL request ([MS-SMB2] 2.2.31) FSCTL_PIPE_TRANSCEIVE: input at offset 0x78."""
        return (
            struct.pack("<HHI", 57, 0, FSCTL_PIPE_TRANSCEIVE)
            + fid
            + struct.pack("<IIIIIIII", 120, len(data), 0, 120 + len(data), 0, 4280, 1, 0)
            + data
        )

    @staticmethod
    def ioctl_resp(fid: bytes, data: bytes) -> bytes:
        """IOCTL response ([MS-SMB2] 2.2.32): output at offset 0x70."""
        return (
            struct.pack("<HHI", 49, 0, FSCTL_PIPE_TRANSCEIVE)
            + fid
            + struct.pack("<IIIIII", 112, 0, 112, len(data), 0, 0)
            + data
        )


class Smb2Pipe(Channel):
    """DCE/RPC over an SMB2 named pipe (ncacn_np, [MS-RPCE] 2.1.1.2): PDUs go out in WRITE and come back in
    READ (mode "rw"), or both ways in one IOCTL FSCTL_PIPE_TRANSCEIVE (mode "ioctl")."""

    transport = "ncacn_np"

    def __init__(self, conn: Smb2Conn, fid: bytes, name: str, mode: str = "rw") -> None:
        self.conn, self.fid, self.name, self.mode = conn, fid, name, mode
        f = conn.flow
        self.client, self.server, self.cport, self.sport = f.client, f.server, f.cport, f.sport
        self.pipe = name.lower().split("\\")[-1]
        self.pending_mid = 0
        self.pending_async = False

    def endpoint(self) -> dict[str, Any]:
        d = super().endpoint()
        d["pipe_wire_name"] = self.name
        d["smb_version"] = 2
        d["smb_file_id"] = str(uuid.UUID(bytes_le=self.fid))  # persistent + volatile, as Wireshark shows it
        if self.conn.user:
            d["smb_user"], d["smb_domain"] = self.conn.user
        return d

    def c2s(self, pdu: bytes, desc: str) -> int:
        c = self.conn
        if self.mode == "ioctl":
            fr, self.pending_mid = c.request(SMB2_IOCTL, c.ioctl_req(self.fid, pdu), f"FSCTL_PIPE_TRANSCEIVE {desc}")
            return fr
        fr, mid = c.request(SMB2_WRITE, c.write_req(self.fid, pdu), desc)
        c.response(SMB2_WRITE, mid, c.write_resp(len(pdu)))
        return fr

    def s2c(self, pdu: bytes, desc: str) -> int:
        c = self.conn
        if self.mode == "ioctl":
            return c.response(
                SMB2_IOCTL, self.pending_mid, c.ioctl_resp(self.fid, pdu), f"FSCTL_PIPE_TRANSCEIVE {desc}"
            )
        _, mid = c.request(SMB2_READ, c.read_req(self.fid))
        if self.pending_async:
            self.pending_async = False
            aid = 0x0000000000000051
            c.response(
                SMB2_READ,
                mid,
                struct.pack("<HBBIB", 9, 0, 0, 0, 0),
                "interim STATUS_PENDING",
                status=STATUS_PENDING,
                async_id=aid,
                credits=0,
            )
            self.conn.cap.wait(15)
            return c.response(SMB2_READ, mid, c.read_resp(pdu), desc + " (async final)", async_id=aid)
        return c.response(SMB2_READ, mid, c.read_resp(pdu), desc)


def lsa_open_policy2(le: bool = True) -> bytes:
    """[MS-LSAD] 3.1.4.4.1 LsarOpenPolicy2 in: SystemName, LSAPR_OBJECT_ATTRIBUTES (with a security quality of
    service), DesiredAccess."""
    n = Ndr(le).ptr().wstr("\\\\SRV01").align(4)
    n.u32(24).ptr(null=True).ptr(null=True).u32(0).ptr(null=True).ptr()
    n.u32(12).u16(2).u8(1).u8(0)
    return n.align(4).u32(0x02000000).bytes()


def samr_connect5(le: bool = True) -> bytes:
    """[MS-SAMR] 3.1.5.1.1 SamrConnect5 in: ServerName, DesiredAccess, InVersion 1, SAMPR_REVISION_INFO_V1."""
    return Ndr(le).ptr().wstr("\\\\SRV01").align(4).u32(0x02000000).u32(1).u32(1).u32(3).u32(0).bytes()


def samr_connect5_resp(handle: str, le: bool = True) -> bytes:
    return Ndr(le).u32(1).u32(1).u32(3).u32(0).handle(handle).u32(0).bytes()


# --------------------------------------------------------------------------------------------------
# 7a. smb2_pipes.pcap
# --------------------------------------------------------------------------------------------------


def make_smb2_pipes() -> None:
    cap = Capture(
        "smb2_pipes.pcap",
        "DCE/RPC over SMB2 named pipes on TCP 445: NTLMSSP session for CORP\\bob, IPC$, three pipes "
        "(lsarpc, samr, svcctl) open at once, binds and calls through WRITE/READ and through IOCTL "
        "FSCTL_PIPE_TRANSCEIVE, an async STATUS_PENDING READ, a compounded WRITE+READ, CLOSE.",
        seed=7,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49770, srv, 445)
    f.handshake()
    c = Smb2Conn(cap, f)
    c.negotiate(cap.rng)
    auth_frame = c.session_setup(cap.rng, "bob", "CORP", "WS01")
    cap.man["ntlm_auth"].append(
        {
            "frame": auth_frame,
            "client_ip": ws.ip,
            "client_port": 49770,
            "server_ip": srv.ip,
            "server_port": 445,
            "transport": "smb2",
            "pipe": None,
            "carrier": "SMB2 SESSION_SETUP (SPNEGO)",
            "user": "bob",
            "domain": "CORP",
            "workstation": "WS01",
            "auth_level": None,
            "auth_context_id": None,
        }
    )
    c.tree_connect("\\\\SRV01\\IPC$")
    fid_lsa = smb2_file_id(0x0000000000000011, 0x00000000DEAD0011)
    fid_sam = smb2_file_id(0x0000000000000012, 0x00000000DEAD0012)
    fid_svc = smb2_file_id(0x0000000000000013, 0x00000000DEAD0013)
    c.create("lsarpc", fid_lsa)
    c.create("samr", fid_sam)
    c.create("svcctl", fid_svc)
    lsa_p, sam_p, svc_p = (
        Smb2Pipe(c, fid_lsa, "lsarpc"),
        Smb2Pipe(c, fid_sam, "samr", "ioctl"),
        Smb2Pipe(c, fid_svc, "svcctl"),
    )
    lsa, sam, svc = (
        Assoc(cap, lsa_p, assoc_group=0x7A01),
        Assoc(cap, sam_p, assoc_group=0x7A02),
        Assoc(cap, svc_p, assoc_group=0x7A03),
    )
    # lsarpc: bind through WRITE + READ
    lsa.bind(
        1,
        [CtxItem(0, "lsarpc", [NDR]), CtxItem(1, "lsarpc", [btfn(0x03)], result=3, reason=3)],
        sec_addr="\\PIPE\\lsass",
        max_frag=4280,
    )
    # samr: bind through IOCTL
    sam.bind(1, [CtxItem(0, "samr", [NDR])], sec_addr="\\PIPE\\lsass", max_frag=4280)
    lsa_p.mode = "ioctl"
    hl = "11aa22bb-33cc-44dd-955e-66ff77008811"
    hs = "22bb33cc-44dd-45ee-966f-770088119922"
    lsa.call(2, 0, 44, lsa_open_policy2(), handle_status(hl), name="LsarOpenPolicy2")
    sam.call(2, 0, 64, samr_connect5(), samr_connect5_resp(hs), name="SamrConnect5")
    # svcctl: bind through WRITE, the READ pends (interim STATUS_PENDING, then the async final response)
    svc_p.pending_async = True
    svc.bind(1, [CtxItem(0, "svcctl", [NDR])], sec_addr="\\PIPE\\ntsvcs", max_frag=4280)
    # svcctl: ROpenSCManagerW as a compounded WRITE + READ (related operations), answered in one compound
    req, resp, h = scmr_open_scmanager()
    rq = svc.request_pdus(2, 0, 15, req)[0]
    rs = svc.response_pdus(2, 0, resp)[0]
    mid = c.mid
    c.mid += 2
    ff = b"\xff" * 16
    rqf = c.compound(
        "c",
        [
            smb2_header(SMB2_WRITE, mid, session=c.session, tree=c.tree) + c.write_req(fid_svc, rq),
            smb2_header(SMB2_READ, mid + 1, session=c.session, tree=c.tree, flags=SMB2_FLAGS_RELATED) + c.read_req(ff),
        ],
        "SMB2 WRITE+READ compound request (request call_id=2 opnum=15)",
    )
    rsf = c.compound(
        "s",
        [
            smb2_header(SMB2_WRITE, mid, resp=True, session=c.session, tree=c.tree) + c.write_resp(len(rq)),
            smb2_header(SMB2_READ, mid + 1, resp=True, session=c.session, tree=c.tree, flags=SMB2_FLAGS_RELATED)
            + c.read_resp(rs),
        ],
        "SMB2 WRITE+READ compound response (response call_id=2)",
    )
    svc.record_request(
        rqf,
        2,
        0,
        15,
        stub_len=len(req),
        resp_frame=rsf,
        resp_stub_len=len(resp),
        operation="ROpenSCManagerW",
        smb_compound=True,
    )
    svc_p.mode = "ioctl"
    lsa.call(3, 0, 0, Ndr().handle(hl).bytes(), handle_status(zero_uuid()), name="LsarClose")
    sam.call(3, 0, 1, Ndr().handle(hs).bytes(), handle_status(zero_uuid()), name="SamrCloseHandle")
    svc.call(3, 0, 0, scmr_handle_call(h), handle_status(zero_uuid()), name="RCloseServiceHandle")
    for fid in (fid_lsa, fid_sam, fid_svc):
        c.close(fid)
    f.close()
    save_pcap(cap)


def make_smb2_epmapper() -> None:
    cap = Capture(
        "smb2_epmapper.pcap",
        "The endpoint mapper reached over SMB2, on the \\PIPE\\epmapper named pipe of IPC$ ([MS-RPCE] "
        "2.1.1.2): ept_map for the Task Scheduler answered with an ncacn_ip_tcp tower (port 49670, host "
        "0.0.0.0) and an ncacn_np tower (\\PIPE\\atsvc); then the client binds the Task Scheduler on 49670.",
        seed=9,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49790, srv, 445)
    f.handshake()
    c = Smb2Conn(cap, f)
    c.negotiate(cap.rng)
    auth_frame = c.session_setup(cap.rng, "carol", "CORP", "WS01")
    cap.man["ntlm_auth"].append(
        {
            "frame": auth_frame,
            "client_ip": ws.ip,
            "client_port": 49790,
            "server_ip": srv.ip,
            "server_port": 445,
            "transport": "smb2",
            "pipe": None,
            "carrier": "SMB2 SESSION_SETUP (SPNEGO)",
            "user": "carol",
            "domain": "CORP",
            "workstation": "WS01",
            "auth_level": None,
            "auth_context_id": None,
        }
    )
    c.tree_connect("\\\\SRV01\\IPC$")
    fid = smb2_file_id(0x0000000000000031, 0x00000000EE0F0031)
    c.create("epmapper", fid)
    pipe = Smb2Pipe(c, fid, "epmapper")
    a = Assoc(cap, pipe, assoc_group=0x7B01)
    a.bind(1, [CtxItem(0, "epmapper", [NDR])], sec_addr="\\PIPE\\epmapper", max_frag=4280)
    towers = [
        Tower("atsvc_tsch", "ncacn_ip_tcp", port=49670, ip="0.0.0.0"),
        Tower("atsvc_tsch", "ncacn_np", pipe="\\PIPE\\atsvc", netbios="\\\\SRV01"),
    ]
    rf, pf = a.call(2, 0, 3, ept_map_request(True, "atsvc_tsch"), ept_map_response(True, towers), name="ept_map")
    assert pf is not None
    record_towers(cap, pipe, pf, rf, 2, 3, towers)
    c.close(fid)
    f.close()
    cap.wait(2)
    op, req, resp, name = TSCH_HIGHEST
    simple_session(cap, TcpFlow(cap, ws, 49791, srv, 49670), "atsvc_tsch", op, req, resp, name, 0x7B02)
    save_pcap(cap)


# --------------------------------------------------------------------------------------------------
# SMB1 ([MS-CIFS] 2.2, [MS-SMB] 2.2)
# --------------------------------------------------------------------------------------------------

SMB_COM_CLOSE, SMB_COM_TRANSACTION, SMB_COM_READ_ANDX, SMB_COM_WRITE_ANDX = 0x04, 0x25, 0x2E, 0x2F
SMB_COM_NEGOTIATE, SMB_COM_SESSION_SETUP_ANDX, SMB_COM_TREE_CONNECT_ANDX, SMB_COM_NT_CREATE_ANDX = (
    0x72,
    0x73,
    0x75,
    0xA2,
)
TRANS_TRANSACT_NMPIPE = 0x0026


def smb1_header(
    cmd: int, *, resp: bool = False, status: int = 0, tid: int = 0, uid: int = 0, mid: int = 0, pid: int = 0xFEFF
) -> bytes:
    """SMB1 header ([MS-CIFS] 2.2.3.1): Protocol, Command, Status, Flags, Flags2 (unicode, NT status,
    extended security, long names), PIDHigh, SecurityFeatures, Reserved, TID, PIDLow, UID, MID."""
    return b"\xffSMB" + struct.pack(
        "<BIBHH8sHHHHH", cmd, status, 0x98 if resp else 0x18, 0xC803, 0, b"\0" * 8, 0, tid, pid, uid, mid
    )


def smb1_block(words: bytes, data: bytes) -> bytes:
    """Parameter block (WordCount + words) and data block (ByteCount + bytes)."""
    return bytes([len(words) // 2]) + words + struct.pack("<H", len(data)) + data


def uni(text: str) -> bytes:
    return (text + "\0").encode("utf-16-le")


def pad_to(offset: int, n: int) -> bytes:
    return b"\0" * ((-offset) % n)


class Smb1Conn:
    """An SMB1 conversation on one TCP connection (direct TCP framing on 445)."""

    def __init__(self, cap: Capture, flow: TcpFlow) -> None:
        self.cap, self.flow = cap, flow
        self.mid, self.uid, self.tid = 1, 0, 0
        self.user: tuple[str, str] | None = None

    def send(self, side: str, msg: bytes, desc: str) -> int:
        return self.flow.send(side, nbss(msg), desc)

    def req(self, cmd: int, body: bytes, desc: str) -> tuple[int, int]:
        mid = self.mid
        self.mid += 1
        return self.send("c", smb1_header(cmd, tid=self.tid, uid=self.uid, mid=mid) + body, desc), mid

    def resp(self, cmd: int, mid: int, body: bytes, desc: str, status: int = 0) -> int:
        return self.send(
            "s", smb1_header(cmd, resp=True, status=status, tid=self.tid, uid=self.uid, mid=mid) + body, desc
        )

    def negotiate(self, rng: random.Random) -> None:
        """NEGOTIATE ([MS-CIFS] 2.2.4.52) for NT LM 0.12 with extended security ([MS-SMB] 2.2.4.5.2.1)."""
        dialects = [
            "PC NETWORK PROGRAM 1.0",
            "LANMAN1.0",
            "Windows for Workgroups 3.1a",
            "LM1.2X002",
            "LANMAN2.1",
            "NT LM 0.12",
        ]
        _, mid = self.req(
            SMB_COM_NEGOTIATE,
            smb1_block(b"", b"".join(b"\x02" + d.encode() + b"\0" for d in dialects)),
            "SMB NEGOTIATE request",
        )
        words = struct.pack("<HBHHIIIIQhB", 5, 3, 50, 1, 16644, 65536, 0, 0x8000F3FD, FILETIME_T0, 0, 0)
        self.resp(
            SMB_COM_NEGOTIATE,
            mid,
            smb1_block(words, rng.randbytes(16) + spnego_hint()),
            "SMB NEGOTIATE response NT LM 0.12",
        )

    def session_setup(self, rng: random.Random, user: str, domain: str, workstation: str) -> int:
        """Two SESSION_SETUP_ANDX round trips with SPNEGO/NTLMSSP security blobs ([MS-SMB] 2.2.4.6)."""

        def ss_req(blob: bytes) -> bytes:
            words = struct.pack("<BBHHHHIHII", 0xFF, 0, 0, 16644, 50, 0, 0, len(blob), 0, 0x8000E05C)
            off = 32 + 1 + len(words) + 2 + len(blob)
            return smb1_block(words, blob + pad_to(off, 2) + uni("Windows 7 Professional 7601") + uni("Windows 7"))

        def ss_resp(blob: bytes) -> bytes:
            words = struct.pack("<BBHHH", 0xFF, 0, 0, 0, len(blob))
            off = 32 + 1 + len(words) + 2 + len(blob)
            return smb1_block(
                words,
                blob
                + pad_to(off, 2)
                + uni("Windows Server 2016 Standard 14393")
                + uni("Windows Server 2016 Standard 6.3"),
            )

        _, mid = self.req(
            SMB_COM_SESSION_SETUP_ANDX,
            ss_req(spnego_init(ntlm_negotiate())),
            "SMB SESSION_SETUP_ANDX request NTLMSSP_NEGOTIATE",
        )
        self.uid = 0x0801
        self.resp(
            SMB_COM_SESSION_SETUP_ANDX,
            mid,
            ss_resp(spnego_resp(ntlm_challenge(rng), 1)),
            "SMB SESSION_SETUP_ANDX response NTLMSSP_CHALLENGE",
            status=STATUS_MORE_PROCESSING_REQUIRED,
        )
        fr, mid = self.req(
            SMB_COM_SESSION_SETUP_ANDX,
            ss_req(spnego_resp(ntlm_authenticate(rng, user, domain, workstation), None, mech=False)),
            f"SMB SESSION_SETUP_ANDX request NTLMSSP_AUTH {domain}\\{user}",
        )
        self.resp(
            SMB_COM_SESSION_SETUP_ANDX,
            mid,
            ss_resp(spnego_resp(None, 0, mech=False)),
            "SMB SESSION_SETUP_ANDX response",
        )
        self.user = (user, domain)
        return fr

    def tree_connect(self, path: str) -> None:
        """TREE_CONNECT_ANDX ([MS-CIFS] 2.2.4.55) to IPC$ (service 'IPC')."""
        words = struct.pack("<BBHHH", 0xFF, 0, 0, 0x0008, 1)
        _, mid = self.req(
            SMB_COM_TREE_CONNECT_ANDX,
            smb1_block(words, b"\0" + uni(path) + b"?????\0"),
            f"SMB TREE_CONNECT_ANDX request {path}",
        )
        self.tid = 0x0800
        rw = struct.pack("<BBHH", 0xFF, 0, 0, 0x0001)
        off = 32 + 1 + len(rw) + 2 + 4
        self.resp(
            SMB_COM_TREE_CONNECT_ANDX,
            mid,
            smb1_block(rw, b"IPC\0" + pad_to(off, 2) + uni("")),
            "SMB TREE_CONNECT_ANDX response",
        )

    def nt_create(self, name: str, fid: int) -> None:
        """NT_CREATE_ANDX ([MS-CIFS] 2.2.4.64) of a pipe; the answer says ResourceType 2
        (message-mode pipe)."""
        n = name.encode("utf-16-le")
        words = struct.pack("<BBHBHIIIQIIIIIB", 0xFF, 0, 0, 0, len(n), 0x16, 0, 0x0002019F, 0, 0, 3, 1, 0, 2, 0)
        off = 32 + 1 + len(words) + 2
        _, mid = self.req(
            SMB_COM_NT_CREATE_ANDX,
            smb1_block(words, pad_to(off, 2) + n + b"\0\0"),
            f"SMB NT_CREATE_ANDX request {name}",
        )
        rw = struct.pack("<BBHBHIQQQQIQQHHB", 0xFF, 0, 0, 0, fid, 1, 0, 0, 0, 0, 0x80, 4096, 0, 2, 0x05FF, 0)
        self.resp(SMB_COM_NT_CREATE_ANDX, mid, smb1_block(rw, b""), f"SMB NT_CREATE_ANDX response fid=0x{fid:04x}")

    def close(self, fid: int) -> None:
        _, mid = self.req(SMB_COM_CLOSE, smb1_block(struct.pack("<HI", fid, 0xFFFFFFFF), b""), "SMB CLOSE request")
        self.resp(SMB_COM_CLOSE, mid, smb1_block(b"", b""), "SMB CLOSE response")


class Smb1Pipe(Channel):
    """DCE/RPC over an SMB1 named pipe: TRANSACTION TransactNmPipe (mode "trans", [MS-CIFS] 2.2.5.5), or
    WRITE_ANDX with a chained READ_ANDX (mode "andx")."""

    transport = "ncacn_np"

    def __init__(self, conn: Smb1Conn, fid: int, name: str, mode: str = "trans") -> None:
        self.conn, self.fid, self.name, self.mode = conn, fid, name, mode
        f = conn.flow
        self.client, self.server, self.cport, self.sport = f.client, f.server, f.cport, f.sport
        self.pipe = name.lower().split("\\")[-1]
        self.pending_mid = 0

    def endpoint(self) -> dict[str, Any]:
        d = super().endpoint()
        d.update(pipe_wire_name=self.name, smb_version=1, smb_file_id=f"0x{self.fid:04x}")
        if self.conn.user:
            d["smb_user"], d["smb_domain"] = self.conn.user
        return d

    def c2s(self, pdu: bytes, desc: str) -> int:
        c = self.conn
        if self.mode == "trans":
            name = uni("\\PIPE\\")
            words_len = 2 * 16
            start = 32 + 1 + words_len + 2
            p1 = pad_to(start, 2)
            data_off = start + len(p1) + len(name)
            p2 = pad_to(data_off, 4)
            data_off += len(p2)
            words = struct.pack(
                "<HHHHBBHIHHHHHBBHH",
                0,
                len(pdu),
                0,
                4280,
                0,
                0,
                0,
                0,
                0,
                0,
                data_off,
                len(pdu),
                data_off,
                2,
                0,
                TRANS_TRANSACT_NMPIPE,
                self.fid,
            )
            fr, self.pending_mid = c.req(
                SMB_COM_TRANSACTION,
                smb1_block(words, p1 + name + p2 + pdu),
                f"SMB TRANSACTION TransactNmPipe request ({desc})",
            )
            return fr
        # WRITE_ANDX with a READ_ANDX chained behind it: the answer comes in the chained READ_ANDX response
        wl = 28
        data_off = 32 + 1 + wl + 2 + 1
        read_off = data_off + len(pdu)
        words = struct.pack(
            "<BBHHIIHHHHHI", SMB_COM_READ_ANDX, 0, read_off, self.fid, 0, 0, 0x0008, len(pdu), 0, len(pdu), data_off, 0
        )
        read = smb1_block(struct.pack("<BBHHIHHIHI", 0xFF, 0, 0, self.fid, 0, 4280, 4280, 0xFFFFFFFF, 4280, 0), b"")
        fr, self.pending_mid = c.req(
            SMB_COM_WRITE_ANDX, smb1_block(words, b"\0" + pdu) + read, f"SMB WRITE_ANDX+READ_ANDX request ({desc})"
        )
        self.pending_len = len(pdu)
        return fr

    def s2c(self, pdu: bytes, desc: str) -> int:
        c = self.conn
        if self.mode == "trans":
            start = 32 + 1 + 20 + 2
            p = pad_to(start, 4)
            off = start + len(p)
            words = struct.pack("<HHHHHHHHHBB", 0, len(pdu), 0, 0, off, 0, len(pdu), off, 0, 0, 0)
            return c.resp(
                SMB_COM_TRANSACTION,
                self.pending_mid,
                smb1_block(words, p + pdu),
                f"SMB TRANSACTION TransactNmPipe response ({desc})",
            )
        read_off = 32 + 1 + 12 + 2
        write = smb1_block(struct.pack("<BBHHHI", SMB_COM_READ_ANDX, 0, read_off, self.pending_len, 0xFFFF, 0), b"")
        data_off = read_off + 1 + 24 + 2
        read = smb1_block(struct.pack("<BBHHHHHHH8s", 0xFF, 0, 0, 0, 0, 0, len(pdu), data_off, 0, b"\0" * 8), pdu)
        return c.resp(SMB_COM_WRITE_ANDX, self.pending_mid, write + read, f"SMB WRITE_ANDX+READ_ANDX response ({desc})")


def srvs_share_enum(le: bool = True) -> bytes:
    """[MS-SRVS] 3.1.4.8 NetrShareEnum in: ServerName, SHARE_ENUM_STRUCT (level 1, empty container),
    PreferedMaximumLength, ResumeHandle."""
    return (
        Ndr(le)
        .ptr()
        .wstr("\\\\SRV01")
        .align(4)
        .u32(1)
        .u32(1)
        .ptr()
        .u32(0)
        .ptr(null=True)
        .u32(0xFFFFFFFF)
        .ptr()
        .u32(0)
        .bytes()
    )


def srvs_share_enum_resp(le: bool = True) -> bytes:
    shares = [
        ("ADMIN$", 0x80000000, "Remote Admin"),
        ("C$", 0x80000000, "Default share"),
        ("IPC$", 0x80000003, "Remote IPC"),
    ]
    n = Ndr(le, ref=0x00020000).u32(1).u32(1).ptr().u32(len(shares)).ptr().u32(len(shares))
    for _name, typ, _remark in shares:
        n.ptr().u32(typ).ptr()
    for name, _typ, remark in shares:
        n.wstr(name).align(4).wstr(remark).align(4)
    return n.u32(len(shares)).ptr().u32(0).u32(0).bytes()


def srvs_server_get_info(le: bool = True) -> bytes:
    """[MS-SRVS] 3.1.4.17 NetrServerGetInfo in: ServerName, Level 101."""
    return Ndr(le).ptr().wstr("\\\\SRV01").align(4).u32(101).bytes()


def srvs_server_get_info_resp(le: bool = True) -> bytes:
    n = Ndr(le, ref=0x00020000).u32(101).ptr().u32(500).ptr().u32(10).u32(0).u32(0x00009003).ptr()
    return n.wstr("SRV01").align(4).wstr("").align(4).u32(0).bytes()


# --------------------------------------------------------------------------------------------------
# 7b. smb1_pipe.pcap
# --------------------------------------------------------------------------------------------------


def make_smb1_pipe() -> None:
    cap = Capture(
        "smb1_pipe.pcap",
        "DCE/RPC over an SMB1 named pipe: NT_CREATE_ANDX of \\srvsvc, a bind and a call inside TRANSACTION "
        "TransactNmPipe, then a call through WRITE_ANDX with a chained READ_ANDX.",
        seed=71,
    )
    ws, srv = cap.h["ws02"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49775, srv, 445)
    f.handshake()
    c = Smb1Conn(cap, f)
    c.negotiate(cap.rng)
    fr = c.session_setup(cap.rng, "dave", "CORP", "WS02")
    cap.man["ntlm_auth"].append(
        {
            "frame": fr,
            "client_ip": ws.ip,
            "client_port": 49775,
            "server_ip": srv.ip,
            "server_port": 445,
            "transport": "smb",
            "pipe": None,
            "carrier": "SMB1 SESSION_SETUP_ANDX (SPNEGO)",
            "user": "dave",
            "domain": "CORP",
            "workstation": "WS02",
            "auth_level": None,
            "auth_context_id": None,
        }
    )
    c.tree_connect("\\\\SRV01\\IPC$")
    fid = 0x4000
    c.nt_create("\\srvsvc", fid)
    pipe = Smb1Pipe(c, fid, "\\srvsvc")
    a = Assoc(cap, pipe, assoc_group=0x7B01)
    a.bind(1, [CtxItem(0, "srvsvc", [NDR])], sec_addr="\\PIPE\\srvsvc", max_frag=4280)
    a.call(2, 0, 15, srvs_share_enum(), srvs_share_enum_resp(), name="NetrShareEnum")
    pipe.mode = "andx"
    a.call(3, 0, 21, srvs_server_get_info(), srvs_server_get_info_resp(), name="NetrServerGetInfo")
    c.close(fid)
    f.close()
    save_pcap(cap)


# --------------------------------------------------------------------------------------------------
# 7c. netbios139.pcap
# --------------------------------------------------------------------------------------------------


def netbios_name(name: str, suffix: int) -> bytes:
    """First-level encoded NetBIOS name ([RFC 1001] 14.1): 15 chars + suffix, each nibble + 'A', length 32."""
    raw = name.upper().ljust(15)[:15].encode() + bytes([suffix])
    enc = b"".join(bytes([0x41 + (c >> 4), 0x41 + (c & 0xF)]) for c in raw)
    return b"\x20" + enc + b"\x00"


def wkst_get_info(le: bool = True) -> bytes:
    """[MS-WKST] 3.2.4.1 NetrWkstaGetInfo in: ServerName, Level 100."""
    return Ndr(le).ptr().wstr("\\\\SRV01").align(4).u32(100).bytes()


def wkst_get_info_resp(le: bool = True) -> bytes:
    n = Ndr(le, ref=0x00020000).u32(100).ptr().u32(500).ptr().ptr().u32(10).u32(0)
    return n.wstr("SRV01").align(4).wstr("CORP").align(4).u32(0).bytes()


def make_netbios139() -> None:
    cap = Capture(
        "netbios139.pcap",
        "SMB over the NetBIOS session service on TCP 139: session request/positive response, an SMB1 "
        "multi-protocol NEGOTIATE answered in SMB2, then wkssvc over an SMB2 pipe with IOCTL.",
        seed=72,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49778, srv, 139)
    f.handshake()
    f.send("c", nbss(netbios_name("SRV01", 0x20) + netbios_name("WS01", 0x00), 0x81), "NBSS session request")
    f.send("s", nbss(b"", 0x82), "NBSS positive session response")
    c = Smb2Conn(cap, f)
    dialects = ["NT LM 0.12", "SMB 2.002", "SMB 2.???"]
    f.send(
        "c",
        nbss(
            smb1_header(SMB_COM_NEGOTIATE) + smb1_block(b"", b"".join(b"\x02" + d.encode() + b"\0" for d in dialects))
        ),
        "SMB NEGOTIATE request (multi-protocol)",
    )
    blob = spnego_hint()
    resp = (
        struct.pack("<HHHH", 65, 1, 0x02FF, 0)
        + cap.rng.randbytes(16)
        + struct.pack("<IIIIQQHHI", 0x7, 65536, 65536, 65536, FILETIME_T0, 0, 128, len(blob), 0)
        + blob
    )
    c.response(SMB2_NEGOTIATE, 0, resp, "dialect 0x02ff (wildcard: continue in SMB2)")
    c.mid = 1
    c.negotiate(cap.rng, dialect=0x0210)
    fr = c.session_setup(cap.rng, "erin", "CORP", "WS01")
    cap.man["ntlm_auth"].append(
        {
            "frame": fr,
            "client_ip": ws.ip,
            "client_port": 49778,
            "server_ip": srv.ip,
            "server_port": 139,
            "transport": "smb2",
            "pipe": None,
            "carrier": "SMB2 SESSION_SETUP (SPNEGO)",
            "user": "erin",
            "domain": "CORP",
            "workstation": "WS01",
            "auth_level": None,
            "auth_context_id": None,
        }
    )
    c.tree_connect("\\\\SRV01\\IPC$")
    fid = smb2_file_id(0x0000000000000021, 0x00000000BEEF0021)
    c.create("wkssvc", fid)
    a = Assoc(cap, Smb2Pipe(c, fid, "wkssvc", "ioctl"), assoc_group=0x7C01)
    a.bind(1, [CtxItem(0, "wkssvc", [NDR])], sec_addr="\\PIPE\\wkssvc", max_frag=4280)
    a.call(2, 0, 0, wkst_get_info(), wkst_get_info_resp(), name="NetrWkstaGetInfo")
    c.close(fid)
    f.close()
    save_pcap(cap)


# --------------------------------------------------------------------------------------------------
# 7d. cl_udp.pcap: connectionless DCE/RPC ([C706] 12.5)
# --------------------------------------------------------------------------------------------------

CL_LASTFRAG, CL_FRAG, CL_NOFACK, CL_MAYBE, CL_IDEMPOTENT, CL_BROADCAST = 0x02, 0x04, 0x08, 0x10, 0x20, 0x40


def cl_header(
    ptype: int,
    *,
    le: bool,
    flags1: int,
    obj: str,
    iface: str,
    iface_ver: tuple[int, int],
    act: str,
    boot: int,
    seq: int,
    opnum: int,
    body_len: int,
    fragnum: int = 0,
    serial: int = 0,
    flags2: int = 0,
    ihint: int = 0xFFFF,
    ahint: int = 0xFFFF,
) -> bytes:
    """The 80-byte CL header ([C706] 12.5.3.1): rpc_vers 4, ptype, flags1, flags2, drep[3], serial_hi,
    object, if_id, act_id (UUIDs in the sender's byte order), server_boot, if_vers, seqnum, opnum, ihint,
    ahint, len, fragnum, auth_proto, serial_lo."""
    e = "<" if le else ">"
    h = struct.pack("BBBB", 4, ptype, flags1, flags2) + bytes([0x10 if le else 0x00, 0, 0, serial >> 8])
    h += uuid_bytes(obj, le) + uuid_bytes(iface, le) + uuid_bytes(act, le)
    h += struct.pack(
        e + "IIIHHHHHBB", boot, ver_u32(iface_ver), seq, opnum, ihint, ahint, body_len, fragnum, 0, serial & 0xFF
    )
    return h


def fack_body(le: bool, serial: int, window: int = 8, max_tsdu: int = 65528, max_frag: int = 1464) -> bytes:
    """fack body ([C706] 12.5.3.4): vers 0, pad, window_size, max_tsdu, max_frag_size, serial_num,
    selack_len 1, selack[0] (bit mask of the fragments received beyond the first one missing)."""
    e = "<" if le else ">"
    return struct.pack(e + "BBHIIHHI", 0, 0, window, max_tsdu, max_frag, serial, 1, 0)


class ClEnd:
    """One side of a CL conversation: host, UDP port and native byte order."""

    def __init__(self, host: Host, port: int, le: bool) -> None:
        self.host, self.port, self.le = host, port, le


def cl_send(
    cap: Capture,
    src: ClEnd,
    dst: ClEnd,
    ptype: str,
    *,
    act: str,
    seq: int,
    iface: str,
    opnum: int = 0,
    obj: str = "00000000-0000-0000-0000-000000000000",
    body: bytes = b"",
    flags1: int = 0,
    fragnum: int = 0,
    serial: int = 0,
    boot: int = 0,
    note: str = "",
    **extra: Any,
) -> int:
    """Build one CL PDU in the sender's byte order, send it in a UDP datagram and record it."""
    uid, ver = IFACES[iface]
    pdu = (
        cl_header(
            PTYPE[ptype],
            le=src.le,
            flags1=flags1,
            obj=obj,
            iface=uid,
            iface_ver=ver,
            act=act,
            boot=boot,
            seq=seq,
            opnum=opnum,
            body_len=len(body),
            fragnum=fragnum,
            serial=serial,
        )
        + body
    )
    pkt = (
        IP(src=src.host.ip, dst=dst.host.ip, id=src.host.next_ipid(), ttl=src.host.ttl)
        / UDP(sport=src.port, dport=dst.port)
        / Raw(pdu)
    )
    fr = cap.add(
        link_ether(pkt, src.host, dst.host),
        f"{src.host.ip}:{src.port} > {dst.host.ip}:{dst.port} UDP CL {ptype} seq={seq} frag={fragnum} {note}",
    )
    cap.man["cl_pdus"].append(
        {
            "frame": fr,
            "ts_ns": cap.ts_of(fr),
            "src_ip": src.host.ip,
            "src_port": src.port,
            "dst_ip": dst.host.ip,
            "dst_port": dst.port,
            "ptype": ptype,
            "ptype_num": PTYPE[ptype],
            "activity_uuid": act,
            "seqnum": seq,
            "fragnum": fragnum,
            "opnum": opnum,
            "if_uuid": uid,
            "if_name": iface,
            "if_version": vstr(ver),
            "object_uuid": obj,
            "drep": "little" if src.le else "big",
            "flags1": flags1,
            "serial": serial,
            "server_boot": boot,
            "body_len": len(body),
            **extra,
        }
    )
    return fr


def pnio_args_req(blocks: bytes, le: bool) -> bytes:
    """PNIO NDR request arguments (IEC 61158-6-10): ArgsMaximum, ArgsLength, then a conformant varying byte
    array (MaximumCount, Offset, ActualCount) holding the big-endian PNIO blocks."""
    e = "<" if le else ">"
    return struct.pack(e + "IIIII", 16696, len(blocks), 16696, 0, len(blocks)) + blocks


def pnio_args_resp(blocks: bytes, le: bool) -> bytes:
    """PNIO NDR response arguments: PNIOStatus (4 bytes, 0 = OK), ArgsLength, the array header, the blocks."""
    e = "<" if le else ">"
    return b"\0\0\0\0" + struct.pack(e + "IIII", len(blocks), 16696, 0, len(blocks)) + blocks


def pnio_block(btype: int, body: bytes) -> bytes:
    """A PNIO block: BlockType, BlockLength (counting from the version bytes), BlockVersionHigh 1, Low 0."""
    return struct.pack(">HHBB", btype, len(body) + 2, 1, 0) + body


def make_cl_udp() -> None:
    cap = Capture(
        "cl_udp.pcap",
        "Connectionless DCE/RPC (ncadg_ip_udp, protocol version 4): an ept_map over UDP 135, then "
        "PROFINET-style calls on UDP 34964 between a little-endian controller and a big-endian device: "
        "a three-fragment request with a fack, ping/working, response, ack, a call the device does not "
        "know (nocall) and its retransmission, and a call in the other direction.",
        seed=8,
    )
    ws, srv, hmi, plc = cap.h["ws01"], cap.h["srv01"], cap.h["hmi"], cap.h["plc"]
    rng = cap.rng
    # --- ept_map over UDP 135 (both sides little-endian)
    cli, epm = ClEnd(ws, 49800, True), ClEnd(srv, 135, True)
    a1 = det_uuid(rng)
    req = ept_map_request(True, "msgsvc", proto="ncadg_ip_udp")
    towers = [
        Tower("msgsvc", "ncadg_ip_udp", port=49672, ip="10.0.0.10"),
        Tower("msgsvc", "ncadg_ip_udp", port=49672, ip="0.0.0.0"),
    ]
    rf = cl_send(cap, cli, epm, "request", act=a1, seq=0, iface="epmapper", opnum=3, body=req, flags1=CL_IDEMPOTENT)
    pf = cl_send(
        cap,
        epm,
        cli,
        "response",
        act=a1,
        seq=0,
        iface="epmapper",
        opnum=3,
        boot=0x65E1A000,
        body=ept_map_response(True, towers),
        flags1=CL_NOFACK,
    )
    ch = Channel()
    ch.transport, ch.client, ch.server, ch.cport, ch.sport = "ncadg_ip_udp", ws, srv, 49800, 135
    record_towers(cap, ch, pf, rf, 0, 3, towers)
    # --- PROFINET IO: controller (hmi, little-endian) -> device (plc, big-endian) on UDP 34964
    ctl, dev = ClEnd(hmi, 49801, True), ClEnd(plc, 34964, False)
    obj = "dea00000-6c97-11d1-8271-00010002002a"
    a2 = det_uuid(rng)
    boot = 0x00000003
    ar_uuid = det_uuid(rng)
    ar = pnio_block(
        0x0101,
        struct.pack(">H", 6)
        + uuid_bytes(ar_uuid, False)
        + struct.pack(">H", 1)
        + bytes.fromhex(hmi.mac.replace(":", ""))
        + uuid_bytes(det_uuid(rng), False)
        + struct.pack(">IHHH", 0x131, 100, 34964, 4)
        + b"hmi1",
    )
    alarm = pnio_block(0x0103, struct.pack(">HHIHHHHHH", 1, 0x8892, 0, 100, 3, 1, 200, 0xC000, 0xA000))
    vendor = pnio_block(0x0108, struct.pack(">HI", 0x0101, 0) + rng.randbytes(400))
    blocks = ar + alarm + vendor
    stub = pnio_args_req(blocks, True)
    parts = [stub[i : i + 200] for i in range(0, len(stub), 200)]
    assert len(parts) == 3
    for i, part in enumerate(parts):
        flags = CL_FRAG | (CL_LASTFRAG if i == len(parts) - 1 else 0) | (CL_NOFACK if i == 1 else 0)
        cl_send(
            cap,
            ctl,
            dev,
            "request",
            act=a2,
            seq=0,
            iface="pnio_device",
            opnum=0,
            obj=obj,
            body=part,
            flags1=flags,
            fragnum=i,
            note="Connect",
            call_stub_len=len(stub),
        )
        if i == 0:
            cl_send(
                cap,
                dev,
                ctl,
                "fack",
                act=a2,
                seq=0,
                iface="pnio_device",
                obj=obj,
                fragnum=0,
                boot=boot,
                body=fack_body(False, 0),
            )
    cap.wait(100)
    cl_send(cap, ctl, dev, "ping", act=a2, seq=0, iface="pnio_device", obj=obj, flags1=CL_IDEMPOTENT)
    cl_send(cap, dev, ctl, "working", act=a2, seq=0, iface="pnio_device", obj=obj, boot=boot)
    cap.wait(50)
    resp = pnio_args_resp(
        pnio_block(
            0x8101,
            struct.pack(">H", 6)
            + uuid_bytes(ar_uuid, False)
            + struct.pack(">H", 1)
            + bytes.fromhex(plc.mac.replace(":", ""))
            + struct.pack(">H", 34964),
        )
        + pnio_block(0x8103, struct.pack(">HHH", 1, 1, 200)),
        False,
    )
    cl_send(
        cap,
        dev,
        ctl,
        "response",
        act=a2,
        seq=0,
        iface="pnio_device",
        opnum=0,
        obj=obj,
        boot=boot,
        body=resp,
        flags1=CL_NOFACK,
        note="Connect",
    )
    cl_send(cap, ctl, dev, "ack", act=a2, seq=0, iface="pnio_device", obj=obj, boot=boot)
    # --- the device calls the controller back (device is the client now: big-endian request)
    a3 = det_uuid(rng)
    obj_c = "dea00000-6c97-11d1-8271-00010003002a"
    ctrl = b"\0\0" + uuid_bytes(ar_uuid, False) + struct.pack(">HHHH", 1, 0, 0x0002, 0)
    rdy = pnio_args_req(pnio_block(0x0112, ctrl), False)
    cl_send(
        cap,
        ClEnd(plc, 49152, False),
        ClEnd(hmi, 34964, True),
        "request",
        act=a3,
        seq=0,
        iface="pnio_controller",
        opnum=4,
        obj=obj_c,
        body=rdy,
        note="Control (ApplicationReady)",
    )
    cl_send(
        cap,
        ClEnd(hmi, 34964, True),
        ClEnd(plc, 49152, False),
        "response",
        act=a3,
        seq=0,
        iface="pnio_controller",
        opnum=4,
        obj=obj_c,
        boot=0x65E19F00,
        flags1=CL_NOFACK,
        body=pnio_args_resp(pnio_block(0x8112, ctrl[:-4] + struct.pack(">HH", 0x0008, 0)), True),
    )
    cl_send(
        cap,
        ClEnd(plc, 49152, False),
        ClEnd(hmi, 34964, True),
        "ack",
        act=a3,
        seq=0,
        iface="pnio_controller",
        obj=obj_c,
        boot=0x65E19F00,
    )
    # --- second call of the controller's activity: the device answers a ping with nocall,
    #     and the request is sent again
    hdr = struct.pack(">H", 1) + uuid_bytes(ar_uuid, False) + struct.pack(">IHHHHI", 0, 0, 1, 0, 0xAFF0, 4096)
    rd = pnio_args_req(pnio_block(0x0009, hdr + b"\0" * 24), True)
    im0 = pnio_block(0x0020, struct.pack(">H", 0x002A) + b"6ES7 151-8AB01-0AB0" + b"PLC1-SERIAL-0001" + b"\0" * 23)
    cl_send(
        cap, ctl, dev, "request", act=a2, seq=1, iface="pnio_device", opnum=2, obj=obj, body=rd, boot=boot, note="Read"
    )
    cap.wait(300)
    cl_send(cap, ctl, dev, "ping", act=a2, seq=1, iface="pnio_device", obj=obj, boot=boot, flags1=CL_IDEMPOTENT)
    cl_send(cap, dev, ctl, "nocall", act=a2, seq=1, iface="pnio_device", obj=obj, boot=boot)
    cl_send(
        cap,
        ctl,
        dev,
        "request",
        act=a2,
        seq=1,
        iface="pnio_device",
        opnum=2,
        obj=obj,
        body=rd,
        boot=boot,
        serial=1,
        note="Read (retransmission)",
    )
    cl_send(
        cap,
        dev,
        ctl,
        "response",
        act=a2,
        seq=1,
        iface="pnio_device",
        opnum=2,
        obj=obj,
        boot=boot,
        flags1=CL_NOFACK,
        body=pnio_args_resp(pnio_block(0x8009, hdr[:-4] + struct.pack(">IHH", 64, 0, 0) + b"\0" * 20) + im0, False),
        note="Read",
    )
    cl_send(cap, ctl, dev, "ack", act=a2, seq=1, iface="pnio_device", obj=obj, boot=boot)
    save_pcap(cap)


# --------------------------------------------------------------------------------------------------
# 7e. RPC over HTTP: rpc_http_v1.pcap and rpc_http_v2.pcap ([MS-RPCH])
# --------------------------------------------------------------------------------------------------


def nspi_bind_req(rng: random.Random) -> bytes:
    """[MS-NSPI] 3.1.4.1.1 NspiBind in: dwFlags, STAT (9 DWORDs), [unique] FlatUID_r pServerGuid."""
    n = Ndr().u32(0)
    for v in (0, 0, 0, 0, 0, 0, 1252, 0x0409, 0x0409):
        n.u32(v)
    return n.ptr().raw(b"\0" * 16).bytes()


def nspi_bind_resp(rng: random.Random, handle: str) -> bytes:
    return Ndr().ptr().raw(rng.randbytes(16)).handle(handle).u32(0).bytes()


BANNER = b"ncacn_http/1.0"


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


RTS_RECEIVE_WINDOW_SIZE, RTS_CONNECTION_TIMEOUT, RTS_COOKIE, RTS_CHANNEL_LIFETIME = 0, 2, 3, 4
RTS_CLIENT_KEEPALIVE, RTS_VERSION, RTS_ASSOCIATION_GROUP_ID = 5, 6, 12
RTS_CMD_NAME = {
    0: "ReceiveWindowSize",
    2: "ConnectionTimeout",
    3: "Cookie",
    4: "ChannelLifetime",
    5: "ClientKeepalive",
    6: "Version",
    12: "AssociationGroupId",
}


def rts_pdu(flags: int, commands: list[tuple[int, bytes]]) -> bytes:
    """An RTS PDU ([MS-RPCH] 2.2.3.6.1): CO common header with PTYPE 20 (rts), pfc_flags first|last,
    call_id 0, then Flags u16, NumberOfCommands u16 and the commands (CommandType u32 + body)."""
    body = struct.pack("<HH", flags, len(commands)) + b"".join(struct.pack("<I", t) + v for t, v in commands)
    return co_pdu(PTYPE["rts"], 0, body)


def make_rpc_http_v2() -> None:
    cap = Capture(
        "rpc_http_v2.pcap",
        "RPC over HTTP version 2 ([MS-RPCH] 3.2) through an RPC proxy on TCP 80: an RPC_OUT_DATA request "
        "(OUT channel) with CONN/A1, an RPC_IN_DATA request (IN channel) with CONN/B1, the proxy's "
        "HTTP 200 with CONN/A3 and CONN/C2, then bind and request inside the IN channel and bind_ack "
        "and response inside the OUT channel.",
        seed=92,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    rng = cap.rng
    f_out = TcpFlow(cap, ws, 49792, srv, 80)
    f_in = TcpFlow(cap, ws, 49791, srv, 80)
    f_in.handshake()
    f_out.handshake()
    vconn, out_cookie, in_cookie, assoc = det_uuid(rng), det_uuid(rng), det_uuid(rng), det_uuid(rng)
    rts_log = cap.man.data.setdefault("rts_pdus", [])

    def http_head(method: str, length: int) -> bytes:
        return (
            f"{method} /rpc/rpcproxy.dll?srv01.corp.local:6004 HTTP/1.1\r\nAccept: application/rpc\r\n"
            "User-Agent: MSRPC\r\nHost: srv01.corp.local\r\n"
            f"Content-Length: {length}\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\n"
            "Pragma: no-cache\r\n\r\n"
        ).encode()

    def rts(
        flow: TcpFlow,
        side: str,
        name: str,
        flags: int,
        cmds: list[tuple[int, bytes]],
        prefix: bytes = b"",
        channel: str = "",
    ) -> int:
        fr = flow.send(side, prefix + rts_pdu(flags, cmds), f"{'HTTP header + ' if prefix else ''}RTS {name}")
        rts_log.append(
            {
                "frame": fr,
                "name": name,
                "channel": channel,
                "flags": flags,
                "commands": [RTS_CMD_NAME[t] for t, _ in cmds],
                "client_port": flow.cport,
            }
        )
        return fr

    def u32(v: int) -> bytes:
        return struct.pack("<I", v)

    def cookie(u: str) -> bytes:
        return uuid_bytes(u)

    rts(
        f_out,
        "c",
        "CONN/A1",
        0,
        [
            (RTS_VERSION, u32(1)),
            (RTS_COOKIE, cookie(vconn)),
            (RTS_COOKIE, cookie(out_cookie)),
            (RTS_RECEIVE_WINDOW_SIZE, u32(0x10000)),
        ],
        http_head("RPC_OUT_DATA", 76),
        "out",
    )
    rts(
        f_in,
        "c",
        "CONN/B1",
        0,
        [
            (RTS_VERSION, u32(1)),
            (RTS_COOKIE, cookie(vconn)),
            (RTS_COOKIE, cookie(in_cookie)),
            (RTS_CHANNEL_LIFETIME, u32(0x40000000)),
            (RTS_CLIENT_KEEPALIVE, u32(300000)),
            (RTS_ASSOCIATION_GROUP_ID, cookie(assoc)),
        ],
        http_head("RPC_IN_DATA", 1073741824),
        "in",
    )
    f_in.ack("s")
    head = b"HTTP/1.1 200 Success\r\nContent-Type: application/rpc\r\nContent-Length: 1073741824\r\n\r\n"
    rts(f_out, "s", "CONN/A3", 0, [(RTS_CONNECTION_TIMEOUT, u32(120000))], head, "out")
    rts(
        f_out,
        "s",
        "CONN/C2",
        0,
        [(RTS_VERSION, u32(1)), (RTS_RECEIVE_WINDOW_SIZE, u32(0x10000)), (RTS_CONNECTION_TIMEOUT, u32(120000))],
        b"",
        "out",
    )

    class HttpV2Channel(Channel):
        """PDUs from the client go in the IN channel's request body, PDUs from the server in the OUT channel's
        response body ([MS-RPCH] 3.2.1.5.3.x)."""

        transport = "ncacn_http"

        def __init__(self) -> None:
            self.client, self.server, self.cport, self.sport = ws, srv, f_in.cport, 80

        def endpoint(self) -> dict[str, Any]:
            d = super().endpoint()
            d.update(
                rpc_http_version=2,
                in_channel_client_port=f_in.cport,
                out_channel_client_port=f_out.cport,
                rpc_proxy_target="srv01.corp.local:6004",
            )
            return d

        def c2s(self, pdu: bytes, desc: str) -> int:
            return f_in.send("c", pdu, desc + " (IN channel)")

        def s2c(self, pdu: bytes, desc: str) -> int:
            return f_out.send("s", pdu, desc + " (OUT channel)")

    a = Assoc(cap, HttpV2Channel(), assoc_group=0x9201)
    a.extra["tshark_skip"] = (
        "tshark 4.0 dissects only the first RTS PDU of an RPC_IN_DATA/RPC_OUT_DATA body (in the "
        "frame with the HTTP header); later PDUs in the channel are 'HTTP Continuation'"
    )
    a.bind(1, [CtxItem(0, "nspi", [NDR])], sec_addr="6004")
    a.call(2, 0, 0, nspi_bind_req(rng), nspi_bind_resp(rng, "6f2a1b3c-4d5e-4f60-8172-8394a5b6c7d8"), name="NspiBind")
    f_out.ack("c")
    f_in.ack("s")
    f_in.close()
    f_out.close()
    for r in rts_log:
        if r["name"] == "CONN/C2":
            r["tshark_skip"] = "second PDU of the OUT channel's response body: tshark shows 'HTTP Continuation'"
    cap.man.note(
        "tshark 4.0 dissects CONN/A1, CONN/B1 and CONN/A3 (each in the frame carrying its HTTP header) but "
        "not CONN/C2 nor the bind, bind_ack, request and response that follow inside the IN and OUT channel "
        "bodies: those rows are marked tshark_skip and are known by construction only."
    )
    cap.man.note(
        "the bind travels in the IN channel (client port 49791) and its bind_ack in the OUT channel (client "
        "port 49792): a pairing by reversed TCP connection, as truth.py does, cannot match them."
    )
    save_pcap(cap)


TUNNELS = {
    "gre": ("tunnel_gre.pcap", "plain GRE over IPv6 (checksum and key present) carrying IPv4", 93),
    "wccp": ("tunnel_wccp.pcap", "WCCPv2 redirection: GRE protocol 0x883E with a 4-byte redirect header", 94),
    "erspan2": ("tunnel_erspan2.pcap", "ERSPAN type II (GRE 0x88BE, sequence numbers, session 17)", 95),
    "erspan3": ("tunnel_erspan3.pcap", "ERSPAN type III (GRE 0x22EB, platform-specific subheader)", 96),
    "vxlan": ("tunnel_vxlan.pcap", "VXLAN on UDP 4789, VNI 4242, as AWS and Azure traffic mirroring send", 97),
    "geneve": ("tunnel_geneve.pcap", "Geneve on UDP 6081, VNI 4343, one 8-byte option", 98),
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


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------

BUILDERS: list[Callable[[], None]] = [
    make_epm_map_session,
    make_epm_lookup_dump,
    make_tcp_segmentation,
    make_multifrag_calls,
    make_two_interfaces,
    make_linux_sll,
    make_linux_sll2,
    make_vlan_qinq,
    make_ipv6_session,
    make_ip_fragments,
    make_null_loopback,
    make_nanosecond_bigendian,
    make_gzip_session,
    make_truncated,
    make_smb2_pipes,
    make_smb2_epmapper,
    make_smb1_pipe,
    make_netbios139,
    make_cl_udp,
    make_rpc_http_v1,
    make_rpc_http_v2,
    make_tunnel_gre,
    make_tunnel_wccp,
    make_tunnel_erspan2,
    make_tunnel_erspan3,
    make_tunnel_vxlan,
    make_tunnel_geneve,
]


def main(argv: list[str]) -> int:
    want = argv[1:]
    for b in BUILDERS:
        if want and not any(w in b.__name__ for w in want):
            continue
        b()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
