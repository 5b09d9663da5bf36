"""Connectionless PDUs ([C706] 12.5.3.1): the header in both byte orders, as tshark reads real
PROFINET bytes and as scapy's DceRpc4 encodes them, malformed headers, and the UDP probe."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.dcerpc.cl_pdu import cl_probe, parse_cl_header
from analyzer.dcerpc.constants import (
    FAULT,
    REQUEST,
    RESPONSE,
)
from analyzer.dcerpc.wire import Malformed
from tests.cl_build import (
    ACT,
    ACT2,
    EPM,
    NIL,
    PNIO,
    PNIO_OBJ,
    encode,
    status_body,
)

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
