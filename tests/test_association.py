"""The connection-oriented association on its own ([C706] 12.6, [MS-RPCE] 3.3.1): PDUs built by
`tests.co_build` in, records and violations out, asserted field by field.

Binds and their answers (acceptance, provider rejection, bind_nak, alter_context, NDR64,
bind-time feature negotiation), call pairing by call_id (fragments, answers captured before
their requests, faults, unanswered calls, reused call_ids), authentication (verifiers, NTLMSSP
names from bind and auth3, connect level, packet privacy), interface hints, endpoint-mapper
answers through the stub decoders, and every cap the association enforces."""

from __future__ import annotations

import ast
import struct
from pathlib import Path
from typing import Any

from analyzer.dcerpc.association import Association, InterfaceHint
from analyzer.dcerpc.pdu import parse_co_pdu
from analyzer.limits import Limits
from analyzer.model import BindRecord, CallRecord, EndpointRecord, Flow
from analyzer.stubs import stub_decoder
from tests import co_build as co
from tests import epm_build

FLOW = Flow("t.pcap", 3, "ncacn_ip_tcp", "10.0.0.1", 50000, "10.0.0.2", 49667)
OTHER = Flow("t.pcap", 4, "ncacn_ip_tcp", "10.0.0.1", 50001, "10.0.0.2", 49667)
SVCCTL = "367abb81-9844-35f1-ad32-98f038001003"
LSARPC = "12345778-1234-abcd-ef00-0123456789ab"
EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
SAMR = "12345778-1234-abcd-ef00-0123456789ac"
PLAIN = "aaaaaaaa-1111-2222-3333-444444444444"  # no stub decoders: nothing kept
UNDECLARED = 200  # an svcctl opnum without a declaration: only its win32 return value is read
NTLM = 10  # RPC_C_AUTHN_WINNT
SPNEGO = 9


class Sink:
    def __init__(self) -> None:
        self.binds: list[BindRecord] = []
        self.calls: list[CallRecord] = []
        self.endpoints: list[EndpointRecord] = []
        self.violations: list[tuple[Flow, int | None, str, str, str]] = []

    def bind_row(self, row: tuple[Any, ...]) -> None:
        self.binds.append(BindRecord(*row))

    def call(self, rec: CallRecord) -> None:
        self.calls.append(rec)

    def call_row(self, row: tuple[Any, ...]) -> None:
        self.call(CallRecord(*row))

    def endpoint(self, rec: EndpointRecord) -> None:
        self.endpoints.append(rec)

    def datagram(self, rec: Any) -> None:
        raise AssertionError("an association emits no datagram records")

    def violation(self, flow: Flow, frame: int | None, layer: str, what: str, detail: str, count: int = 1) -> None:
        self.violations.extend([(flow, frame, layer, what, detail)] * count)

    def codes(self) -> list[str]:
        return [v[3] for v in self.violations]


def make(sink: Sink, limits: Limits, hint: InterfaceHint | None = None) -> Association:
    return Association(FLOW, "port", sink, limits, hint, decoder=stub_decoder(limits))


class Conv:
    """One association; `send` numbers frames 1, 2, ... with ts = frame * 1000."""

    def __init__(self, limits: Limits | None = None, hint: InterfaceHint | None = None) -> None:
        self.sink = Sink()
        self.assoc = make(self.sink, limits or Limits(), hint)
        self.frame = 0

    def send(self, from_client: bool, raw: bytes, flow: Flow | None = None, first_frame: int | None = None) -> int:
        self.frame += 1
        f = self.frame
        self.assoc.pdu(from_client, parse_co_pdu(raw), f, f * 1000, first_frame or f, flow)
        return f

    def bind(self, contexts: list[tuple[int, str, int, list[str]]], call_id: int = 1, **kw: Any) -> int:
        return self.send(True, co.pdu(co.BIND, call_id, co.bind_body(contexts), **kw))

    def ack(self, results: list[tuple[int, int, str]], call_id: int = 1, **kw: Any) -> int:
        return self.send(False, co.pdu(co.BIND_ACK, call_id, co.bind_ack_body(results), **kw))

    def request(self, call_id: int, opnum: int, stub: bytes = b"", ctx_id: int = 0, **kw: Any) -> int:
        obj, first = kw.pop("obj", None), kw.pop("first_frame", None)
        body = co.request_body(opnum, stub, ctx_id, obj)
        return self.send(True, co.pdu(co.REQUEST, call_id, body, **kw), first_frame=first)

    def response(self, call_id: int, stub: bytes = b"", ctx_id: int = 0, **kw: Any) -> int:
        return self.send(False, co.pdu(co.RESPONSE, call_id, co.response_body(stub, ctx_id), **kw))

    def fault(self, call_id: int, status: int) -> int:
        return self.send(False, co.pdu(co.FAULT, call_id, co.fault_body(status)))

    def close(self) -> Sink:
        self.assoc.close()
        return self.sink


