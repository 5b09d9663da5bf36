"""Connection attempts are not conversations; data quality says what was missed (issue 9 item 6)."""

from __future__ import annotations

from pathlib import Path

from analyzer.api import from_records
from tests.conftest import Conversation, request, response, run, write_pcap


def _scan(tmp_path: Path) -> Path:
    packets = []
    for i, port in enumerate((135, 135, 593, 445)):
        c = Conversation(client="10.9.9.9", cport=40000 + i, sport=port, server=f"10.0.0.{10 + i}")
        syn = c.segment(True, flags="S")
        syn["TCP"].ack = 0
        packets.append(syn)
        if i == 1:  # the second target refuses
            packets.append(c.segment(False, flags="RA"))
    done = Conversation(client="10.9.9.9", cport=40010, sport=135).handshake().close()  # opened, closed, no PDU
    return write_pcap(tmp_path / "scan.pcap", packets + done.packets)


def test_a_syn_scan_of_135_is_attempts_not_connections(tmp_path: Path) -> None:
    res = from_records(run([_scan(tmp_path)]))
    assert res.connections.empty and res.hosts.empty
    got = res.attempts[["server_ip", "server_port", "outcome"]].values.tolist()
    assert got == [
        ["10.0.0.10", 135, "syn_only"],
        ["10.0.0.11", 135, "rejected"],
        ["10.0.0.12", 593, "syn_only"],
        ["10.0.0.13", 445, "syn_only"],
        ["10.0.0.10", 135, "no_pdu"],
    ]
    assert list(res.attempts["frame"]) == [1, 2, 4, 5, 6]
    cap = res.data_quality[res.data_quality["scope"] == "capture"].iloc[0]
    assert cap["attempts"] == 5 and "5 connection attempts without a PDU" in cap["summary"]
    assert cap["attempt_targets"] == "10.0.0.10:135 x2, 10.0.0.11:135, 10.0.0.12:593, 10.0.0.13:445"


def test_data_quality_says_midstream_and_unfollowed(tmp_path: Path) -> None:
    late = Conversation(cport=50100, sport=49800)
    late.send(True, request(7, 15, b"\0" * 40)).send(False, response(7, b"\1" * 24))
    lone = Conversation(cport=50101, sport=49801).send(True, request(1, 5, b"\0" * 16))
    res = from_records(run([write_pcap(tmp_path / "late.pcap", late.packets + lone.packets)]))
    assert list(res.connections["midstream"]) == [True]
    dq = res.data_quality
    conn = dq[dq["scope"] == "connection"].iloc[0]
    assert conn["midstream"] == 1 and "begun before the capture (midstream)" in conn["summary"]
    cap = dq[dq["scope"] == "capture"].iloc[0]
    assert (cap["midstream"], cap["unfollowed"]) == (1, 1)
    assert "1 TCP flow like DCE/RPC not followed" in cap["summary"] and cap["summary"] != "complete"


def test_a_conversation_seen_from_its_bind_is_not_midstream(tmp_path: Path) -> None:
    from tests.conftest import NDR, SVCCTL, bind, bind_ack

    c = Conversation(cport=50100, sport=49800).handshake()
    c.send(True, bind(1, [(0, SVCCTL, 2, [NDR])])).send(False, bind_ack(1, [(0, 0, NDR)]))
    c.send(True, request(2, 15, b"\0" * 8)).send(False, response(2, b"\1" * 8)).close()
    res = from_records(run([write_pcap(tmp_path / "whole.pcap", c.packets)]))
    assert list(res.connections["midstream"]) == [False]
    assert res.attempts.empty


def test_the_tail_of_an_earlier_connection_is_not_an_attempt(tmp_path: Path) -> None:
    """Only the FIN exchange of a connection to 135 that began before the capture."""
    c = Conversation(cport=49774, sport=135).close()
    res = from_records(run([write_pcap(tmp_path / "tail.pcap", c.packets)]))
    assert res.connections.empty and res.attempts.empty
