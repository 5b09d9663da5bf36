"""Late naming: interfaces of unbound conversations from what the whole run learned
([analyzer.report.naming], [analyzer.book])."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analyzer.api import from_records
from analyzer.book import Announcement, EndpointBook
from tests.conftest import (
    EPM,
    NDR,
    SAMR,
    SVCCTL,
    Conversation,
    bind,
    bind_ack,
    request,
    response,
    run,
    write_pcap,
)
from tests.epm_build import map_request, map_response, tower

PORT = 49800


def _late_calls(t: float, cport: int = 50100, client: str = "10.0.0.5") -> Conversation:
    c = Conversation(client=client, cport=cport, sport=PORT, t=t)
    c.send(True, request(7, 15, b"\0" * 40)).send(False, response(7, b"\1" * 24))
    return c


def _epm_answer(t: float, iface: str, client: str = "10.0.0.5", cport: int = 49700) -> Conversation:
    e = Conversation(client=client, cport=cport, sport=135, t=t).handshake()
    e.send(True, bind(1, [(0, EPM, 3, [NDR])])).send(False, bind_ack(1, [(0, 0, NDR)]))
    e.send(True, request(2, 3, map_request(iface, 2)))
    e.send(False, response(2, map_response([tower(iface, 2, "tcp", PORT, "0.0.0.0")])))
    return e.close()


def test_a_later_epm_answer_names_the_conversation(tmp_path: Path) -> None:
    late = _late_calls(1_700_000_000.0)
    epm = _epm_answer(1_700_000_010.0, SVCCTL)
    res = from_records(run([write_pcap(tmp_path / "late.pcap", late.packets + epm.packets)]))
    call = res.calls[res.calls["server_port"] == PORT].iloc[0]
    assert (call["interface_uuid"], call["interface_source"]) == (SVCCTL, "epm")
    conn = res.connections[res.connections["server_port"] == PORT].iloc[0]
    assert conn["identified_by"] == "midstream"
    assert conn["epm_frame"] == res.endpoints["frame"].iloc[0]
    assert conn["epm_delay_s"] < -9  # the answer came about 10 s after the connection's first packet
    assert conn["interfaces"] == call["interface_name"]


def test_disagreeing_answers_to_other_clients_name_nothing(tmp_path: Path) -> None:
    late = _late_calls(1_700_000_000.0)
    one = _epm_answer(1_700_000_010.0, SVCCTL, client="10.0.0.7", cport=49701)
    two = _epm_answer(1_700_000_020.0, SAMR, client="10.0.0.8", cport=49702)
    res = from_records(run([write_pcap(tmp_path / "late.pcap", late.packets + one.packets + two.packets)]))
    call = res.calls[res.calls["server_port"] == PORT].iloc[0]
    assert call["interface_source"] == "unknown" and pd.isna(call["interface_uuid"])
    conn = res.connections[res.connections["server_port"] == PORT].iloc[0]
    assert pd.isna(conn["epm_frame"])


def test_the_answer_to_the_same_client_wins(tmp_path: Path) -> None:
    late = _late_calls(1_700_000_000.0)
    other = _epm_answer(1_700_000_010.0, SAMR, client="10.0.0.7", cport=49701)
    mine = _epm_answer(1_700_000_020.0, SVCCTL)
    res = from_records(run([write_pcap(tmp_path / "late.pcap", late.packets + other.packets + mine.packets)]))
    call = res.calls[res.calls["server_port"] == PORT].iloc[0]
    assert call["interface_uuid"] == SVCCTL


def test_a_later_alter_context_names_its_context(tmp_path: Path) -> None:
    c = _late_calls(1_700_000_000.0)
    c.send(True, bind(8, [(0, SVCCTL, 2, [NDR])], alter=True)).send(False, bind_ack(8, [(0, 0, NDR)], alter=True))
    c.send(True, request(9, 16, b"\0" * 8)).send(False, response(9, b"\1" * 8))
    res = from_records(run([write_pcap(tmp_path / "late.pcap", c.packets)]))
    got = res.calls[["call_id", "interface_uuid", "interface_source"]].values.tolist()
    assert got == [[7, SVCCTL, "alter_context"], [9, SVCCTL, "bind"]]


def test_book_keeps_only_unambiguous_answers() -> None:
    book = EndpointBook(max_entries=2)
    ep = ("tcp", "10.0.0.10", PORT)
    book.learn(ep, Announcement("c", 5, 50, "10.0.0.7", SVCCTL, 2, 0, "epm"))
    assert book.naming(ep, "10.0.0.5", 0) is not None
    book.learn(ep, Announcement("c", 9, 90, "10.0.0.8", SAMR, 1, 0, "epm"))
    assert book.naming(ep, "10.0.0.5", 0) is None
    assert book.naming(ep, "10.0.0.8", 0).frame == 9  # type: ignore[union-attr]
    assert [a.frame for a in book.before(ep, 60)] == [5]
    book.learn(("tcp", "10.0.0.11", 1), Announcement("c", 1, 1, None, None, None, None, "epm"))
    book.learn(("tcp", "10.0.0.12", 2), Announcement("c", 2, 2, None, None, None, None, "epm"))
    assert ep not in book and not book.has_port(PORT) and book.has_port(2)


def test_a_later_secondary_address_names_the_conversation(tmp_path: Path) -> None:
    late = _late_calls(1_700_000_000.0)
    later = Conversation(cport=50200, sport=PORT, t=1_700_000_005.0).handshake()
    later.send(True, bind(1, [(0, SVCCTL, 2, [NDR])]))
    later.send(False, bind_ack(1, [(0, 0, NDR)], sec_addr=str(PORT).encode() + b"\0")).close()
    res = from_records(run([write_pcap(tmp_path / "late.pcap", late.packets + later.packets)]))
    first = res.calls[res.calls["client_port"] == 50100].iloc[0]
    assert (first["interface_uuid"], first["interface_source"]) == (SVCCTL, "sec_addr")
    conn = res.connections[res.connections["client_port"] == 50100].iloc[0]
    assert pd.isna(conn["epm_frame"])  # a secondary address is not an EPM answer
