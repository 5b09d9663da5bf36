"""DCE/RPC connection-oriented PDUs ([C706] 12.6): packet types, flags, the common header, bind, bind_ack,
request, response and fault bodies, the sec_trailer ([MS-RPCE] 2.2.2.11).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .ids import iface_id, uuid_bytes, ver_u32

# CO packet types ([C706] 12.6.4) and CL packet types ([C706] 12.5.2)
PTYPE = {
    "request": 0,
    "ping": 1,
    "response": 2,
    "fault": 3,
    "working": 4,
    "nocall": 5,
    "reject": 6,
    "ack": 7,
    "cl_cancel": 8,
    "fack": 9,
    "cancel_ack": 10,
    "bind": 11,
    "bind_ack": 12,
    "bind_nak": 13,
    "alter_context": 14,
    "alter_context_resp": 15,
    "auth3": 16,
    "shutdown": 17,
    "co_cancel": 18,
    "orphaned": 19,
    "rts": 20,
}
PTNAME = {v: k for k, v in PTYPE.items()}
PFC_FIRST, PFC_LAST, PFC_SUPPORT_HEADER_SIGN, PFC_DID_NOT_EXECUTE, PFC_OBJECT_UUID = (0x01, 0x02, 0x04, 0x20, 0x80)
ACK_RESULT = {0: "acceptance", 1: "user_rejection", 2: "provider_rejection", 3: "negotiate_ack"}
PROVIDER_REASON = {  # [C706] 12.6.3.1 p_provider_reason_t
    0: "reason_not_specified",
    1: "abstract_syntax_not_supported",
    2: "proposed_transfer_syntaxes_not_supported",
    3: "local_limit_exceeded",
}
NAK_REASON = {  # [C706] 12.6.3.1 p_reject_reason_t, [MS-RPCE] 2.2.2.5
    0: "reason_not_specified",
    1: "temporary_congestion",
    2: "local_limit_exceeded",
    3: "called_paddr_unknown",
    4: "protocol_version_not_supported",
    5: "default_context_not_supported",
    6: "user_data_not_readable",
    7: "no_psap_available",
    8: "authentication_type_not_recognized",
    9: "invalid_checksum",
}
AUTH_NTLMSSP, AUTH_NETLOGON = 10, 68
LEVEL_CONNECT, LEVEL_INTEGRITY, LEVEL_PRIVACY = 2, 5, 6


@dataclass
class Auth:
    """An auth verifier: [MS-RPCE] 2.2.2.11 sec_trailer (auth_type, auth_level, auth_pad_length,
    auth_reserved, auth_context_id) followed by the token; auth_length counts the token only."""

    auth_type: int
    level: int
    ctx_id: int
    token: bytes


def co_pdu(
    ptype: int,
    call_id: int,
    body: bytes,
    *,
    flags: int = PFC_FIRST | PFC_LAST,
    le: bool = True,
    auth: Auth | None = None,
    pad_align: int = 4,
    rpc_vers_minor: int = 0,
) -> bytes:
    """[C706] 12.6.3.1 common header (rpc_vers 5, rpc_vers_minor, PTYPE, pfc_flags, packed_drep[4],
    frag_length, auth_length, call_id) + body (+ auth padding + sec_trailer + token when `auth`).

    The padding before the sec_trailer makes the stub a multiple of `pad_align` bytes and is counted in
    auth_pad_length; the caller passes pad_align=16 for request/response stubs, as Windows does."""
    e = "<" if le else ">"
    drep = bytes([0x10 if le else 0x00, 0, 0, 0])
    tail = b""
    if auth is not None:
        pad = (-len(body)) % pad_align
        body = body + b"\0" * pad
        tail = struct.pack(e + "BBBBI", auth.auth_type, auth.level, pad, 0, auth.ctx_id) + auth.token
    frag_len = 16 + len(body) + len(tail)
    hdr = struct.pack(
        e + "BBBB4sHHI", 5, rpc_vers_minor, ptype, flags, drep, frag_len, len(auth.token) if auth else 0, call_id
    )
    return hdr + body + tail


@dataclass
class CtxItem:
    """One presentation context element of a bind/alter_context ([C706] 12.6.3.1 p_cont_elem_t) and the
    result the server is going to give it in the bind_ack ([C706] 12.6.3.1 p_result_t)."""

    ctx_id: int
    iface: str  # a key of IFACES, or a raw uuid
    syntaxes: list[tuple[str, tuple[int, int]]]
    result: int = 0  # 0 acceptance, 1 user_rejection, 2 provider_rejection, 3 negotiate_ack
    reason: int = 0  # rejection reason, or the BTFN feature bits for a negotiate_ack

    @property
    def if_uuid(self) -> str:
        return iface_id(self.iface)[0]

    @property
    def if_ver(self) -> tuple[int, int]:
        return iface_id(self.iface)[1]


def bind_body(
    items: list[CtxItem], le: bool, max_xmit: int = 5840, max_recv: int = 5840, assoc_group: int = 0
) -> bytes:
    """bind / alter_context body ([C706] 12.6.4.3 / 12.6.4.1): max_xmit_frag, max_recv_frag,
    assoc_group_id, p_cont_list_t {n_context_elem, reserved, reserved2, p_cont_elem_t[]}."""
    e = "<" if le else ">"
    b = struct.pack(e + "HHIBBH", max_xmit, max_recv, assoc_group, len(items), 0, 0)
    for it in items:
        b += struct.pack(e + "HBB", it.ctx_id, len(it.syntaxes), 0)
        b += uuid_bytes(it.if_uuid, le) + struct.pack(e + "I", ver_u32(it.if_ver))
        for ts, tv in it.syntaxes:
            b += uuid_bytes(ts, le) + struct.pack(e + "I", ts_ver_u32(tv))
    return b


def ts_ver_u32(v: tuple[int, int]) -> int:
    return ver_u32(v)


def bind_ack_body(
    items: list[CtxItem], le: bool, sec_addr: str, max_xmit: int = 5840, max_recv: int = 5840, assoc_group: int = 0x1234
) -> bytes:
    """bind_ack / alter_context_resp body ([C706] 12.6.4.4 / 12.6.4.2): max_xmit_frag, max_recv_frag,
    assoc_group_id, port_any_t sec_addr {length incl. NUL, chars}, pad to 4 (from the PDU start),
    p_result_list_t {n_results, reserved, reserved2, p_result_t[] {result, reason, transfer_syntax}}."""
    e = "<" if le else ">"
    b = struct.pack(e + "HHI", max_xmit, max_recv, assoc_group)
    sa = (sec_addr.encode("ascii") + b"\0") if sec_addr else b""
    b += struct.pack(e + "H", len(sa)) + sa
    b += b"\0" * ((-(16 + len(b))) % 4)
    b += struct.pack(e + "BBH", len(items), 0, 0)
    for it in items:
        if it.result == 0:
            ts, tv = it.syntaxes[0]
            b += struct.pack(e + "HH", 0, 0) + uuid_bytes(ts, le) + struct.pack(e + "I", ts_ver_u32(tv))
        else:
            b += struct.pack(e + "HH", it.result, it.reason) + b"\0" * 16 + struct.pack(e + "I", 0)
    return b


def request_body(alloc_hint: int, ctx_id: int, opnum: int, stub: bytes, le: bool, obj: str | None = None) -> bytes:
    """request body ([C706] 12.6.4.9): alloc_hint, p_cont_id, opnum, [object uuid when PFC_OBJECT_UUID],
    stub."""
    e = "<" if le else ">"
    b = struct.pack(e + "IHH", alloc_hint, ctx_id, opnum)
    if obj:
        b += uuid_bytes(obj, le)
    return b + stub


def response_body(alloc_hint: int, ctx_id: int, stub: bytes, le: bool) -> bytes:
    """response body ([C706] 12.6.4.10): alloc_hint, p_cont_id, cancel_count, reserved, stub."""
    e = "<" if le else ">"
    return struct.pack(e + "IHBB", alloc_hint, ctx_id, 0, 0) + stub


def fault_body(ctx_id: int, status: int, le: bool) -> bytes:
    """fault body ([C706] 12.6.4.7): alloc_hint, p_cont_id, cancel_count, reserved, status, reserved2."""
    e = "<" if le else ">"
    return struct.pack(e + "IHBBII", 32, ctx_id, 0, 0, status, 0)
