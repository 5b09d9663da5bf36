"""Runs of plain SYNs opened in bulk (`pipeline.syn_runs`) give the records the per-packet way gives,
in the same order: floods and scans to every well-known port, mixed with retransmitted SYNs, answered
SYNs, conversations evicted from a full table, SYNs with ECN flags and idle sweeps that close
entries in the middle of a run. A flow filter turns the bulk path off, so one capture is read both ways."""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.capture.decode import PacketDecoder, Selector
from analyzer.capture.ipfrag import Defragmenter
from analyzer.capture.source import open_capture
from analyzer.capture.syns import SynArrays, _addresses, dotted, syn_run
from analyzer.limits import Limits
from analyzer.pipeline import Pipeline
from analyzer.pipeline.classify import ip_text, ip_texts
from analyzer.pipeline.conversations import Conversations
from analyzer.pipeline.flow_table import SynOnly
from analyzer.pipeline.midstream import Candidate
from analyzer.pipeline.syn_only import SynTail
from analyzer.pipeline.syn_runs import _packet
from analyzer.tcp.connection import TcpConnection
from tests.test_floods import floods

KINDS = ("binds", "endpoints", "calls", "connections", "datagrams", "attempts", "violations")


def _bind_ack(port: int) -> bytes:
    """A bind_ack whose secondary address names `port` ([C706] 12.6.4.4)."""
    sec = f"{port}\0".encode()
    body = struct.pack("<HHIH", 4280, 4280, 0x1234, len(sec)) + sec
    body += b"\0" * (-len(body) % 4)
    body += struct.pack("<BBHHH", 1, 0, 0, 0, 0) + floods._syntax(floods.NDR, 2)
    return floods.co_header(12, 1, len(body)) + body


def _scenario(path: Path, seed: int, events: int = 120) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as out:
        w = floods.PcapWriter(out)
        recent: list[Any] = []
        client = 0
        for _ in range(events):
            what = rng.random()
            if what < 0.55:  # a run of SYNs from new clients
                port = rng.choice((135, 135, 445, 139, 593))
                for _ in range(rng.choice((3, 70, 200, 600))):
                    addr, cport = floods._client(client)
                    client += 1
                    c = floods.Conn(w, addr, cport, floods.SERVER, port)
                    c.syn()
                    recent = [*recent, c][-50:]
            elif what < 0.65 and recent:  # a SYN retransmitted, or answered
                c = rng.choice(recent)
                if rng.random() < 0.5:
                    c.syn()
                else:
                    w.tcp(c.s, c.sp, c.c, c.cp, c.sseq - 1, c.cseq, floods.SYN_ACK, b"")
            elif what < 0.8:  # a conversation with a bind, left open
                addr, cport = floods._client(client)
                client += 1
                c = floods.Conn(w, addr, cport, floods.SERVER, 135)
                c.handshake()
                c.send(floods.bind_pdu(1, floods.EPM, 3))
                if rng.random() < 0.5:
                    c.send(floods.bind_ack_pdu(1), from_client=False)
            elif what < 0.85:  # a bind_ack past a hole: read when the connection is evicted, it teaches a port
                addr, cport = floods._client(client)
                client += 1
                c = floods.Conn(w, addr, cport, floods.SERVER, 135)
                c.handshake()
                c.send(floods.bind_pdu(1, floods.EPM, 3))
                c.sseq += 100
                c.send(_bind_ack(49000 + rng.randrange(1000)), from_client=False)
            elif what < 0.9:  # SYNs with ECE and CWR set, as ECN-capable clients send them
                for _ in range(rng.choice((2, 80))):
                    addr, cport = floods._client(client)
                    client += 1
                    w.tcp(addr, cport, floods.SERVER, 135, 999, 0, 0xC2, b"")
            else:  # silence: the next sweep closes what went idle
                w.t += rng.choice((500_000, 3_000_000))


def _records(path: Path, limits: Limits, bulk: bool) -> dict[str, list[Any]]:
    follow = None if bulk else (lambda key: True)  # a filter turns the bulk path off
    records = Pipeline(limits, strict=True, follow=follow).run([str(path)])
    return {kind: list(getattr(records, kind)) for kind in KINDS}