def bound(iface: str = SVCCTL, major: int = 2) -> Conv:
    c = Conv()
    c.bind([(0, iface, major, [co.NDR])])
    c.ack([(0, 0, co.NDR)])
    return c


def call_record(**kw: Any) -> CallRecord:
    """A CallRecord on FLOW with the defaults of an unauthenticated, undecoded call."""
    base: dict[str, Any] = dict(
        flow=FLOW,
        ctx_id=0,
        interface_source="bind",
        object_uuid=None,
        fault_status=None,
        auth_type=None,
        auth_level=None,
        auth_context_id=None,
        user=None,
        domain=None,
        workstation=None,
        encrypted=False,
    )
    base.update(kw)
    return CallRecord(**base)


# -- binds ----------------------------------------------------------------------------------------


def test_bind_and_bind_ack_make_one_record_per_context() -> None:
    c = Conv()
    c.send(True, co.pdu(co.BIND, 7, co.bind_body([(0, SVCCTL, 2, [co.NDR])], 4280, 4281, 0)))
    c.send(False, co.pdu(co.BIND_ACK, 7, co.bind_ack_body([(0, 0, co.NDR)], "\\PIPE\\ntsvcs", 4280, 4280, 0x5A5A)))
    s = c.close()
    assert s.binds == [
        BindRecord(
            flow=FLOW,
            frame=1,
            ts=1000,
            pdu_type="bind",
            call_id=7,
            ctx_id=0,
            interface_uuid=SVCCTL,
            if_major=2,
            if_minor=0,
            transfer_syntaxes=(co.NDR,),
            ack_result="acceptance",
            ack_reason=None,
            ack_frame=2,
            ack_transfer_syntax=co.NDR,
            sec_addr="\\PIPE\\ntsvcs",
            max_xmit_frag=4280,
            max_recv_frag=4281,
            assoc_group=0,
            ack_assoc_group=0x5A5A,
            auth_type=None,
            auth_level=None,
            identified_by="port",
        )
    ]
    assert s.calls == [] and s.violations == []
    assert c.assoc.first_ptype == co.BIND


def test_multiple_contexts_ndr64_and_bind_time_features() -> None:
    c = Conv()
    c.bind([(0, LSARPC, 0, [co.NDR]), (1, LSARPC, 0, [co.NDR64]), (2, LSARPC, 0, [co.BTFN])])
    c.ack([(2, 2, co.NDR), (0, 0, co.NDR64), (3, 3, "00000000-0000-0000-0000-000000000000")])
    c.request(2, 44, ctx_id=1)
    c.response(2, struct.pack("<I", 0), ctx_id=1)
    c.request(3, 44, ctx_id=0)
    s = c.close()
    by_ctx = {b.ctx_id: b for b in s.binds}
    assert [b.ctx_id for b in s.binds] == [0, 1, 2]
    assert (by_ctx[0].ack_result, by_ctx[0].ack_reason) == (
        "provider_rejection",
        "proposed_transfer_syntaxes_not_supported",
    )
    assert (by_ctx[1].ack_result, by_ctx[1].ack_reason, by_ctx[1].ack_transfer_syntax) == ("acceptance", None, co.NDR64)
    assert by_ctx[1].transfer_syntaxes == (co.NDR64,)
    assert (by_ctx[2].ack_result, by_ctx[2].ack_reason) == (
        "negotiate_ack",
        "security_context_multiplexing|keep_connection_on_orphan",
    )
    accepted, rejected = s.calls
    # The accepted context names its interface; the rejected one was forgotten.
    assert (accepted.ctx_id, accepted.interface_uuid, accepted.interface_source) == (1, LSARPC, "bind")
    assert (rejected.ctx_id, rejected.interface_uuid, rejected.interface_source) == (0, None, "unknown")
    assert (rejected.if_major, rejected.if_minor, rejected.answered) == (None, None, False)


