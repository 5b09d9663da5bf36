"""The endpoint mapper ([C706] Appendix I, L and O, [MS-RPCE] 2.2.1.2): towers, ept_map and ept_lookup stubs,
and the manifest rows for the towers an answer announces.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .assoc import Channel
from .capture import Capture
from .ids import IFACES, NDR, iface_id, uuid_bytes, vstr
from .ndr import Ndr


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
        return iface_id(self.iface)[0]

    @property
    def if_ver(self) -> tuple[int, int]:
        return iface_id(self.iface)[1]

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
