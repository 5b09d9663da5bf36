"""How the connection-oriented association hands stubs to the decoder registry ([C706] 12.6):
which stubs it keeps, fragments, the per-call cap, answers before questions, malformed stubs,
and context handles named across calls."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest

from analyzer.dcerpc.association import Association
from analyzer.dcerpc.pdu import parse_co_pdu
from analyzer.limits import Limits
from analyzer.model import CallRecord, Flow
from analyzer.stubs import stub_decoder

scmr = pytest.importorskip("impacket.dcerpc.v5.scmr")
NULL = pytest.importorskip("impacket.dcerpc.v5.dtypes").NULL

SVCCTL = "367abb81-9844-35f1-ad32-98f038001003"
NDR = "8a885d04-1ceb-11c9-9fe8-08002b104860"
FLOW = Flow("t", 0, "ncacn_ip_tcp", "10.0.0.1", 50000, "10.0.0.2", 49667)
H1 = b"\0" * 4 + bytes(range(1, 17))
H2 = b"\0" * 4 + bytes(range(21, 37))
FIRST, LAST = 1, 2


class Sink:
    def __init__(self) -> None:
        self.calls: list[CallRecord] = []
        self.violations: list[tuple[str, str]] = []

    def call(self, rec: CallRecord) -> None:
        self.calls.append(rec)

    def call_row(self, row: tuple[Any, ...]) -> None:
        self.call(CallRecord(*row))

    def violation(self, flow: Flow, frame: int | None, layer: str, what: str, detail: str, count: int = 1) -> None:
        self.violations.extend([(layer, what)] * count)

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def pdu(ptype: int, call_id: int, body: bytes, flags: int = FIRST | LAST) -> bytes:
    return struct.pack("<BBBB4sHHI", 5, 0, ptype, flags, b"\x10\0\0\0", 16 + len(body), 0, call_id) + body


def bind(iface: str) -> bytes:
    body = struct.pack("<HHIBBH", 5840, 5840, 0, 1, 0, 0) + struct.pack("<HBB", 0, 1, 0)
    body += uuid.UUID(iface).bytes_le + struct.pack("<I", 2) + uuid.UUID(NDR).bytes_le + struct.pack("<I", 2)
    return pdu(11, 1, body)


def bind_ack() -> bytes:
    addr = b"49667\0"
    body = struct.pack("<HHIH", 5840, 5840, 0x1234, len(addr)) + addr
    body += b"\0" * (-len(body) % 4) + struct.pack("<BBH", 1, 0, 0)
    body += struct.pack("<HH", 0, 0) + uuid.UUID(NDR).bytes_le + struct.pack("<I", 2)
    return pdu(12, 1, body)


def request(call_id: int, opnum: int, stub: bytes, flags: int = FIRST | LAST) -> bytes:
    return pdu(0, call_id, struct.pack("<IHH", len(stub), 0, opnum) + stub, flags)


def response(call_id: int, stub: bytes) -> bytes:
    return pdu(2, call_id, struct.pack("<IHBB", len(stub), 0, 0, 0) + stub)


class Conversation:
    def __init__(self, limits: Limits | None = None) -> None:
        self.sink = Sink()
        limits = limits or Limits()
        self.assoc = Association(FLOW, "test", self.sink, limits, decoder=stub_decoder(limits))
        self.frame = 0
        self.send(True, bind(SVCCTL))
        self.send(False, bind_ack())

    def send(self, from_client: bool, raw: bytes) -> None:
        self.frame += 1
        self.assoc.pdu(from_client, parse_co_pdu(raw), self.frame, self.frame * 1000, self.frame)

    def close(self) -> Sink:
        self.assoc.close()
        return self.sink


def open_service(name: str) -> bytes:
    req = scmr.ROpenServiceW()
    req["hSCManager"] = H1
    req["lpServiceName"] = name + "\x00"
    req["dwDesiredAccess"] = 0x10
    data: bytes = req.getData()
    return data


def start_service(handle: bytes) -> bytes:
    req = scmr.RStartServiceW()
    req["hService"] = handle
    req["argc"] = 0
    req["argv"] = NULL
    data: bytes = req.getData()
    return data


def test_handle_named_by_open_names_the_start() -> None:
    c = Conversation()
    c.send(True, request(2, 16, open_service("Spooler")))
    c.send(False, response(2, H2 + struct.pack("<I", 0)))
    c.send(True, request(3, 19, start_service(H2)))
    c.send(False, response(3, struct.pack("<I", 1056)))  # ERROR_SERVICE_ALREADY_RUNNING
    s = c.close()
    opened, started = s.calls
    assert opened.arguments == "service_name=Spooler" and opened.return_status == 0
    assert started.arguments == "service_name=Spooler"
    assert (started.return_status, started.return_kind) == (1056, "win32")
    assert not s.violations


def test_fragmented_request_is_reassembled_before_decoding() -> None:
    stub = open_service("A" * 40)
    c = Conversation()
    c.send(True, request(2, 16, stub[:30], FIRST))
    c.send(True, request(2, 16, stub[30:], LAST))
    c.send(False, response(2, H2 + struct.pack("<I", 0)))
    (call,) = c.close().calls
    assert call.arguments == "service_name=" + "A" * 40 and call.request_fragments == 2


def test_stub_cap_reports_and_keeps_the_row() -> None:
    c = Conversation(Limits(max_call_stub_bytes=16))
    c.send(True, request(2, 16, open_service("Spooler")))
    c.send(False, response(2, H2 + struct.pack("<I", 0)))
    s = c.close()
    (call,) = s.calls
    assert ("dcerpc", "cap_call_stub_bytes") in s.violations
    assert call.arguments is None and call.answered
    assert call.return_status == 0  # the tail of the answer is still read


def test_malformed_stub_is_a_violation_and_the_row_stays() -> None:
    c = Conversation()
    c.send(True, request(2, 16, H1 + struct.pack("<III", 0x7FFFFFFF, 0, 0x7FFFFFFF)))
    c.send(False, response(2, H2 + struct.pack("<I", 5)))
    s = c.close()
    (call,) = s.calls
    assert s.violations == [("stub", "stub_short_string")]
    assert call.return_status == 5 and call.arguments is None


def test_answer_captured_before_its_request_is_still_decoded() -> None:
    c = Conversation()
    c.send(False, response(2, H2 + struct.pack("<I", 0)))
    c.send(True, request(2, 16, open_service("Spooler")))
    (call,) = c.close().calls
    assert call.arguments == "service_name=Spooler" and call.return_status == 0


def test_unanswered_request_is_decoded_without_return_status() -> None:
    c = Conversation()
    c.send(True, request(2, 16, open_service("Spooler")))
    (call,) = c.close().calls
    assert call.arguments == "service_name=Spooler" and call.return_status is None


def test_ndr_caps_are_limits_and_report_their_code() -> None:
    c = Conversation(Limits(max_ndr_string_chars=3))
    c.send(True, request(2, 16, open_service("Spooler")))
    (call,) = c.close().calls
    assert c.sink.violations == [("stub", "cap_ndr_string_chars")] and call.arguments is None
    c = Conversation(Limits(max_ndr_elements=4))  # "Spooler\0" claims 8 characters
    c.send(True, request(2, 16, open_service("Spooler")))
    c.close()
    assert c.sink.violations == [("stub", "cap_ndr_elements")]
    c = Conversation(Limits(max_ndr_elements=8))
    c.send(True, request(2, 16, open_service("Spooler")))
    (call,) = c.close().calls
    assert c.sink.violations == [] and call.arguments == "service_name=Spooler"


def test_context_handle_names_are_capped_oldest_out() -> None:
    c = Conversation(Limits(max_context_handles=1))
    c.send(True, request(2, 16, open_service("Spooler")))
    c.send(False, response(2, H2 + struct.pack("<I", 0)))
    c.send(True, request(3, 16, open_service("Dnscache")))
    c.send(False, response(3, H1 + struct.pack("<I", 0)))
    c.send(True, request(4, 19, start_service(H2)))  # Spooler's handle: forgotten
    c.send(True, request(5, 19, start_service(H1)))
    s = c.close()
    assert s.violations == [("stub", "cap_context_handles")]
    assert [x.arguments for x in s.calls] == [
        "service_name=Spooler",
        "service_name=Dnscache",
        None,
        "service_name=Dnscache",
    ]


def test_a_repeated_stub_still_gets_each_associations_handle_name() -> None:
    """The decode memo (analyzer.stubs.memo) keeps no result that read a handle name: the same
    RStartServiceW bytes on two associations name each one's own service."""
    names = []
    for service in ("Spooler", "Dnscache"):
        c = Conversation()
        c.send(True, request(2, 16, open_service(service)))
        c.send(False, response(2, H2 + struct.pack("<I", 0)))
        c.send(True, request(3, 19, start_service(H2)))
        names.append(c.close().calls[1].arguments)
    assert names == ["service_name=Spooler", "service_name=Dnscache"]


