"""Cheap tests that a payload starts a DCE/RPC conversation, for traffic on unknown ports.

They run on every packet of every flow the analyzer does not yet know, so they reject in the
first byte or two, and accept only what a real client sends first: a connection-oriented bind or
alter_context ([C706] 12.6.4.3) whose first presentation context offers a transfer syntax
Windows actually uses (NDR, NDR64, bind-time feature negotiation). Byte patterns that merely look
like a header (inside GRE, TLS or file transfers) do not get that far.
"""

from __future__ import annotations

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
