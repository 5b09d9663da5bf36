"""The connectionless call tracker ([C706] 10): requests and answers paired by activity and
sequence number across ports and broadcasts, fragments, retransmissions, faults, the other PDU
types, caps, and endpoint-mapper answers over UDP through the stub decoders."""

from __future__ import annotations

import struct

import pytest

from analyzer.dcerpc.cl_pdu import CL_FLAG_FRAG, CL_FLAG_LASTFRAG, CL_FLAG_MAYBE
from analyzer.dcerpc.constants import (
    ACK,
    CANCEL_ACK,
    CL_CANCEL,
    FACK,
    FAULT,
    NOCALL,
    PING,
    REJECT,
    REQUEST,
    RESPONSE,
    WORKING,
)
from analyzer.limits import Limits
from tests.cl_build import (
    ACT,
    CLIENT,
    EPM,
    MS,
    NIL,
    PNIO,
    PNIO_OBJ,
    SERVER,
    SERVER_EPH,
    Feeder,
    activity,
    encode,
    lookup_response,
    map_response,
    status_body,
    udp_tower,
)

# -- tracker: calls ---------------------------------------------------------------------------------


@pytest.mark.parametrize("little", [True, False])
def test_request_and_response_from_another_port(little: bool) -> None:
    f = Feeder()
    req = f.send(CLIENT, SERVER, encode(REQUEST, little=little, obj=PNIO_OBJ, opnum=0, flags1=0x20, body=b"x" * 457))
    resp = f.send(SERVER_EPH, CLIENT, encode(RESPONSE, little=not little, obj=PNIO_OBJ, flags1=0x28, body=b"y" * 140))
    s = f.close()
    assert not s.violations
    d_req, d_resp = s.datagrams
    assert d_req.from_client and (d_req.flow.client_ip, d_req.flow.client_port) == CLIENT
    assert (d_req.flow.server_ip, d_req.flow.server_port) == SERVER
    assert not d_resp.from_client and (d_resp.flow.server_ip, d_resp.flow.server_port) == SERVER_EPH
    assert (d_resp.flow.client_ip, d_resp.flow.client_port) == CLIENT
    assert d_req.little is little and d_resp.little is not little
    assert (d_req.ptype, d_req.interface_uuid, d_req.if_major, d_req.if_minor, d_req.activity_uuid) == (
        REQUEST,
        PNIO,
        1,
        0,
        ACT,
    )
    assert d_req.object_uuid == PNIO_OBJ and d_req.body_len == 457 and d_req.auth_type is None
    (c,) = s.calls
    assert c.flow == d_req.flow  # the call belongs to the request's conversation
    assert (c.frame, c.first_frame, c.call_id, c.seqnum, c.ctx_id, c.opnum) == (req, req, 0, 0, 0, 0)
    assert (c.interface_uuid, c.if_major, c.if_minor, c.interface_source) == (PNIO, 1, 0, "header")
    assert (c.activity_uuid, c.object_uuid) == (ACT, PNIO_OBJ)
    assert (c.request_bytes, c.request_fragments) == (457, 1)
    assert (c.response_frame, c.response_ts, c.response_bytes, c.response_fragments) == (
        resp,
        resp * MS,
        140,
        1,
    )
    assert c.answered and c.fault_status is None and not c.encrypted


def test_broadcast_request_answered_by_a_host() -> None:
    f = Feeder()
    f.send(CLIENT, ("255.255.255.255", 34964), encode(REQUEST, flags1=0x40 | 0x20, opnum=5))
    f.send(("192.168.1.20", 34964), CLIENT, encode(RESPONSE, opnum=5, body=b"ok"))
    f.send(("192.168.1.21", 34964), CLIENT, encode(RESPONSE, opnum=5, body=b"ok"))  # a second host
    s = f.close()
    (c,) = s.calls
    assert c.flow.server_ip == "255.255.255.255" and c.answered and c.response_frame == 2
    assert [d.flow.server_ip for d in s.datagrams] == ["255.255.255.255", "192.168.1.20", "192.168.1.21"]
    assert not s.violations


