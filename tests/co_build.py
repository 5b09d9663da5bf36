"""A connection-oriented DCE/RPC encoder for tests, written from [C706] 12.6 and [MS-RPCE] 2.2.2,
independent of the analyzer's parser: headers, bind / bind_ack / bind_nak / alter_context,
request / response / fault, auth3, the sec_trailer, and an NTLMSSP AUTHENTICATE message
([MS-NLMP] 2.2.1.3). Little-endian unless `le=False`."""

from __future__ import annotations

import struct
import uuid

NDR = "8a885d04-1ceb-11c9-9fe8-08002b104860"
NDR64 = "71710533-beba-4937-8319-b5dbef9ccc36"
BTFN = "6cb71c2c-9812-4540-0300-000000000000"  # bind-time feature negotiation, bits 1|2

# PTYPE ([C706] 12.6.3.1)
REQUEST, RESPONSE, FAULT = 0, 2, 3
BIND, BIND_ACK, BIND_NAK, ALTER_CONTEXT, ALTER_CONTEXT_RESP, AUTH3 = 11, 12, 13, 14, 15, 16
FIRST, LAST = 0x01, 0x02
OBJECT = 0x80


def _e(le: bool) -> str:
    return "<" if le else ">"


def syntax(iface: str, major: int, minor: int = 0, le: bool = True) -> bytes:
    """p_syntax_id_t: uuid then version (major in the low 16 bits)."""
    u = uuid.UUID(iface)
    return (u.bytes_le if le else u.bytes) + struct.pack(_e(le) + "I", minor << 16 | major)


def sec_trailer(body_len: int, auth_type: int, level: int, ctx: int, token: bytes, le: bool = True) -> bytes:
    """auth padding to 4, then sec_trailer ([MS-RPCE] 2.2.2.11), then the token."""
    pad = -body_len % 4
    return b"\0" * pad + struct.pack(_e(le) + "BBBBI", auth_type, level, pad, 0, ctx) + token


def pdu(
    ptype: int,
    call_id: int,
    body: bytes,
    flags: int = FIRST | LAST,
    auth: tuple[int, int, int, bytes] | None = None,
    le: bool = True,
) -> bytes:
    """Common header ([C706] 12.6.3.1) + body (+ auth verifier: (type, level, context id, token))."""
    auth_len = 0
    if auth is not None:
        auth_type, level, ctx, token = auth
        body += sec_trailer(16 + len(body), auth_type, level, ctx, token, le)
        auth_len = len(token)
    drep = b"\x10\0\0\0" if le else b"\0\0\0\0"
    head = struct.pack("<BBBB4s", 5, 0, ptype, flags, drep)
    return head + struct.pack(_e(le) + "HHI", 16 + len(body), auth_len, call_id) + body


def bind_body(
    contexts: list[tuple[int, str, int, list[str]]],
    max_xmit: int = 5840,
    max_recv: int = 5840,
    group: int = 0,
    le: bool = True,
) -> bytes:
    """contexts: (p_cont_id, abstract uuid, major, transfer uuids)."""
    e = _e(le)
    out = struct.pack(e + "HHIB3x", max_xmit, max_recv, group, len(contexts))
    for ctx_id, iface, major, transfers in contexts:
        out += struct.pack(e + "HBx", ctx_id, len(transfers)) + syntax(iface, major, 0, le)
        out += b"".join(syntax(t, 1 if t == NDR64 else 2, 0, le) for t in transfers)
    return out


def bind_ack_body(
    results: list[tuple[int, int, str]],
    sec_addr: str = "49667",
    max_xmit: int = 5840,
    max_recv: int = 5840,
    group: int = 0x1234,
    le: bool = True,
) -> bytes:
    """results: (result, reason, transfer uuid) per context, in the bind's order."""
    e = _e(le)
    addr = sec_addr.encode() + b"\0" if sec_addr else b""
    out = struct.pack(e + "HHIH", max_xmit, max_recv, group, len(addr)) + addr
    out += b"\0" * (-(len(out) + 16) % 4) + struct.pack(e + "B3x", len(results))
    for result, reason, transfer in results:
        out += struct.pack(e + "HH", result, reason) + syntax(transfer, 1 if transfer == NDR64 else 2, 0, le)
    return out


def request_body(opnum: int, stub: bytes, ctx_id: int = 0, obj: str | None = None, le: bool = True) -> bytes:
    out = struct.pack(_e(le) + "IHH", len(stub), ctx_id, opnum)
    if obj is not None:
        out += uuid.UUID(obj).bytes_le if le else uuid.UUID(obj).bytes
    return out + stub


def response_body(stub: bytes, ctx_id: int = 0, le: bool = True) -> bytes:
    return struct.pack(_e(le) + "IHBx", len(stub), ctx_id, 0) + stub


def fault_body(status: int, ctx_id: int = 0, le: bool = True) -> bytes:
    return struct.pack(_e(le) + "IHBxI4x", 0, ctx_id, 0, status)


def bind_nak_body(reason: int, le: bool = True) -> bytes:
    return struct.pack(_e(le) + "H", reason) + b"\0" * 2


def ntlm_authenticate(user: str, domain: str, workstation: str) -> bytes:
    """NTLMSSP AUTHENTICATE_MESSAGE ([MS-NLMP] 2.2.1.3), Unicode, empty responses."""
    payload = b""
    fields = []
    for text in ("", "", domain, user, workstation, ""):  # Lm, Nt, Domain, User, Workstation, key
        raw = text.encode("utf-16-le")
        fields.append(struct.pack("<HHI", len(raw), len(raw), 64 + len(payload)))
        payload += raw
    return b"NTLMSSP\0" + struct.pack("<I", 3) + b"".join(fields) + struct.pack("<I", 1) + payload
