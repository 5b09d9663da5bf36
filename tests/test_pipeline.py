"""From captures to records: identification, linking, pairing, limits ([analyzer.pipeline])."""

from __future__ import annotations

import struct
from pathlib import Path

from analyzer.limits import Limits
from tests.conftest import (
    BTFN,
    EPM,
    NDR,
    NDR64,
    SAMR,
    SVCCTL,
    Conversation,
    bind,
    bind_ack,
    fault,
    request,
    response,
    run,
    write_pcap,
)
from tests.epm_build import map_request, map_response, tower
from tests.test_dcerpc_pdu import _ntlm_authenticate

NULL_UUID = "00000000-0000-0000-0000-000000000000"


def epm_then_dynamic(tmp_path: Path, host: str = "0.0.0.0", port: int = 49667) -> Path:
    """Client asks the EPM on 135 for svcctl, then binds it on the announced port."""
    epm_conn = Conversation(cport=49700, sport=135).handshake()
    epm_conn.send(True, bind(1, [(0, EPM, 3, [NDR]), (1, EPM, 3, [NDR64]), (2, EPM, 3, [BTFN])]))
    epm_conn.send(False, bind_ack(1, [(0, 0, NDR), (2, 2, NULL_UUID), (3, 3, NULL_UUID)]))
    epm_conn.send(True, request(2, 3, map_request(SVCCTL, 2)))
    epm_conn.send(False, response(2, map_response([tower(SVCCTL, 2, "tcp", port, host)])))
    epm_conn.close()
    dyn = Conversation(cport=49701, sport=port, t=epm_conn.t + 0.5).handshake()
    dyn.send(True, bind(1, [(0, SVCCTL, 2, [NDR])]))
    dyn.send(False, bind_ack(1, [(0, 0, NDR)], sec_addr=str(port).encode() + b"\0"))
    dyn.send(True, request(2, 15, b"\0" * 64))
    dyn.send(False, response(2, b"\1" * 24))
    dyn.send(True, request(3, 99, b"\0" * 8))
    dyn.send(False, fault(3, 0x1C010002))
    dyn.close()
    return write_pcap(tmp_path / "epm.pcap", epm_conn.packets + dyn.packets)


def test_epm_answer_links_the_dynamic_connection(tmp_path: Path) -> None:
    r = run([epm_then_dynamic(tmp_path)])
    by_port = {c.flow.server_port: c for c in r.connections}
    assert by_port[135].identified_by == "port135"
    dyn = by_port[49667]
    assert dyn.identified_by == "epm"
    (tower_rec,) = r.endpoints
    assert dyn.epm_frame == tower_rec.frame and dyn.epm_client_ip == "10.0.0.5"
    assert dyn.epm_delay_s is not None and 0 < dyn.epm_delay_s < 1
    # 0.0.0.0 in the tower means the EPM server's own address
    assert (tower_rec.protocol, tower_rec.port, tower_rec.host, tower_rec.announced_host) == (
        "ncacn_ip_tcp",
        49667,
        "10.0.0.10",
        "0.0.0.0",
    )
    assert tower_rec.interface_uuid == SVCCTL and tower_rec.request_frame is not None


def test_bind_results_and_calls(tmp_path: Path) -> None:
    r = run([epm_then_dynamic(tmp_path)])
    epm_binds = [b for b in r.binds if b.flow.server_port == 135]
    assert [(b.ctx_id, b.ack_result, b.ack_reason) for b in epm_binds] == [
        (0, "acceptance", None),
        (1, "provider_rejection", "proposed_transfer_syntaxes_not_supported"),
        (2, "negotiate_ack", "security_context_multiplexing|keep_connection_on_orphan"),
    ]
    calls = {c.call_id: c for c in r.calls if c.flow.server_port == 49667}
    assert calls[2].opnum == 15 and calls[2].interface_uuid == SVCCTL and calls[2].interface_source == "bind"
    assert calls[2].request_bytes == 64 and calls[2].response_bytes == 24 and calls[2].answered
    assert calls[2].response_frame is not None and calls[2].response_frame > calls[2].frame
    assert calls[3].fault_status == 0x1C010002 and calls[3].response_bytes is None


