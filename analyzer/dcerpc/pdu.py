"""Connection-oriented DCE/RPC PDUs: header and bodies ([C706] 12.6.3-12.6.4, [MS-RPCE] 2.2.2).

`parse_co_pdu` takes exactly one fragment (frag_length bytes) and returns a frozen PDU object,
or raises `Malformed`. Integers follow the byte order of the data representation (drep[0] high
nibble: 1 little-endian, 0 big-endian). Stubs are not copied: a PDU keeps its raw bytes and the
offsets of its stub, so only the consumers that need a stub (the endpoint mapper) slice it.

Field names are [C706]'s (pfc_flags, frag_length, max_xmit_frag, assoc_group_id, auth_value, ...),
except where the analyzer's vocabulary is the tables': `ctx_id` for p_cont_id, `little` and
`char_ebcdic` for what packed_drep says, `object_uuid` for object, and the decoded SyntaxId.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from analyzer.dcerpc.constants import (
    ALTER_CONTEXT,
    ALTER_CONTEXT_RESP,
    BIND,
    BIND_ACK,
    BIND_NAK,
    CO_HEADER_LEN,
    FAULT,
    PFC_OBJECT_UUID,
    REQUEST,
    RESPONSE,
    SEC_TRAILER_LEN,
)
from analyzer.dcerpc.wire import Malformed, need, uuid_at

_HDR_LE = struct.Struct("<HHI")
_HDR_BE = struct.Struct(">HHI")


@dataclass(frozen=True, slots=True)
class CoHeader:
    """The 16-byte common header ([C706] 12.6.3.1)."""

    ptype: int
    pfc_flags: int
    little: bool  # integer representation: True little-endian
    char_ebcdic: bool
    frag_length: int
    auth_length: int
    call_id: int
    rpc_vers_minor: int


@dataclass(frozen=True, slots=True)
class AuthVerifier:
    """sec_trailer and auth value ([C706] 13.2.6.1, [MS-RPCE] 2.2.2.11)."""

    auth_type: int
    auth_level: int
    auth_pad_length: int
    auth_context_id: int
    auth_value: bytes  # the security provider's token


@dataclass(frozen=True, slots=True)
class SyntaxId:
    """p_syntax_id_t: an interface or transfer syntax UUID and version."""

    uuid: str
    major: int
    minor: int


@dataclass(frozen=True, slots=True)
class ContextItem:
    """p_cont_elem_t: one presentation context of a bind or alter_context."""

    ctx_id: int
    abstract: SyntaxId
    transfers: tuple[SyntaxId, ...]


@dataclass(frozen=True, slots=True)
class ContextResult:
    """p_result_t: the answer to one context item, in the same position."""

    result: int
    reason: int
    transfer_syntax: SyntaxId


@dataclass(frozen=True, slots=True)
class Bind:
    """bind (11) or alter_context (14): the same body ([C706] 12.6.4.3, 12.6.4.1)."""

    header: CoHeader
    max_xmit_frag: int
    max_recv_frag: int
    assoc_group_id: int
    contexts: tuple[ContextItem, ...]
    auth: AuthVerifier | None


@dataclass(frozen=True, slots=True)
class BindAck:
    """bind_ack (12) or alter_context_resp (15) ([C706] 12.6.4.4, 12.6.4.2)."""

    header: CoHeader
    max_xmit_frag: int
    max_recv_frag: int
    assoc_group_id: int
    sec_addr: str | None
    results: tuple[ContextResult, ...]
    auth: AuthVerifier | None


@dataclass(frozen=True, slots=True)
class BindNak:
    """bind_nak (13) ([C706] 12.6.4.5, [MS-RPCE] 2.2.2.5)."""

    header: CoHeader
    provider_reject_reason: int


@dataclass(frozen=True, slots=True)
class Request:
    """request (0) ([C706] 12.6.4.9). The stub is raw[stub_start:stub_end]."""

    header: CoHeader
    alloc_hint: int
    ctx_id: int
    opnum: int
    object_uuid: str | None
    raw: bytes
    stub_start: int
    stub_end: int
    auth: AuthVerifier | None


@dataclass(frozen=True, slots=True)
class Response:
    """response (2) ([C706] 12.6.4.10)."""

    header: CoHeader
    alloc_hint: int
    ctx_id: int
    cancel_count: int
    raw: bytes
    stub_start: int
    stub_end: int
    auth: AuthVerifier | None


@dataclass(frozen=True, slots=True)
class Fault:
    """fault (3) ([C706] 12.6.4.7, [MS-RPCE] 2.2.2.9)."""

    header: CoHeader
    alloc_hint: int
    ctx_id: int
    cancel_count: int
    status: int
    auth: AuthVerifier | None


@dataclass(frozen=True, slots=True)
class OtherPdu:
    """auth3, shutdown, co_cancel, orphaned, rts: header and auth verifier only."""

    header: CoHeader
    raw: bytes
    auth: AuthVerifier | None


CoPdu = Bind | BindAck | BindNak | Request | Response | Fault | OtherPdu


def plausible_co_header(data: bytes | bytearray, off: int = 0) -> int:
    """frag_length of a believable connection-oriented header at data[off:], else 0.

    Used to frame streams and to resynchronise after a gap: version 5.0/5.1, a known packet type,
    a data representation with reserved bytes zero, and lengths that fit together.
    """
    if len(data) - off < CO_HEADER_LEN:
        return 0
    pt = data[off + 2]
    if data[off] != 5 or data[off + 1] > 1 or pt > 20 or pt == 1 or 4 <= pt <= 10:
        return 0
    d0 = data[off + 4]
    if d0 & 0xEE or data[off + 5] > 3 or data[off + 6] or data[off + 7]:
        return 0
    fmt = _HDR_LE if d0 & 0x10 else _HDR_BE
    frag_len, auth_len, _call = fmt.unpack_from(data, off + 8)
    if frag_len < CO_HEADER_LEN or (auth_len and auth_len + SEC_TRAILER_LEN + CO_HEADER_LEN > frag_len):
        return 0
    return int(frag_len)


def parse_header(data: bytes) -> CoHeader:
    need(data, 0, CO_HEADER_LEN, "short_header")
    little = bool(data[4] & 0x10)
    frag_len, auth_len, call_id = (_HDR_LE if little else _HDR_BE).unpack_from(data, 8)
    return CoHeader(data[2], data[3], little, bool(data[4] & 0x0F), frag_len, auth_len, call_id, data[1])


def _auth(data: bytes, h: CoHeader) -> tuple[AuthVerifier | None, int]:
    """(auth verifier, offset where the body ends = start of auth padding) ([MS-RPCE] 2.2.2.11)."""
    if not h.auth_length:
        return None, len(data)
    trailer = len(data) - h.auth_length - SEC_TRAILER_LEN
    if trailer < CO_HEADER_LEN:
        raise Malformed("bad_auth_length", f"auth_length {h.auth_length} does not fit frag_length {h.frag_length}")
    auth_type, level, pad, _res = data[trailer], data[trailer + 1], data[trailer + 2], data[trailer + 3]
    ctx = struct.unpack_from("<I" if h.little else ">I", data, trailer + 4)[0]
    body_end = trailer - pad if pad <= trailer - CO_HEADER_LEN else trailer
    return AuthVerifier(auth_type, level, pad, ctx, data[trailer + SEC_TRAILER_LEN :]), body_end


def _syntax(data: bytes, off: int, little: bool) -> SyntaxId:
    need(data, off, 20, "short_syntax_id")
    version = struct.unpack_from("<I" if little else ">I", data, off + 16)[0]
    return SyntaxId(uuid_at(data, off, little), version & 0xFFFF, version >> 16)


def _bind(data: bytes, h: CoHeader) -> Bind:
    e = "<" if h.little else ">"
    auth, body_end = _auth(data, h)
    need(data, 16, 12, "short_bind")
    max_xmit, max_recv, group, n_ctx = struct.unpack_from(e + "HHIB", data, 16)
    off = 28
    items: list[ContextItem] = []
    for _ in range(n_ctx):
        need(data, off, 24, "short_context_item")
        ctx_id, n_ts = struct.unpack_from(e + "HB", data, off)
        abstract = _syntax(data, off + 4, h.little)
        off += 24
        transfers = []
        for _t in range(n_ts):
            transfers.append(_syntax(data, off, h.little))
            off += 20
        items.append(ContextItem(ctx_id, abstract, tuple(transfers)))
    if off > body_end:
        raise Malformed("bad_context_list", f"context list runs {off - body_end} bytes into the auth verifier")
    return Bind(h, max_xmit, max_recv, group, tuple(items), auth)


def _bind_ack(data: bytes, h: CoHeader) -> BindAck:
    e = "<" if h.little else ">"
    auth, _body_end = _auth(data, h)
    need(data, 16, 10, "short_bind_ack")
    max_xmit, max_recv, group, addr_len = struct.unpack_from(e + "HHIH", data, 16)
    off = 26
    need(data, off, addr_len, "short_sec_addr")
    sec_addr = data[off : off + addr_len].split(b"\0", 1)[0].decode("latin-1") if addr_len else None
    off += addr_len
    off += -off % 4  # the result list is 4-aligned ([C706] 12.6.4.4, "pad2")
    need(data, off, 4, "short_result_list")
    n_results = data[off]
    off += 4
    results = []
    for _ in range(n_results):
        need(data, off, 24, "short_result")
        result, reason = struct.unpack_from(e + "HH", data, off)
        results.append(ContextResult(result, reason, _syntax(data, off + 4, h.little)))
        off += 24
    return BindAck(h, max_xmit, max_recv, group, sec_addr, tuple(results), auth)


def _request(data: bytes, h: CoHeader) -> Request:
    e = "<" if h.little else ">"
    auth, body_end = _auth(data, h)
    need(data, 16, 8, "short_request")
    alloc_hint, ctx_id, opnum = struct.unpack_from(e + "IHH", data, 16)
    off = 24
    obj = None
    if h.pfc_flags & PFC_OBJECT_UUID:
        obj = uuid_at(data, off, h.little)
        off += 16
    if off > body_end:
        raise Malformed("short_request", "header fields run into the auth verifier")
    return Request(h, alloc_hint, ctx_id, opnum, obj, data, off, body_end, auth)


def _response(data: bytes, h: CoHeader) -> Response:
    e = "<" if h.little else ">"
    auth, body_end = _auth(data, h)
    need(data, 16, 8, "short_response")
    alloc_hint, ctx_id, cancel = struct.unpack_from(e + "IHB", data, 16)
    if body_end < 24:
        raise Malformed("short_response", "header fields run into the auth verifier")
    return Response(h, alloc_hint, ctx_id, cancel, data, 24, body_end, auth)


def _fault(data: bytes, h: CoHeader) -> Fault:
    e = "<" if h.little else ">"
    auth, _ = _auth(data, h)
    need(data, 16, 12, "short_fault")
    alloc_hint, ctx_id, cancel, _res, status = struct.unpack_from(e + "IHBBI", data, 16)
    return Fault(h, alloc_hint, ctx_id, cancel, status, auth)


def _bind_nak(data: bytes, h: CoHeader) -> BindNak:
    need(data, 16, 2, "short_bind_nak")
    return BindNak(h, struct.unpack_from("<H" if h.little else ">H", data, 16)[0])


def parse_co_pdu(data: bytes) -> CoPdu:
    """One complete fragment -> PDU object; `Malformed` when its body does not parse."""
    h = parse_header(data)
    if h.frag_length != len(data):
        raise Malformed("bad_frag_length", f"frag_length {h.frag_length} but {len(data)} bytes given")
    pt = h.ptype
    if pt == REQUEST:
        return _request(data, h)
    if pt == RESPONSE:
        return _response(data, h)
    if pt in (BIND, ALTER_CONTEXT):
        return _bind(data, h)
    if pt in (BIND_ACK, ALTER_CONTEXT_RESP):
        return _bind_ack(data, h)
    if pt == FAULT:
        return _fault(data, h)
    if pt == BIND_NAK:
        return _bind_nak(data, h)
    auth, _ = _auth(data, h)
    return OtherPdu(h, data, auth)
