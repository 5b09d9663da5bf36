"""Connectionless DCE/RPC PDUs ([C706] 12.5): the header, its parser, and a cheap probe.

[C706] 12.5 defines the connectionless PDUs: an 80-byte header (12.5.3.1) whose integers and
UUIDs follow the data representation in drep[0] (high nibble 1 little-endian, 0 big-endian, as
PROFINET devices send), then `len` bytes of body, then, when auth_proto is not zero, an
authentication verifier filling the rest of the datagram ([C706] 13). Bodies: request and
response carry stub data, fault and reject a status (an NDR u32), fack window information,
cancel and cancel_ack a cancel id; ping, working, nocall and ack have none that matters here.

`parse_cl_header` raises `Malformed` for bytes that are not such a PDU; `cl_probe` answers
"could this datagram be one?" for UDP ports the analyzer does not know, without building anything.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from analyzer.dcerpc.constants import CANCEL_ACK, FAULT, REJECT
from analyzer.dcerpc.wire import Malformed, uuid_at

CL_HEADER_LEN = 80
CL_VERSION = 4
CL_MAX_PTYPE = CANCEL_ACK

# flags1, [C706] 12.5.3.1
CL_FLAG_LASTFRAG = 0x02
CL_FLAG_FRAG = 0x04
CL_FLAG_NOFACK = 0x08
CL_FLAG_MAYBE = 0x10
CL_FLAG_IDEMPOTENT = 0x20
CL_FLAG_BROADCAST = 0x40
# flags2: only bit 1 (cancel_pending) and bit 0 (reserved for implementations) may be set.
CL_FLAG2_CANCEL_PENDING = 0x02
_FLAGS2_MBZ = 0xFC

NIL_UUID = "00000000-0000-0000-0000-000000000000"

_LE = struct.Struct("<IIIHHHHH")  # server_boot, if_vers, seqnum, opnum, ihint, ahint, len, fragnum
_BE = struct.Struct(">IIIHHHHH")
_u16le = struct.Struct("<H").unpack_from
_u16be = struct.Struct(">H").unpack_from


@dataclass(frozen=True, slots=True)
class ClHeader:
    """One connectionless PDU: the 80-byte header ([C706] 12.5.3.1), its body and verifier.

    UUIDs are canonical lower-case text (the nil UUID included); integers are already in host
    order. `body` is exactly `body_len` bytes; `auth` is the verifier when auth_proto is not 0.
    """

    rpc_vers: int
    ptype: int
    flags1: int
    flags2: int
    little: bool  # drep[0] high nibble: True little-endian
    char_ebcdic: bool  # drep[0] low nibble
    float_rep: int  # drep[1]: 0 IEEE, 1 VAX, 2 Cray, 3 IBM
    serial_hi: int
    object_uuid: str
    interface_uuid: str
    activity_uuid: str
    server_boot: int
    if_vers: int
    seqnum: int
    opnum: int
    ihint: int
    ahint: int
    body_len: int  # `len` on the wire
    fragnum: int
    auth_proto: int
    serial_lo: int
    body: bytes
    auth: bytes | None

    @property
    def if_major(self) -> int:
        # The version is one u32: major in the low 16 bits, minor in the high 16 bits
        # (tshark shows the u32 as dcerpc.dg_if_ver; PROFINET's "1" is version 1.0).
        return self.if_vers & 0xFFFF

    @property
    def if_minor(self) -> int:
        return self.if_vers >> 16

    @property
    def serial(self) -> int:
        return self.serial_hi << 8 | self.serial_lo

    @property
    def object_or_none(self) -> str | None:
        return None if self.object_uuid == NIL_UUID else self.object_uuid

    @property
    def fragmented(self) -> bool:
        return bool(self.flags1 & CL_FLAG_FRAG)

    def status(self) -> int | None:
        """The status of a fault or reject body (u32 in the PDU's byte order), if it is there."""
        if self.ptype not in (FAULT, REJECT) or len(self.body) < 4:
            return None
        value: int = struct.unpack_from("<I" if self.little else ">I", self.body, 0)[0]
        return value


def parse_cl_header(data: bytes) -> ClHeader:
    """The connectionless PDU in one UDP payload, or `Malformed` saying what is wrong with it."""
    if len(data) < CL_HEADER_LEN:
        raise Malformed("short_header", f"{len(data)} bytes, a connectionless header needs {CL_HEADER_LEN}")
    if data[0] != CL_VERSION:
        raise Malformed("bad_version", f"rpc_vers {data[0]}, expected {CL_VERSION}")
    ptype = data[1]
    if ptype > CL_MAX_PTYPE:
        raise Malformed("bad_ptype", f"packet type {ptype} is not a connectionless type")
    little = bool(data[4] & 0x10)
    boot, if_vers, seqnum, opnum, ihint, ahint, body_len, fragnum = (_LE if little else _BE).unpack_from(data, 56)
    end = CL_HEADER_LEN + body_len
    if end > len(data):
        raise Malformed("short_body", f"len {body_len} but only {len(data) - CL_HEADER_LEN} bytes follow the header")
    auth_proto = data[78]
    return ClHeader(
        rpc_vers=data[0],
        ptype=ptype,
        flags1=data[2],
        flags2=data[3],
        little=little,
        char_ebcdic=bool(data[4] & 0x0F),
        float_rep=data[5],
        serial_hi=data[7],
        object_uuid=uuid_at(data, 8, little),
        interface_uuid=uuid_at(data, 24, little),
        activity_uuid=uuid_at(data, 40, little),
        server_boot=boot,
        if_vers=if_vers,
        seqnum=seqnum,
        opnum=opnum,
        ihint=ihint,
        ahint=ahint,
        body_len=body_len,
        fragnum=fragnum,
        auth_proto=auth_proto,
        serial_lo=data[79],
        body=bytes(data[CL_HEADER_LEN:end]),
        auth=bytes(data[end:]) if auth_proto else None,
    )


_NIL16 = bytes(16)
# Not a cap (it bounds no state): the probe's plausibility limit for a verifier's size, larger
# than any CL verifier (Kerberos / NTLM / Netlogon signatures).
_MAX_VERIFIER = 2048


def cl_probe(buf: bytes, start: int, end: int) -> bool:
    """Does the UDP payload buf[start:end] hold a plausible connectionless DCE/RPC PDU?

    Runs on every datagram to a port the analyzer does not know, so the length and the first byte
    reject almost everything. What is left must have a known packet type, a data representation whose reserved
    bits are zero, flags2 bits that must be zero clear, an activity that is not nil, and a body
    length that accounts for the datagram exactly (plus a verifier only when auth_proto says so).
    """
    if end - start < CL_HEADER_LEN or buf[start] != CL_VERSION:
        return False
    if buf[start + 1] > CL_MAX_PTYPE or buf[start + 3] & _FLAGS2_MBZ:
        return False
    d0 = buf[start + 4]
    if d0 & 0xEE or buf[start + 5] > 3 or buf[start + 6]:
        return False
    body_len = (_u16le if d0 & 0x10 else _u16be)(buf, start + 74)[0]
    extra = end - start - CL_HEADER_LEN - body_len
    if buf[start + 78]:
        if not 0 < extra <= _MAX_VERIFIER:
            return False
    elif extra != 0:
        return False
    return buf[start + 40 : start + 56] != _NIL16
