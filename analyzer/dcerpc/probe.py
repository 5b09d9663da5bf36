"""Cheap tests that a payload starts a DCE/RPC conversation, for traffic on unknown ports.

They run on every packet of every flow the analyzer does not yet know, so they reject in the
first byte or two, and accept only what a real client sends first: a connection-oriented bind or
alter_context ([C706] 12.6.4.3) whose first presentation context offers a transfer syntax
Windows actually uses (NDR, NDR64, bind-time feature negotiation). Byte patterns that merely look
like a header (inside GRE, TLS or file transfers) do not get that far.
"""

from __future__ import annotations

import struct
import uuid

from analyzer.dcerpc.constants import ALTER_CONTEXT, BIND, NDR64_UUID, NDR_UUID
from analyzer.dcerpc.pdu import plausible_co_header

_BIND_MIN = 16 + 12 + 4 + 20 + 20  # header, bind body, one context item with one transfer syntax
_FIRST_TRANSFER = 16 + 12 + 4 + 20  # offset of the first item's first transfer syntax


def _forms(text: str) -> tuple[bytes, bytes]:
    u = uuid.UUID(text)
    return u.bytes_le, u.bytes


_SYNTAXES = {*_forms(NDR_UUID), *_forms(NDR64_UUID)}
# Bind-time feature negotiation: 6cb71c2c-9812-4540-<feature bits>; only the first 8 bytes are fixed.
_BTFN = {f[:8] for f in _forms("6cb71c2c-9812-4540-0000-000000000000")}


def co_bind_probe(buf: bytes, start: int, end: int) -> bool:
    """Does buf[start:end] start with a DCE/RPC v5 bind or alter_context a real client would send?"""
    if buf[start] != 5 or end - start < 16:
        return False
    ptype = buf[start + 2]
    if buf[start + 1] != 0 or (ptype != BIND and ptype != ALTER_CONTEXT):
        return False
    frag_len = plausible_co_header(buf, start)
    if frag_len < _BIND_MIN:
        return False
    if end - start < _BIND_MIN:
        return True  # the rest of the bind is in the next segment: the header alone has to do
    if buf[start + 24] == 0 or buf[start + 30] == 0:  # no context items, or an item without syntaxes
        return False
    ts = bytes(buf[start + _FIRST_TRANSFER : start + _FIRST_TRANSFER + 16])
    return ts in _SYNTAXES or ts[:8] in _BTFN


# Connection-oriented packet types ([C706] 12.6.4) a TCP conversation may be joined at, by the side
# that sends them. RTS (20) belongs to RPC over HTTP and is left to its own recognition.
CLIENT_PTYPES = frozenset({0, 11, 14, 16, 18, 19})  # request bind alter_context auth3 co_cancel orphaned
SERVER_PTYPES = frozenset({2, 3, 12, 13, 15, 17})  # response fault bind_ack bind_nak alter_context_resp shutdown
# The shortest well-formed PDU of each type: header plus the fixed part of its body.
_MIN_LEN = {0: 24, 2: 24, 3: 32, 11: 28, 12: 26, 13: 18, 14: 28, 15: 26, 16: 20, 17: 16, 18: 16, 19: 16}


_LE, _BE = struct.Struct("<HHI"), struct.Struct(">HHI")


class CoStart:
    """The header of a well-formed connection-oriented PDU: what a midstream join is judged on."""

    __slots__ = ("call_id", "frag_length", "little", "ptype")

    def __init__(self, ptype: int, frag_len: int, call_id: int, little: bool) -> None:
        self.ptype = ptype
        self.frag_length = frag_len
        self.call_id = call_id
        self.little = little


def co_start(buf: bytes, start: int, end: int) -> CoStart | None:
    """The header at buf[start:end] if it is a well-formed connection-oriented PDU header: version
    5.0, a known packet type, a valid data representation (integer and character formats, IEEE /
    VAX / Cray / IBM floats, reserved bytes zero), a frag_length at least the type's fixed part,
    and an auth_length that fits inside it with its sec_trailer ([C706] 12.6.3.1, 14.1)."""
    if end - start < 16 or buf[start] != 5 or buf[start + 1] != 0:
        return None
    ptype = buf[start + 2]
    least = _MIN_LEN.get(ptype)
    d0 = buf[start + 4]
    if least is None or d0 & 0xEE or buf[start + 5] > 3 or buf[start + 6] or buf[start + 7]:
        return None
    little = bool(d0 & 0x10)
    frag_len, auth_len, call_id = (_LE if little else _BE).unpack_from(buf, start + 8)
    if frag_len < least or (auth_len and auth_len + 8 + least > frag_len):
        return None
    return CoStart(ptype, frag_len, call_id, little)


def co_probe(buf: bytes, start: int, end: int) -> bool:
    """The selector's probe for a payload starting with 5: a bind a client would send first, or any
    well-formed connection-oriented PDU header (a conversation joined late, to be confirmed)."""
    return co_bind_probe(buf, start, end) or co_start(buf, start, end) is not None
