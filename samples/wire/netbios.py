"""NetBIOS session service ([RFC 1002] 4.3) framing, also the direct-TCP framing of port 445, and
first-level encoded NetBIOS names ([RFC 1001] 14.1).
"""

from __future__ import annotations

import struct


def nbss(msg: bytes, mtype: int = 0) -> bytes:
    """NetBIOS session service framing ([RFC 1002] 4.3.1), also the 'direct TCP' framing of port 445
    ([MS-SMB2] 2.1): type, then a 24-bit big-endian length (17 bits in RFC 1002, 24 on port 445)."""
    return struct.pack(">I", (mtype << 24) | len(msg)) + msg


def netbios_name(name: str, suffix: int) -> bytes:
    """First-level encoded NetBIOS name ([RFC 1001] 14.1): 15 chars + suffix, each nibble + 'A', length 32."""
    raw = name.upper().ljust(15)[:15].encode() + bytes([suffix])
    enc = b"".join(bytes([0x41 + (c >> 4), 0x41 + (c & 0xF)]) for c in raw)
    return b"\x20" + enc + b"\x00"
