"""A connectionless DCE/RPC encoder and tracker harness for tests.

`encode` is a struct encoder written from [C706] 12.5.3.1 and checked byte for byte against
scapy's DceRpc4 layer (tests/test_cl_pdu.py), independent of the analyzer; the endpoint-mapper
stubs follow [C706] Appendix I/L. `Feeder` drives a `ClTracker` and `Sink` keeps what it emits.
"""

from __future__ import annotations

import socket
import struct
import uuid
from typing import Any

from analyzer.dcerpc.cl import ClTracker
from analyzer.dcerpc.constants import (
    REQUEST,
)
from analyzer.limits import Limits
from analyzer.model import CallRecord, DatagramRecord, EndpointRecord, Flow
from analyzer.stubs import stub_decoder

NIL = "00000000-0000-0000-0000-000000000000"
NDR = "8a885d04-1ceb-11c9-9fe8-08002b104860"
EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
PNIO = "dea00001-6c97-11d1-8271-00a02442df7d"
PNIO_OBJ = "dea00000-6c97-11d1-8271-00010003015a"
ACT = "13142f90-0000-1000-a994-d2106890ca5a"
ACT2 = "2d5fae08-0007-1000-8001-00099143e067"

CLIENT = ("192.168.1.3", 65151)
SERVER = ("192.168.1.2", 34964)
SERVER_EPH = ("192.168.1.2", 49152)  # where PROFINET devices answer from
MS = 1_000_000


# -- encoders -------------------------------------------------------------------------------------


def _uuid_bytes(text: str, little: bool) -> bytes:
    u = uuid.UUID(text)
    return u.bytes_le if little else u.bytes


def encode(
    ptype: int = REQUEST,
    *,
    little: bool = True,
    ebcdic: bool = False,
    float_rep: int = 0,
    flags1: int = 0,
    flags2: int = 0,
    serial: int = 0,
    obj: str = NIL,
    iface: str = PNIO,
    act: str = ACT,
    boot: int = 0,
    if_vers: int = 1,
    seqnum: int = 0,
    opnum: int = 0,
    ihint: int = 0xFFFF,
    ahint: int = 0xFFFF,
    fragnum: int = 0,
    body: bytes = b"",
    auth_proto: int = 0,
    verifier: bytes = b"",
    body_len: int | None = None,
) -> bytes:
    """A connectionless PDU, field by field as [C706] 12.5.3.1 lays the header out."""
    e = "<" if little else ">"
    drep = bytes([(0x10 if little else 0x00) | (1 if ebcdic else 0), float_rep, 0])
    out = bytes([4, ptype, flags1, flags2]) + drep + bytes([serial >> 8])
    out += _uuid_bytes(obj, little) + _uuid_bytes(iface, little) + _uuid_bytes(act, little)
    out += struct.pack(e + "III", boot, if_vers, seqnum)
    out += struct.pack(e + "HHH", opnum, ihint, ahint)
    out += struct.pack(e + "HH", len(body) if body_len is None else body_len, fragnum)
    out += bytes([auth_proto, serial & 0xFF])
    return out + body + verifier


def status_body(status: int, little: bool) -> bytes:
    return struct.pack("<I" if little else ">I", status)


# An endpoint-mapper answer ([C706] Appendix I/L): towers are little-endian whatever the PDU says
# (ports and addresses big-endian); the NDR around them follows the PDU's byte order.


def _floor(lhs: bytes, rhs: bytes) -> bytes:
    return struct.pack("<H", len(lhs)) + lhs + struct.pack("<H", len(rhs)) + rhs


def _uuid_floor(u: str, major: int, minor: int = 0) -> bytes:
    return _floor(b"\x0d" + uuid.UUID(u).bytes_le + struct.pack("<H", major), struct.pack("<H", minor))


def udp_tower(iface: str, major: int, port: int, ip: str) -> bytes:
    floors = [
        _uuid_floor(iface, major),
        _uuid_floor(NDR, 2),
        _floor(b"\x0a", b"\0\0"),
        _floor(b"\x08", struct.pack(">H", port)),
        _floor(b"\x09", socket.inet_aton(ip)),
    ]
    return struct.pack("<H", len(floors)) + b"".join(floors)


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def map_response(towers: list[bytes], little: bool, status: int = 0) -> bytes:
    e = "<" if little else ">"
    out = struct.pack(e + "I", 0) + bytes(16)  # entry handle
    out += struct.pack(e + "I", len(towers)) + struct.pack(e + "III", len(towers), 0, len(towers))
    out += b"".join(struct.pack(e + "I", 0x1000 + i) for i in range(len(towers)))
    for t in towers:
        out += _pad4(struct.pack(e + "II", len(t), len(t)) + t)
    return out + struct.pack(e + "I", status)


def lookup_response(entries: list[tuple[str, bytes, str]], little: bool) -> bytes:
    e = "<" if little else ">"
    out = struct.pack(e + "I", 0) + bytes(16) + struct.pack(e + "I", len(entries))
    out += struct.pack(e + "III", len(entries), 0, len(entries))
    for i, (obj, _t, ann) in enumerate(entries):
        text = ann.encode() + b"\0"
        out += _uuid_bytes(obj, little) + struct.pack(e + "I", 0x2000 + i)
        out += _pad4(struct.pack(e + "II", 0, len(text)) + text)
    for _obj, t, _ann in entries:
        out += _pad4(struct.pack(e + "II", len(t), len(t)) + t)
    return out + struct.pack(e + "I", 0)


# -- a tracker and what it emits --------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.datagrams: list[DatagramRecord] = []
        self.calls: list[CallRecord] = []
        self.endpoints: list[EndpointRecord] = []
        self.violations: list[tuple[Flow, int | None, str, str, str]] = []
        self.order: list[Any] = []

    def bind_row(self, row: Any) -> None:
        raise AssertionError("no binds in connectionless DCE/RPC")

    def call(self, rec: CallRecord) -> None:
        self.calls.append(rec)
        self.order.append(rec)

    def endpoint(self, rec: EndpointRecord) -> None:
        self.endpoints.append(rec)
        self.order.append(rec)

    def datagram(self, rec: DatagramRecord) -> None:
        self.datagrams.append(rec)
        self.order.append(rec)

    def violation(self, flow: Flow, frame: int | None, layer: str, what: str, detail: str, count: int = 1) -> None:
        self.violations.extend([(flow, frame, layer, what, detail)] * count)
        self.order.extend([(flow, frame, layer, what, detail)] * count)

    def whats(self) -> list[str]:
        return [v[3] for v in self.violations]


def flow_for(ci: str, cp: int, si: str, sp: int) -> Flow:
    # Order-independent on purpose (stream 0): the lead's stream numbering is not under test here.
    return Flow("test", 0, "ncadg_ip_udp", ci, cp, si, sp)


class Feeder:
    def __init__(self, limits: Limits | None = None) -> None:
        self.sink = Sink()
        self.tracker = ClTracker(self.sink, limits or Limits(), flow_for, decoder=stub_decoder(limits or Limits()))
        self.frame = 0

    def send(self, src: tuple[str, int], dst: tuple[str, int], data: bytes, ts: int | None = None) -> int:
        self.frame += 1
        self.tracker.datagram(src[0], src[1], dst[0], dst[1], data, self.frame, self.frame * MS if ts is None else ts)
        return self.frame

    def close(self) -> Sink:
        self.tracker.close()
        return self.sink


def activity(i: int) -> str:
    """The i-th made-up activity UUID."""
    return f"{i:08x}-0000-1000-8000-000000000000"