def test_tower_ip_floor_kept_when_not_any(tmp_path: Path) -> None:
    r = run([epm_then_dynamic(tmp_path, host="10.9.9.9", port=50000)])
    (t,) = r.endpoints
    assert t.host == "10.9.9.9"
    # the client connected to 10.0.0.10:50000, which the EPM did not announce: found by its bind
    assert {c.flow.server_port: c.identified_by for c in r.connections}[50000] == "heuristic"


def test_heuristic_bind_on_unknown_port(tmp_path: Path) -> None:
    c = Conversation(sport=40000).handshake()
    c.send(True, bind(5, [(0, SAMR, 1, [NDR])]))
    c.send(False, bind_ack(5, [(0, 0, NDR)], sec_addr=b"40000\0"))
    c.send(True, request(6, 1, b"x" * 10)).send(False, response(6, b"y" * 10)).close()
    r = run([c.write(tmp_path / "h.pcap")])
    (conn,) = r.connections
    assert conn.identified_by == "heuristic" and conn.end == "fin"
    assert [b.interface_uuid for b in r.binds] == [SAMR]


def test_secondary_address_teaches_the_port(tmp_path: Path) -> None:
    """A bind_ack names port 40001; a later connection to it without a bind is still followed."""
    first = Conversation(cport=50001, sport=40001).handshake()
    first.send(True, bind(1, [(0, SAMR, 1, [NDR])]))
    first.send(False, bind_ack(1, [(0, 0, NDR)], sec_addr=b"40001\0")).close()
    second = Conversation(cport=50002, sport=40001, t=first.t + 1).handshake()
    second.send(True, request(1, 7, b"z" * 16)).send(False, response(1, b"w" * 4)).close()
    r = run([write_pcap(tmp_path / "s.pcap", first.packets + second.packets)])
    ids = {c.flow.client_port: c.identified_by for c in r.connections}
    assert ids == {50001: "heuristic", 50002: "sec_addr"}
    (call,) = [c for c in r.calls if c.flow.client_port == 50002]
    assert call.opnum == 7 and call.interface_uuid is None and call.interface_source == "unknown"


def test_calls_without_bind_take_the_interface_from_the_epm(tmp_path: Path) -> None:
    epm_conn = Conversation(cport=49700, sport=135).handshake()
    epm_conn.send(True, bind(1, [(0, EPM, 3, [NDR])])).send(False, bind_ack(1, [(0, 0, NDR)]))
    epm_conn.send(True, request(2, 3, map_request(SAMR, 1)))
    epm_conn.send(False, response(2, map_response([tower(SAMR, 1, "tcp", 49668, "10.0.0.10")])))
    late = Conversation(cport=49702, sport=49668, t=epm_conn.t + 1)  # no handshake, no bind: mid-stream
    late.send(True, request(9, 5, b"a" * 12)).send(False, response(9, b"b" * 4))
    r = run([write_pcap(tmp_path / "late.pcap", epm_conn.packets + late.packets)])
    (call,) = [c for c in r.calls if c.flow.server_port == 49668]
    assert (call.interface_uuid, call.interface_source, call.opnum) == (SAMR, "epm", 5)


def test_port_reuse_is_a_new_connection(tmp_path: Path) -> None:
    a = Conversation(cport=49800, sport=135).handshake()
    a.send(True, bind(1, [(0, EPM, 3, [NDR])])).send(False, bind_ack(1, [(0, 0, NDR)])).close()
    b = Conversation(cport=49800, sport=135, t=a.t + 1, cseq=90000, sseq=70000).handshake()
    b.send(True, bind(1, [(0, EPM, 3, [NDR])])).send(False, bind_ack(1, [(0, 0, NDR)])).close()
    r = run([write_pcap(tmp_path / "reuse.pcap", a.packets + b.packets)])
    assert len(r.connections) == 2 and [c.end for c in r.connections] == ["fin", "fin"]
    assert len(r.binds) == 2 and all(x.ack_result == "acceptance" for x in r.binds)


