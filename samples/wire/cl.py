"""Connectionless DCE/RPC ([C706] 12.5) over UDP: the header, fack bodies, and sending one PDU while recording it."""

from __future__ import annotations

import struct
from typing import Any

from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from .capture import Capture, Host
from .dcerpc import PTYPE
from .ids import IFACES, uuid_bytes, ver_u32, vstr
from .link import link_ether

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
