"""The connection-oriented fast paths held equal to the plain ones they stand in for: the one-step
request and response parse, the remembered bind and bind_ack bodies, the header check, the
pending-call table's insertion ([C706] 12.6.3-12.6.4)."""

from __future__ import annotations

import struct
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.bounded import VACANT, BoundedDict, FifoDict
from analyzer.dcerpc import association as association_module
from analyzer.dcerpc import pdu as pdu_module
from analyzer.dcerpc.association import Association
from analyzer.dcerpc.constants import CO_HEADER_LEN, SEC_TRAILER_LEN
from analyzer.dcerpc.pdu import CoPdu, _parse_co_pdu, parse_co_pdu, parse_header, plausible_co_header
from analyzer.dcerpc.wire import Malformed
from analyzer.limits import Limits
from analyzer.model import CallRecord, EndpointRecord, Flow
from tests.co_build import bind_ack_body, bind_body, pdu, request_body, response_body
from tests.conftest import NDR, SVCCTL

FLOW = Flow("c", 0, "ncacn_ip_tcp", "10.0.0.2", 50000, "10.0.0.1", 49700)


def _plain_plausible(data: bytes, off: int = 0) -> int:
    """The header check as first written, byte by byte: the twin of `plausible_co_header`."""
    if len(data) - off < CO_HEADER_LEN:
        return 0
    pt = data[off + 2]
    if data[off] != 5 or data[off + 1] > 1 or pt > 20 or pt == 1 or 4 <= pt <= 10:
        return 0
    d0 = data[off + 4]
    if d0 & 0xEE or data[off + 5] > 3 or data[off + 6] or data[off + 7]:
        return 0
    fmt = "<HH" if d0 & 0x10 else ">HH"
    frag_len, auth_len = struct.unpack_from(fmt, data, off + 8)
    if frag_len < CO_HEADER_LEN or (auth_len and auth_len + SEC_TRAILER_LEN + CO_HEADER_LEN > frag_len):
        return 0
    return int(frag_len)


def _outcome(parse: object, data: bytes) -> CoPdu | tuple[str, str]:
    try:
        return parse(data)  # type: ignore[operator, no-any-return]
    except Malformed as e:
        return (e.what, e.detail)


def _general(data: bytes) -> CoPdu:
    """Every PDU the general way: header, then the body by type."""
    return _parse_co_pdu(data, parse_header(data))


@st.composite
def _pdus(draw: st.DrawFn) -> bytes:
    """Near-valid PDUs of every type: a header whose fields are drawn (frag_length mostly right,
    auth_length sometimes set), then any body."""
    ptype = draw(st.sampled_from([0, 2, 3, 11, 12, 13, 14, 15, 16, 19, 20]) | st.integers(0, 255))
    flags = draw(st.integers(0, 255))
    drep0 = draw(st.sampled_from([0x10, 0x00, 0x11, 0x01]))
    body = draw(st.binary(max_size=120))
    auth_len = draw(st.sampled_from([0, 0, 0, 8, 16]) | st.integers(0, 200))
    frag_len = 16 + len(body) if draw(st.booleans()) or not body else draw(st.integers(0, 300))
    fmt = "<BBBB4sHHI" if drep0 & 0x10 else ">BBBB4sHHI"
    head = struct.pack(
        fmt, 5, 0, ptype, flags, bytes([drep0, 0, 0, 0]), frag_len, auth_len, draw(st.integers(0, 2**32 - 1))
    )
    return head + body


@settings(max_examples=600, deadline=None)
@given(_pdus())
def test_one_step_parse_equals_the_general_one(raw: bytes) -> None:
    if len(raw) < CO_HEADER_LEN:
        return
    assert _outcome(parse_co_pdu, raw) == _outcome(_general, raw)


@settings(max_examples=300, deadline=None)
@given(_pdus(), st.integers(0, 4))
def test_header_check_equals_the_byte_by_byte_one(raw: bytes, off: int) -> None:
    data = bytes(off) + raw
    assert plausible_co_header(data, off) == _plain_plausible(data, off)
    assert plausible_co_header(bytearray(data), off) == _plain_plausible(data, off)


def _binds_and_acks() -> list[bytes]:
    out = []
    for le in (True, False):
        out.append(pdu(11, 3, bind_body([(0, SVCCTL, 2, [NDR])], le=le), le=le))
        out.append(pdu(14, 4, bind_body([(0, SVCCTL, 2, [NDR]), (1, SVCCTL, 2, [NDR, NDR])], le=le), le=le))
        out.append(pdu(11, 5, bind_body([(0, SVCCTL, 2, [NDR])], le=le), auth=(10, 2, 0, b"t" * 16), le=le))
        out.append(pdu(12, 3, bind_ack_body([(0, 0, NDR)], le=le), le=le))
        out.append(pdu(15, 4, bind_ack_body([(0, 0, NDR), (2, 2, NDR)], sec_addr="", le=le), le=le))
    return out


