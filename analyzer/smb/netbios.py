"""The 4-byte framing under SMB: NetBIOS session service on 139 and direct TCP on 445.

RFC 1002 4.3.1: a session packet is TYPE (1 byte), FLAGS (1 byte, bit 0 extends the length to
17 bits) and LENGTH (2 bytes, big-endian). Types: 0x00 session message, 0x81 session request,
0x82 positive response, 0x83 negative response, 0x84 retarget response, 0x85 keep-alive.
[MS-SMB2] 2.1 / [MS-CIFS] 2.1.1.2 direct TCP: a zero byte and a 24-bit big-endian length.

A session message is framed with 24 bits in both cases: on 139 the high bits are zero for RFC
1002 peers, and some stacks send longer messages there anyway; the SMB magic that must follow
keeps that leniency from accepting garbage. Control packets have short bodies, checked here.
"""

from __future__ import annotations

HEADER_LEN = 4

SESSION_MESSAGE = 0x00
SESSION_REQUEST = 0x81
POSITIVE_RESPONSE = 0x82
NEGATIVE_RESPONSE = 0x83
RETARGET_RESPONSE = 0x84
KEEP_ALIVE = 0x85

# Longest body each control packet may have: a session request carries two encoded NetBIOS names
# (34 bytes each, longer with a scope), a negative response an error code, a retarget an IPv4
# address and a port.
_CONTROL_MAX = {
    SESSION_REQUEST: 512,
    POSITIVE_RESPONSE: 0,
    NEGATIVE_RESPONSE: 1,
    RETARGET_RESPONSE: 6,
    KEEP_ALIVE: 0,
}

SMB1_MAGIC = b"\xffSMB"
SMB2_MAGIC = b"\xfeSMB"
TRANSFORM_MAGIC = b"\xfdSMB"  # [MS-SMB2] 2.2.41 encryption transform
COMPRESSION_MAGIC = b"\xfcSMB"  # [MS-SMB2] 2.2.42 compression transform

# The smallest message each magic can start: SMB1 header + WordCount + ByteCount, the SMB2 header,
# the transform header, the compression header.
MIN_MESSAGE = {0xFF: 35, 0xFE: 64, 0xFD: 52, 0xFC: 16}


def parse_header(b: bytes | bytearray, off: int = 0) -> tuple[int, int] | None:
    """(type, length) of the session-service header at b[off:off + 4], or None if it is not one."""
    t = b[off]
    flags = b[off + 1]
    if t == SESSION_MESSAGE:
        return t, (flags << 16) | (b[off + 2] << 8) | b[off + 3]
    most = _CONTROL_MAX.get(t)
    if most is None or flags & 0xFE:
        return None
    length = ((flags & 1) << 16) | (b[off + 2] << 8) | b[off + 3]
    if length > most:
        return None
    return t, length


def header_problem(b: bytes | bytearray, off: int = 0) -> str:
    """Why b[off:off + 4] is not a session-service header (RFC 1002 4.3.1): the field at fault."""
    t, flags = b[off], b[off + 1]
    most = _CONTROL_MAX.get(t)
    if most is None:
        return f"packet type 0x{t:02x} is not a session-service type (bytes {bytes(b[off : off + 4]).hex()})"
    if flags & 0xFE:
        return f"reserved flag bits 0x{flags & 0xFE:02x} set in a type 0x{t:02x} packet"
    length = ((flags & 1) << 16) | (b[off + 2] << 8) | b[off + 3]
    return f"type 0x{t:02x} packet of {length} bytes, at most {most}"


def plausible_message(b: bytes | bytearray, off: int) -> bool:
    """Does b[off:] start a session message carrying SMB? Used to resynchronise.

    Needs b[off:off + 8] (header and magic); checks the SMB2 StructureSize too when it is there.
    """
    if len(b) - off < 8 or b[off] != SESSION_MESSAGE or b[off + 5 : off + 8] != b"SMB":
        return False
    least = MIN_MESSAGE.get(b[off + 4])
    if least is None:
        return False
    length = (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]
    if length < least:
        return False
    if b[off + 4] == 0xFE and len(b) - off >= 10:
        return b[off + 8] == 64 and b[off + 9] == 0
    return True
