"""Connectionless DCE/RPC ([C706] 12.5): header parsing, the UDP probe, and the call tracker.

PDUs are built by `encode` below, a struct encoder written from [C706] 12.5.3.1 and checked
byte for byte against scapy's DceRpc4 layer (an encoder independent of the analyzer), and by real
header bytes copied from a PROFINET capture with the values tshark shows for them.
"""

from __future__ import annotations

import csv
import socket
import struct
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.dcerpc.cl import (
    CL_FLAG_FRAG,
    CL_FLAG_LASTFRAG,
    CL_FLAG_MAYBE,
    ClTracker,
    cl_probe,
    parse_cl_header,
)
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
from analyzer.dcerpc.wire import Malformed
from analyzer.limits import Limits
from analyzer.model import CallRecord, DatagramRecord, EndpointRecord, Flow
from analyzer.stubs import stub_decoder

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CAPTURES = SHARED / "captures"
TRUTH = CAPTURES / "truth"
needs_shared = pytest.mark.skipif(
    not TRUTH.is_dir(), reason=f"reference captures not found at {CAPTURES} (clone ../shared beside the repo)"
)

NIL = "00000000-0000-0000-0000-000000000000"
NDR = "8a885d04-1ceb-11c9-9fe8-08002b104860"
EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
PNIO = "dea00001-6c97-11d1-8271-00a02442df7d"
PNIO_OBJ = "dea00000-6c97-11d1-8271-00010003015a"
ACT = "13142f90-0000-1000-a994-d2106890ca5a"
ACT2 = "2d5fae08-0007-1000-8001-00099143e067"

CLIENT = ("192.168.1.3", 65151)
SERVER = ("192.168.1.2", 34964)
SERVER_EPH = ("192.168.1.2", 49152)  # where PROFINET devices answer from
MS = 1_000_000


# -- encoders -------------------------------------------------------------------------------------


def _uuid_bytes(text: str, little: bool) -> bytes:
    u = uuid.UUID(text)
    return u.bytes_le if little else u.bytes


def encode(
    ptype: int = REQUEST,
    *,
    little: bool = True,
    ebcdic: bool = False,
    float_rep: int = 0,
    flags1: int = 0,
    flags2: int = 0,
    serial: int = 0,
    obj: str = NIL,
    iface: str = PNIO,
    act: str = ACT,
    boot: int = 0,
    if_vers: int = 1,
    seqnum: int = 0,
    opnum: int = 0,
    ihint: int = 0xFFFF,
    ahint: int = 0xFFFF,
    fragnum: int = 0,
    body: bytes = b"",
    auth_proto: int = 0,
    verifier: bytes = b"",
    body_len: int | None = None,
) -> bytes:
    """A connectionless PDU, field by field as [C706] 12.5.3.1 lays the header out."""
    e = "<" if little else ">"
    drep = bytes([(0x10 if little else 0x00) | (1 if ebcdic else 0), float_rep, 0])
    out = bytes([4, ptype, flags1, flags2]) + drep + bytes([serial >> 8])
    out += _uuid_bytes(obj, little) + _uuid_bytes(iface, little) + _uuid_bytes(act, little)
    out += struct.pack(e + "III", boot, if_vers, seqnum)
    out += struct.pack(e + "HHH", opnum, ihint, ahint)
    out += struct.pack(e + "HH", len(body) if body_len is None else body_len, fragnum)
    out += bytes([auth_proto, serial & 0xFF])
    return out + body + verifier


def status_body(status: int, little: bool) -> bytes:
    return struct.pack("<I" if little else ">I", status)


# An endpoint-mapper answer ([C706] Appendix I/L): towers are little-endian whatever the PDU says
# (ports and addresses big-endian); the NDR around them follows the PDU's byte order.


def _floor(lhs: bytes, rhs: bytes) -> bytes:
    return struct.pack("<H", len(lhs)) + lhs + struct.pack("<H", len(rhs)) + rhs


def _uuid_floor(u: str, major: int, minor: int = 0) -> bytes:
    return _floor(b"\x0d" + uuid.UUID(u).bytes_le + struct.pack("<H", major), struct.pack("<H", minor))