def test_answer_captured_before_question(tmp_path: Path) -> None:
    c = Conversation(sport=135).handshake()
    c.send(True, bind(1, [(0, EPM, 3, [NDR])])).send(False, bind_ack(1, [(0, 0, NDR)]))
    ack_first = Conversation(sport=135, cport=49700, cseq=c.cseq, sseq=c.sseq, t=c.t)
    alter = bind(2, [(1, SAMR, 1, [NDR])], alter=True)
    resp = bind_ack(2, [(0, 0, NDR)], alter=True)
    ack_first.sseq += 0
    p_resp = ack_first.segment(False, resp)
    p_alter = ack_first.segment(True, alter)
    r = run([write_pcap(tmp_path / "early.pcap", [*c.packets, p_resp, p_alter])])
    alters = [b for b in r.binds if b.pdu_type == "alter_context"]
    assert [(b.ack_result, b.ack_frame) for b in alters] == [("acceptance", len(c.packets) + 1)]


def test_fragmented_request_and_response(tmp_path: Path) -> None:
    c = Conversation(sport=135).handshake()
    c.send(True, bind(1, [(0, EPM, 3, [NDR])])).send(False, bind_ack(1, [(0, 0, NDR)]))
    c.send(True, request(2, 3, b"a" * 100, flags=1) + request(2, 3, b"b" * 100, flags=0))
    c.send(True, request(2, 3, b"c" * 50, flags=2), chunks=3)
    c.send(False, response(2, b"r" * 1000, flags=1)).send(False, response(2, b"s" * 10, flags=2))
    r = run([c.write(tmp_path / "frag.pcap")])
    (call,) = r.calls
    assert (call.request_fragments, call.request_bytes, call.response_fragments, call.response_bytes) == (
        3,
        250,
        2,
        1010,
    )
    assert call.frame == len(c.packets) - 2  # the last segment of the last request fragment
    assert call.first_frame == 6


def test_identity_from_auth3_and_sealed_calls(tmp_path: Path) -> None:
    def with_auth(pdu: bytes, level: int, token: bytes) -> bytes:
        """Append a sec_trailer + token and fix the lengths (a scapy-built PDU without auth)."""
        pad = -len(pdu) % 4
        trailer = bytes([10, level, pad, 0]) + struct.pack("<I", 1)
        out = bytearray(pdu + b"\0" * pad + trailer + token)
        struct.pack_into("<HH", out, 8, len(out), len(token))
        return bytes(out)

    c = Conversation(sport=49999).handshake()
    c.send(True, with_auth(bind(1, [(0, SAMR, 1, [NDR])]), 6, b"NTLMSSP\0\1\0\0\0" + b"\0" * 20))
    c.send(False, with_auth(bind_ack(1, [(0, 0, NDR)]), 6, b"NTLMSSP\0\2\0\0\0" + b"\0" * 40))
    auth3 = bytes([5, 0, 16, 3, 0x10, 0, 0, 0]) + struct.pack("<HHI", 20, 0, 1) + b"\0" * 4
    c.send(True, with_auth(auth3, 6, _ntlm_authenticate("alice", "CORP", "WS01")))
    c.send(True, with_auth(request(2, 17, b"\x99" * 32), 6, b"\0" * 16))
    c.send(False, with_auth(response(2, b"\x98" * 16), 6, b"\0" * 16))
    r = run([c.write(tmp_path / "auth.pcap")])
    (call,) = r.calls
    assert (call.user, call.domain, call.workstation) == ("alice", "CORP", "WS01")
    assert call.encrypted and call.auth_type == 10 and call.auth_level == 6
    assert r.binds[0].auth_type == 10 and r.binds[0].auth_level == 6


def test_non_rpc_traffic_creates_nothing(tmp_path: Path) -> None:
    tls = Conversation(sport=443).handshake()
    tls.send(True, b"\x16\x03\x01\x02\x00" + b"\x01" * 300).send(False, b"\x17\x03\x03" + b"\x05\x00\x0b" * 200)
    fake = Conversation(cport=49900, sport=8080).handshake()
    fake.send(True, b"\x05\x00\x0b\x03\x10\x00\x00\x00" + b"\xff" * 200)  # looks like a header, is not a bind
    r = run([write_pcap(tmp_path / "noise.pcap", tls.packets + fake.packets)])
    assert not r.connections and not r.binds and not r.violations


