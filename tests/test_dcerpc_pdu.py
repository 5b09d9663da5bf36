"""Connection-oriented PDUs ([C706] 12.6) and their framing, against scapy's encoder."""

from __future__ import annotations

import contextlib
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.dcerpc.pdu import Bind, BindAck, Fault, Request, Response, parse_co_pdu, plausible_co_header
from analyzer.dcerpc.probe import co_bind_probe
from analyzer.dcerpc.stream import CoStream
from analyzer.dcerpc.wire import Malformed
from analyzer.limits import Limits
from analyzer.ntlm import NtlmIdentity, ntlm_identity
from tests.conftest import BTFN, NDR, NDR64, SVCCTL, bind, bind_ack, fault, request, response, split_points


def test_bind_items_and_versions() -> None:
    raw = bind(7, [(0, SVCCTL, 2, [NDR]), (1, SVCCTL, 2, [NDR64]), (2, SVCCTL, 2, [BTFN])])
    pdu = parse_co_pdu(raw)
    assert isinstance(pdu, Bind)
    assert pdu.header.call_id == 7 and pdu.header.little
    assert [(c.ctx_id, c.abstract.uuid, c.abstract.major) for c in pdu.contexts] == [
        (0, SVCCTL, 2),
        (1, SVCCTL, 2),
        (2, SVCCTL, 2),
    ]
    assert [c.transfers[0].uuid for c in pdu.contexts] == [NDR, NDR64, BTFN]
    assert pdu.max_xmit_frag == 5840


def test_alter_context_and_big_endian_bind() -> None:
    pdu = parse_co_pdu(bind(3, [(4, SVCCTL, 2, [NDR])], alter=True, endian="big"))
    assert isinstance(pdu, Bind) and pdu.header.ptype == 14 and not pdu.header.little
    assert pdu.contexts[0].abstract.uuid == SVCCTL and pdu.contexts[0].ctx_id == 4


def test_bind_ack_results_and_secondary_address() -> None:
    pdu = parse_co_pdu(
        bind_ack(
            7,
            [(0, 0, NDR), (2, 2, "00000000-0000-0000-0000-000000000000"), (3, 3, NDR)],
            sec_addr=b"49667\x00",
        )
    )
    assert isinstance(pdu, BindAck)
    assert pdu.sec_addr == "49667"
    assert [(r.result, r.reason) for r in pdu.results] == [(0, 0), (2, 2), (3, 3)]


def test_request_response_fault() -> None:
    req = parse_co_pdu(request(9, 12, b"abcdefgh", ctx_id=1))
    assert isinstance(req, Request)
    assert (req.opnum, req.ctx_id, req.raw[req.stub_start : req.stub_end]) == (12, 1, b"abcdefgh")
    resp = parse_co_pdu(response(9, b"xyz!", ctx_id=1, endian="big"))
    assert isinstance(resp, Response) and not resp.header.little
    assert resp.raw[resp.stub_start : resp.stub_end] == b"xyz!"
    f = parse_co_pdu(fault(9, 0x1C010002))
    assert isinstance(f, Fault) and f.status == 0x1C010002


def _ntlm_authenticate(user: str, domain: str, ws: str) -> bytes:
    """An NTLMSSP AUTHENTICATE_MESSAGE ([MS-NLMP] 2.2.1.3), unicode, built field by field."""
    fields = [b"", b"", domain.encode("utf-16-le"), user.encode("utf-16-le"), ws.encode("utf-16-le"), b""]
    off = 88
    head = b"NTLMSSP\x00" + struct.pack("<I", 3)
    body = b""
    descs = b""
    for f in fields:
        descs += struct.pack("<HHI", len(f), len(f), off + len(body))
        body += f
    flags = struct.pack("<I", 0x00000001 | 0x00080000)
    msg = head + descs + flags + b"\0" * (88 - 12 - 48 - 4) + body
    return msg


def test_request_with_auth_verifier_and_ntlm_identity() -> None:
    token = _ntlm_authenticate("alice", "CORP", "WS01")
    assert ntlm_identity(token) == NtlmIdentity("alice", "CORP", "WS01")
    # wrapped in SPNEGO-like DER bytes: found by its signature
    assert ntlm_identity(b"\xa1\x82\x01\x00\x30\x82" + token) == NtlmIdentity("alice", "CORP", "WS01")
    stub = b"S" * 10
    pad = (-len(stub)) % 4
    trailer = bytes([10, 6, pad, 0]) + struct.pack("<I", 79)
    body = struct.pack("<IHH", len(stub), 0, 5) + stub + b"\0" * pad + trailer + b"\x01" * 16
    header = struct.pack("<BBBB4sHHI", 5, 0, 0, 3, b"\x10\0\0\0", 16 + len(body), 16, 4)
    pdu = parse_co_pdu(header + body)
    assert isinstance(pdu, Request) and pdu.auth is not None
    assert (pdu.auth.auth_type, pdu.auth.auth_level, pdu.auth.auth_context_id) == (10, 6, 79)
    assert pdu.raw[pdu.stub_start : pdu.stub_end] == stub