def test_bind_nak_rejects_every_context() -> None:
    c = Conv()
    c.bind([(0, SVCCTL, 2, [co.NDR]), (1, LSARPC, 0, [co.NDR])])
    c.send(False, co.pdu(co.BIND_NAK, 1, co.bind_nak_body(4)))
    c.request(2, 15)
    s = c.close()
    assert [(b.ctx_id, b.ack_result, b.ack_reason, b.ack_frame) for b in s.binds] == [
        (0, "nak", "protocol_version_not_supported", 2),
        (1, "nak", "protocol_version_not_supported", 2),
    ]
    assert [(b.sec_addr, b.ack_assoc_group, b.ack_transfer_syntax) for b in s.binds] == [(None, None, None)] * 2
    # A nak answers the whole bind, not an item: the offered context stays the best guess.
    (call,) = s.calls
    assert (call.interface_uuid, call.interface_source) == (SVCCTL, "bind")


def test_alter_context_adds_a_context_and_keeps_the_first() -> None:
    c = bound()
    c.send(True, co.pdu(co.ALTER_CONTEXT, 2, co.bind_body([(1, LSARPC, 0, [co.NDR])], group=0x5A5A)))
    c.send(False, co.pdu(co.ALTER_CONTEXT_RESP, 2, co.bind_ack_body([(0, 0, co.NDR)], "")))
    c.request(3, 0, ctx_id=1)
    c.request(4, 0, ctx_id=0)
    s = c.close()
    first, alter = s.binds
    assert (first.pdu_type, first.interface_uuid, first.sec_addr) == ("bind", SVCCTL, "49667")
    assert (alter.pdu_type, alter.call_id, alter.frame, alter.ack_frame) == ("alter_context", 2, 3, 4)
    assert (alter.interface_uuid, alter.assoc_group, alter.sec_addr, alter.ack_result) == (
        LSARPC,
        0x5A5A,
        None,
        "acceptance",
    )
    assert [(x.ctx_id, x.interface_uuid) for x in s.calls] == [(1, LSARPC), (0, SVCCTL)]


def test_bind_without_answer_is_reported_at_close() -> None:
    c = Conv()
    c.bind([(0, SVCCTL, 2, [co.NDR])], call_id=5)
    c.request(6, 15)  # the server answered nothing, yet the client carries on
    s = c.close()
    (b,) = s.binds
    assert (b.ack_result, b.ack_reason, b.ack_frame, b.ack_transfer_syntax, b.ack_assoc_group) == (
        "none",
        None,
        None,
        None,
        None,
    )
    # The context was offered but never accepted: its interface is still the best guess.
    (call,) = s.calls
    assert (call.interface_uuid, call.interface_source) == (SVCCTL, "bind")


def test_bind_ack_captured_before_its_bind_pairs() -> None:
    c = Conv()
    c.ack([(0, 0, co.NDR)], call_id=9)
    c.bind([(0, SVCCTL, 2, [co.NDR])], call_id=9)
    s = c.close()
    (b,) = s.binds
    assert (b.frame, b.ack_frame, b.ack_result) == (2, 1, "acceptance")
    assert s.violations == []
    assert c.assoc.first_ptype == co.BIND_ACK


def test_bind_ack_before_an_alter_context_does_not_pair() -> None:
    # [C706] 12.6.4: a bind_ack answers a bind, not an alter_context with the same call_id.
    c = Conv()
    c.ack([(0, 0, co.NDR)], call_id=9)
    c.send(True, co.pdu(co.ALTER_CONTEXT, 9, co.bind_body([(0, SVCCTL, 2, [co.NDR])])))
    s = c.close()
    (b,) = s.binds
    assert (b.pdu_type, b.ack_result) == ("alter_context", "none")
    assert s.violations == []  # the early bind_ack is dropped with the missed bind it answered


