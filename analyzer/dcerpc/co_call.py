"""One connection-oriented call in progress ([C706] 12.6.4.9-10): request fragments, then the
answer's, paired by call_id; what of its stubs is kept, and its row.

The association (`association.Association`) decides which call a PDU belongs to and when a call
is finished; this holds what a call collected and turns it into its row, in `CallRecord`'s field
order.
"""

from __future__ import annotations

from typing import Any

from analyzer.dcerpc.decoding import NOTHING, Decoded, Stubs
from analyzer.dcerpc.pdu import AuthVerifier, SyntaxId
from analyzer.model import Flow
from analyzer.ntlm import NtlmIdentity

_new_tuple = tuple.__new__  # `Stubs` of all its fields without the frame of its own __new__ (one per call)


class Call:
    """A call in progress: request fragments, then response fragments."""

    __slots__ = (
        "auth",
        "call_id",
        "ctx_id",
        "fault",
        "first_frame",
        "flow",
        "frame",
        "iface",
        "iface_source",
        "ndr64",
        "object_uuid",
        "opnum",
        "req_bytes",
        "req_done",
        "req_frags",
        "req_little",
        "req_stub",
        "resp_bytes",
        "resp_done",
        "resp_frags",
        "resp_frame",
        "resp_little",
        "resp_stub",
        "resp_tail",
        "resp_ts",
        "ts",
        "want",
    )

    def __init__(
        self,
        call_id: int,
        ctx_id: int,
        frame: int,
        ts: int,
        flow: Flow,
        opnum: int = -1,
        object_uuid: str | None = None,
        req_little: bool = True,
        auth: AuthVerifier | None = None,
    ) -> None:
        """A call begun by a request (its opnum, object, byte order and verifier given) or by an
        answer captured first (the request's fields unknown until it comes)."""
        self.call_id = call_id
        self.flow = flow
        self.ctx_id = ctx_id
        self.opnum = opnum
        self.object_uuid = object_uuid
        self.first_frame = frame
        self.frame = frame
        self.ts = ts
        self.req_bytes = 0
        self.req_frags = 0
        self.req_done = False
        self.req_little = req_little
        # What of the stubs is kept: None when not wanted (or given up at a cap), else the bytes of
        # one fragment or a buffer of several (`Association._keep`).
        self.req_stub: bytes | bytearray | None = None
        self.auth = auth
        self.iface: SyntaxId | None = None
        self.iface_source = ""  # bind | epm | pipe | unknown: set by the association
        self.ndr64 = False
        self.resp_bytes = 0
        self.resp_frags = 0
        self.resp_done = False
        self.resp_frame: int | None = None
        self.resp_ts: int | None = None
        self.resp_little = True
        self.resp_stub: bytes | bytearray | None = None
        self.resp_tail = b""  # the response stub's last bytes: the return value ([MS-RPCE] 2.2.5)
        self.fault: int | None = None
        self.want = NOTHING  # what of the stubs the decoders need

    def stubs(self) -> Stubs:
        """What was kept of the stubs, for the decoders: only whole directions, and the answer's
        only when it is a response (not a fault)."""
        answer = self.resp_done and self.fault is None
        req, resp = self.req_stub, self.resp_stub
        # A one-fragment stub is kept as the bytes it is (most are): only a buffer is copied.
        if req is not None:
            req = (req if type(req) is bytes else bytes(req)) if self.req_done else None
        if resp is not None:
            resp = (resp if type(resp) is bytes else bytes(resp)) if answer else None
        tail = self.resp_tail if answer and self.want.tail else None
        return _new_tuple(Stubs, (self.ndr64, req, self.req_little, resp, self.resp_little, tail, self.object_uuid))

    def row(
        self,
        auth: AuthVerifier | None,
        who: NtlmIdentity | None,
        sealed: bool,
        versioned: bool,
        decoded: Decoded | None,
    ) -> tuple[Any, ...]:
        """The call's row, its fields in `CallRecord`'s order: `auth` and `who` are the security
        context it ran under, `versioned` whether its interface version is known (not for a pipe's
        guess). Spooled as it is (`records.RowSpool.add_row`): no record object per call."""
        answered = self.resp_done or self.resp_frags > 0
        iface = self.iface
        uuid = major = minor = None
        if iface is not None:
            uuid = iface.uuid
            if versioned:
                major, minor = iface.major, iface.minor
        resp_frame = resp_ts = resp_bytes = resp_frags = None
        if answered:
            resp_frame, resp_ts, resp_frags = self.resp_frame, self.resp_ts, self.resp_frags
            if self.fault is None:
                resp_bytes = self.resp_bytes
        auth_type = auth_level = auth_ctx = None
        if auth is not None:
            auth_type, auth_level, auth_ctx = auth.auth_type, auth.auth_level, auth.auth_context_id
        user = domain = workstation = None
        if who is not None:
            user, domain, workstation = who.user, who.domain, who.workstation
        ret = kind = arguments = arguments_json = None
        if decoded is not None:
            ret, kind = decoded.return_code, decoded.return_kind
            arguments, arguments_json = decoded.arguments, decoded.arguments_json
        # One tuple display, in `CallRecord`'s field order: a record per call cost 1.3 us more
        # (keywords twice that), joining tuples of its parts a third again.
        return (
            self.flow, self.frame, self.ts, self.first_frame, self.call_id, self.ctx_id,
            uuid, major, minor, self.iface_source, self.opnum, self.object_uuid, self.req_bytes, self.req_frags,
            resp_frame, resp_ts, resp_bytes, resp_frags, self.fault, answered,
            auth_type, auth_level, auth_ctx, user, domain, workstation, sealed,
            None, None,  # activity_uuid, seqnum: connectionless only
            ret, kind, arguments, arguments_json,
        )  # fmt: skip