@pytest.mark.parametrize("raw", _binds_and_acks())
def test_a_remembered_body_reads_as_a_fresh_one(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    first = parse_co_pdu(raw)
    again = parse_co_pdu(raw)  # from the remembered body
    call_id = struct.pack("<I" if raw[4] & 0x10 else ">I", 0x99)
    other_call = parse_co_pdu(raw[:12] + call_id + raw[16:])  # the same body, another call_id
    monkeypatch.setattr(pdu_module, "_BODY_BYTES", 0)  # nothing remembered: every body read
    fresh = parse_co_pdu(raw)
    assert first == again == fresh
    assert other_call.header.call_id == 0x99 and other_call[1:] == fresh[1:]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_binds_and_acks()), st.integers(16, 200), st.binary(min_size=1, max_size=4))
def test_damaged_bodies_are_judged_alike_remembered_or_not(raw: bytes, at: int, junk: bytes) -> None:
    """A body with bytes changed (or cut short): the same PDU or the same complaint, with the
    bodies remembered so far or with none."""
    damaged = raw[:at] + junk + raw[at + len(junk) :] if at < len(raw) else raw[: at % len(raw) or 16]
    damaged = damaged[:8] + struct.pack("<H" if raw[4] & 0x10 else ">H", len(damaged)) + damaged[10:]
    remembered = (_outcome(parse_co_pdu, damaged), _outcome(parse_co_pdu, damaged))
    saved = pdu_module._BODY_BYTES
    pdu_module._BODY_BYTES = 0
    try:
        assert remembered == (_outcome(parse_co_pdu, damaged),) * 2
    finally:
        pdu_module._BODY_BYTES = saved


def test_remembered_bodies_stay_bounded() -> None:
    for i in range(pdu_module._BODIES_MAX + 10):
        parse_co_pdu(pdu(11, 1, bind_body([(i & 0xFFFF, SVCCTL, i >> 16, [NDR])])))
    assert 0 < len(pdu_module._BIND_BODIES) <= pdu_module._BODIES_MAX
    assert 0 < len(pdu_module._WHOLE) <= pdu_module._BODIES_MAX


@settings(max_examples=300, deadline=None)
@given(_pdus())
def test_a_remembered_pdu_is_the_one_its_bytes_read_as(raw: bytes) -> None:
    """Any PDU twice (the second time a bind or an answer to one comes from `_WHOLE`): the same
    outcome as reading it the general way, and nothing malformed remembered."""
    if len(raw) < CO_HEADER_LEN:
        return
    first, second = _outcome(parse_co_pdu, raw), _outcome(parse_co_pdu, raw)
    assert first == second == _outcome(_general, raw)
    if type(first) is tuple and raw in pdu_module._WHOLE:  # (what, detail): malformed
        pytest.fail("a malformed PDU was remembered")


class _Sink:
    def __init__(self) -> None:
        self.calls: list[CallRecord] = []
        self.violations: list[tuple[int | None, str, str]] = []

    def bind_row(self, row: tuple[Any, ...]) -> None:
        pass

    def call(self, rec: CallRecord) -> None:
        self.calls.append(rec)

    def call_row(self, row: tuple[Any, ...]) -> None:
        self.call(CallRecord(*row))

    def endpoint(self, rec: EndpointRecord) -> None:
        pass

    def violation(
        self, flow: Flow | None, frame: int | None, layer: str, what: str, detail: str, count: int = 1
    ) -> None:
        self.violations.append((frame, f"{layer}/{what}", detail))


