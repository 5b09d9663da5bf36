"""Conversations joined late: followed from their first well-formed PDU once confirmed
([analyzer.pipeline.midstream], [analyzer.pipeline])."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import (
    CAPTURES,
    NDR,
    SVCCTL,
    Conversation,
    bind,
    needs_shared,
    request,
    response,
    run,
    write_pcap,
)


def _late(cport: int = 50100, sport: int = 49800) -> Conversation:
    """A connection already running when the capture began: no handshake, no bind."""
    return Conversation(cport=cport, sport=sport)


def test_request_answered_by_its_response_is_followed(tmp_path: Path) -> None:
    c = _late().send(True, request(7, 15, b"\0" * 40)).send(False, response(7, b"\1" * 24))
    c.send(True, request(8, 16, b"\0" * 8)).send(False, response(8, b"\2" * 8))
    r = run([write_pcap(tmp_path / "late.pcap", c.packets)])
    (conn,) = r.connections
    assert conn.identified_by == "midstream" and conn.flow.client_port == 50100
    assert [(x.call_id, x.opnum, x.answered, x.interface_source) for x in r.calls] == [
        (7, 15, True, "unknown"),
        (8, 16, True, "unknown"),
    ]
    assert not [v for v in r.violations if v.what == "unconfirmed_conversation"]


def test_joined_at_a_response_the_client_is_still_the_client(tmp_path: Path) -> None:
    c = _late().send(False, response(3, b"\1" * 16)).send(True, request(4, 2, b"\0" * 8))
    c.send(False, response(4, b"\1" * 8))
    r = run([write_pcap(tmp_path / "late.pcap", c.packets)])
    (conn,) = r.connections
    assert (conn.flow.client_port, conn.flow.server_port) == (50100, 49800)
    assert [x.call_id for x in r.calls] == [4]


def test_two_pdus_chained_by_frag_length_confirm(tmp_path: Path) -> None:
    c = _late().send(True, request(1, 5, b"\0" * 16) + request(2, 6, b"\0" * 16))
    r = run([write_pcap(tmp_path / "late.pcap", c.packets)])
    assert [x.call_id for x in r.calls] == [1, 2]


def test_a_later_alter_context_confirms(tmp_path: Path) -> None:
    c = _late().send(False, response(9, b"\1" * 16))
    c.send(True, bind(10, [(1, SVCCTL, 2, [NDR])], alter=True))
    r = run([write_pcap(tmp_path / "late.pcap", c.packets)])
    assert [c.identified_by for c in r.connections] == ["midstream"]
    assert [(b.pdu_type, b.interface_uuid) for b in r.binds] == [("alter_context", SVCCTL)]


def test_one_lone_header_is_counted_not_followed(tmp_path: Path) -> None:
    c = _late().send(True, request(1, 5, b"\0" * 16))
    r = run([write_pcap(tmp_path / "late.pcap", c.packets)])
    assert not r.connections and not r.calls
    (v,) = [v for v in r.violations if v.what == "unconfirmed_conversation"]
    assert "10.0.0.5:50100 -> 10.0.0.10:49800" in v.detail


def test_a_header_leading_nowhere_is_rejected(tmp_path: Path) -> None:
    """File-transfer bytes that happen to start like a PDU: frag_length points into more bytes, not
    at a header, and the peer never echoes the call_id."""
    fake = request(1, 5, b"\0" * 16)
    c = _late(sport=8443).send(True, fake + b"\xaa" * 400).send(False, b"\x17\x03\x03" + b"\x00" * 60)
    c.send(True, b"\xbb" * 500)
    r = run([write_pcap(tmp_path / "noise.pcap", c.packets)])
    assert not r.connections and not r.calls
    assert [v.what for v in r.violations] == ["unconfirmed_conversation"]


def test_an_answer_to_another_call_id_does_not_confirm(tmp_path: Path) -> None:
    c = _late().send(True, request(1, 5, b"\0" * 16) + b"\xcc" * 300).send(False, response(2, b"\1" * 8) + b"\xdd")
    r = run([write_pcap(tmp_path / "late.pcap", c.packets)])
    assert not r.connections


@needs_shared
def test_dcom_on_the_dynamic_port_is_followed() -> None:
    """LM_dcom_mmc20: the capture starts inside an IRemoteSCMActivator / IDispatch conversation."""
    path = CAPTURES / "PCAP-ATTACK/Lateral_Movement/LM_dcom_mmc20.application_dcerpc.pcapng"
    r = run([path])
    assert len(r.calls) == 37
    (dyn,) = [c for c in r.connections if c.flow.server_port == 60283]
    assert dyn.identified_by == "midstream" and dyn.first_frame == 3


@needs_shared
def test_petitpotam_and_imap_port_1065() -> None:
    r = run([CAPTURES / "PetitPotam/testing/Traces/UnPatchedDCOpenFileRaw.pcapng"])
    late = {(c.frame, c.call_id) for c in r.calls if c.flow.transport == "ncacn_ip_tcp"}
    assert {(325, 1086), (328, 1093), (2876, 1087)} <= late
    r = run([CAPTURES / "arkime/tests/pcap/imap.pcap"])
    late = [c for c in r.calls if c.flow.server_port == 1065]
    assert sorted(c.call_id for c in late) == [234, 7740, 7741]


def test_random_bytes_after_a_header_are_never_followed(tmp_path: Path) -> None:
    """200 flows that each start with a well-formed request header followed by random bytes (both
    ways, in segments of random size): none is confirmed, each is counted."""
    import random

    rnd = random.Random(9)
    packets = []
    for i in range(200):
        c = Conversation(cport=20000 + i, sport=30000 + i)
        head = request(1, rnd.randrange(64), b"\0" * rnd.randrange(8, 200))
        c.send(True, head + rnd.randbytes(rnd.randrange(0, 3000)), chunks=rnd.randrange(1, 4))
        c.send(False, rnd.randbytes(rnd.randrange(1, 3000)), chunks=rnd.randrange(1, 4))
        c.send(True, rnd.randbytes(rnd.randrange(1, 3000)), chunks=rnd.randrange(1, 4))
        packets += c.packets
    r = run([write_pcap(tmp_path / "noise.pcap", packets)])
    assert not r.connections and not r.calls
    assert sum(v.count for v in r.violations if v.what == "unconfirmed_conversation") == 200
    from analyzer.api import from_records

    dq = from_records(r).data_quality
    assert dq[dq["scope"] == "capture"]["unfollowed"].tolist() == [200]


def test_what_a_well_formed_header_is() -> None:
    from analyzer.dcerpc.probe import co_probe, co_start

    good = request(5, 3, b"\0" * 8)
    h = co_start(good, 0, len(good))
    assert h is not None and (h.ptype, h.call_id, h.frag_length, h.little) == (0, 5, len(good), True)
    # The same header in big-endian data representation: drep 0x00, lengths and call_id swapped.
    big = good[:4] + b"\x00" + good[5:8] + good[8:10][::-1] + good[10:12][::-1] + good[12:16][::-1] + good[16:]
    hb = co_start(big, 0, len(big))
    assert hb is not None and (hb.call_id, hb.frag_length, hb.little) == (5, len(good), False)
    bad = {
        "version 5.1": good[:1] + b"\x01" + good[2:],
        "unknown ptype 4 (connectionless)": good[:2] + b"\x04" + good[3:],
        "RTS (RPC over HTTP)": good[:2] + b"\x14" + good[3:],
        "drep reserved bits": good[:4] + b"\x12" + good[5:],
        "float format 4": good[:5] + b"\x04" + good[6:],
        "frag_length below a request's": good[:8] + b"\x14\x00" + good[10:],
        "auth_length past frag_length": good[:10] + b"\xff\x00" + good[12:],
        "short": good[:15],
    }
    for why, data in bad.items():
        assert co_start(data, 0, len(data)) is None, why
        assert not co_probe(data, 0, len(data)), why


def test_the_confirmation_budgets_are_caps(tmp_path: Path) -> None:
    """A conversation confirmed by its third PDU (the second request, where the first one ended: the
    answer between them is to a call not seen); with a budget of two payloads (or two packets) it is
    given up, said once as the cap it hit and once as unconfirmed."""
    from analyzer.limits import Limits

    c = _late().send(True, request(1, 5, b"\0" * 16)).send(False, response(9, b"\1" * 8))
    c.send(True, request(2, 6, b"\0" * 16))
    path = write_pcap(tmp_path / "late.pcap", c.packets)
    assert [x.identified_by for x in run([path]).connections] == ["midstream"]
    for limits, code in (
        (Limits(max_midstream_payloads=2), "cap_midstream_payloads"),
        (Limits(max_midstream_packets=2), "cap_midstream_packets"),
    ):
        r = run([path], limits=limits)
        assert not r.connections and not r.calls
        assert sorted(v.what for v in r.violations) == [code, "unconfirmed_conversation"]


def test_a_start_cut_into_more_tiny_segments_than_held_is_a_cap(tmp_path: Path) -> None:
    from analyzer.limits import Limits

    c = Conversation(cport=50200, sport=49900).handshake()
    c.send(True, bind(1, [(0, SVCCTL, 2, [NDR])]), chunks=40)  # 72 bytes, a couple per segment
    path = write_pcap(tmp_path / "tiny.pcap", c.packets)
    assert [x.identified_by for x in run([path]).connections] == ["heuristic"]
    r = run([path], limits=Limits(max_undecided_bytes=8))
    assert not r.connections and [v.what for v in r.violations] == ["cap_undecided_bytes"]
