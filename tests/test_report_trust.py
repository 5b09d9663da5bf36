"""Report defects found by reading the outputs as an analyst (issue 10): ports sorted as numbers,
dynamic ranges that do not swallow unrelated ports, operations in the hosts text."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import analyzer
from analyzer.dcerpc.constants import REQUEST, RESPONSE
from analyzer.report.lists import list_order, port_ranges
from analyzer.smb.netbios import header_problem as netbios_problem
from analyzer.smb.smb2 import header_problem
from tests.conftest import CAPTURES, SAMPLES, Conversation, needs_shared, write_pcap


def test_lists_sort_numbers_as_numbers_and_addresses_as_addresses() -> None:
    ports = ["80", "6004", "135", "49670", "593", "445", "49665", "139"]
    assert sorted(ports, key=list_order) == ["80", "135", "139", "445", "593", "6004", "49665", "49670"]
    hosts = ["10.0.0.10", "10.0.0.5", "\\PIPE\\lsarpc", "10.0.0.100"]
    assert sorted(hosts, key=list_order) == ["10.0.0.5", "10.0.0.10", "10.0.0.100", "\\PIPE\\lsarpc"]


def test_dynamic_port_ranges_split_at_large_gaps() -> None:
    assert port_ranges([49670, 6004, 49665, 49667]) == "6004;49665-49670"
    assert port_ranges([1025, 1030, 5000]) == "1025-1030;5000"
    assert port_ranges([]) is None


def test_hosts_table_and_text_show_ports_in_numeric_order_and_operations() -> None:
    res = analyzer.analyze([SAMPLES])
    for cell in res.hosts["ports"].dropna():
        ints = [int(p) for p in cell.split(";")]
        assert ints == sorted(ints), cell
    server = res.hosts[(res.hosts["host"] == "10.0.0.10") & (res.hosts["role"] == "server")].iloc[0]
    assert "6004" in server["ports"] and server["dynamic_ports"].split(";")[0] == "6004"
    text = res.hosts_text("server")
    m = re.search(r"ports ([0-9, ]+);", text)
    assert m and [int(p) for p in m.group(1).split(", ")] == sorted(int(p) for p in m.group(1).split(", "))
    assert "operations" in text and "RStartServiceW" in text and "ept_map" in text


def _udp(src: str, sport: int, dst: str, dport: int, payload: bytes, t: float) -> Any:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    pkt = Ether() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / payload
    pkt.time = t
    return pkt


def test_a_response_sent_the_way_of_its_request_opens_no_empty_conversation(tmp_path: Path) -> None:
    """suricata-verify dcerpc-udp-scapy: the response travels client -> server like the request. It
    belongs to the request's conversation; no stream with 0 packets and first_frame 0 appears."""
    from tests.cl_build import encode

    req = encode(REQUEST, seqnum=7, opnum=1, body=b"\x00" * 8)
    resp = encode(RESPONSE, seqnum=7, opnum=1, body=b"\x00" * 4)
    pcap = write_pcap(
        tmp_path / "same_way.pcap",
        [_udp("10.0.0.5", 50000, "10.0.0.10", 135, req, 1.0), _udp("10.0.0.5", 50000, "10.0.0.10", 135, resp, 1.1)],
    )
    res = analyzer.analyze([pcap])
    conns = res.connections
    assert len(conns) == 1, conns[["stream", "client_ip", "server_ip", "packets", "first_frame"]]
    assert conns["packets"].iloc[0] == 2 and conns["first_frame"].iloc[0] == 1
    assert (res.calls["stream"] == conns["stream"].iloc[0]).all()


@needs_shared
def test_the_scapy_udp_capture_has_no_empty_conversation() -> None:
    res = analyzer.analyze([CAPTURES / "suricata-verify" / "tests" / "dcerpc" / "dcerpc-udp-scapy" / "input.pcap"])
    assert len(res.connections) >= 1
    assert (res.connections["packets"] > 0).all() and (res.connections["first_frame"] > 0).all()


def _smb_message(smb: bytes) -> bytes:
    return b"\x00" + len(smb).to_bytes(3, "big") + smb


def test_a_bad_smb2_header_is_described_by_its_faulty_field(tmp_path: Path) -> None:
    """The magic is usually right; say which field is wrong (StructureSize), not the magic's bytes."""
    bad = b"\xfeSMB" + struct.pack("<H", 0) + bytes(58)  # StructureSize 0 instead of 64
    conv = Conversation(sport=445).handshake().send(True, _smb_message(bad)).close()
    res = analyzer.analyze([conv.write(tmp_path / "bad_smb2.pcap")])
    details = res.violations.loc[res.violations["what"] == "smb_bad_header", "detail"].tolist()
    assert details == ["SMB2 header StructureSize 0, must be 64"]
    assert header_problem(b"\xfeSMB" + bytes(60)) == "SMB2 header StructureSize 0, must be 64"
    assert "ProtocolId" in header_problem(b"XXXX" + bytes(60))
    assert netbios_problem(b"\x05\x00\x0b\x03").startswith("packet type 0x05 is not a session-service type")


def test_connect_level_calls_take_their_auth_columns_from_the_bind() -> None:
    """The README's dictionary: at connect level requests carry no verifier, so a call's auth_type
    and auth_level are the bind's (ip_fragments.pcap binds at connect level)."""
    res = analyzer.analyze([SAMPLES / "ip_fragments.pcap"])
    connect = res.calls[res.calls["auth_level"] == "connect"]
    assert len(connect) >= 1
    for call in connect.itertuples():
        binds = res.binds[(res.binds["stream"] == call.stream) & (res.binds["frame"] < call.frame)]
        assert (binds["auth_level"] == "connect").any() and call.auth_type in set(binds["auth_type"])
