"""A DCE/RPC connection-oriented association ([C706] 12.6, [MS-RPCE] 3.3) over any byte channel, recording
the manifest (binds, requests, NTLM authentications) as it goes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .capture import Capture, Host
from .dcerpc import (
    ACK_RESULT,
    AUTH_NTLMSSP,
    LEVEL_PRIVACY,
    NAK_REASON,
    PFC_DID_NOT_EXECUTE,
    PFC_FIRST,
    PFC_LAST,
    PFC_OBJECT_UUID,
    PROVIDER_REASON,
    PTNAME,
    PTYPE,
    Auth,
    CtxItem,
    bind_ack_body,
    bind_body,
    co_pdu,
    fault_body,
    request_body,
    response_body,
)
from .ids import IFACES, vstr
from .ntlm import ntlm_authenticate, ntlm_challenge, ntlm_negotiate, ntlm_signature
from .tcp import TcpFlow


class Channel:
    """Carries whole CO PDUs; c2s/s2c return the frame number that completes the PDU."""

    transport = "ncacn_ip_tcp"
    pipe: str | None = None
    client: Host
    server: Host
    cport: int
    sport: int

    def c2s(self, pdu: bytes, desc: str) -> int:
        raise NotImplementedError

    def s2c(self, pdu: bytes, desc: str) -> int:
        raise NotImplementedError

    def endpoint(self) -> dict[str, Any]:
        return {
            "client_ip": self.client.ip,
            "client_port": self.cport,
            "server_ip": self.server.ip,
            "server_port": self.sport,
            "transport": self.transport,
            "pipe": self.pipe,
        }


class TcpChannel(Channel):
    def __init__(self, flow: TcpFlow, transport: str = "ncacn_ip_tcp") -> None:
        self.flow = flow
        self.transport = transport
        self.client, self.server, self.cport, self.sport = flow.client, flow.server, flow.cport, flow.sport
        if flow.ip6:
            self.ip6 = True

    def endpoint(self) -> dict[str, Any]:
        d = super().endpoint()
        if self.flow.ip6:
            d["client_ip"], d["server_ip"] = self.client.ip6, self.server.ip6
        return d

    def c2s(self, pdu: bytes, desc: str) -> int:
        return self.flow.send("c", pdu, desc)

    def s2c(self, pdu: bytes, desc: str) -> int:
        return self.flow.send("s", pdu, desc)


@dataclass
class SecCtx:
    """An NTLMSSP security context of an association (one per auth_context_id)."""

    level: int
    user: str
    domain: str
    workstation: str
    ctx_id: int = 0
    seq_c: int = 0
    seq_s: int = 0
    auth_type: int = AUTH_NTLMSSP


class Assoc:
    """A DCE/RPC connection-oriented association ([C706] 12.6, [MS-RPCE] 3.3) on one channel.

    Its methods build the PDUs, hand them to the channel and record what was sent in the manifest
    (binds, requests, NTLM authentications)."""

    def __init__(self, cap: Capture, chan: Channel, le: bool = True, assoc_group: int = 0x1234) -> None:
        self.cap, self.chan, self.le = cap, chan, le
        self.man = cap.man
        self.rng = cap.rng
        self.assoc_group = assoc_group
        self.ctx: dict[int, tuple[str, tuple[int, int]]] = {}
        self.sec: dict[int, SecCtx] = {}
        self.extra: dict[str, Any] = {}

    # -- manifest rows ------------------------------------------------------------------------------

    def record_bind(
        self,
        frame: int,
        ptype: int,
        call_id: int,
        items: list[CtxItem],
        ack_frame: int | None,
        ack_ptype: int | None,
        auth_type: int | None,
        nak_reason: int | None = None,
        recoverable: bool = True,
        **extra: Any,
    ) -> None:
        for it in items:
            row: dict[str, Any] = {
                "frame": frame,
                "ts_ns": self.cap.ts_of(frame),
                **self.chan.endpoint(),
                **self.extra,
                "pdu_type": PTNAME[ptype],
                "call_id": call_id,
                "ctx_id": it.ctx_id,
                "if_uuid": it.if_uuid,
                "if_name": it.iface if it.iface in IFACES else None,
                "if_version": vstr(it.if_ver),
                "if_ver_major": it.if_ver[0],
                "if_ver_minor": it.if_ver[1],
                "transfer_syntaxes": [f"{s}/{v[0]}.{v[1]}" for s, v in it.syntaxes],
                "auth_type": auth_type,
                "ack_frame": ack_frame,
                "ack_pdu_type": PTNAME[ack_ptype] if ack_ptype is not None else None,
            }
            if ack_ptype == PTYPE["bind_nak"]:
                row["ack_result"], row["ack_reason"] = "nak", nak_reason
                row["ack_reason_name"] = NAK_REASON.get(nak_reason or 0)
            elif ack_ptype is None:
                row["ack_result"], row["ack_reason"], row["ack_reason_name"] = "none", None, None
            else:
                row["ack_result"], row["ack_reason"] = ACK_RESULT[it.result], it.reason
                row["ack_reason_name"] = (
                    PROVIDER_REASON.get(it.reason)
                    if it.result in (1, 2)
                    else (f"bind_time_features=0x{it.reason:04x}" if it.result == 3 else None)
                )
                row["ack_transfer_syntax"] = (
                    f"{it.syntaxes[0][0]}/{it.syntaxes[0][1][0]}.{it.syntaxes[0][1][1]}" if it.result == 0 else None
                )
            row["recoverable"] = recoverable
            row.update(extra)
            self.man["binds"].append(row)

    def record_request(
        self,
        frame: int,
        call_id: int,
        ctx_id: int,
        opnum: int,
        *,
        stub_len: int,
        resp_frame: int | None,
        resp_stub_len: int | None = None,
        fault: int | None = None,
        sec: SecCtx | None = None,
        fragments: int = 1,
        resp_fragments: int = 1,
        obj: str | None = None,
        recoverable: bool = True,
        response_recoverable: bool = True,
        **extra: Any,
    ) -> None:
        iface = self.ctx.get(ctx_id)
        row: dict[str, Any] = {
            "frame": frame,
            "ts_ns": self.cap.ts_of(frame),
            **self.chan.endpoint(),
            **self.extra,
            "call_id": call_id,
            "ctx_id": ctx_id,
            "opnum": opnum,
            "if_uuid": iface[0] if iface else None,
            "if_version": vstr(iface[1]) if iface else None,
            "object_uuid": obj,
            "stub_len": stub_len,
            "fragments": fragments,
            "drep": "little" if self.le else "big",
            "response_frame": resp_frame,
            "response_stub_len": resp_stub_len,
            "response_fragments": resp_fragments if resp_frame else None,
            "fault_status": fault,
            "fault_status_hex": f"0x{fault:08x}" if fault is not None else None,
            "auth_type": sec.auth_type if sec else None,
            "auth_level": sec.level if sec else None,
            "auth_context_id": sec.ctx_id if sec else None,
            "auth_user": sec.user if sec else None,
            "auth_domain": sec.domain if sec else None,
            "encrypted": bool(sec and sec.level == LEVEL_PRIVACY),
            "recoverable": recoverable,
            "response_recoverable": response_recoverable,
        }
        row.update(extra)
        self.man["requests"].append(row)

    def record_ntlm(self, frame: int, pdu: str, sec: SecCtx) -> None:
        self.man["ntlm_auth"].append(
            {
                "frame": frame,
                **self.chan.endpoint(),
                "carrier": pdu,
                "user": sec.user,
                "domain": sec.domain,
                "workstation": sec.workstation,
                "auth_level": sec.level,
                "auth_context_id": sec.ctx_id,
            }
        )

    # -- PDUs -----------------------------------------------------------------------------------------

    def pdu(self, ptype: int, call_id: int, body: bytes, **kw: Any) -> bytes:
        return co_pdu(ptype, call_id, body, le=self.le, **kw)

    def bind_pdu(
        self,
        call_id: int,
        items: list[CtxItem],
        ptype: int = PTYPE["bind"],
        auth: Auth | None = None,
        max_frag: int = 5840,
        flags: int = PFC_FIRST | PFC_LAST,
    ) -> bytes:
        body = bind_body(items, self.le, max_frag, max_frag, 0 if ptype == PTYPE["bind"] else self.assoc_group)
        return self.pdu(ptype, call_id, body, auth=auth, flags=flags)

    def ack_pdu(
        self,
        call_id: int,
        items: list[CtxItem],
        ptype: int = PTYPE["bind"],
        sec_addr: str = "",
        auth: Auth | None = None,
        max_frag: int = 5840,
        flags: int = PFC_FIRST | PFC_LAST,
    ) -> bytes:
        ack_type = PTYPE["bind_ack"] if ptype == PTYPE["bind"] else PTYPE["alter_context_resp"]
        for it in items:
            if it.result == 0:
                self.ctx[it.ctx_id] = (it.if_uuid, it.if_ver)
        ab = bind_ack_body(items, self.le, sec_addr, max_frag, max_frag, self.assoc_group)
        return self.pdu(ack_type, call_id, ab, auth=auth, flags=flags)

    def bind(
        self,
        call_id: int,
        items: list[CtxItem],
        *,
        ptype: int = PTYPE["bind"],
        sec_addr: str = "",
        ntlm: SecCtx | None = None,
        max_frag: int = 5840,
        flags: int = PFC_FIRST | PFC_LAST,
        nak_reason: int | None = None,
        answer: bool = True,
        auth3: bool = True,
        ack_max_frag: int | None = None,
        auth: Auth | None = None,
    ) -> tuple[int, int | None]:
        """bind or alter_context and its answer; with `ntlm`, the three-leg NTLMSSP exchange
        (NEGOTIATE in the bind, CHALLENGE in the ack, AUTHENTICATE in an auth3 with the same call_id)."""
        name = PTNAME[ptype]
        if ntlm:
            auth = Auth(AUTH_NTLMSSP, ntlm.level, ntlm.ctx_id, ntlm_negotiate())
        bf = self.chan.c2s(self.bind_pdu(call_id, items, ptype, auth, max_frag, flags), f"{name} call_id={call_id}")
        if not answer:
            self.record_bind(bf, ptype, call_id, items, None, None, auth.auth_type if auth else None)
            return bf, None
        if nak_reason is not None:
            return bf, self._nak(bf, ptype, call_id, items, auth, nak_reason)
        ack_type = PTYPE["bind_ack"] if ptype == PTYPE["bind"] else PTYPE["alter_context_resp"]
        ack_auth = Auth(AUTH_NTLMSSP, ntlm.level, ntlm.ctx_id, ntlm_challenge(self.rng)) if ntlm else None
        af = self.chan.s2c(
            self.ack_pdu(call_id, items, ptype, sec_addr, ack_auth, ack_max_frag or max_frag, flags),
            f"{PTNAME[ack_type]} call_id={call_id}",
        )
        self.record_bind(
            bf,
            ptype,
            call_id,
            items,
            af,
            ack_type,
            auth.auth_type if auth else None,
            sec_addr=sec_addr if ptype == PTYPE["bind"] else "",
        )
        if ntlm and auth3:
            self._auth3(call_id, ntlm, flags)
        return bf, af

    def _nak(self, bf: int, ptype: int, call_id: int, items: list[CtxItem], auth: Auth | None, nak_reason: int) -> int:
        """bind_nak ([C706] 12.6.4.5): provider_reject_reason, then the one protocol version supported (5.0)."""
        e = "<" if self.le else ">"
        nb = struct.pack(e + "HB", nak_reason, 1) + bytes([5, 0]) + b"\0\0\0"
        af = self.chan.s2c(self.pdu(PTYPE["bind_nak"], call_id, nb), f"bind_nak call_id={call_id}")
        auth_type = auth.auth_type if auth else None
        self.record_bind(bf, ptype, call_id, items, af, PTYPE["bind_nak"], auth_type, nak_reason=nak_reason)
        return af

    def _auth3(self, call_id: int, ntlm: SecCtx, flags: int) -> None:
        """The third NTLMSSP leg: AUTHENTICATE in an auth3 PDU with the bind's call_id ([MS-RPCE] 2.2.2.10)."""
        tok = ntlm_authenticate(self.rng, ntlm.user, ntlm.domain, ntlm.workstation)
        a3 = self.pdu(
            PTYPE["auth3"], call_id, b"\0\0\0\0", auth=Auth(AUTH_NTLMSSP, ntlm.level, ntlm.ctx_id, tok), flags=flags
        )
        f3 = self.chan.c2s(a3, f"auth3 call_id={call_id} user={ntlm.domain}\\{ntlm.user}")
        self.sec[ntlm.ctx_id] = ntlm
        self.record_ntlm(f3, "auth3", ntlm)

    def _verifier(self, sec: SecCtx | None, side: str) -> Auth | None:
        if sec is None:
            return None
        if side == "c":
            sec.seq_c += 1
            seq = sec.seq_c - 1
        else:
            sec.seq_s += 1
            seq = sec.seq_s - 1
        return Auth(sec.auth_type, sec.level, sec.ctx_id, ntlm_signature(self.rng, seq))

    def fragments(self, stub: bytes, frag: int | None) -> list[bytes]:
        if not frag or len(stub) <= frag:
            return [stub]
        assert frag % 8 == 0, "every fragment but the last carries a multiple of 8 stub bytes"
        return [stub[i : i + frag] for i in range(0, len(stub), frag)]

    def request_pdus(
        self,
        call_id: int,
        ctx_id: int,
        opnum: int,
        stub: bytes,
        *,
        sec: SecCtx | None = None,
        frag: int | None = None,
        obj: str | None = None,
    ) -> list[bytes]:
        """The request fragments of one call ([C706] 12.6.4.9; PFC_FIRST_FRAG / PFC_LAST_FRAG, alloc_hint =
        the stub bytes still to come)."""
        if sec and sec.level == LEVEL_PRIVACY:
            stub = self.rng.randbytes(len(stub))  # sealed: opaque bytes of the same length
        parts = self.fragments(stub, frag)
        out, remaining = [], len(stub)
        for i, part in enumerate(parts):
            flags = (PFC_FIRST if i == 0 else 0) | (PFC_LAST if i == len(parts) - 1 else 0)
            if obj:
                flags |= PFC_OBJECT_UUID
            body = request_body(remaining, ctx_id, opnum, part, self.le, obj)
            out.append(
                self.pdu(PTYPE["request"], call_id, body, flags=flags, auth=self._verifier(sec, "c"), pad_align=16)
            )
            remaining -= len(part)
        return out

    def response_pdus(
        self, call_id: int, ctx_id: int, stub: bytes, *, sec: SecCtx | None = None, frag: int | None = None
    ) -> list[bytes]:
        if sec and sec.level == LEVEL_PRIVACY:
            stub = self.rng.randbytes(len(stub))
        parts = self.fragments(stub, frag)
        out, remaining = [], len(stub)
        for i, part in enumerate(parts):
            flags = (PFC_FIRST if i == 0 else 0) | (PFC_LAST if i == len(parts) - 1 else 0)
            out.append(
                self.pdu(
                    PTYPE["response"],
                    call_id,
                    response_body(remaining, ctx_id, part, self.le),
                    flags=flags,
                    auth=self._verifier(sec, "s"),
                    pad_align=16,
                )
            )
            remaining -= len(part)
        return out

    def fault_pdu(self, call_id: int, ctx_id: int, status: int) -> bytes:
        return self.pdu(
            PTYPE["fault"],
            call_id,
            fault_body(ctx_id, status, self.le),
            flags=PFC_FIRST | PFC_LAST | PFC_DID_NOT_EXECUTE,
        )

    def call(
        self,
        call_id: int,
        ctx_id: int,
        opnum: int,
        stub: bytes,
        resp: bytes | None = None,
        *,
        fault: int | None = None,
        sec: SecCtx | None = None,
        frag: int | None = None,
        resp_frag: int | None = None,
        obj: str | None = None,
        answer: bool = True,
        name: str = "",
    ) -> tuple[int, int | None]:
        """One request (possibly fragmented) and its response or fault.

        Returns (request frame, answer frame)."""
        label = f"request call_id={call_id} opnum={opnum}" + (f" {name}" if name else "")
        reqs = self.request_pdus(call_id, ctx_id, opnum, stub, sec=sec, frag=frag, obj=obj)
        rf = 0
        for i, p in enumerate(reqs):
            rf = self.chan.c2s(p, label + (f" frag {i + 1}/{len(reqs)}" if len(reqs) > 1 else ""))
        pf: int | None = None
        resp_len: int | None = None
        nresp = 1
        if answer and fault is not None:
            pf = self.chan.s2c(self.fault_pdu(call_id, ctx_id, fault), f"fault call_id={call_id} status=0x{fault:08x}")
        elif answer:
            assert resp is not None
            resps = self.response_pdus(call_id, ctx_id, resp, sec=sec, frag=resp_frag)
            nresp = len(resps)
            for i, p in enumerate(resps):
                pf = self.chan.s2c(p, f"response call_id={call_id}" + (f" frag {i + 1}/{nresp}" if nresp > 1 else ""))
            resp_len = len(resp)
        self.record_request(
            rf,
            call_id,
            ctx_id,
            opnum,
            stub_len=len(stub),
            resp_frame=pf,
            resp_stub_len=resp_len,
            fault=fault,
            sec=sec,
            fragments=len(reqs),
            resp_fragments=nresp,
            obj=obj,
            operation=name or None,
        )
        return rf, pf