def udp_tower(iface: str, major: int, port: int, ip: str) -> bytes:
    floors = [
        _uuid_floor(iface, major),
        _uuid_floor(NDR, 2),
        _floor(b"\x0a", b"\0\0"),
        _floor(b"\x08", struct.pack(">H", port)),
        _floor(b"\x09", socket.inet_aton(ip)),
    ]
    return struct.pack("<H", len(floors)) + b"".join(floors)


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def map_response(towers: list[bytes], little: bool, status: int = 0) -> bytes:
    e = "<" if little else ">"
    out = struct.pack(e + "I", 0) + bytes(16)  # entry handle
    out += struct.pack(e + "I", len(towers)) + struct.pack(e + "III", len(towers), 0, len(towers))
    out += b"".join(struct.pack(e + "I", 0x1000 + i) for i in range(len(towers)))
    for t in towers:
        out += _pad4(struct.pack(e + "II", len(t), len(t)) + t)
    return out + struct.pack(e + "I", status)


def lookup_response(entries: list[tuple[str, bytes, str]], little: bool) -> bytes:
    e = "<" if little else ">"
    out = struct.pack(e + "I", 0) + bytes(16) + struct.pack(e + "I", len(entries))
    out += struct.pack(e + "III", len(entries), 0, len(entries))
    for i, (obj, _t, ann) in enumerate(entries):
        text = ann.encode() + b"\0"
        out += _uuid_bytes(obj, little) + struct.pack(e + "I", 0x2000 + i)
        out += _pad4(struct.pack(e + "II", 0, len(text)) + text)
    for _obj, t, _ann in entries:
        out += _pad4(struct.pack(e + "II", len(t), len(t)) + t)
    return out + struct.pack(e + "I", 0)


# -- a tracker and what it emits --------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.datagrams: list[DatagramRecord] = []
        self.calls: list[CallRecord] = []
        self.endpoints: list[EndpointRecord] = []
        self.violations: list[tuple[Flow, int | None, str, str, str]] = []
        self.order: list[Any] = []

    def bind(self, rec: Any) -> None:
        raise AssertionError("no binds in connectionless DCE/RPC")

    def call(self, rec: CallRecord) -> None:
        self.calls.append(rec)
        self.order.append(rec)

    def endpoint(self, rec: EndpointRecord) -> None:
        self.endpoints.append(rec)
        self.order.append(rec)

    def datagram(self, rec: DatagramRecord) -> None:
        self.datagrams.append(rec)
        self.order.append(rec)

    def violation(self, flow: Flow, frame: int | None, layer: str, what: str, detail: str) -> None:
        self.violations.append((flow, frame, layer, what, detail))
        self.order.append((flow, frame, layer, what, detail))

    def whats(self) -> list[str]:
        return [v[3] for v in self.violations]


def flow_for(ci: str, cp: int, si: str, sp: int) -> Flow:
    # Order-independent on purpose (stream 0): the lead's stream numbering is not under test here.
    return Flow("test", 0, "ncadg_ip_udp", ci, cp, si, sp)


class Feeder:
    def __init__(self, limits: Limits | None = None) -> None:
        self.sink = Sink()
        self.tracker = ClTracker(self.sink, limits or Limits(), flow_for, decoder=stub_decoder())
        self.frame = 0

    def send(self, src: tuple[str, int], dst: tuple[str, int], data: bytes, ts: int | None = None) -> int:
        self.frame += 1
        self.tracker.datagram(src[0], src[1], dst[0], dst[1], data, self.frame, self.frame * MS if ts is None else ts)
        return self.frame

    def close(self) -> Sink:
        self.tracker.close()
        return self.sink


# -- header ---------------------------------------------------------------------------------------

# Frames 1 and 2 of icsnpp-profinet-io-cm/testing/traces/profinet_io_cm_connect.pcapng: a big-endian
# Connect request (457 stub bytes) and its little-endian response (140), as tshark shows them.
REAL_BE = bytes.fromhex(
    "0400200000000000dea000006c9711d1827100010003015adea000016c9711d1827100a02442df7d"
    "13142f9000001000a994d2106890ca5a0000000000000001000000000000ffffffff01c900000000"
)
REAL_LE = bytes.fromhex(
    "04022800100000000000a0de976cd111827100010003015a0100a0de976cd111827100a02442df7d"
    "902f141300000010a994d2106890ca5a0200000001000000000000000000ffffffff8c0000000000"
)