@pytest.mark.parametrize("little", [True, False])
def test_out_of_order_fragments_with_a_retransmission(little: bool) -> None:
    f = Feeder()
    frag = CL_FLAG_FRAG
    parts = [b"a" * 100, b"b" * 100, b"c" * 50]
    f.send(CLIENT, SERVER, encode(REQUEST, little=little, flags1=frag, fragnum=1, body=parts[1]))
    f.send(
        CLIENT,
        SERVER,
        encode(REQUEST, little=little, flags1=frag | CL_FLAG_LASTFRAG, fragnum=2, body=parts[2]),
    )
    f.send(CLIENT, SERVER, encode(REQUEST, little=little, flags1=frag, fragnum=1, body=parts[1]))  # again
    f.send(SERVER, CLIENT, encode(FACK, little=little, fragnum=2))  # server: "have up to 2"
    done = f.send(CLIENT, SERVER, encode(REQUEST, little=little, flags1=frag, fragnum=0, body=parts[0]))
    f.send(CLIENT, SERVER, encode(REQUEST, little=little, flags1=frag, fragnum=0, body=parts[0]))  # late copy
    resp = f.send(SERVER, CLIENT, encode(RESPONSE, little=little, body=b"r"))
    s = f.close()
    (c,) = s.calls
    assert (c.first_frame, c.frame, c.request_fragments, c.request_bytes) == (1, done, 3, 250)
    assert c.response_frame == resp
    assert [d.fragnum for d in s.datagrams] == [1, 2, 1, 2, 0, 0, 0]
    assert not s.datagrams[3].from_client  # the fack acknowledged the client's fragments
    assert not s.violations


def test_fragmented_response_and_client_fack() -> None:
    f = Feeder()
    f.send(CLIENT, SERVER, encode(REQUEST))
    f.send(SERVER, CLIENT, encode(RESPONSE, flags1=CL_FLAG_FRAG, fragnum=0, body=b"1" * 10))
    f.send(CLIENT, SERVER, encode(FACK, fragnum=0))
    assert not f.sink.calls  # the response is not complete yet
    last = f.send(SERVER, CLIENT, encode(RESPONSE, flags1=CL_FLAG_FRAG | CL_FLAG_LASTFRAG, fragnum=1, body=b"2" * 5))
    assert len(f.sink.calls) == 1  # reported as soon as the answer is whole
    s = f.close()
    (c,) = s.calls
    assert (c.response_frame, c.response_fragments, c.response_bytes) == (last, 2, 15)
    assert s.datagrams[2].from_client


def test_incomplete_request_is_reported_at_close_with_what_came() -> None:
    f = Feeder()
    f.send(CLIENT, SERVER, encode(REQUEST, flags1=CL_FLAG_FRAG, fragnum=0, body=b"a" * 10))
    f.send(CLIENT, SERVER, encode(REQUEST, flags1=CL_FLAG_FRAG | CL_FLAG_LASTFRAG, fragnum=2, body=b"c" * 3))
    s = f.close()
    (c,) = s.calls
    assert (c.request_fragments, c.request_bytes, c.answered) == (2, 13, False)


@pytest.mark.parametrize("little", [True, False])
@pytest.mark.parametrize("ptype", [FAULT, REJECT])
def test_fault_and_reject_status(little: bool, ptype: int) -> None:
    f = Feeder()
    f.send(CLIENT, SERVER, encode(REQUEST, little=little, opnum=7))
    ans = f.send(SERVER, CLIENT, encode(ptype, little=little, opnum=7, body=status_body(0x1C010002, little)))
    s = f.close()
    (c,) = s.calls
    assert (c.fault_status, c.answered, c.response_frame, c.response_bytes, c.response_fragments) == (
        0x1C010002,
        True,
        ans,
        None,
        1,
    )
    assert s.datagrams[1].status == 0x1C010002 and not s.datagrams[1].from_client
    assert s.datagrams[0].status is None


def test_fault_without_status_is_a_violation_but_still_a_datagram() -> None:
    f = Feeder()
    f.send(CLIENT, SERVER, encode(REQUEST))
    f.send(SERVER, CLIENT, encode(FAULT, body=b"\0\0"))
    s = f.close()
    assert len(s.datagrams) == 2 and s.whats() == ["short_fault_body"]
    assert s.calls[0].fault_status == 0


