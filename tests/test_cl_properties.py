"""Properties of the connectionless tracker: unrelated activities interleaved change nothing,
and arbitrary or plausible-but-wrong bytes never raise."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.dcerpc.cl import ClTracker
from analyzer.dcerpc.cl_pdu import CL_FLAG_FRAG, CL_FLAG_LASTFRAG
from analyzer.dcerpc.constants import (
    ACK,
    FACK,
    FAULT,
    PING,
    REJECT,
    REQUEST,
    RESPONSE,
    WORKING,
)
from analyzer.limits import Limits
from analyzer.model import CallRecord, DatagramRecord
from analyzer.stubs import stub_decoder
from tests.cl_build import (
    CLIENT,
    EPM,
    MS,
    PNIO,
    SERVER,
    Feeder,
    Sink,
    activity,
    encode,
    flow_for,
    map_response,
    status_body,
    udp_tower,
)

# -- properties ---------------------------------------------------------------------------------------

Datagram = tuple[tuple[str, int], tuple[str, int], bytes, int, int]  # src, dst, data, frame, ts


@st.composite
def activity_script(draw: st.DrawFn, index: int) -> list[Datagram]:
    """The datagrams of one activity: calls with fragmented requests and answers, retransmissions,
    pings, facks and acks, in the order one client and its server would send them."""
    act = activity(index + 1)
    little = draw(st.booleans())
    client = ("10.0.0.5", draw(st.sampled_from([1566, 1567])))  # activities may share a port
    server = ("10.0.0.10", 34964)
    answer_from = draw(st.sampled_from([server, ("10.0.0.10", 49152)]))
    epm_call = draw(st.booleans())
    iface, opnum = (EPM, 3) if epm_call else (PNIO, draw(st.integers(0, 5)))
    out: list[tuple[tuple[str, int], tuple[str, int], bytes]] = []

    def pdu(ptype: int, seq: int, **kw: Any) -> bytes:
        return encode(ptype, little=little, act=act, iface=iface, opnum=opnum, seqnum=seq, **kw)

    def fragments(ptype: int, seq: int, body: bytes, n: int) -> list[bytes]:
        if n == 1:
            return [pdu(ptype, seq, body=body)]
        size = -(-len(body) // n)
        parts = [body[i * size : (i + 1) * size] for i in range(n)]
        frags = [
            pdu(ptype, seq, flags1=CL_FLAG_FRAG | (CL_FLAG_LASTFRAG if i == n - 1 else 0), fragnum=i, body=p)
            for i, p in enumerate(parts)
        ]
        return draw(st.permutations(frags))

    for seq in range(draw(st.integers(1, 2))):
        for frag in fragments(REQUEST, seq, draw(st.binary(min_size=1, max_size=30)), draw(st.integers(1, 3))):
            out.append((client, server, frag))
            if draw(st.booleans()):
                out.append((client, server, frag))  # retransmitted
        if draw(st.booleans()):
            out.append((client, server, pdu(PING, seq)))
            out.append((answer_from, client, pdu(WORKING, seq)))
        kind = draw(st.sampled_from(["response", "fault", "reject", "none"]))
        if kind == "response":
            body = map_response([udp_tower(PNIO, 1, 49152, "0.0.0.0")], little) if epm_call else b"r" * 20
            for frag in fragments(RESPONSE, seq, body, draw(st.integers(1, 3))):
                out.append((answer_from, client, frag))
                if draw(st.booleans()):
                    out.append((client, server, pdu(FACK, seq)))
        elif kind in ("fault", "reject"):
            out.append(
                (
                    answer_from,
                    client,
                    pdu(FAULT if kind == "fault" else REJECT, seq, body=status_body(5, little)),
                )
            )
        if draw(st.booleans()):
            out.append((client, server, pdu(ACK, seq)))
    return [(s, d, data, (index + 1) * 1000 + i, ((index + 1) * 1000 + i) * MS) for i, (s, d, data) in enumerate(out)]


def _records(datagrams: list[Datagram]) -> Counter[Any]:
    sink = Sink()
    tracker = ClTracker(sink, Limits(), flow_for, decoder=stub_decoder())
    for src, dst, data, frame, ts in datagrams:
        tracker.datagram(src[0], src[1], dst[0], dst[1], data, frame, ts)
    tracker.close()
    return Counter(sink.order)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_interleaving_of_unrelated_activities_changes_nothing(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 4))
    scripts = [data.draw(activity_script(i)) for i in range(n)]
    one_by_one = [d for script in scripts for d in script]
    tokens = data.draw(st.permutations([i for i, script in enumerate(scripts) for _ in script]))
    cursors = [0] * n
    interleaved = []
    for i in tokens:
        interleaved.append(scripts[i][cursors[i]])
        cursors[i] += 1
    expected = _records(one_by_one)
    assert _records(interleaved) == expected
    # Every request became a call, and every datagram a record.
    calls = [r for r in expected if isinstance(r, CallRecord)]
    assert sum(isinstance(r, DatagramRecord) for r in expected.elements()) == len(one_by_one)
    assert len({(c.activity_uuid, c.seqnum) for c in calls}) == len(calls)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_arbitrary_bytes_never_raise(payloads: list[bytes]) -> None:
    f = Feeder()
    for p in payloads:
        f.send(CLIENT, SERVER, p)
    s = f.close()
    parse_errors = [v for v in s.violations if v[3] in ("short_header", "bad_version", "bad_ptype", "short_body")]
    assert len(s.datagrams) + len(parse_errors) == len(payloads)


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 60)),
    st.lists(
        st.tuples(
            st.integers(0, 10),
            st.integers(0, 255),
            st.integers(0, 3),
            st.integers(0, 4),
            st.booleans(),
            st.booleans(),
            st.binary(max_size=60),
            st.integers(0, 90),
            st.booleans(),
        ),
        max_size=12,
    ),
)
def test_plausible_but_wrong_pdus_never_raise(
    caps: tuple[int, int, int],
    pdus: list[tuple[int, int, int, int, bool, bool, bytes, int, bool]],
) -> None:
    calls, fragments, stub = caps
    f = Feeder(Limits(max_pending_calls=calls, max_pending_fragments=fragments, max_call_stub_bytes=stub))
    for ptype, flags1, seq, fragnum, little, epm_iface, body, cut, reverse in pdus:
        data = encode(
            ptype,
            little=little,
            flags1=flags1,
            seqnum=seq,
            fragnum=fragnum,
            iface=EPM if epm_iface else PNIO,
            opnum=3 if epm_iface else 1,
            if_vers=3,
            act=activity(seq % 2),
            body=body,
            auth_proto=1 if cut == 90 else 0,
        )
        if cut < 80:
            data = data[: len(data) - cut]
        src, dst = (SERVER, CLIENT) if reverse else (CLIENT, SERVER)
        f.send(src, dst, data)
    f.close()