def test_bind_reusing_a_pending_call_id_reports_the_first_unanswered() -> None:
    c = Conv()
    c.bind([(0, SVCCTL, 2, [co.NDR])], call_id=1)
    c.bind([(0, LSARPC, 0, [co.NDR])], call_id=1)
    c.ack([(0, 0, co.NDR)], call_id=1)
    s = c.close()
    assert [(b.interface_uuid, b.ack_result, b.frame) for b in s.binds] == [
        (SVCCTL, "none", 1),
        (LSARPC, "acceptance", 2),
    ]


# -- calls ----------------------------------------------------------------------------------------


def test_request_and_response_pair_by_call_id() -> None:
    c = bound(PLAIN, 1)
    obj = "11111111-2222-3333-4444-555555555555"
    c.request(2, 15, b"\1" * 24, obj=obj, flags=co.FIRST | co.LAST | co.OBJECT)
    c.request(3, UNDECLARED, b"\2" * 8)
    c.response(3, b"\3" * 12)
    c.response(2, b"\4" * 20)
    s = c.close()
    assert s.calls == [
        call_record(
            frame=4,
            ts=4000,
            first_frame=4,
            call_id=3,
            interface_uuid=PLAIN,
            if_major=1,
            if_minor=0,
            opnum=UNDECLARED,
            request_bytes=8,
            request_fragments=1,
            response_frame=5,
            response_ts=5000,
            response_bytes=12,
            response_fragments=1,
            answered=True,
        ),
        call_record(
            frame=3,
            ts=3000,
            first_frame=3,
            call_id=2,
            interface_uuid=PLAIN,
            if_major=1,
            if_minor=0,
            opnum=15,
            object_uuid=obj,
            request_bytes=24,
            request_fragments=1,
            response_frame=6,
            response_ts=6000,
            response_bytes=20,
            response_fragments=1,
            answered=True,
        ),
    ]
    assert s.violations == []


def test_fragmented_request_and_response_are_one_call() -> None:
    c = bound()
    c.request(2, UNDECLARED, b"a" * 10, flags=co.FIRST, first_frame=3)
    c.request(2, UNDECLARED, b"b" * 20, flags=0, first_frame=4)
    c.request(2, UNDECLARED, b"c" * 30, flags=co.LAST, first_frame=5)
    c.response(2, b"x" * 7, flags=co.FIRST)
    c.response(2, b"y" * 9 + struct.pack("<I", 5), flags=co.LAST)
    s = c.close()
    (call,) = s.calls
    # frame: the last request fragment; first_frame: where the first fragment's data began.
    assert (call.first_frame, call.frame, call.ts) == (3, 5, 5000)
    assert (call.request_bytes, call.request_fragments) == (60, 3)
    assert (call.response_frame, call.response_ts, call.response_bytes, call.response_fragments) == (7, 7000, 20, 2)
    assert (call.answered, call.return_status) == (True, 5)


def test_answer_captured_before_its_request_is_merged() -> None:
    c = bound()
    c.response(2, struct.pack("<I", 0))
    c.request(2, 15)
    s = c.close()
    (call,) = s.calls
    assert (call.frame, call.response_frame, call.answered, call.response_bytes) == (4, 3, True, 4)
    assert (call.interface_uuid, call.opnum) == (SVCCTL, 15)
    assert s.violations == []


def test_fragmented_answer_before_its_request_waits_for_the_rest() -> None:
    c = bound()
    c.response(2, b"x" * 8, flags=co.FIRST)
    c.request(2, 15)
    c.response(2, b"y" * 8, flags=co.LAST)
    (call,) = c.close().calls
    assert (call.response_fragments, call.response_bytes, call.response_frame) == (2, 16, 5)


def test_fault_answers_a_call() -> None:
    c = bound()
    c.request(2, 15)
    c.fault(2, 0x1C010003)  # nca_s_op_rng_error
    (call,) = c.close().calls
    assert (call.fault_status, call.answered, call.response_frame, call.response_fragments) == (0x1C010003, True, 4, 1)
    assert call.response_bytes is None and call.return_status is None


def test_unanswered_request_and_reused_call_id() -> None:
    c = bound()
    c.request(2, 15)
    c.request(2, 16)  # the first call with this id was never answered
    c.response(2)
    s = c.close()
    first, second = s.calls
    assert (first.opnum, first.answered, first.response_frame, first.response_bytes) == (15, False, None, None)
    assert (first.response_fragments, first.response_ts) == (None, None)
    assert (second.opnum, second.answered, second.response_frame) == (16, True, 5)