@pytest.mark.parametrize(
    "raw, what",
    [
        (
            b"\x05\x00\x0b\x03\x10\x00\x00\x00\x20\x00\x00\x00\x01\x00\x00\x00" + b"\0" * 8 + b"\x01" + b"\0" * 7,
            "short_context_item",
        ),
        (
            b"\x05\x00\x0c\x03\x10\x00\x00\x00\x1a\x00\x00\x00\x01\x00\x00\x00" + b"\0" * 8 + b"\xff\x00",
            "short_sec_addr",
        ),
        (b"\x05\x00\x00\x03\x10\x00\x00\x00\x14\x00\x00\x00\x01\x00\x00\x00abcd", "short_request"),
    ],
)
def test_malformed_bodies_raise_malformed(raw: bytes, what: str) -> None:
    with pytest.raises(Malformed) as e:
        parse_co_pdu(raw)
    assert e.value.what == what


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=16, max_size=300))
def test_any_bytes_parse_or_are_malformed(raw: bytes) -> None:
    """For any bytes: a PDU, or Malformed. Nothing else escapes."""
    data = b"\x05\x00" + raw[2:4] + b"\x10\x00\x00\x00" + struct.pack("<H", len(raw)) + raw[10:]
    with contextlib.suppress(Malformed):
        parse_co_pdu(data)


def test_header_plausibility() -> None:
    assert plausible_co_header(bind(1, [(0, SVCCTL, 2, [NDR])])) == 72
    assert plausible_co_header(b"\x05\x00\x0b\x03\x10\x00\x00\x00\x0f\x00\x00\x00\x01\x00\x00\x00") == 0  # frag<16
    assert plausible_co_header(b"\x05\x00\x05\x03\x10\x00\x00\x00\x40\x00\x00\x00\x01\x00\x00\x00") == 0  # CL type
    assert plausible_co_header(b"\x05\x00\x0b\x03\x10\x00\x01\x00\x40\x00\x00\x00\x01\x00\x00\x00") == 0  # drep
    assert plausible_co_header(b"\x04\x00\x0b\x03\x10\x00\x00\x00\x40\x00\x00\x00\x01\x00\x00\x00") == 0


def test_bind_probe_accepts_real_binds_only() -> None:
    raw = bind(1, [(0, SVCCTL, 2, [NDR])])
    assert co_bind_probe(raw, 0, len(raw))
    assert co_bind_probe(bind(1, [(0, SVCCTL, 2, [BTFN])]), 0, 72)
    assert co_bind_probe(raw[:40], 0, 40)  # split bind: header only
    assert not co_bind_probe(request(1, 1, b"x" * 40), 0, 64)  # a request does not start a conversation
    odd = bytearray(raw)
    odd[52:68] = b"\x11" * 16  # an unknown transfer syntax
    assert not co_bind_probe(bytes(odd), 0, len(odd))


@settings(max_examples=1000, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_bind_probe_rejects_random_payloads(raw: bytes) -> None:
    # a random payload passes only if it really is a plausible bind header with a known syntax
    if co_bind_probe(raw, 0, len(raw)):
        assert raw[0] == 5 and raw[2] in (11, 14) and plausible_co_header(raw) >= 72


class Events:
    def __init__(self) -> None:
        self.pdus: list[tuple[int, int, int, int]] = []  # (ptype, call_id, frame, first_frame)
        self.violations: list[str] = []

    def pdu(self, pdu: object, frame: int, ts: int, first: int) -> None:
        h = pdu.header  # type: ignore[attr-defined]
        self.pdus.append((h.ptype, h.call_id, frame, first))

    def violation(self, frame: int, what: str, detail: str, count: int) -> None:
        self.violations.extend([what] * count)


def _stream() -> tuple[CoStream, Events]:
    ev = Events()
    return CoStream(ev.pdu, ev.violation, Limits()), ev


STREAM = (
    bind(1, [(0, SVCCTL, 2, [NDR])])
    + request(2, 15, b"q" * 300)
    + request(3, 16, b"r" * 5, endian="big")
    + request(4, 17, b"s" * 2000, flags=1)
    + request(4, 17, b"t" * 20, flags=2)
)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cuts=st.integers(0, 40))
def test_stream_framing_is_independent_of_segmentation(seed: int, cuts: int) -> None:
    whole, ev_whole = _stream()
    whole.data(STREAM, 1, 0)
    split, ev_split = _stream()
    for frame, chunk in enumerate(split_points(STREAM, random.Random(seed), cuts), 1):
        split.data(chunk, frame, 0)
    assert [p[:2] for p in ev_split.pdus] == [p[:2] for p in ev_whole.pdus]
    assert [p[:2] for p in ev_whole.pdus] == [(11, 1), (0, 2), (0, 3), (0, 4), (0, 4)]
    assert not ev_split.violations and not ev_whole.violations


def test_frame_completing_a_pdu_is_the_one_with_its_last_byte() -> None:
    s, ev = _stream()
    first = bind(1, [(0, SVCCTL, 2, [NDR])])
    s.data(first[:30], 10, 0)
    s.data(first[30:] + request(2, 1, b"abc")[:5], 11, 0)
    s.data(request(2, 1, b"abc")[5:], 12, 0)
    assert ev.pdus == [(11, 1, 11, 10), (0, 2, 12, 11)]


def test_resync_after_gap_and_junk() -> None:
    s, ev = _stream()
    s.data(b"\x00garbage before any header" + bind(1, [(0, SVCCTL, 2, [NDR])]), 1, 0)
    r = request(2, 1, b"x" * 100)
    s.data(r[:50], 2, 0)
    s.gap(200, 3, 0)
    s.data(b"tail of a lost PDU" + request(3, 1, b"y" * 10), 3, 0)
    assert [(p[0], p[1]) for p in ev.pdus] == [(11, 1), (0, 3)]
    assert "resync" in ev.violations and "pdu_lost_in_gap" in ev.violations


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=120), max_size=12))
def test_stream_never_raises(chunks: list[bytes]) -> None:
    s, _ev = _stream()
    for i, c in enumerate(chunks):
        s.data(c, i + 1, 0)
        if i % 5 == 4:
            s.gap(3, i + 1, 0)