def test_gre_wrapped_rpc_is_decoded_as_what_it_carries(tmp_path: Path) -> None:
    """GRE is unwrapped (see test_tunnels.py): the bind inside is the inner hosts' bind, never the
    outer tunnel endpoints'."""
    from scapy.layers.inet import GRE, IP, TCP
    from scapy.layers.l2 import Ether

    inner = IP(src="1.1.1.1", dst="2.2.2.2") / TCP(sport=50000, dport=135, flags="PA") / bind(1, [(0, EPM, 3, [NDR])])
    pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="9.9.9.1", dst="9.9.9.2") / GRE() / inner
    r = run([write_pcap(tmp_path / "gre.pcap", [pkt])])
    assert [(b.flow.client_ip, b.flow.server_ip) for b in r.binds] == [("1.1.1.1", "2.2.2.2")]


def test_garbage_on_port_135_is_a_violation_not_a_crash(tmp_path: Path) -> None:
    c = Conversation(sport=135).handshake()
    c.send(True, b"\x05\x00\x0b\x03\x10\x00\x00\x00\x30\x00\x00\x00\x01\x00\x00\x00" + b"\xff" * 32)
    c.send(True, bind(2, [(0, EPM, 3, [NDR])])).send(False, bind_ack(2, [(0, 0, NDR)]))
    r = run([c.write(tmp_path / "bad.pcap")])
    assert {v.what for v in r.violations} >= {"short_context_item"}
    assert [b.call_id for b in r.binds] == [2]


def test_flow_cap_evicts_least_recent(tmp_path: Path) -> None:
    packets = []
    t = 1_700_000_000.0
    for i in range(3):
        c = Conversation(cport=50000 + i, sport=135, t=t + i).handshake()
        c.send(True, bind(1, [(0, EPM, 3, [NDR])]))
        packets += c.packets
    r = run([write_pcap(tmp_path / "cap.pcap", packets)], limits=Limits(max_tcp_flows=2))
    assert sorted(c.end for c in r.connections) == ["capture_end", "capture_end", "evicted"]
    assert any(v.what == "cap_tcp_flows" for v in r.violations)
    assert len(r.binds) == 3  # evicting flushes: nothing read is lost


def test_idle_connections_expire(tmp_path: Path) -> None:
    packets = []
    for i in range(2):
        c = Conversation(cport=50000 + i, sport=135, t=1_700_000_000.0 + i * 1000).handshake()
        c.send(True, bind(1, [(0, EPM, 3, [NDR])]))
        packets += c.packets
    from analyzer.pipeline import files as pipeline

    old = pipeline._EXPIRE_EVERY
    pipeline._EXPIRE_EVERY = 1
    try:
        r = run([write_pcap(tmp_path / "idle.pcap", packets)], limits=Limits(tcp_idle_timeout_s=60))
    finally:
        pipeline._EXPIRE_EVERY = old
    assert sorted(c.end for c in r.connections) == ["capture_end", "idle"]


def _three_epm_connections(tmp_path: Path, closed: int) -> Path:
    """Three connections to 135 with a bind each; the one from port 50000 + `closed` ends with a FIN."""
    packets = []
    for i in range(3):
        c = Conversation(cport=50000 + i, sport=135, t=1_700_000_000.0 + i).handshake()
        c.send(True, bind(1, [(0, EPM, 3, [NDR])]))
        if i == closed:
            c.close()
        packets += c.packets
    return write_pcap(tmp_path / "three.pcap", packets)


def test_a_flow_filter_decides_which_new_flows_are_followed(tmp_path: Path) -> None:
    from analyzer.pipeline import Pipeline

    path = _three_epm_connections(tmp_path, closed=0)
    asked: set[int] = set()

    def follow(key: tuple[bytes, int, bytes, int]) -> bool:
        client_port = key[1] if key[3] == 135 else key[3]
        asked.add(client_port)
        return client_port != 50001

    records = Pipeline(strict=True, follow=follow).run([str(path)])
    assert sorted(c.flow.client_port for c in records.connections) == [50000, 50002]
    assert asked == {50000, 50001, 50002}
    assert len(Pipeline(strict=True).run([str(path)]).connections) == 3


