"""Endpoint mapper stubs and towers ([C706] Appendix I/L, [MS-RPCE] 2.2.1.2)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.dcerpc import epm
from analyzer.dcerpc.wire import Malformed
from tests.conftest import SAMR, SVCCTL
from tests.epm_build import lookup_response, map_request, map_response, tower


@pytest.mark.parametrize(
    "kind, where, host, protocol, port, pipe, endpoint",
    [
        ("tcp", 49667, "10.1.2.3", "ncacn_ip_tcp", 49667, None, "49667"),
        ("udp", 49668, "10.1.2.3", "ncadg_ip_udp", 49668, None, "49668"),
        ("http", 593, "0.0.0.0", "ncacn_http", 593, None, "593"),
        ("np", "\\PIPE\\lsass", "DC01", "ncacn_np", None, "\\PIPE\\lsass", "\\PIPE\\lsass"),
        ("lrpc", "samss lpc", None, "ncalrpc", None, None, "samss lpc"),
    ],
)
def test_tower_floors(
    kind: str,
    where: str | int,
    host: str | None,
    protocol: str,
    port: int | None,
    pipe: str | None,
    endpoint: str,
) -> None:
    t = epm.parse_tower(tower(SAMR, 1, kind, where, host))
    assert (t.interface_uuid, t.if_major, t.transfer_syntax) == (
        SAMR,
        1,
        "8a885d04-1ceb-11c9-9fe8-08002b104860",
    )
    assert (t.protocol, t.port, t.pipe, t.endpoint) == (protocol, port, pipe, endpoint)
    if kind in ("tcp", "udp", "http"):
        assert t.ip == host
    if kind == "np":
        assert t.netbios_name == host


def test_unknown_floor_ids_are_kept() -> None:
    raw = bytearray(tower(SAMR, 1, "tcp", 135, "1.2.3.4"))
    # the transport floor's protocol id sits after floor count and three floors
    raw_floors = epm.parse_tower(bytes(raw)).floors
    assert [f.protocol for f in raw_floors] == [0x0D, 0x0D, 0x0B, 0x07, 0x09]
    t = epm.parse_tower(struct.pack("<H", 4) + bytes(raw[2:]).replace(b"\x01\x00\x07", b"\x01\x00\x42", 1)[:-9])
    assert t.protocol == "unknown(0b,42)" and t.port is None


def test_towers_are_parsed_once_per_octets_and_the_memo_is_bounded() -> None:
    raw = tower(SAMR, 1, "tcp", 49667, "10.0.0.9")
    assert epm.parse_tower(raw) is epm.parse_tower(bytes(raw))  # parsed once, then looked up
    for port in range(epm._TOWERS_MAX + 100):
        assert epm.parse_tower(tower(SAMR, 1, "tcp", port, "10.0.0.9")).port == port
    assert len(epm._TOWERS) <= epm._TOWERS_MAX
    with pytest.raises(Malformed):  # a bad tower is never remembered as a good one
        epm.parse_tower(raw[:-3])
    with pytest.raises(Malformed):
        epm.parse_tower(raw[:-3])


def test_map_request_and_response() -> None:
    _obj, t = epm.parse_map_request(map_request(SVCCTL, 2), True)
    assert t is not None and t.interface_uuid == SVCCTL
    resp = epm.parse_map_response(
        map_response([tower(SVCCTL, 2, "tcp", 49670, "0.0.0.0"), tower(SVCCTL, 2, "np", "\\PIPE\\svcctl")]),
        True,
    )
    assert resp.status == 0
    assert [(e.tower.protocol, e.tower.port, e.tower.ip) for e in resp.entries if e.tower] == [
        ("ncacn_ip_tcp", 49670, "0.0.0.0"),
        ("ncacn_np", None, None),
    ]


def test_map_response_not_registered() -> None:
    resp = epm.parse_map_response(map_response([], status=0x16C9A0D6), True)
    assert resp.entries == () and resp.status == 0x16C9A0D6


def test_lookup_response_with_annotations_and_null_towers() -> None:
    stub = lookup_response(
        [
            ("00000000-0000-0000-0000-000000000000", tower(SAMR, 1, "tcp", 49664, "10.0.0.1"), "SAM access"),
            ("11111111-2222-3333-4444-555555555555", None, ""),
            ("00000000-0000-0000-0000-000000000000", tower(SVCCTL, 2, "lrpc", "LRPC-x"), "Service control"),
        ]
    )
    resp = epm.parse_lookup_response(stub, True)
    assert [e.annotation for e in resp.entries] == ["SAM access", None, "Service control"]
    assert resp.entries[1].tower is None and resp.entries[1].object_uuid == "11111111-2222-3333-4444-555555555555"
    assert resp.entries[2].tower is not None and resp.entries[2].tower.endpoint == "LRPC-x"


def test_truncated_response_is_malformed() -> None:
    stub = map_response([tower(SVCCTL, 2, "tcp", 49670, "1.2.3.4")])
    with pytest.raises(Malformed):
        epm.parse_map_response(stub[:60], True)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_any_stub_parses_or_is_malformed(raw: bytes) -> None:
    for parse in (epm.parse_map_response, epm.parse_lookup_response, epm.parse_map_request):
        with contextlib.suppress(Malformed):
            parse(raw, True)
