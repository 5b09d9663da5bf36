"""One connection-oriented association: contexts, calls, authentication -> records.

[C706] 12.6 and [MS-RPCE] 3.3.1: a client binds presentation contexts (ctx_id -> interface and
transfer syntax) with bind / alter_context; the server accepts or rejects each item; requests
name a ctx_id and an opnum and are answered, by call_id, with a response or a fault. Requests and
responses may be fragmented (first / last fragment flags) and are reassembled per call_id.

This class keeps that state for one association (a TCP connection, or one SMB pipe handle) and
turns it into `BindRecord`, `CallRecord` and `EndpointRecord` rows. It is sans-IO: PDUs in,
records out through a `RecordSink`. It pairs by call_id and tolerates answers captured before
their questions (they wait, bounded, for their partner), binds whose answer never came, and
calls on contexts whose bind was missed (the interface then comes from a hint, or stays unknown).

What the stubs mean is not its business: it keeps what the injected `StubDecoder`
(analyzer.dcerpc.decoding) wants and hands it each finished, unsealed call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analyzer.bounded import VACANT, BoundedDict, FifoDict
from analyzer.dcerpc.co_bind import bind_rows
from analyzer.dcerpc.co_call import Call
from analyzer.dcerpc.constants import (
    ALTER_CONTEXT,
    ALTER_CONTEXT_RESP,
    AUTH3,
    AUTH_LEVEL_CONNECT,
    AUTH_LEVEL_PRIVACY,
    NDR64_UUID,
    PFC_FIRST_FRAG,
    PFC_LAST_FRAG,
)
from analyzer.dcerpc.decoding import Decoded, NoDecoder, StubDecoder, Stubs
from analyzer.dcerpc.pdu import (
    AuthVerifier,
    Bind,
    BindAck,
    BindNak,
    CoPdu,
    Fault,
    OtherPdu,
    Request,
    Response,
    SyntaxId,
)
from analyzer.limits import Limits
from analyzer.model import Flow, RecordSink
from analyzer.ntlm import NtlmIdentity, ntlm_identity

# Where a call's interface came from ([MS-RPCE] has the bind; the rest are inferences).
SOURCE_BIND = "bind"
SOURCE_EPM = "epm"
SOURCE_PIPE = "pipe"
SOURCE_UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class InterfaceHint:
    """An interface a call on an unknown context probably used, and why (`epm` or `pipe`)."""

    uuid: str
    major: int | None
    minor: int | None
    source: str


def _table(cap: int) -> BoundedDict[int, Any]:
    """A table of pending binds, calls or early answers, made at its first entry."""
    return BoundedDict(max(1, cap))


class _Context:
    __slots__ = ("abstract", "accepted", "ndr64")

    def __init__(self, abstract: SyntaxId, ndr64: bool) -> None:
        self.abstract = abstract
        self.ndr64 = ndr64
        self.accepted = False


class Association:
    """State of one association. Feed PDUs in arrival order with `pdu()`, then `close()`."""

    # Slotted: a bind flood makes one per connection, and sixteen stores into a fresh instance
    # dict cost more than into slots.
    __slots__ = (
        "_bind_auth",
        "_binds",
        "_calls",
        "_contexts",
        "_decoder",
        "_early_acks",
        "_early_answers",
        "_held",
        "_hint",
        "_identities",
        "_limits",
        "_sink",
        "first_ptype",
        "flow",
        "identified_by",
        "transport_identity",
    )

    def __init__(
        self,
        flow: Flow,
        identified_by: str,
        sink: RecordSink,
        limits: Limits,
        hint: InterfaceHint | None = None,
        *,
        decoder: StubDecoder | None = None,
    ) -> None:
        """`decoder`: the stub decoders this association's calls go to (`analyzer.stubs.stub_decoder(limits)`,
        one per association); without one, stubs are neither kept nor decoded."""
        self.flow = flow
        self.identified_by = identified_by
        self._hint = hint
        self._sink = sink
        self._limits = limits
        self._contexts: dict[int, _Context] = {}
        # Binds and calls awaiting their answers, answers awaiting their questions: oldest out (even
        # at a cap of 0 the one at hand is held, until the next). Each `VACANT` until its first
        # entry (`_table`): most connections need only some of them.
        self._binds: BoundedDict[int, tuple[Bind, int, int, Flow]] = VACANT
        self._early_acks: BoundedDict[int, tuple[BindAck | BindNak, int]] = VACANT
        self._calls: BoundedDict[int, Call] | FifoDict[int, Call] = VACANT
        self._early_answers: BoundedDict[int, Call] = VACANT
        self._held = 0  # stub bytes kept by this association's calls: counted up, recounted at the cap
        # auth_context_id -> who: the names NTLMSSP AUTHENTICATE messages gave each security context.
        self._identities: BoundedDict[int, NtlmIdentity] = VACANT
        # Identity of the transport (SMB session user) for calls without their own authentication.
        self.transport_identity: NtlmIdentity | None = None
        # The security context the binds set up: at connect level requests carry no verifier of their
        # own ([MS-RPCE] 3.3.1.5.2), yet they run under it.
        self._bind_auth: AuthVerifier | None = None
        self._decoder: StubDecoder = decoder if decoder is not None else NoDecoder()
        self.first_ptype: int | None = None  # of the first PDU: a bind means the start was seen

    # -- input ----------------------------------------------------------------------------------

    def pdu(
        self, from_client: bool, pdu: CoPdu, frame: int, ts: int, first_frame: int, flow: Flow | None = None
    ) -> None:
        """One PDU, in arrival order. `flow` is the transport conversation it travelled on when that
        differs from the association's (an SMB2 multichannel pipe, the IN channel of RPC over HTTP):
        the records a bind or a request starts carry it."""
        via = flow or self.flow
        if self.first_ptype is None:
            self.first_ptype = pdu.header.ptype
        # By exact type (the PDU types are final NamedTuples): a bind_ack passed four isinstance
        # checks, one of them on a union.
        if type(pdu) is Request:
            self._request(pdu, frame, ts, first_frame, via)
        elif type(pdu) is Response:
            self._response(pdu, frame, ts, via)
        elif type(pdu) is Bind:
            self._bind(pdu, frame, ts, via)
        elif type(pdu) is BindAck or type(pdu) is BindNak:
            self._ack(pdu, frame)
        elif isinstance(pdu, Fault):
            self._fault(pdu, frame, ts, via)
        elif isinstance(pdu, OtherPdu):
            if pdu.header.ptype == AUTH3 and pdu.auth is not None:
                self._learn_identity(pdu.auth, frame)

    def close(self) -> None:
        """End of the association: binds without answer and calls without response are reported."""
        # Each table only when it holds something: most connections end with all of them empty.
        if self._binds:
            for call_id in list(self._binds):
                bind, frame, ts, flow = self._binds.pop(call_id)
                self._emit_binds(bind, frame, ts, flow, None, None)
        if self._calls:
            for call in list(self._calls.values()):
                self._finish(call)
            self._calls.clear()
        if self._early_answers:
            for call in self._early_answers.values():
                self._orphan_answer(call)
            self._early_answers.clear()
        if self._early_acks:
            for ack, frame in self._early_acks.values():
                self._violation(frame, "ack_without_bind", f"{type(ack).__name__} call_id {ack.header.call_id}")
            self._early_acks.clear()

    # -- binds ----------------------------------------------------------------------------------

    def _bind(self, pdu: Bind, frame: int, ts: int, flow: Flow) -> None:
        call_id = pdu.header.call_id
        if pdu.auth is not None:
            self._learn_identity(pdu.auth, frame)
            self._bind_auth = pdu.auth
        for item in pdu.contexts:
            transfers = item.transfers
            if len(transfers) == 1:  # the usual offer: no generator for it
                ndr64 = transfers[0].uuid == NDR64_UUID
            else:
                ndr64 = bool(transfers) and all(t.uuid == NDR64_UUID for t in transfers)
            old = self._contexts.get(item.ctx_id)
            if old is None or not old.accepted or old.abstract != item.abstract:
                self._contexts[item.ctx_id] = _Context(item.abstract, ndr64)
        early = self._early_acks.pop(call_id, None)
        # An answer captured first pairs only if of the matching type ([C706] 12.6.4.3-6): a bind_ack
        # before an alter_context with the same call_id answered a bind the capture missed.
        if early is not None and (early[0].header.ptype == ALTER_CONTEXT_RESP) == (pdu.header.ptype == ALTER_CONTEXT):
            self._emit_binds(pdu, frame, ts, flow, *early)
            return
        stale = self._binds.pop(call_id, None)
        if stale is not None:
            self._emit_binds(*stale, None, None)
        if self._binds is VACANT:
            self._binds = _table(self._limits.max_pending_calls)
        evicted = self._binds.put_new(call_id, (pdu, frame, ts, flow))  # not held: popped above
        if evicted is not None:
            self._emit_binds(*evicted[1], None, None)

    def _ack(self, pdu: BindAck | BindNak, frame: int) -> None:
        call_id = pdu.header.call_id
        if isinstance(pdu, BindAck) and pdu.auth is not None:
            self._learn_identity(pdu.auth, frame)
        pending = self._binds.pop(call_id, None)
        if pending is None:
            if self._early_acks is VACANT:
                self._early_acks = _table(self._limits.max_early_answers)
            gone = self._early_acks.put(call_id, (pdu, frame))
            if gone is not None:
                detail = f"bind answer call_id {gone[0]} given up waiting for its bind"
                self._violation(frame, "cap_early_answers", detail)
            return
        self._emit_binds(*pending, pdu, frame)

    def _emit_binds(
        self,
        bind: Bind,
        frame: int,
        ts: int,
        flow: Flow,
        ack: BindAck | BindNak | None,
        ack_frame: int | None,
    ) -> None:
        if type(ack) is BindAck:  # a final NamedTuple: no isinstance needed
            self._settle(bind, ack)
        for row in bind_rows(bind, frame, ts, flow, ack, ack_frame, self.identified_by):
            self._sink.bind_row(row)

    def _settle(self, bind: Bind, ack: BindAck) -> None:
        """Contexts the answer accepted become usable (with the transfer syntax it chose); those it
        rejected are forgotten, unless an earlier bind had them accepted ([C706] 12.6.4.4)."""
        contexts, results = bind.contexts, ack.results
        # By position, as far as both go (an answer may list fewer): zip given `strict` took twice
        # as long as this loop, and a bind flood settles one bind per connection.
        for i in range(min(len(contexts), len(results))):
            item, r = contexts[i], results[i]
            ctx = self._contexts.get(item.ctx_id)
            if ctx is not None and ctx.abstract == item.abstract:
                if r.result == 0:
                    ctx.accepted = True
                    ctx.ndr64 = r.transfer_syntax.uuid == NDR64_UUID
                elif not ctx.accepted:
                    del self._contexts[item.ctx_id]

    def _learn_identity(self, auth: AuthVerifier, frame: int) -> None:
        who = ntlm_identity(auth.auth_value)
        if who is None:
            return
        if self._identities is VACANT:
            self._identities = BoundedDict(self._limits.max_security_contexts)
        if self._identities.put(auth.auth_context_id, who) is not None:
            detail = f"more than {self._identities.cap} security contexts named: the oldest forgotten"
            self._violation(frame, "cap_security_contexts", detail)

    # -- calls ----------------------------------------------------------------------------------

    def _resolve(self, call: Call) -> None:
        ctx = self._contexts.get(call.ctx_id)
        if ctx is not None:
            call.iface = ctx.abstract
            call.iface_source = SOURCE_BIND
            call.ndr64 = ctx.ndr64
        elif self._hint is not None:
            call.iface = SyntaxId(self._hint.uuid, self._hint.major or 0, self._hint.minor or 0)
            call.iface_source = self._hint.source
        else:
            call.iface_source = SOURCE_UNKNOWN

    def _request(self, pdu: Request, frame: int, ts: int, first_frame: int, flow: Flow) -> None:
        h = pdu.header
        call = self._calls.get(h.call_id)
        if call is not None and call.req_done:
            # A new request reusing a call_id whose previous call was never answered.
            self._finish(self._calls.pop(h.call_id))
            call = None
        if call is None:
            call = Call(h.call_id, pdu.ctx_id, first_frame, ts, flow, pdu.opnum, pdu.object_uuid, h.little, pdu.auth)
            self._resolve(call)
            want = call.want = self._decoder.wants(call.iface.uuid if call.iface else None, pdu.opnum)
            if want.request:
                call.req_stub = b""
            if self._calls is VACANT:
                self._calls = _table(self._limits.max_pending_calls)
            evicted = self._calls.put_new(h.call_id, call)  # not held: popped above, or never there
            if evicted is not None:
                self._calls_full(frame, evicted[1])
        n = pdu.stub_end - pdu.stub_start
        call.req_bytes += n
        call.req_frags += 1
        call.frame = frame
        call.ts = ts
        if call.auth is None and pdu.auth is not None:
            call.auth = pdu.auth
        if call.req_stub is not None:
            call.req_stub = self._keep(call.req_stub, pdu, frame, "request")
        if h.pfc_flags & PFC_LAST_FRAG or (not h.pfc_flags & (PFC_FIRST_FRAG | PFC_LAST_FRAG) and call.req_frags == 1):
            call.req_done = True
            early = self._early_answers.pop(h.call_id, None)
            if early is not None:
                self._merge_answer(call, early)

    def _calls_full(self, frame: int, oldest: Call) -> None:
        """The pending calls passed their cap: the oldest is given up on, reported unanswered. Past
        the cap the table stays full (a flood of requests nobody answers), so it moves to a
        `FifoDict`, which finds its oldest entry in constant time."""
        if type(self._calls) is BoundedDict:
            self._calls = FifoDict(self._calls.cap, self._calls)
        detail = f"{len(self._calls)} calls awaiting answers"
        self._sink.violation(self.flow, frame, "dcerpc", "cap_pending_calls", detail)
        self._finish(oldest)

    def _keep(
        self, stub: bytes | bytearray, pdu: Request | Response, frame: int, side: str
    ) -> bytes | bytearray | None:
        """Append a fragment's stub to what a call keeps for decoding; None once over a cap: the
        call's own (`max_call_stub_bytes`) or all pending calls' together (`max_held_stub_bytes`).
        The first fragment's stub is kept as the bytes it is (most calls have one fragment, and
        their stub is then copied once, not three times); a second makes it a buffer."""
        n = pdu.stub_end - pdu.stub_start
        if len(stub) + n > self._limits.max_call_stub_bytes:
            self._violation(frame, "cap_call_stub_bytes", f"call_id {pdu.header.call_id} {side} stub not kept")
            return None
        # May n more bytes be kept? The running count only grows (finished calls are not
        # subtracted), so at the cap it is recounted from the calls still pending.
        self._held += n
        if self._held > self._limits.max_held_stub_bytes and not self._recount(n):
            detail = f"call_id {pdu.header.call_id} {side} stub not kept: {self._held} bytes kept by pending calls"
            self._violation(frame, "cap_held_stub_bytes", detail)
            return None
        piece = pdu.raw[pdu.stub_start : pdu.stub_end]
        if not stub:
            return piece
        if type(stub) is bytes:
            stub = bytearray(stub)
        stub += piece
        return stub

    def _recount(self, n: int) -> bool:
        """The stub bytes the pending calls keep, recounted (with n more): within the cap?"""
        self._held = n + sum(
            len(c.req_stub or b"") + len(c.resp_stub or b"")
            for calls in (self._calls, self._early_answers)
            for c in calls.values()
        )
        return self._held <= self._limits.max_held_stub_bytes

    def _answer_call(self, call_id: int, ctx_id: int, frame: int, ts: int, flow: Flow) -> Call:
        """The call an answer belongs to, or a placeholder waiting for its request."""
        call = self._calls.get(call_id)
        if call is not None:
            return call
        early = self._early_answers.get(call_id)
        if early is None:
            early = Call(call_id, ctx_id, frame, ts, flow)
            self._resolve(early)
            if early.iface is not None:
                early.want = self._decoder.wants_answer(early.iface.uuid)
                if early.want.response:
                    early.resp_stub = b""
            if self._early_answers is VACANT:
                self._early_answers = _table(self._limits.max_early_answers)
            gone = self._early_answers.put(call_id, early)
            if gone is not None:
                self._violation(frame, "cap_early_answers", f"{len(self._early_answers)} answers wait for requests")
                self._orphan_answer(gone[1])
        return early

    def _response(self, pdu: Response, frame: int, ts: int, flow: Flow) -> None:
        h = pdu.header
        call = self._answer_call(h.call_id, pdu.ctx_id, frame, ts, flow)
        if call.resp_frags == 0:
            call.resp_little = h.little
            if call.want.response and call.resp_stub is None:
                call.resp_stub = b""
        n = pdu.stub_end - pdu.stub_start
        if call.want.tail:
            call.resp_tail = (call.resp_tail + pdu.raw[max(pdu.stub_start, pdu.stub_end - 4) : pdu.stub_end])[-4:]
        call.resp_bytes += n
        call.resp_frags += 1
        call.resp_frame = frame
        call.resp_ts = ts
        if call.resp_stub is not None:
            call.resp_stub = self._keep(call.resp_stub, pdu, frame, "response")
        if h.pfc_flags & PFC_LAST_FRAG or (not h.pfc_flags & (PFC_FIRST_FRAG | PFC_LAST_FRAG) and call.resp_frags == 1):
            call.resp_done = True
            if h.call_id in self._calls:
                self._finish(self._calls.pop(h.call_id))

    def _fault(self, pdu: Fault, frame: int, ts: int, flow: Flow) -> None:
        h = pdu.header
        call = self._answer_call(h.call_id, pdu.ctx_id, frame, ts, flow)
        call.fault = pdu.status
        call.resp_frame = frame
        call.resp_ts = ts
        call.resp_frags += 1
        call.resp_done = True
        call.resp_stub = None
        if h.call_id in self._calls:
            self._finish(self._calls.pop(h.call_id))

    def _merge_answer(self, call: Call, early: Call) -> None:
        """A response or fault captured before its request: attach it now."""
        call.resp_bytes = early.resp_bytes
        call.resp_frags = early.resp_frags
        call.resp_frame = early.resp_frame
        call.resp_ts = early.resp_ts
        call.resp_little = early.resp_little
        call.resp_done = early.resp_done
        call.fault = early.fault
        call.resp_stub = early.resp_stub if call.want.response else None
        call.resp_tail = early.resp_tail if call.want.tail else b""
        if call.resp_done:
            self._finish(self._calls.pop(call.call_id))
        else:
            self._calls[call.call_id] = call

    def _finish(self, call: Call) -> None:
        auth = call.auth
        if auth is None and self._bind_auth is not None and self._bind_auth.auth_level == AUTH_LEVEL_CONNECT:
            auth = self._bind_auth  # connect level: authenticated once, at bind time
        who = self._identities.get(auth.auth_context_id) if auth is not None else None
        if who is None:
            who = self.transport_identity
        iface = call.iface
        sealed = bool(auth and auth.auth_level == AUTH_LEVEL_PRIVACY)
        decoded = None if sealed or iface is None else self._decode(call, iface.uuid)
        versioned = call.iface_source != SOURCE_PIPE
        self._sink.call_row(call.row(auth, who, sealed, versioned, decoded))
        if decoded is not None and decoded.product is not None:  # most calls announce no endpoints
            self._emit_endpoints(call, decoded)

    def _decode(self, call: Call, uuid: str) -> Decoded | None:
        """Hand an unsealed call's kept stubs to the registry; its complaints become violations."""
        decoded = self._decoder.decode(uuid, call.opnum, call.stubs())
        if decoded is not None:
            for layer, what, detail in decoded.violations:
                frame = call.resp_frame if layer == "epm" else call.frame
                self._sink.violation(self.flow, frame, layer, what, detail)
        return decoded

    def _orphan_answer(self, call: Call) -> None:
        """An answer whose request never came. What the decoders can read of it alone (the
        endpoint mapper's towers) is still worth having; otherwise it is a violation."""
        if call.iface is not None and call.resp_stub is not None and call.resp_done and call.fault is None:
            stub = Stubs(call.ndr64, None, True, bytes(call.resp_stub), call.resp_little, None)
            decoded = self._decoder.decode_answer(call.iface.uuid, stub)
            if decoded is not None:
                self._emit_endpoints(call, decoded)
                return
        self._violation(call.resp_frame, "answer_without_request", f"call_id {call.call_id}")

    def _emit_endpoints(self, call: Call, decoded: Decoded) -> None:
        """The endpoints an answer announced, placed at the answer."""
        frame = call.resp_frame if call.resp_frame is not None else call.frame
        ts = call.resp_ts if call.resp_ts is not None else call.ts
        request_frame = call.frame if call.req_frags else None
        for rec in decoded.endpoints(call.flow, frame, ts, call.call_id, request_frame):
            self._sink.endpoint(rec)

    def _violation(self, frame: int | None, what: str, detail: str) -> None:
        layer = "epm" if what.startswith("epm") else "dcerpc"
        self._sink.violation(self.flow, frame, layer, what, detail)