def test_other_pdu_types_are_datagrams_with_their_direction() -> None:
    f = Feeder()
    f.send(CLIENT, SERVER, encode(REQUEST, seqnum=3))
    f.send(CLIENT, SERVER, encode(PING, seqnum=3))
    f.send(SERVER, CLIENT, encode(WORKING, seqnum=3))
    f.send(CLIENT, SERVER, encode(CL_CANCEL, seqnum=3, body=struct.pack("<II", 0, 1)))
    f.send(SERVER, CLIENT, encode(CANCEL_ACK, seqnum=3, body=struct.pack("<III", 0, 1, 1)))
    f.send(SERVER, CLIENT, encode(NOCALL, seqnum=3, fragnum=0xFFFF))
    f.send(SERVER, CLIENT, encode(RESPONSE, seqnum=3, body=b"z"))
    f.send(CLIENT, SERVER, encode(ACK, seqnum=3))
    s = f.close()
    assert [(d.ptype, d.from_client) for d in s.datagrams] == [
        (REQUEST, True),
        (PING, True),
        (WORKING, False),
        (CL_CANCEL, True),
        (CANCEL_ACK, False),
        (NOCALL, False),
        (RESPONSE, False),
        (ACK, True),
    ]
    assert s.datagrams[5].fragnum == 0xFFFF
    (c,) = s.calls
    assert c.call_id == 3 and c.answered and not s.violations


def test_fack_of_an_unknown_call_is_taken_for_the_server_s() -> None:
    f = Feeder()
    f.send(SERVER, CLIENT, encode(FACK, fragnum=3))
    (d,) = f.close().datagrams
    assert not d.from_client and (d.flow.client_ip, d.flow.client_port) == CLIENT


def test_ack_closes_a_call_whose_answer_was_partly_lost() -> None:
    f = Feeder()
    f.send(CLIENT, SERVER, encode(REQUEST))
    f.send(SERVER, CLIENT, encode(RESPONSE, flags1=CL_FLAG_FRAG, fragnum=0, body=b"1" * 10))
    f.send(CLIENT, SERVER, encode(ACK))
    assert len(f.sink.calls) == 1
    (c,) = f.close().calls
    assert (c.answered, c.response_fragments, c.response_bytes) == (True, 1, 10)


def test_maybe_call_is_reported_at_once() -> None:
    f = Feeder()
    f.send(CLIENT, SERVER, encode(REQUEST, flags1=CL_FLAG_MAYBE, body=b"m"))
    assert len(f.sink.calls) == 1 and not f.sink.calls[0].answered


def test_next_seqnum_ends_the_previous_call_of_the_activity() -> None:
    f = Feeder()
    f.send(CLIENT, SERVER, encode(REQUEST, seqnum=0))
    f.send(CLIENT, SERVER, encode(REQUEST, seqnum=1))
    assert [c.seqnum for c in f.sink.calls] == [0]  # not waiting for the end of the capture
    f.send(SERVER, CLIENT, encode(RESPONSE, seqnum=0))  # too late: already reported unanswered
    s = f.close()
    assert [(c.seqnum, c.answered) for c in s.calls] == [(0, False), (1, False)]
    assert s.whats() == ["late_answer"]


def test_retransmissions_make_one_call() -> None:
    f = Feeder()
    for _ in range(2):
        f.send(CLIENT, SERVER, encode(REQUEST))
    for _ in range(2):
        f.send(SERVER_EPH, CLIENT, encode(RESPONSE))
    f.send(CLIENT, SERVER, encode(REQUEST))  # the client missed the answer and asks again
    s = f.close()
    assert len(s.datagrams) == 5 and len(s.calls) == 1 and not s.violations
    assert (s.calls[0].frame, s.calls[0].response_frame) == (1, 3)


def test_same_numbers_long_after_are_a_new_call() -> None:
    f = Feeder()
    f.send(CLIENT, SERVER, encode(REQUEST), ts=0)
    f.send(SERVER, CLIENT, encode(RESPONSE), ts=MS)
    f.send(CLIENT, SERVER, encode(REQUEST), ts=3600 * 1000 * MS)
    f.send(SERVER, CLIENT, encode(RESPONSE), ts=3600 * 1000 * MS + MS)
    s = f.close()
    assert [(c.frame, c.response_frame) for c in s.calls] == [(1, 2), (3, 4)] and not s.violations


def test_answer_captured_before_its_request() -> None:
    f = Feeder()
    f.send(SERVER, CLIENT, encode(RESPONSE, body=b"early"))
    f.send(CLIENT, SERVER, encode(REQUEST, body=b"q"))
    assert len(f.sink.calls) == 1
    s = f.close()
    (c,) = s.calls
    assert (c.frame, c.response_frame, c.response_bytes) == (2, 1, 5) and not s.violations


