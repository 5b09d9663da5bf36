"""RPC over HTTP ([MS-RPCH]): RTS PDUs, channel preambles, the probe, and v2 channels joined by cookie."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.dcerpc.pdu import OtherPdu, parse_co_pdu
from analyzer.dcerpc.rts import parse_rts
from analyzer.dcerpc.wire import Malformed
from analyzer.transports.ncacn_http import HttpPreamble, http_probe
from tests.conftest import NDR, SAMPLES, Conversation, bind, bind_ack, request, response, run, write_pcap

COOKIE = "11111111-2222-3333-4444-555555555555"


def rts(flags: int, commands: list[tuple[int, bytes]]) -> bytes:
    """An RTS PDU ([MS-RPCH] 2.2.3.6.1): common header with ptype 20, flags, command count, commands."""
    body = struct.pack("<HH", flags, len(commands)) + b"".join(struct.pack("<I", t) + d for t, d in commands)
    return struct.pack("<BBBB4sHHI", 5, 0, 20, 3, b"\x10\0\0\0", 16 + len(body), 0, 0) + body


def cookie(text: str) -> bytes:
    return uuid.UUID(text).bytes_le


def conn_a1(vc: str = COOKIE) -> bytes:
    return rts(
        0,
        [
            (6, struct.pack("<I", 1)),
            (3, cookie(vc)),
            (3, cookie(str(uuid.uuid5(uuid.NAMESPACE_DNS, vc)))),
            (0, struct.pack("<I", 65536)),
        ],
    )


def conn_b1(vc: str = COOKIE) -> bytes:
    return rts(
        0,
        [
            (6, struct.pack("<I", 1)),
            (3, cookie(vc)),
            (3, b"\x01" * 16),
            (4, struct.pack("<I", 1 << 30)),
            (5, struct.pack("<I", 300000)),
            (12, b"\x02" * 16),
        ],
    )


def test_rts_pdus_are_named_and_carry_their_cookies() -> None:
    a1 = parse_co_pdu(conn_a1())
    assert isinstance(a1, OtherPdu)
    parsed = parse_rts(a1)
    assert parsed.name == "CONN/A1" and parsed.cookies[0] == COOKIE
    b1 = parse_rts(parse_co_pdu(conn_b1()))  # type: ignore[arg-type]
    assert b1.name == "CONN/B1" and b1.cookies[0] == COOKIE and len(b1.cookies) == 3
    assert parse_rts(parse_co_pdu(rts(0, [(2, struct.pack("<I", 120000))]))).name == "CONN/A3"  # type: ignore[arg-type]
    assert parse_rts(parse_co_pdu(rts(1, []))).name == "Ping"  # type: ignore[arg-type]
    odd = parse_rts(parse_co_pdu(rts(0, [(13, struct.pack("<I", 0)), (7, b"")])))  # type: ignore[arg-type]
    assert odd.name == "RTS(Destination,Empty)"


def test_variable_rts_commands_and_malformed_ones() -> None:
    padding = (8, struct.pack("<I", 3) + b"\0\0\0")
    v6 = (11, struct.pack("<I", 1) + b"\xfe\x80" + b"\0" * 14 + b"\0" * 12)
    assert parse_rts(parse_co_pdu(rts(0, [padding, v6]))).commands == (8, 11)  # type: ignore[arg-type]
    with pytest.raises(Malformed):
        parse_rts(parse_co_pdu(rts(0, [(99, b"")])))  # type: ignore[arg-type]
    short = bytearray(rts(0, [(3, cookie(COOKIE))]))
    struct.pack_into("<H", short, 18, 2)  # claims two commands, carries one
    with pytest.raises(Malformed):
        parse_rts(parse_co_pdu(bytes(short)))  # type: ignore[arg-type]


def _through(preamble_input: bytes, step: int) -> tuple[str | None, bytes]:
    """Feed a preamble `step` bytes at a time: (what it saw, the bytes it passed on)."""
    received: list[bytes] = []

    class Sink:
        def data(self, data: bytes, frame: int, ts: int) -> None:
            received.append(data)

        def gap(self, missing: int, frame: int, ts: int) -> None:
            pass

    pre = HttpPreamble(Sink())
    for i in range(0, len(preamble_input), step):
        pre.data(preamble_input[i : i + step], 1, 1)
    return pre.kind, b"".join(received)


@pytest.mark.parametrize("step", [1, 3, 7, 1000])
def test_preambles_are_stripped_whole_or_byte_by_byte(step: int) -> None:
    pdus = bind(1, [(0, "12345778-1234-abcd-ef00-0123456789ab", 1, [NDR])])
    request_head = b"RPC_IN_DATA /rpc/rpcproxy.dll?srv:6004 HTTP/1.1\r\nContent-Length: 1073741824\r\n\r\n"
    response_head = b"HTTP/1.1 200 Success\r\nContent-Type: application/rpc\r\n\r\n"
    assert _through(request_head + conn_b1() + pdus, step) == ("in", conn_b1() + pdus)
    assert _through(b"RPC_OUT_DATA / HTTP/1.1\r\n\r\n" + conn_a1(), step) == ("out", conn_a1())
    assert _through(response_head + pdus, step) == ("response", pdus)
    assert _through(b"ncacn_http/1.0" + pdus, step) == ("v1", pdus)
    assert _through(pdus, step) == ("pdus", pdus)


def test_http_probe() -> None:
    for head in (b"RPC_IN_DATA /rpc HTTP/1.1", b"RPC_OUT_DATA /rpc HTTP/1.1"):
        assert http_probe(head, 0, len(head))
    for head in (b"RPC_OTHER /", b"GET / HTTP/1.1\r\n", b"RPC_IN_DATAX"):
        assert not http_probe(head, 0, len(head))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 50))
def test_preamble_never_raises(data: bytes, step: int) -> None:
    _through(data, step)


def test_v2_channels_are_joined_by_their_cookie(tmp_path: Path) -> None:
    """The bind travels in the IN channel's request body, its bind_ack in the OUT channel's response
    body, on another TCP connection: one association, one bind record with its answer."""
    out = Conversation(cport=50010, sport=8080).handshake()
    inn = Conversation(cport=50011, sport=8080, t=out.t + 0.1).handshake()
    out.send(True, b"RPC_OUT_DATA /rpc/rpcproxy.dll?srv:6004 HTTP/1.1\r\nContent-Length: 76\r\n\r\n" + conn_a1())
    inn.send(True, b"RPC_IN_DATA /rpc/rpcproxy.dll?srv:6004 HTTP/1.1\r\nContent-Length: 1073741824\r\n\r\n" + conn_b1())
    out.send(
        False,
        b"HTTP/1.1 200 Success\r\nContent-Type: application/rpc\r\n\r\n" + rts(0, [(2, struct.pack("<I", 120000))]),
    )
    iface = "f5cc5a18-4264-101a-8c59-08002b2f8426"
    inn.send(True, bind(1, [(0, iface, 56, [NDR])]))
    out.send(False, bind_ack(1, [(0, 0, NDR)], sec_addr=b"6004\0"))
    inn.send(True, request(2, 0, b"\0" * 40))
    out.send(False, response(2, b"\1" * 20))
    packets = sorted(out.packets + inn.packets, key=lambda p: float(p.time))
    r = run([write_pcap(tmp_path / "v2.pcap", packets)])
    (b,) = r.binds
    assert (b.flow.transport, b.flow.client_port, b.ack_result, b.identified_by) == (
        "ncacn_http",
        50011,
        "acceptance",
        "heuristic",
    )
    (c,) = r.calls
    assert c.response_frame is not None and c.interface_uuid == iface and c.flow.client_port == 50011
    details = sorted(x.detail or "" for x in r.connections)
    assert details[0].startswith("RPC over HTTP v2 IN channel; virtual connection " + COOKIE)
    assert details[1].startswith("RPC over HTTP v2 OUT channel") and "CONN/A1 CONN/A3" in details[1]


def test_v1_sample_banner_is_no_violation() -> None:
    r = run([SAMPLES / "rpc_http_v1.pcap"])
    assert not r.violations and {c.detail for c in r.connections} == {"RPC over HTTP v1"}