def test_orphan_answer_is_a_violation_at_close() -> None:
    c = bound()
    c.response(8, b"\0" * 4)
    s = c.close()
    assert s.calls == []
    assert s.violations == [(FLOW, 3, "dcerpc", "answer_without_request", "call_id 8")]


def test_big_endian_pdus() -> None:
    c = Conv()
    c.send(True, co.pdu(co.BIND, 1, co.bind_body([(0, SVCCTL, 2, [co.NDR])], le=False), le=False))
    c.send(False, co.pdu(co.BIND_ACK, 1, co.bind_ack_body([(0, 0, co.NDR)], le=False), le=False))
    c.send(True, co.pdu(co.REQUEST, 2, co.request_body(UNDECLARED, b"\0" * 4, le=False), le=False))
    c.send(False, co.pdu(co.RESPONSE, 2, co.response_body(struct.pack(">I", 1056), le=False), le=False))
    s = c.close()
    (b,) = s.binds
    assert (b.interface_uuid, b.if_major, b.ack_result, b.ack_assoc_group) == (SVCCTL, 2, "acceptance", 0x1234)
    (call,) = s.calls
    assert (call.interface_uuid, call.opnum, call.return_status) == (SVCCTL, UNDECLARED, 1056)


def test_records_carry_the_flow_the_pdu_travelled_on() -> None:
    c = Conv()
    c.send(True, co.pdu(co.BIND, 1, co.bind_body([(0, SVCCTL, 2, [co.NDR])])), flow=OTHER)
    c.ack([(0, 0, co.NDR)])
    c.send(True, co.pdu(co.REQUEST, 2, co.request_body(15, b"")), flow=OTHER)
    c.response(2)
    s = c.close()
    assert s.binds[0].flow == OTHER and s.calls[0].flow == OTHER


# -- interface hints ------------------------------------------------------------------------------


def test_hint_names_calls_on_contexts_whose_bind_was_missed() -> None:
    c = Conv(hint=InterfaceHint(SAMR, 1, 0, "epm"))
    c.request(5, 64)
    (call,) = c.close().calls
    assert (call.interface_uuid, call.if_major, call.if_minor, call.interface_source) == (SAMR, 1, 0, "epm")


def test_pipe_hint_has_no_version() -> None:
    c = Conv(hint=InterfaceHint(SVCCTL, None, None, "pipe"))
    c.request(5, 15)
    (call,) = c.close().calls
    assert (call.interface_uuid, call.if_major, call.if_minor, call.interface_source) == (SVCCTL, None, None, "pipe")


def test_bind_wins_over_the_hint() -> None:
    c = Conv(hint=InterfaceHint(SAMR, 1, 0, "epm"))
    c.bind([(0, SVCCTL, 2, [co.NDR])])
    c.ack([(0, 0, co.NDR)])
    c.request(2, 15)
    (call,) = c.close().calls
    assert (call.interface_uuid, call.interface_source) == (SVCCTL, "bind")


# -- authentication -------------------------------------------------------------------------------


def test_request_verifier_and_ntlm_user_from_the_bind() -> None:
    token = co.ntlm_authenticate("alice", "CORP", "WS01")
    c = Conv()
    c.bind([(0, SVCCTL, 2, [co.NDR])], auth=(NTLM, 5, 7, token))
    c.ack([(0, 0, co.NDR)])
    c.request(2, 15, b"\0" * 4, auth=(NTLM, 5, 7, b"\1" * 16))
    c.request(3, 15, b"\0" * 4, auth=(NTLM, 5, 8, b"\1" * 16))  # another security context: nobody known
    s = c.close()
    (b,) = s.binds
    assert (b.auth_type, b.auth_level) == (NTLM, 5)
    known, other = s.calls
    assert (known.auth_type, known.auth_level, known.auth_context_id) == (NTLM, 5, 7)
    assert (known.user, known.domain, known.workstation, known.encrypted) == ("alice", "CORP", "WS01", False)
    assert (other.auth_context_id, other.user, other.domain, other.workstation) == (8, None, None, None)