def test_answer_without_request() -> None:
    f = Feeder()
    f.send(SERVER, CLIENT, encode(RESPONSE))
    s = f.close()
    assert not s.calls and s.whats() == ["answer_without_request"]


def test_fragment_with_another_opnum_is_a_violation() -> None:
    f = Feeder()
    f.send(CLIENT, SERVER, encode(REQUEST, opnum=1, flags1=CL_FLAG_FRAG, fragnum=0))
    f.send(CLIENT, SERVER, encode(REQUEST, opnum=2, flags1=CL_FLAG_FRAG | CL_FLAG_LASTFRAG, fragnum=1))
    assert f.close().whats() == ["fragment_mismatch"]


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\x04" * 20, "short_header"),
        (b"\x05" + encode()[1:], "bad_version"),
        (encode(12), "bad_ptype"),
        (encode(body=b"ab", body_len=9), "short_body"),
    ],
)
def test_malformed_pdus_are_violations(data: bytes, what: str) -> None:
    f = Feeder()
    f.send(CLIENT, ("192.168.1.2", 135), data)
    f.send(CLIENT, SERVER, encode(REQUEST))  # and it carries on
    s = f.close()
    assert [(v[1], v[2], v[3]) for v in s.violations] == [(1, "dcerpc_cl", what)]
    assert len(s.datagrams) == 1 and len(s.calls) == 1


# -- tracker: caps ----------------------------------------------------------------------------------


def test_pending_calls_cap_flushes_the_oldest() -> None:
    f = Feeder(Limits(max_pending_calls=2))
    for i in range(3):
        f.send(CLIENT, SERVER, encode(REQUEST, act=activity(i)))
    assert [c.activity_uuid for c in f.sink.calls] == [activity(0)]
    assert f.sink.whats() == ["cap_pending_calls"]
    f.send(SERVER, CLIENT, encode(RESPONSE, act=activity(2)))
    s = f.close()
    assert sorted((c.activity_uuid, c.answered) for c in s.calls) == [
        (activity(0), False),
        (activity(1), False),
        (activity(2), True),
    ]


def test_pending_fragments_cap_gives_up_the_oldest_reassembly() -> None:
    f = Feeder(Limits(max_pending_fragments=1))
    f.send(CLIENT, SERVER, encode(REQUEST, act=activity(0), flags1=CL_FLAG_FRAG, fragnum=0, body=b"a"))
    f.send(CLIENT, SERVER, encode(REQUEST, act=activity(1), flags1=CL_FLAG_FRAG, fragnum=0, body=b"b"))
    assert f.sink.whats() == ["cap_pending_fragments"]
    assert [(c.activity_uuid, c.request_fragments) for c in f.sink.calls] == [(activity(0), 1)]
    f.send(CLIENT, SERVER, encode(REQUEST, act=activity(1), flags1=CL_FLAG_FRAG | CL_FLAG_LASTFRAG, fragnum=1))
    s = f.close()
    assert [(c.activity_uuid, c.request_fragments) for c in s.calls] == [(activity(0), 1), (activity(1), 2)]


def test_stub_cap_drops_the_epm_answer_but_counts_it() -> None:
    stub = map_response([udp_tower(PNIO, 1, 1234, "0.0.0.0")], True)
    f = Feeder(Limits(max_call_stub_bytes=len(stub) - 1))
    f.send(CLIENT, ("192.168.1.2", 135), encode(REQUEST, iface=EPM, if_vers=3, opnum=3))
    f.send(("192.168.1.2", 135), CLIENT, encode(RESPONSE, iface=EPM, if_vers=3, opnum=3, body=stub))
    s = f.close()
    assert s.whats() == ["cap_call_stub_bytes"] and not s.endpoints
    assert s.calls[0].response_bytes == len(stub)


# -- endpoint mapper over UDP -------------------------------------------------------------------------

EPM_SERVER = ("192.168.1.2", 135)