def test_real_big_endian_header_as_tshark_reads_it() -> None:
    h = parse_cl_header(REAL_BE + bytes(457))
    assert (h.rpc_vers, h.ptype, h.flags1, h.flags2, h.little, h.char_ebcdic) == (
        4,
        REQUEST,
        0x20,
        0,
        False,
        False,
    )
    assert h.object_uuid == PNIO_OBJ and h.object_or_none == PNIO_OBJ
    assert h.interface_uuid == PNIO
    assert h.activity_uuid == ACT
    assert (h.server_boot, h.if_vers, h.if_major, h.if_minor) == (0, 1, 1, 0)
    assert (h.seqnum, h.opnum, h.ihint, h.ahint, h.body_len, h.fragnum) == (0, 0, 0xFFFF, 0xFFFF, 457, 0)
    assert (h.auth_proto, h.serial, h.auth) == (0, 0, None)
    assert len(h.body) == 457


def test_real_little_endian_header_as_tshark_reads_it() -> None:
    h = parse_cl_header(REAL_LE + bytes(140))
    assert (h.ptype, h.flags1, h.little) == (RESPONSE, 0x28, True)
    assert (h.object_uuid, h.interface_uuid, h.activity_uuid) == (PNIO_OBJ, PNIO, ACT)
    assert (h.server_boot, h.if_vers, h.seqnum, h.opnum, h.body_len) == (2, 1, 0, 0, 140)


@pytest.mark.parametrize("little", [True, False])
def test_every_field_in_both_byte_orders(little: bool) -> None:
    data = encode(
        FAULT,
        little=little,
        ebcdic=True,
        float_rep=1,
        flags1=0x2A,
        flags2=0x02,
        serial=0x1234,
        obj=PNIO_OBJ,
        iface=EPM,
        act=ACT2,
        boot=0xDEADBEEF,
        if_vers=(7 << 16) | 3,
        seqnum=0x01020304,
        opnum=0x0506,
        ihint=0x0708,
        ahint=0x090A,
        fragnum=0x0B0C,
        body=status_body(0x1C010003, little),
        auth_proto=10,
        verifier=b"\x01" * 16,
    )
    h = parse_cl_header(data)
    assert h.little is little and h.char_ebcdic and h.float_rep == 1
    assert (h.flags1, h.flags2, h.serial_hi, h.serial_lo, h.serial) == (0x2A, 0x02, 0x12, 0x34, 0x1234)
    assert (h.object_uuid, h.interface_uuid, h.activity_uuid) == (PNIO_OBJ, EPM, ACT2)
    assert (h.server_boot, h.if_major, h.if_minor, h.seqnum) == (0xDEADBEEF, 3, 7, 0x01020304)
    assert (h.opnum, h.ihint, h.ahint, h.body_len, h.fragnum) == (0x0506, 0x0708, 0x090A, 4, 0x0B0C)
    assert (h.auth_proto, h.auth, h.status()) == (10, b"\x01" * 16, 0x1C010003)


def test_nil_object_reads_as_none() -> None:
    assert parse_cl_header(encode()).object_or_none is None


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"", "short_header"),
        (encode()[:79], "short_header"),
        (b"\x05" + encode()[1:], "bad_version"),
        (encode(11), "bad_ptype"),
        (encode(body=b"abc", body_len=4), "short_body"),
    ],
)
def test_malformed_headers(data: bytes, what: str) -> None:
    with pytest.raises(Malformed) as e:
        parse_cl_header(data)
    assert e.value.what == what


uuids = st.uuids().map(str)