def test_ntlm_user_from_auth3_inside_spnego() -> None:
    spnego = b"\xa1\x82\x01\x00" + co.ntlm_authenticate("bob", "LAB", "PC9")  # DER wrapping, searched through
    c = Conv()
    c.bind([(0, SVCCTL, 2, [co.NDR])], auth=(SPNEGO, 5, 0, b"\x60\x10" + b"\0" * 14))
    c.ack([(0, 0, co.NDR)])
    c.send(True, co.pdu(co.AUTH3, 1, b"\0" * 4, auth=(SPNEGO, 5, 0, spnego)))
    c.request(2, 15, b"", auth=(SPNEGO, 5, 0, b"\1" * 16))
    (call,) = c.close().calls
    assert (call.auth_type, call.user, call.domain, call.workstation) == (SPNEGO, "bob", "LAB", "PC9")


def test_connect_level_calls_inherit_the_bind_security_context() -> None:
    # [MS-RPCE] 3.3.1.5.2: at connect level requests carry no verifier, yet run under the bind's.
    token = co.ntlm_authenticate("carol", "CORP", "WS02")
    c = Conv()
    c.bind([(0, SVCCTL, 2, [co.NDR])], auth=(NTLM, 2, 3, token))
    c.ack([(0, 0, co.NDR)])
    c.request(2, 15)
    (call,) = c.close().calls
    assert (call.auth_type, call.auth_level, call.auth_context_id) == (NTLM, 2, 3)
    assert (call.user, call.domain, call.workstation) == ("carol", "CORP", "WS02")


def test_integrity_level_calls_without_verifier_stay_unauthenticated() -> None:
    c = Conv()
    c.bind([(0, SVCCTL, 2, [co.NDR])], auth=(NTLM, 5, 3, b"\0" * 8))
    c.ack([(0, 0, co.NDR)])
    c.request(2, 15)
    (call,) = c.close().calls
    assert (call.auth_type, call.auth_level, call.auth_context_id) == (None, None, None)


def test_transport_identity_names_calls_without_their_own() -> None:
    from analyzer.ntlm import NtlmIdentity

    c = bound()
    c.assoc.transport_identity = NtlmIdentity("dave", "CORP", None)
    c.request(2, 15)
    (call,) = c.close().calls
    assert (call.user, call.domain, call.workstation, call.auth_type) == ("dave", "CORP", None, None)


def test_sealed_stubs_are_flagged_and_not_decoded() -> None:
    c = bound(EPM, 3)
    c.request(2, 3, epm_build.map_request(SAMR, 1), auth=(NTLM, 6, 0, b"\1" * 16))
    c.response(2, epm_build.map_response([epm_build.tower(SAMR, 1, "tcp", 49668, "10.0.0.2")]))
    s = c.close()
    (call,) = s.calls
    assert (call.encrypted, call.auth_level, call.arguments, call.return_status) == (True, 6, None, None)
    assert s.endpoints == []


# -- endpoint mapper ------------------------------------------------------------------------------


def test_ept_map_answer_becomes_endpoint_records() -> None:
    c = bound(EPM, 3)
    c.request(2, 3, epm_build.map_request(SAMR, 1))
    c.response(2, epm_build.map_response([epm_build.tower(SAMR, 1, "tcp", 49668, "0.0.0.0")]))
    s = c.close()
    (call,) = s.calls
    assert (call.interface_uuid, call.opnum, call.return_status, call.return_kind) == (EPM, 3, 0, "rpc")
    assert call.arguments is not None and "towers=1" in call.arguments
    assert s.endpoints == [
        EndpointRecord(
            flow=FLOW,
            frame=4,
            ts=4000,
            call_id=2,
            epm_opnum=3,
            request_frame=3,
            tower_index=0,
            object_uuid=None,
            interface_uuid=SAMR,
            if_major=1,
            if_minor=0,
            transfer_syntax=co.NDR,
            protocol="ncacn_ip_tcp",
            port=49668,
            host="10.0.0.2",  # 0.0.0.0: the server that answered
            announced_host="0.0.0.0",
            pipe=None,
            endpoint="49668",
            annotation=None,
            floors="0d,0d,0b,07,09",
            status=0,
            entry_handle=None,
        )
    ]