@pytest.mark.parametrize("little", [True, False])
def test_ept_map_over_udp_in_fragments(little: bool) -> None:
    stub = map_response([udp_tower(PNIO, 1, 49152, "0.0.0.0"), udp_tower(EPM, 3, 135, "192.168.1.9")], little)
    a, b = stub[:30], stub[30:]
    f = Feeder()
    # No request stub: an ept_map request that is not one would be a violation of its own (the
    # request is decoded too), and this test is about the response's fragments.
    req = f.send(CLIENT, EPM_SERVER, encode(REQUEST, little=little, iface=EPM, if_vers=3, opnum=3))
    f.send(
        EPM_SERVER,
        CLIENT,
        encode(RESPONSE, little=little, iface=EPM, if_vers=3, opnum=3, flags1=0x06, fragnum=1, body=b),
    )
    last = f.send(
        EPM_SERVER,
        CLIENT,
        encode(RESPONSE, little=little, iface=EPM, if_vers=3, opnum=3, flags1=0x04, fragnum=0, body=a),
    )
    s = f.close()
    assert not s.violations
    e0, e1 = s.endpoints
    assert (e0.interface_uuid, e0.if_major, e0.protocol, e0.port) == (PNIO, 1, "ncadg_ip_udp", 49152)
    assert (e0.host, e0.announced_host) == ("192.168.1.2", "0.0.0.0")  # 0.0.0.0: the responder
    assert (e1.interface_uuid, e1.port, e1.host) == (EPM, 135, "192.168.1.9")
    assert (e0.frame, e0.request_frame, e0.epm_opnum, e0.call_id, e0.status) == (last, req, 3, 0, 0)
    assert (e0.flow.server_ip, e0.flow.server_port) == EPM_SERVER
    assert [e.tower_index for e in s.endpoints] == [0, 1]


@pytest.mark.parametrize("little", [True, False])
def test_ept_lookup_over_udp(little: bool) -> None:
    stub = lookup_response(
        [
            (PNIO_OBJ, udp_tower(PNIO, 1, 34964, "10.1.2.3"), "PNIO device"),
            (NIL, udp_tower(EPM, 3, 135, "0.0.0.0"), ""),
        ],
        little,
    )
    f = Feeder()
    f.send(CLIENT, EPM_SERVER, encode(REQUEST, little=little, iface=EPM, if_vers=3, opnum=2, seqnum=9))
    f.send(
        EPM_SERVER,
        CLIENT,
        encode(RESPONSE, little=little, iface=EPM, if_vers=3, opnum=2, seqnum=9, body=stub),
    )
    s = f.close()
    assert not s.violations
    assert [(e.object_uuid, e.annotation, e.port, e.host, e.epm_opnum, e.call_id) for e in s.endpoints] == [
        (PNIO_OBJ, "PNIO device", 34964, "10.1.2.3", 2, 9),
        (NIL, None, 135, "192.168.1.2", 2, 9),
    ]


def test_epm_answer_without_request_still_yields_endpoints() -> None:
    stub = map_response([udp_tower(PNIO, 1, 49152, "0.0.0.0")], True)
    f = Feeder()
    f.send(EPM_SERVER, CLIENT, encode(RESPONSE, iface=EPM, if_vers=3, opnum=3, body=stub))
    s = f.close()
    assert s.whats() == ["answer_without_request"]
    assert [(e.port, e.request_frame) for e in s.endpoints] == [(49152, None)]


def test_bad_epm_stub_is_a_violation() -> None:
    f = Feeder()
    f.send(CLIENT, EPM_SERVER, encode(REQUEST, iface=EPM, if_vers=3, opnum=3))
    f.send(EPM_SERVER, CLIENT, encode(RESPONSE, iface=EPM, if_vers=3, opnum=3, body=b"\x01\x02"))
    s = f.close()
    assert [(v[2], v[3]) for v in s.violations] == [("epm", "epm_short_context_handle")]
    assert len(s.calls) == 1 and not s.endpoints


def test_without_a_decoder_calls_are_tracked_and_nothing_is_decoded() -> None:
    from analyzer.dcerpc.cl import ClTracker
    from tests.cl_build import Sink, flow_for

    stub = map_response([udp_tower(PNIO, 1, 49152, "0.0.0.0")], True)
    sink = Sink()
    tracker = ClTracker(sink, Limits(), flow_for)  # no stub decoder injected
    tracker.datagram(*CLIENT, *EPM_SERVER, encode(REQUEST, iface=EPM, if_vers=3, opnum=3), 1, MS)
    tracker.datagram(*EPM_SERVER, *CLIENT, encode(RESPONSE, iface=EPM, if_vers=3, opnum=3, body=stub), 2, 2 * MS)
    tracker.close()
    (call,) = sink.calls
    assert (call.interface_uuid, call.answered, call.arguments, call.return_status) == (EPM, True, None, None)
    assert sink.endpoints == [] and sink.violations == []