@settings(max_examples=60, deadline=None)
@given(
    little=st.booleans(),
    ptype=st.integers(0, 10),
    flags1=st.integers(0, 255),
    flags2=st.integers(0, 3),
    serial=st.integers(0, 0xFFFF),
    obj=uuids,
    iface=uuids,
    act=uuids,
    boot=st.integers(0, 2**32 - 1),
    if_vers=st.integers(0, 2**32 - 1),
    seqnum=st.integers(0, 2**32 - 1),
    opnum=st.integers(0, 0xFFFF),
    fragnum=st.integers(0, 0xFFFF),
    body=st.binary(max_size=40),
)
def test_encoder_agrees_with_scapy_and_parser_reads_scapy(
    little: bool,
    ptype: int,
    flags1: int,
    flags2: int,
    serial: int,
    obj: str,
    iface: str,
    act: str,
    boot: int,
    if_vers: int,
    seqnum: int,
    opnum: int,
    fragnum: int,
    body: bytes,
) -> None:
    scapy_dcerpc = pytest.importorskip("scapy.layers.dcerpc")
    from scapy.packet import Raw

    pkt = scapy_dcerpc.DceRpc4(
        endian=1 if little else 0,
        ptype=ptype,
        flags1=flags1,
        flags2=flags2,
        serial_hi=serial >> 8,
        serial_lo=serial & 0xFF,
        object=uuid.UUID(obj),
        if_id=uuid.UUID(iface),
        act_id=uuid.UUID(act),
        server_boot=boot,
        if_vers=if_vers,
        seqnum=seqnum,
        opnum=opnum,
        fragnum=fragnum,
    ) / Raw(body)
    theirs = bytes(pkt)
    assert theirs == encode(
        ptype,
        little=little,
        flags1=flags1,
        flags2=flags2,
        serial=serial,
        obj=obj,
        iface=iface,
        act=act,
        boot=boot,
        if_vers=if_vers,
        seqnum=seqnum,
        opnum=opnum,
        fragnum=fragnum,
        body=body,
    )
    h = parse_cl_header(theirs)
    assert (h.ptype, h.flags1, h.flags2, h.serial, h.little) == (ptype, flags1, flags2, serial, little)
    assert (h.object_uuid, h.interface_uuid, h.activity_uuid) == (obj, iface, act)
    assert (h.server_boot, h.if_vers, h.seqnum, h.opnum, h.fragnum, h.body) == (
        boot,
        if_vers,
        seqnum,
        opnum,
        fragnum,
        body,
    )
    assert cl_probe(theirs, 0, len(theirs)) == (act != NIL)


# -- probe ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("little", [True, False])
@pytest.mark.parametrize("ptype", range(11))
def test_probe_accepts_every_connectionless_type(little: bool, ptype: int) -> None:
    data = b"junk" + encode(ptype, little=little, body=b"\0" * 12) + b"tail"
    assert cl_probe(data, 4, len(data) - 4)
    assert cl_probe(REAL_BE + bytes(457), 0, 80 + 457)
    authed = encode(REQUEST, auth_proto=10, verifier=b"\x01" * 16, body=b"stub")
    assert cl_probe(authed, 0, len(authed))


@pytest.mark.parametrize(
    "data",
    [
        encode(body=b"abcd")[:-1],  # len says more than there is
        encode(body=b"abcd") + b"\0",  # a trailing byte without a verifier
        b"\x05" + encode()[1:],  # connection-oriented version
        encode(11),  # not a connectionless type
        encode()[:3] + b"\x04" + encode()[4:],  # flags2 bits that must be zero
        encode()[:4] + b"\x20" + encode()[5:],  # integer representation 2
        encode()[:5] + b"\x04" + encode()[6:],  # float representation 4
        encode()[:6] + b"\x01" + encode()[7:],  # reserved drep byte
        encode(act=NIL),  # no activity
        encode(auth_proto=10),  # a verifier announced, none there
        encode(auth_proto=10, verifier=bytes(4096)),  # a "verifier" far too long
        encode()[:79],  # shorter than a header
    ],
)
def test_probe_rejects_near_misses(data: bytes) -> None:
    assert not cl_probe(data, 0, len(data))


@settings(max_examples=500)
@given(st.binary(max_size=600))
def test_probe_never_fires_on_random_payloads(data: bytes) -> None:
    assert not cl_probe(data, 0, len(data))


@settings(max_examples=500)
@given(st.binary(min_size=79, max_size=600))
def test_probe_never_fires_on_random_payloads_that_start_like_version_4(rest: bytes) -> None:
    data = b"\x04" + rest
    assert not cl_probe(data, 0, len(data))


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


def _act(i: int) -> str:
    return f"{i:08x}-0000-1000-8000-000000000000"