def test_epm_answer_without_its_request_still_teaches_endpoints() -> None:
    c = bound(EPM, 3)
    c.response(2, epm_build.map_response([epm_build.tower(SAMR, 1, "tcp", 49668, "10.0.0.9")]))
    s = c.close()
    assert s.calls == [] and s.violations == []
    (e,) = s.endpoints
    assert (e.frame, e.call_id, e.epm_opnum, e.request_frame, e.port, e.host) == (3, 2, 3, None, 49668, "10.0.0.9")


def test_malformed_epm_answer_is_an_epm_violation_at_the_answer_frame() -> None:
    c = bound(EPM, 3)
    c.request(2, 3, epm_build.map_request(SAMR, 1))
    c.response(2, b"\0" * 20 + struct.pack("<IIII", 1, 4, 0, 99999))  # 99999 towers announced
    s = c.close()
    assert len(s.calls) == 1 and s.endpoints == []
    ((flow, frame, layer, what, _detail),) = s.violations
    assert (flow, frame, layer, what) == (FLOW, 4, "epm", "epm_bad_tower_count")


def _ndr64_map_response(tower: bytes) -> bytes:
    """ept_map response in NDR64 ([MS-RPCE] 2.2.5.3): 8-byte counts and referent ids, aligned to 8."""
    out = b"\0" * 20 + struct.pack("<I", 1)  # entry handle, num_towers
    out += struct.pack("<QQQQ", 1, 0, 1, 0x20000)  # max, offset, actual count; one referent id
    out += struct.pack("<QI", len(tower), len(tower)) + tower  # twr_t: conformance, tower_length, octets
    return out + b"\0" * (-len(out) % 4) + struct.pack("<I", 0)


def test_ndr64_context_reads_its_stubs_as_ndr64() -> None:
    tower = epm_build.tower(SAMR, 1, "tcp", 49668, "10.0.0.2")
    for transfer, ok in ((co.NDR64, True), (co.NDR, False)):
        c = Conv()
        c.bind([(0, EPM, 3, [co.NDR64, co.NDR] if ok else [co.NDR])])
        c.ack([(0, 0, transfer)])
        c.request(2, 3)
        c.response(2, _ndr64_map_response(tower))
        s = c.close()
        # Read as NDR 2.0 the same bytes announce no tower (4-byte counts: the actual count reads 0).
        assert [(e.port, e.host) for e in s.endpoints] == ([(49668, "10.0.0.2")] if ok else [])
        assert s.calls[0].arguments == ("towers=1" if ok else "towers=0")


# -- caps -----------------------------------------------------------------------------------------


def test_cap_pending_calls_finishes_the_oldest() -> None:
    c = Conv(Limits(max_pending_calls=2))
    for call_id in (1, 2, 3):
        c.request(call_id, 0)
    c.response(3)
    s = c.close()
    assert s.codes() == ["cap_pending_calls"]
    assert s.violations[0][1] == 3
    assert [(x.call_id, x.answered) for x in s.calls] == [(1, False), (3, True), (2, False)]


def test_cap_pending_binds_reports_the_oldest_unanswered() -> None:
    c = Conv(Limits(max_pending_calls=1))
    c.bind([(0, SVCCTL, 2, [co.NDR])], call_id=1)
    c.bind([(1, LSARPC, 0, [co.NDR])], call_id=2)
    c.ack([(0, 0, co.NDR)], call_id=2)
    s = c.close()
    assert [(b.call_id, b.ack_result) for b in s.binds] == [(1, "none"), (2, "acceptance")]


def test_cap_early_answers_gives_the_oldest_up() -> None:
    c = bound()
    c.response(10)
    c.response(11)
    c.request(11, 0)
    s = c.close()
    assert s.codes() == ["answer_without_request"] and len(s.calls) == 1
    c = bound()
    c.assoc = make(c.sink, Limits(max_early_answers=1))
    c.response(10)
    c.response(11)
    s = c.close()
    assert s.codes() == ["cap_early_answers", "answer_without_request", "answer_without_request"]
    assert [v[1] for v in s.violations] == [4, 3, 4]


