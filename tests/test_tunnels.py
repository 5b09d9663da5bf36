"""Tunnels ([analyzer.capture.tunnel]): GRE, WCCP, ERSPAN II/III, VXLAN and Geneve are unwrapped and the
packet inside is what the tables show; malformed or unsupported tunnel headers yield nothing.

The packets are built with scapy (an independent encoder); the samples are checked against tshark by
samples/check_samples.py.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from analyzer import analyze
from analyzer.capture.decode import PacketDecoder, Selector
from analyzer.capture.ipfrag import Defragmenter
from analyzer.capture.source import open_capture
from analyzer.limits import Limits
from tests.conftest import CAPTURES, SAMPLES, needs_shared, write_pcap

SEEDS = {"gre": 93, "wccp": 94, "erspan2": 95, "erspan3": 96, "vxlan": 97, "geneve": 98}  # as make_samples.py
KINDS = list(SEEDS)
OUTER = {"192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"}


@pytest.mark.parametrize("kind", KINDS)
def test_tunnel_sample_shows_the_inner_conversation(kind: str) -> None:
    result = analyze(SAMPLES / f"tunnel_{kind}.pcap")
    conns = result.connections
    port = 49700 + SEEDS[kind]  # the svcctl port the EPM answer announces
    assert list(zip(conns["client_ip"], conns["server_ip"], conns["server_port"], strict=True)) == [
        ("10.0.0.20", "10.0.0.10", 135),
        ("10.0.0.20", "10.0.0.10", port),
    ]
    # The session on the announced port was found through the EPM answer read inside the tunnel.
    assert list(conns["identified_by"]) == ["port135", "epm"]
    assert list(result.calls["operation"]) == ["ept_map", "ROpenSCManagerW"]
    for table in (result.binds, result.calls, result.connections, result.endpoints):
        for col in ("client_ip", "server_ip"):
            if col in table:
                assert not set(table[col].dropna()) & OUTER, (kind, col)
    assert result.violations.empty


def _decode(packets: list[Any], tmp_path: Path, tcp_ports: set[int] = frozenset({135})) -> list[Any]:  # type: ignore[assignment]
    path = write_pcap(tmp_path / "t.pcap", packets)
    sel = Selector()
    sel.tcp_ports |= tcp_ports
    dec = PacketDecoder(sel, Defragmenter(Limits()))
    return [pkt for _frame, _ts, pkt in dec.select(open_capture(str(path)))]


def _inner(dport: int = 135, payload: bytes = b"hello") -> Any:
    from scapy.layers.inet import IP, TCP

    return IP(src="10.1.1.1", dst="10.2.2.2") / TCP(sport=50000, dport=dport, flags="PA") / payload


def _outer() -> Any:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="192.0.2.1", dst="192.0.2.2")


def test_gre_variants_are_unwrapped(tmp_path: Path) -> None:
    from scapy.contrib.erspan import ERSPAN_III
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import GRE, Ether
    from scapy.packet import Raw

    inner = _inner()
    eth_inner = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / inner
    packets = [
        _outer() / GRE(proto=0x0800) / inner,
        _outer() / GRE(chksum_present=1, key_present=1, seqnum_present=1, key=7, sequence_number=9) / inner,
        _outer() / GRE(proto=0x6558) / eth_inner,  # transparent Ethernet bridging
        _outer() / GRE(proto=0x883E) / inner,  # WCCPv1: no redirect header
        _outer() / GRE(proto=0x88BE) / eth_inner,  # ERSPAN type I: no ERSPAN header
        _outer() / GRE(proto=0x22EB, seqnum_present=1) / ERSPAN_III(ver=2, ft=2, o=0) / inner,  # IP frame type
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / GRE(proto=0x86DD)
        / Raw(bytes(_inner6())),
    ]
    got = _decode(packets, tmp_path)
    assert [(p.src, p.dport, p.payload) for p in got[:6]] == [(bytes([10, 1, 1, 1]), 135, b"hello")] * 6
    assert got[6].src == bytes.fromhex("fd000000000000000000000000000001") and got[6].payload == b"six"
    assert len(got) == 7


def _inner6() -> Any:
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6

    return IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=50001, dport=135, flags="PA") / b"six"


def test_malformed_or_unsupported_tunnels_yield_nothing(tmp_path: Path) -> None:
    from scapy.contrib.erspan import ERSPAN_II
    from scapy.contrib.geneve import GENEVE
    from scapy.layers.inet import UDP
    from scapy.layers.l2 import GRE, Ether
    from scapy.layers.vxlan import VXLAN
    from scapy.packet import Raw

    inner = _inner()
    packets = [
        _outer() / GRE(version=1, key_present=1, proto=0x880B) / inner,  # PPTP: PPP inside, not followed
        _outer() / GRE(routing_present=1) / Raw(b"\0" * 4) / inner,  # RFC 1701 source routing
        _outer()
        / GRE(proto=0x88BE, seqnum_present=1)
        / ERSPAN_II(ver=2)
        / Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / inner,  # wrong version
        _outer() / GRE(proto=0x1234) / inner,  # unknown protocol type
        _outer() / Raw(b"\0\0"),  # GRE header cut short (the IP protocol is set below)
        _outer()
        / UDP(sport=1, dport=4789)
        / VXLAN(flags=0)
        / Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / inner,  # I flag clear
        _outer()
        / UDP(sport=1, dport=6081)
        / GENEVE(version=1, proto=0x6558)
        / Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / inner,
        _outer() / UDP(sport=1, dport=6081) / GENEVE(proto=0x0806) / Raw(b"\0" * 28),  # ARP inside
    ]
    packets[4]["IP"].proto = 47
    assert _decode(packets, tmp_path) == []


def test_nested_tunnels_stop_at_the_depth_limit(tmp_path: Path) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import GRE

    def nest(n: int) -> Any:
        pkt = _inner()
        for i in range(n):
            pkt = IP(src=f"192.0.2.{i + 1}", dst="192.0.2.200") / GRE() / pkt
        return _outer() / GRE() / pkt

    got = _decode([nest(3), nest(4)], tmp_path)  # 4 and 5 GRE headers around the packet
    assert len(got) == 1 and got[0].src == bytes([10, 1, 1, 1])


def test_tunnelled_packets_nobody_wants_are_dropped(tmp_path: Path) -> None:
    """The inner packet is judged like a bare one: its own ports and payload decide, never the outer
    bytes. The GRE key below spells the start of a DCE/RPC bind (05 00 0b 03)."""
    from scapy.layers.inet import UDP
    from scapy.layers.l2 import GRE, Ether
    from scapy.layers.vxlan import VXLAN

    web = _inner(dport=80, payload=b"GET / HTTP/1.1\r\n\r\n")
    packets = [
        _outer() / GRE(key_present=1, key=0x05000B03) / web,
        _outer()
        / UDP(sport=135, dport=4789)
        / VXLAN(vni=135)
        / Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / web,
    ]
    assert _decode(packets, tmp_path) == []
    assert _decode(packets, tmp_path, {80}) != []


def test_gre_in_ip_fragments(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, fragment
    from scapy.layers.l2 import GRE, Ether

    big = IP(src="192.0.2.1", dst="192.0.2.2", id=99) / GRE() / _inner(payload=b"F" * 3000)
    got = _decode(
        [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / f for f in fragment(big, fragsize=1000)], tmp_path
    )
    assert len(got) == 1 and got[0].payload == b"F" * 3000 and got[0].src == bytes([10, 1, 1, 1])


@needs_shared
def test_wccp_redirect_capture_shows_the_smb_pipe_call() -> None:
    """tcpdump's wccp_redirect_gre.pcap: one SMB1 pipe request inside WCCP-redirected GRE (tshark:
    eth:ip:gre:ip:tcp:nbss:smb:dcerpc); the truth lists it at frame 1 with its inner addresses."""
    name = "tcpdump__tests__wccp_redirect_gre.pcap.calls.csv"
    with (CAPTURES / "truth" / name).open() as fh:
        truth = [
            (int(r["frame"]), r["src"], int(r["sport"]), r["dst"], int(r["dport"]), int(r["call_id"]), int(r["opnum"]))
            for r in csv.DictReader(fh)
        ]
    calls = analyze(CAPTURES / "tcpdump" / "tests" / "wccp_redirect_gre.pcap").calls
    got = list(
        zip(
            calls["frame"],
            calls["client_ip"],
            calls["client_port"],
            calls["server_ip"],
            calls["server_port"],
            calls["call_id"],
            calls["opnum"],
            strict=True,
        )
    )
    assert got == truth and len(truth) == 1
    assert calls["transport"].tolist() == ["ncacn_np"]