def test_pending_calls_cap_flushes_the_oldest() -> None:
    f = Feeder(Limits(max_pending_calls=2))
    for i in range(3):
        f.send(CLIENT, SERVER, encode(REQUEST, act=_act(i)))
    assert [c.activity_uuid for c in f.sink.calls] == [_act(0)]
    assert f.sink.whats() == ["cap_pending_calls"]
    f.send(SERVER, CLIENT, encode(RESPONSE, act=_act(2)))
    s = f.close()
    assert sorted((c.activity_uuid, c.answered) for c in s.calls) == [
        (_act(0), False),
        (_act(1), False),
        (_act(2), True),
    ]


def test_pending_fragments_cap_gives_up_the_oldest_reassembly() -> None:
    f = Feeder(Limits(max_pending_fragments=1))
    f.send(CLIENT, SERVER, encode(REQUEST, act=_act(0), flags1=CL_FLAG_FRAG, fragnum=0, body=b"a"))
    f.send(CLIENT, SERVER, encode(REQUEST, act=_act(1), flags1=CL_FLAG_FRAG, fragnum=0, body=b"b"))
    assert f.sink.whats() == ["cap_pending_fragments"]
    assert [(c.activity_uuid, c.request_fragments) for c in f.sink.calls] == [(_act(0), 1)]
    f.send(CLIENT, SERVER, encode(REQUEST, act=_act(1), flags1=CL_FLAG_FRAG | CL_FLAG_LASTFRAG, fragnum=1))
    s = f.close()
    assert [(c.activity_uuid, c.request_fragments) for c in s.calls] == [(_act(0), 1), (_act(1), 2)]


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


# -- properties ---------------------------------------------------------------------------------------

Datagram = tuple[tuple[str, int], tuple[str, int], bytes, int, int]  # src, dst, data, frame, ts


@st.composite
def activity_script(draw: st.DrawFn, index: int) -> list[Datagram]:
    """The datagrams of one activity: calls with fragmented requests and answers, retransmissions,
    pings, facks and acks, in the order one client and its server would send them."""
    act = _act(index + 1)
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
            act=_act(seq % 2),
            body=body,
            auth_proto=1 if cut == 90 else 0,
        )
        if cut < 80:
            data = data[: len(data) - cut]
        src, dst = (SERVER, CLIENT) if reverse else (CLIENT, SERVER)
        f.send(src, dst, data)
    f.close()


# -- the reference captures ---------------------------------------------------------------------------


def _truth_files() -> list[Path]:
    # Without ../shared, one placeholder that `needs_shared` skips with its reason.
    return sorted(TRUTH.glob("*.cl.csv")) if TRUTH.is_dir() else [TRUTH / "absent.cl.csv"]


def _capture_of(truth: Path) -> Path:
    return CAPTURES / truth.name[: -len(".cl.csv")].replace("__", "/")


def _udp_payloads(path: Path, probe: Any) -> list[tuple[int, int, str, int, str, int, bytes]]:
    """(frame, ts, src, sport, dst, dport, payload) of the UDP datagrams the decoder selects, with
    ports 135 and 34964 known and `probe` for the others, as the pipeline is to use it."""
    from analyzer.capture import PacketDecoder, Selector, open_capture
    from analyzer.capture.ipfrag import Defragmenter

    sel = Selector()
    sel.udp_ports.update({135, 34964})
    sel.udp_probe = probe
    decoder = PacketDecoder(sel, Defragmenter(Limits()))
    out = []
    reader = open_capture(str(path))
    try:
        for frame, (ts, link, buf, start, end) in enumerate(reader, 1):
            p = decoder.decode(link, buf, start, end, frame, ts)
            if p is None or p.proto != 17:
                continue
            fam = socket.AF_INET if len(p.src) == 4 else socket.AF_INET6
            src, dst = socket.inet_ntop(fam, p.src), socket.inet_ntop(fam, p.dst)
            out.append((frame, ts, src, p.sport, dst, p.dport, bytes(p.payload)))
    finally:
        reader.close()
    return out


Row = tuple[int, str, int, str, int, int, str, int, int, str, str, int, int, str, int, int]