def test_cap_early_bind_answers() -> None:
    c = Conv(Limits(max_early_answers=1))
    c.ack([(0, 0, co.NDR)], call_id=1)
    c.ack([(0, 0, co.NDR)], call_id=2)
    s = c.close()
    assert s.codes() == ["cap_early_answers", "ack_without_bind"]
    assert s.violations[0][4] == "bind answer call_id 1 given up waiting for its bind"


def test_cap_call_stub_bytes_keeps_the_row_and_the_return_value() -> None:
    c = Conv(Limits(max_call_stub_bytes=16))
    c.bind([(0, EPM, 3, [co.NDR])])
    c.ack([(0, 0, co.NDR)])
    c.request(2, 3, epm_build.map_request(SAMR, 1))
    c.response(2, epm_build.map_response([epm_build.tower(SAMR, 1, "tcp", 49668, "10.0.0.2")]))
    s = c.close()
    assert s.codes() == ["cap_call_stub_bytes", "cap_call_stub_bytes"]
    assert [v[4] for v in s.violations] == ["call_id 2 request stub not kept", "call_id 2 response stub not kept"]
    (call,) = s.calls
    assert call.answered and call.arguments is None and s.endpoints == []


def test_cap_held_stub_bytes_counts_all_pending_calls() -> None:
    stub = epm_build.map_request(SAMR, 1)
    c = Conv(Limits(max_held_stub_bytes=len(stub) + 10))
    c.bind([(0, EPM, 3, [co.NDR])])
    c.ack([(0, 0, co.NDR)])
    c.request(2, 3, stub)
    c.request(3, 3, stub)  # the first call's stub is still held
    s = c.close()
    assert s.codes() == ["cap_held_stub_bytes"]
    assert s.violations[0][1] == 4
    first, second = s.calls
    assert first.arguments is not None and second.arguments is None


# -- the seam -------------------------------------------------------------------------------------


def test_dcerpc_never_imports_the_stub_decoders() -> None:
    """The decoders are injected (analyzer.dcerpc.decoding); lazy and type-only imports count."""
    package = Path(__file__).resolve().parents[1] / "analyzer" / "dcerpc"
    found = []
    for mod in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(mod.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(mod.name, n) for n in names if n == "analyzer.stubs" or n.startswith("analyzer.stubs.")]
    assert found == []


def test_without_a_decoder_calls_are_paired_and_nothing_is_decoded() -> None:
    sink = Sink()
    assoc = Association(FLOW, "port", sink, Limits())
    for f, raw in enumerate(
        [
            co.pdu(co.BIND, 1, co.bind_body([(0, EPM, 3, [co.NDR])])),
            co.pdu(co.BIND_ACK, 1, co.bind_ack_body([(0, 0, co.NDR)])),
            co.pdu(co.REQUEST, 2, co.request_body(3, epm_build.map_request(SAMR, 1))),
            co.pdu(co.RESPONSE, 2, co.response_body(epm_build.map_response([epm_build.tower(SAMR, 1, "tcp", 1, "")]))),
        ],
        1,
    ):
        assoc.pdu(f % 2 == 1, parse_co_pdu(raw), f, f, f)
    assoc.close()
    (call,) = sink.calls
    assert (call.interface_uuid, call.answered, call.arguments, call.return_status) == (EPM, True, None, None)
    assert sink.endpoints == [] and sink.violations == []


def test_cap_security_contexts_forgets_the_oldest_name() -> None:
    c = Conv(Limits(max_security_contexts=1))
    c.bind([(0, SVCCTL, 2, [co.NDR])], auth=(NTLM, 5, 1, co.ntlm_authenticate("alice", "CORP", "WS01")))
    c.ack([(0, 0, co.NDR)])
    c.send(
        True,
        co.pdu(
            co.ALTER_CONTEXT,
            2,
            co.bind_body([(0, SVCCTL, 2, [co.NDR])]),
            auth=(NTLM, 5, 2, co.ntlm_authenticate("bob", "CORP", "WS02")),
        ),
    )
    c.request(3, 15, auth=(NTLM, 5, 1, b"\1" * 16))
    c.request(4, 15, auth=(NTLM, 5, 2, b"\1" * 16))
    s = c.close()
    assert [v[1:4] for v in s.violations] == [(3, "dcerpc", "cap_security_contexts")]
    assert [(x.auth_context_id, x.user) for x in s.calls] == [(1, None), (2, "bob")]