@pytest.mark.parametrize("cap", [1, 2, 5])
def test_pending_calls_past_the_cap_leave_oldest_first(cap: int) -> None:
    """Requests nobody answers, some reusing a call_id: the table holds `cap`, each newcomer past it
    evicts the oldest (a `cap_pending_calls` row each), and every request still makes a row."""
    sink = _Sink()
    assoc = Association(FLOW, "port", sink, Limits(max_pending_calls=cap))  # type: ignore[arg-type]
    ids = [1, 2, 3, 2, 4, 5, 1, 6, 7, 8]
    for frame, call_id in enumerate(ids, 1):
        assoc.pdu(True, parse_co_pdu(pdu(0, call_id, request_body(0, b""))), frame, frame, frame)
    evictions = [v for v in sink.violations if v[1] == "dcerpc/cap_pending_calls"]
    assoc.close()
    assert len(sink.calls) == len(ids)
    # The rows made before the end are the evicted calls, oldest first: a call_id used again
    # finishes its earlier call on the spot (not an eviction).
    live: list[int] = []
    expect: list[int] = []
    evicted = 0
    for call_id in ids:
        if call_id in live:
            live.remove(call_id)
            expect.append(call_id)
        live.append(call_id)
        if len(live) > cap:
            expect.append(live.pop(0))
            evicted += 1
    assert [c.call_id for c in sink.calls[: len(expect)]] == expect
    assert [c.call_id for c in sink.calls[len(expect) :]] == live  # the rest at the end, oldest first
    assert len(evictions) == evicted > 0
    assert all(d == f"{cap} calls awaiting answers" for _f, _w, d in evictions)


_OPS = st.lists(st.tuples(st.sampled_from(["put", "put_new", "pop", "get"]), st.integers(0, 9)), max_size=80)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6), _OPS)
def test_fifo_dict_behaves_as_the_bounded_dict(cap: int, ops: list[tuple[str, int]]) -> None:
    """The table the pending calls move to at their cap: the same evictions, entries and order."""
    plain: BoundedDict[int, int] = BoundedDict(cap)
    fifo: FifoDict[int, int] = FifoDict(cap)
    for step, (op, key) in enumerate(ops):
        if op == "put_new" and key in plain:
            op = "put"  # put_new is only for a key not held
        if op in ("put", "put_new"):
            assert getattr(plain, op)(key, step) == getattr(fifo, op)(key, step)
        elif op == "pop":
            assert plain.pop(key, None) == fifo.pop(key, None)
        else:
            assert plain.get(key) == fifo.get(key)
        assert list(plain.items()) == list(fifo.items())


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.lists(st.tuples(st.booleans(), st.integers(1, 8), st.booleans()), max_size=40))
def test_pending_calls_alike_whether_the_full_table_moves_or_not(cap: int, steps: list[tuple[bool, int, bool]]) -> None:
    """Requests and answers in any order, at a small cap: the same rows and violations with the
    full table moved to a `FifoDict` (as it is) as with the plain `BoundedDict` kept throughout."""

    def run() -> tuple[list[CallRecord], list[tuple[int | None, str, str]]]:
        sink = _Sink()
        assoc = Association(FLOW, "port", sink, Limits(max_pending_calls=cap))  # type: ignore[arg-type]
        for frame, (request, call_id, last) in enumerate(steps, 1):
            flags = 3 if last else 1
            body = request_body(0, b"ab") if request else response_body(b"cd")
            assoc.pdu(request, parse_co_pdu(pdu(0 if request else 2, call_id, body, flags=flags)), frame, frame, frame)
        assoc.close()
        return sink.calls, sink.violations

    def bounded(cap: int, entries: dict[int, object]) -> BoundedDict[int, object]:
        table: BoundedDict[int, object] = BoundedDict(cap)
        table.update(entries)
        return table

    moved = run()
    with patch.object(association_module, "FifoDict", bounded):
        kept = run()
    assert moved == kept


def test_tables_are_made_at_their_first_entry() -> None:
    """A bind and its answer make the pending-bind table only; the first request the call table.
    The shared empty table takes no entry."""
    with pytest.raises(TypeError):
        VACANT.put(1, 1)
    assert not VACANT
    sink = _Sink()
    assoc = Association(FLOW, "port", sink, Limits())  # type: ignore[arg-type]
    tables = ("_binds", "_early_acks", "_calls", "_early_answers", "_identities")
    assert all(getattr(assoc, t) is VACANT for t in tables)
    assoc.pdu(True, parse_co_pdu(pdu(11, 1, bind_body([(0, SVCCTL, 2, [NDR])]))), 1, 1, 1)
    assoc.pdu(False, parse_co_pdu(pdu(12, 1, bind_ack_body([(0, 0, NDR)]))), 2, 2, 2)
    assert [t for t in tables if getattr(assoc, t) is not VACANT] == ["_binds"]
    assoc.pdu(True, parse_co_pdu(pdu(0, 2, request_body(0, b""))), 3, 3, 3)
    assoc.pdu(False, parse_co_pdu(pdu(2, 3, response_body(b""))), 4, 4, 4)  # answers a call not seen
    assert [t for t in tables if getattr(assoc, t) is not VACANT] == ["_binds", "_calls", "_early_answers"]
    assoc.close()
    assert len(sink.calls) == 1 and not VACANT