def _truth_rows(truth: Path) -> Counter[Row]:
    with truth.open(newline="") as fh:
        return Counter(
            (
                int(r["frame"]),
                r["src_ip"],
                int(r["src_port"]),
                r["dst_ip"],
                int(r["dst_port"]),
                int(r["pkt_type"]),
                r["if_uuid"].lower(),
                int(r["if_ver"]),
                int(r["opnum"]),
                r["object_uuid"].lower(),
                r["activity_uuid"].lower(),
                int(r["seqnum"]),
                int(r["frag_num"]),
                r["flags1"].lower(),
                int(r["drep_byteorder"]),
                int(r["drep_char"]),
            )
            for r in csv.DictReader(fh)
        )


def _our_row(d: DatagramRecord) -> Row:
    f = d.flow
    client, server = (f.client_ip, f.client_port), (f.server_ip, f.server_port)
    src, dst = (client, server) if d.from_client else (server, client)
    return (
        d.frame,
        *src,
        *dst,
        d.ptype,
        d.interface_uuid,
        d.if_major | d.if_minor << 16,
        d.opnum,
        d.object_uuid or NIL,
        d.activity_uuid,
        d.seqnum,
        d.fragnum,
        f"0x{d.flags1:02x}",
        int(d.little),
        int(d.char_ebcdic),
    )


@needs_shared
@pytest.mark.shared
@pytest.mark.parametrize("truth", _truth_files(), ids=lambda p: p.name)
def test_agrees_with_the_truth(truth: Path) -> None:
    """Every PDU tshark saw is one of our datagram records, field for field, and nothing else is;
    every answer tshark saw answered one of our calls (or its request is not in the capture)."""
    sink = Sink()
    flows: dict[tuple[str, int, str, int], Flow] = {}

    def numbered(ci: str, cp: int, si: str, sp: int) -> Flow:
        key = (ci, cp, si, sp)
        if key not in flows:
            flows[key] = Flow(truth.name, len(flows), "ncadg_ip_udp", ci, cp, si, sp)
        return flows[key]

    tracker = ClTracker(sink, Limits(), numbered, decoder=stub_decoder())
    for frame, ts, src, sport, dst, dport, payload in _udp_payloads(_capture_of(truth), cl_probe):
        tracker.datagram(src, sport, dst, dport, payload, frame, ts)
    tracker.close()
    expected = _truth_rows(truth)
    ours = Counter(_our_row(d) for d in sink.datagrams)
    assert ours - expected == Counter(), "records the truth does not have"
    assert expected - ours == Counter(), "truth rows we did not produce"
    assert not [v for v in sink.violations if v[3] != "answer_without_request"]
    answered = {(c.activity_uuid, c.seqnum) for c in sink.calls if c.answered}
    orphans = {v[4] for v in sink.violations}
    for row in expected:
        if row[5] in (RESPONSE, FAULT, REJECT):
            assert (row[10], row[11]) in answered or f"activity {row[10]} seqnum {row[11]}" in orphans


@needs_shared
@pytest.mark.shared
def test_probe_fires_exactly_on_the_truth_across_all_captures() -> None:
    """Over every UDP payload of every reference capture (DNS, NetBIOS, SSDP, LLMNR, mDNS, QUIC,
    CLDAP, Kerberos, DHCP, NTP, PROFINET ...), the probe fires on the connectionless PDUs tshark
    found and on nothing else."""
    index = CAPTURES / "index.csv"
    if not index.exists():
        pytest.skip(f"{index} is missing")
    with index.open(newline="") as fh:
        paths = [CAPTURES / r["local_path"] for r in csv.DictReader(fh)]
    seen = 0
    for path in paths:
        truth = TRUTH / (path.relative_to(CAPTURES).as_posix().replace("/", "__") + ".cl.csv")
        frames = {row[0] for row in _truth_rows(truth)} if truth.exists() else set()
        try:
            payloads = _udp_payloads(path, lambda buf, start, end: True)
        except Exception as e:  # an unreadable capture is the capture layer's business
            if type(e).__name__ != "CaptureError":
                raise
            continue
        fired = {frame for frame, _ts, _s, _sp, _d, _dp, p in payloads if cl_probe(p, 0, len(p))}
        assert fired == frames, path
        seen += len(payloads)
    assert seen > 10_000