def test_the_flows_open_at_the_end_of_a_capture_are_named(tmp_path: Path) -> None:
    from analyzer.pipeline import Pipeline

    pipeline = Pipeline(strict=True)
    pipeline.add_file(str(_three_epm_connections(tmp_path, closed=1)))
    ports = sorted(key[1] if key[3] == 135 else key[3] for key in pipeline.open_at_end)
    assert ports == [50000, 50002]
    assert sorted(c.end for c in pipeline.records.connections) == ["capture_end", "capture_end", "fin"]


def test_a_syn_builds_no_connection_until_the_next_packet() -> None:
    """A SYN flood builds a small tuple per SYN: no reassembler, framer or association."""
    from analyzer.capture.decode import ACK, PROTO_TCP, SYN, Packet
    from analyzer.limits import DEFAULT_LIMITS
    from analyzer.pipeline.conversations import Conversations
    from analyzer.pipeline.flow_table import SynOnly
    from analyzer.pipeline.state import Run
    from analyzer.tcp.connection import TcpConnection

    run = Run(DEFAULT_LIMITS, strict=True)
    conv = Conversations(run, "syn")
    c, s = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    conv.tcp(Packet(PROTO_TCP, c, s, 50000, 135, 1000, 0, SYN, b""), 1, 10)
    (entry,) = {id(e): e for _k, e in conv.table.entries()}.values()
    assert isinstance(entry, SynOnly) and entry.stream == 0
    conv.tcp(Packet(PROTO_TCP, s, c, 135, 50000, 7000, 1001, SYN | ACK, b""), 2, 11)
    (entry,) = {id(e): e for _k, e in conv.table.entries()}.values()
    assert isinstance(entry, TcpConnection) and entry.payload is None  # still no DCE/RPC machinery
    assert (entry.packets, entry.client_isn, entry.first_frame, entry.flow.stream) == (2, 1000, 1, 0)
    conv.tcp(Packet(PROTO_TCP, c, s, 50001, 135, 5, 0, SYN, b""), 3, 12)  # another client: another tuple
    conv.close_all("capture_end")
    attempts = list(run.records.attempts)
    assert [(a.frame, a.client_port, a.outcome) for a in attempts] == [(1, 50000, "no_pdu"), (3, 50001, "syn_only")]


def test_a_port_held_while_judging_is_let_go_unless_a_followed_connection_uses_it() -> None:
    from analyzer.capture.decode import ACK, PROTO_TCP, Packet
    from analyzer.limits import DEFAULT_LIMITS
    from analyzer.pipeline.conversations import Conversations
    from analyzer.pipeline.state import Run

    c, s = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    for followed in (False, True):
        run_ = Run(DEFAULT_LIMITS, strict=True)
        conv = Conversations(run_, "held")
        conv.tcp(Packet(PROTO_TCP, c, s, 50000, 40000, 1, 1, ACK, b"\x05"), 1, 0)  # too short to judge
        assert 40000 in run_.selector.tcp_ports
        if followed:  # a bind from another client: a heuristic connection to the same port
            conv.tcp(Packet(PROTO_TCP, c, s, 50001, 40000, 1, 1, ACK, bind(1, [(0, SVCCTL, 2, [NDR])])), 2, 10**9)
        conv.expire(601 * 10**9)  # the undecided one goes idle
        assert (40000 in run_.selector.tcp_ports) == followed


def test_datagram_records_are_spooled_only_when_asked_for() -> None:
    from analyzer.pipeline import Pipeline
    from tests.conftest import SAMPLES

    path = [str(SAMPLES / "cl_udp.pcap")]
    default, asked = Pipeline().run(path), Pipeline(datagrams=True).run(path)
    assert not default.datagrams and len(asked.datagrams) > 2  # one per connectionless PDU, when asked
    assert list(default.calls) == list(asked.calls) and default.calls  # the calls come either way
    assert list(default.endpoints) == list(asked.endpoints)