def test_repeated_stubs_are_decoded_once_per_ndr_limits() -> None:
    from analyzer.dcerpc.decoding import Stubs
    from analyzer.stubs import decode
    from analyzer.stubs.registry import StubState

    stub = Stubs(False, open_service("Spooler"), True, None, True, None)
    default, capped = stub_decoder(Limits()), stub_decoder(Limits(max_ndr_string_chars=3))
    first = default.decode(SVCCTL, 16, stub)
    assert first is not None and default.decode(SVCCTL, 16, stub) is first  # remembered
    fresh = decode(SVCCTL, 16, stub, StubState())
    assert fresh is not None and (first.arguments, first.violations) == (fresh.arguments, fresh.violations)
    other = capped.decode(SVCCTL, 16, stub)  # other limits: decoded anew, and capped
    assert other is not None and other.violations == [
        ("stub", "cap_ndr_string_chars", "request: string of 8 characters")
    ]


def test_the_decode_memo_is_bounded() -> None:
    from analyzer.dcerpc.decoding import Stubs
    from analyzer.stubs import memo

    d = stub_decoder(Limits())
    for i in range(memo._ENTRIES + 300):
        d.decode(SVCCTL, 16, Stubs(False, open_service(f"svc{i}"), True, None, True, None))
    assert len(memo.MEMO) <= memo._ENTRIES
    big = Stubs(False, open_service("x" * memo._STUB_BYTES), True, None, True, None)
    assert d.decode(SVCCTL, 16, big) is not d.decode(SVCCTL, 16, big)  # too big to keep


def test_a_stub_in_a_mutable_buffer_is_decoded_not_remembered() -> None:
    from analyzer.dcerpc.decoding import Stubs

    stub = Stubs(False, bytearray(open_service("Spooler")), True, None, True, None)  # type: ignore[arg-type]
    out = stub_decoder(Limits()).decode(SVCCTL, 16, stub)
    assert out is not None and out.arguments == "service_name=Spooler"
