"""An endpoint-mapper encoder for tests, written from [C706] Appendix I/L and [MS-RPCE] 2.2.1.2,
independent of the analyzer's decoder: towers, ept_map and ept_lookup stubs in NDR 2.0."""

from __future__ import annotations

import struct
import uuid

NDR = "8a885d04-1ceb-11c9-9fe8-08002b104860"


def floor(lhs: bytes, rhs: bytes) -> bytes:
    return struct.pack("<H", len(lhs)) + lhs + struct.pack("<H", len(rhs)) + rhs


def uuid_floor(u: str, major: int, minor: int = 0) -> bytes:
    return floor(b"\x0d" + uuid.UUID(u).bytes_le + struct.pack("<H", major), struct.pack("<H", minor))


def tower(iface: str, major: int, kind: str, where: str | int, host: str | None = None) -> bytes:
    """kind: tcp, udp, http, np, lrpc."""
    floors = [uuid_floor(iface, major), uuid_floor(NDR, 2)]
    if kind == "lrpc":
        floors.append(floor(b"\x0c", b"\0\0"))
        floors.append(floor(b"\x10", str(where).encode() + b"\0"))
    else:
        floors.append(floor(b"\x0a" if kind == "udp" else b"\x0b", b"\0\0"))
        if kind in ("tcp", "udp", "http"):
            pid = {"tcp": 0x07, "udp": 0x08, "http": 0x1F}[kind]
            floors.append(floor(bytes([pid]), struct.pack(">H", int(where))))
            floors.append(floor(b"\x09", bytes(int(x) for x in (host or "0.0.0.0").split("."))))
        elif kind == "np":
            floors.append(floor(b"\x0f", str(where).encode() + b"\0"))
            floors.append(floor(b"\x11", (host or "SRV").encode() + b"\0"))
    return struct.pack("<H", len(floors)) + b"".join(floors)


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def twr(octets: bytes) -> bytes:
    """twr_t: conformance, tower_length, octets, padded to 4."""
    return _pad4(struct.pack("<II", len(octets), len(octets)) + octets)


def map_request(iface: str, major: int) -> bytes:
    obj = struct.pack("<I", 1) + b"\0" * 16
    t = struct.pack("<I", 2) + twr(tower(iface, major, "tcp", 0))
    return obj + t + b"\0" * 20 + struct.pack("<I", 4)


def map_response(towers: list[bytes], status: int = 0, handle: bytes = b"\0" * 20) -> bytes:
    out = handle + struct.pack("<I", len(towers))
    out += struct.pack("<III", 4, 0, len(towers))
    out += b"".join(struct.pack("<I", 0x1000 + i) for i in range(len(towers)))
    out += b"".join(twr(t) for t in towers)
    return out + struct.pack("<I", status)


def lookup_response(entries: list[tuple[str, bytes | None, str]], status: int = 0) -> bytes:
    """entries: (object uuid, tower or None, annotation)."""
    out = b"\x00" * 4 + b"\x42" * 16 + struct.pack("<I", len(entries))
    out += struct.pack("<III", 500, 0, len(entries))
    for i, (obj, t, ann) in enumerate(entries):
        text = ann.encode() + b"\0"
        out += uuid.UUID(obj).bytes_le + struct.pack("<I", 0x2000 + i if t is not None else 0)
        out += _pad4(struct.pack("<II", 0, len(text)) + text)
    for _obj, t, _ann in entries:
        if t is not None:
            out += twr(t)
    return out + struct.pack("<I", status)
