"""two_interfaces.pcapng: a pcapng with two interfaces of different link types (samples/README.md)."""

from __future__ import annotations

import struct

from ..wire.assoc import Assoc, TcpChannel
from ..wire.capture import Capture, pcapng_bytes, write_file, write_manifest
from ..wire.dcerpc import AUTH_NETLOGON, LEVEL_PRIVACY, Auth, CtxItem
from ..wire.ids import NDR
from ..wire.link import link_raw
from ..wire.ndr import Ndr
from ..wire.stubs import netr_req_challenge
from ..wire.tcp import TcpFlow


def netlogon_auth_negotiate(domain: str, computer: str) -> bytes:
    """NL_AUTH_MESSAGE ([MS-NRPC] 2.2.1.3.1): MessageType 0 (negotiate), Flags (NetBIOS domain and computer
    names present), the two OEM names."""
    return struct.pack("<II", 0, 3) + domain.encode() + b"\0" + computer.encode() + b"\0"


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