@pytest.mark.parametrize("seed", range(8))
def test_bulk_syns_give_the_records_of_one_by_one(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    if seed % 2:  # idle sweeps every few packets: many fall inside runs, some where entries went idle
        monkeypatch.setattr("analyzer.pipeline.files._EXPIRE_EVERY", 37)
    path = tmp_path / "scenario.pcap"
    _scenario(path, seed)
    limits = Limits(max_tcp_flows=[40, 150, 1000][seed % 3], tcp_idle_timeout_s=1.0)
    bulk, single = _records(path, limits, True), _records(path, limits, False)
    assert len(bulk["attempts"]) > 1000  # the runs were there
    for kind in KINDS:
        assert bulk[kind] == single[kind], kind


def test_a_syn_flood_goes_the_bulk_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood's SYNs reach the sink as runs, not as packets one by one."""
    from analyzer.pipeline import syn_runs

    taken: list[int] = []
    real = syn_runs.open_syns

    def spy(conv: Any, run: Any, lo: int, sweep_in: int, every: int) -> tuple[int, bool]:
        took, changed = real(conv, run, lo, sweep_in, every)
        taken.append(took)
        return took, changed

    monkeypatch.setattr("analyzer.pipeline.files.open_syns", spy)
    path = tmp_path / "syn.pcap"
    with open(path, "wb") as out:
        floods.syn_flood(out, 5000)
    records = Pipeline(Limits(max_tcp_flows=100), strict=True).run([str(path)])
    assert len(records.attempts) == 5000 and sum(taken) == 5000 and max(taken) > 1000


@settings(max_examples=50, deadline=None)
@given(
    syns=st.lists(
        st.tuples(
            st.binary(min_size=4, max_size=4),  # addresses with zero octets anywhere, trailing ones too
            st.integers(0, 65535),
            st.binary(min_size=4, max_size=4),
            st.integers(0, 0xFFFFFFFF),
            st.sampled_from([0x02, 0xC2, 0x0A]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_a_run_holds_the_packets_the_decoder_makes(
    tmp_path_factory: pytest.TempPathFactory, syns: list[tuple[bytes, int, bytes, int, int]]
) -> None:
    """Each SYN of a `SynRun` (its fields read with numpy) is the `Packet` decoding its frame gives."""
    path = tmp_path_factory.mktemp("run") / "syns.pcap"
    with open(path, "wb") as out:
        w = floods.PcapWriter(out)
        for src, sport, dst, seq, flags in syns:
            w.tcp(src, sport, dst, 135, seq, 7, flags, b"")
    decoded = [(frame, ts, pkt) for frame, ts, pkt in _decoder().select(open_capture(str(path)))]
    batch = next(iter(open_capture(str(path)).batches()))
    run = syn_run(batch, np.arange(len(syns), dtype=np.int64))
    assert [(run.frames[i], run.ts[i], _packet(run, i)) for i in range(len(syns))] == decoded
    assert [ip_text(a) for a in run.src] == dotted(run.src_octets).to_pylist()
    arrays = (run.frame_array, run.ts_array, run.sport_array, run.dport_array)
    assert [a.tolist() for a in arrays] == [run.frames, run.ts, run.sport, run.dport]


@pytest.mark.parametrize("stretch", [1, 3, 1000])
def test_addresses_in_stretches_or_not_are_their_octets(stretch: int) -> None:
    """Addresses in long stretches of one (a flood's) are made once a stretch: the same bytes and
    text as each made alone, as for addresses mostly distinct."""
    rng = np.random.default_rng(stretch)
    distinct = rng.integers(0, 256, size=(50, 4), dtype=np.uint8)
    distinct[:5] = [[0, 0, 0, 0], [255, 255, 255, 255], [10, 0, 0, 1], [1, 2, 3, 0], [0, 9, 0, 9]]
    octets = np.repeat(distinct, stretch, axis=0)
    assert dotted(octets).to_pylist() == [ip_text(bytes(row)) for row in octets.tolist()]
    assert dotted(octets[7:-3]).to_pylist() == [ip_text(bytes(row)) for row in octets[7:-3].tolist()]
    assert _addresses(octets) == [bytes(row) for row in octets.tolist()]


def _decoder() -> PacketDecoder:
    sel = Selector()
    sel.tcp_ports |= {135}
    return PacketDecoder(sel, Defragmenter(Limits()))


@settings(max_examples=50, deadline=None)
@given(addrs=st.lists(st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16)), max_size=60))
def test_ip_texts_is_ip_text_per_address(addrs: list[bytes]) -> None:
    """The bulk address texts (once per distinct address) are the per-row ones, repeats included."""
    addrs = addrs + addrs[: len(addrs) // 2]  # a flood repeats its addresses
    assert ip_texts(addrs) == [ip_text(a) for a in addrs]


def _close_all_one_by_one(self: Conversations, end: str) -> None:
    """`Conversations.close_all` as it was before the bulk path: each SYN-only entry on its own."""
    for key, entry in self.table.entries():
        if isinstance(entry, TcpConnection):
            self.close(entry, end, entry.last_ts, tombstone=False)
        elif isinstance(entry, SynOnly):
            self._syn_only_ended(key, entry)
        elif isinstance(entry, Candidate):
            self.forget(key, entry)
            self.unconfirmed(entry, entry.packets[-1][1])
    self.vcs.close_all()
    for record in self.pipes.close_all(end):
        self.collector.connection(record)
    self.udp_transport.close(end)
    self.table.clear()


@pytest.mark.parametrize("seed", range(4))
def test_syn_only_entries_at_the_end_are_written_as_one_by_one(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`close_all` writes the SYN-only entries left in the table in bulk (`syn_only.syn_only_ended`):
    the same records in the same order as one by one, between the conversations still open there."""
    from analyzer.pipeline import syn_only

    path = tmp_path / "scenario.pcap"
    _scenario(path, seed)
    limits = Limits(max_tcp_flows=[5000, 700][seed % 2], tcp_idle_timeout_s=100.0)  # much is left at the end
    if seed % 2:  # the table is small: bulk from fewer entries on
        monkeypatch.setattr(syn_only, "BULK_ATTEMPTS", 100)
    sizes: list[int] = []

    def spy(collector: Any, entries: list[Any]) -> None:
        sizes.append(len(entries))
        syn_only.syn_only_ended(collector, entries)

    monkeypatch.setattr("analyzer.pipeline.conversations.syn_only_ended", spy)
    bulk = _records(path, limits, True)
    monkeypatch.setattr(Conversations, "close_all", _close_all_one_by_one)
    single = _records(path, limits, True)
    assert max(sizes) >= syn_only.BULK_ATTEMPTS  # the bulk batch was written
    assert len(bulk["attempts"]) > 1000 and bulk["connections"]
    for kind in KINDS:
        assert bulk[kind] == single[kind], kind


def test_a_tail_gives_the_arrays_of_its_entries_evicted_in_order() -> None:
    """`SynTail.take`: the arrays of the first evicted entries that are the tail's, consecutive and
    in order, from wherever the first is in it; none when the first is not one of them."""
    n = 6
    entries = [
        SynOnly((b"\x0a\0\0\1", 1024 + i, b"\x0a\0\0\2", 135), 0, 0, 2, b"", i, i, i, "co", "port135", None)
        for i in range(n)
    ]
    octets = np.array([[10, 0, 0, 1]] * n, dtype=np.uint8)
    numbers = np.arange(n, dtype=np.int64)
    tail = SynTail(entries, SynArrays(octets, octets, numbers, numbers, numbers + 1024, numbers))
    other = entries[0]._replace(frame=99)
    for evicted, first, end in [
        (entries, 0, n),
        (entries[1:], 1, n),  # the first gone before
        ([*entries[1:], other], 1, n),  # then one more that is not the tail's
        (entries[:2], 0, 2),
        ([other, *entries], None, None),
    ]:
        syns, rest = tail.take(evicted)
        if first is None:
            assert syns is None and rest is tail
            continue
        assert syns is not None and syns.frames.tolist() == list(range(first, end))
        assert (rest is None) == (end == n)
        if rest is not None:
            assert rest.entries == entries[end:] and rest.syns.frames.tolist() == list(range(end, n))
