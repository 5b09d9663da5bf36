"""TCP reassembly in C (analyzer/tcp/_tcp.c) against its Python twin (analyzer/tcp/reassembly.py):
random segment sequences (sequence wrap, overlaps with other bytes, holes, acknowledgements, FIN,
caps with small limits, receivers that flush from inside a delivery) give the same deliveries,
the same gaps and the same counters after every step ([RFC 9293] 3.4, 3.10.7.4)."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analyzer.tcp
from analyzer.limits import Limits
from analyzer.tcp import reassembly
from tests.conftest import CAPTURES, needs_shared

try:
    from analyzer.tcp import _tcp
except ImportError:  # not built here
    _tcp = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(_tcp is None, reason="the C reassembly is not built here")

COUNTERS = ("started", "finished", "gaps", "missing", "retransmitted", "ooo_segments", "cap_hits", "given_up")


class Record:
    """A sink that logs every event with the half's `given_up` at that moment; optionally it flushes
    the half from inside a delivery (a receiver that re-enters the reassembly)."""

    def __init__(self, reenter: int) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.half: Any = None
        self.reenter = reenter

    def data(self, data: bytes, frame: int, ts: int) -> None:
        self.events.append(("data", bytes(data), frame, ts))
        if self.reenter and len(self.events) % self.reenter == 0:
            self.half.flush(frame, ts)

    def gap(self, missing: int, frame: int, ts: int) -> None:
        self.events.append(("gap", missing, frame, ts, self.half.given_up))


op = st.one_of(
    st.tuples(st.just("seg"), st.integers(-40, 120), st.integers(0, 30), st.booleans(), st.integers(0, 255)),
    st.tuples(st.just("ack"), st.integers(-40, 160)),
    st.tuples(st.just("syn"), st.integers(-3, 3)),
    st.tuples(st.just("flush")),
)


def run(cls: Any, isn: int, limits: Limits, reenter: int, ops: list[tuple[Any, ...]]) -> list[Any]:
    sink = Record(reenter)
    h = cls(sink, limits)
    sink.half = h
    trace: list[Any] = []
    for frame, o in enumerate(ops, 1):
        ts = frame * 1000
        if o[0] == "seg":
            _, rel, n, fin, fill = o
            h.segment((isn + rel) & 0xFFFFFFFF, bytes((fill + i) & 0xFF for i in range(n)), fin, frame, ts)
        elif o[0] == "ack":
            h.peer_ack((isn + o[1]) & 0xFFFFFFFF, frame, ts)
        elif o[0] == "syn":
            h.syn((isn + o[1] - 1) & 0xFFFFFFFF)
        else:
            h.flush(frame, ts)
        trace.append((list(sink.events), tuple(getattr(h, c) for c in COUNTERS)))
        sink.events.clear()
    h.flush(len(ops) + 1, 0)
    trace.append((sink.events, tuple(getattr(h, c) for c in COUNTERS)))
    return trace


@needs_c
@settings(max_examples=1500, deadline=None)
@given(
    ops=st.lists(op, max_size=40),
    isn=st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32 - 80, 2**32 - 1)),
    max_bytes=st.integers(0, 120),
    max_segs=st.integers(0, 6),
    reenter=st.sampled_from([0, 0, 0, 3]),
)
def test_the_c_half_reassembles_as_the_python_one(
    ops: list[tuple[Any, ...]], isn: int, max_bytes: int, max_segs: int, reenter: int
) -> None:
    limits = Limits(max_ooo_bytes=max_bytes, max_ooo_segments=max_segs)
    assert run(_tcp.TcpHalf, isn, limits, reenter, ops) == run(reassembly.TcpHalf, isn, limits, reenter, ops)


@needs_c
def test_the_c_half_passes_a_receivers_exception_on_and_keeps_its_state() -> None:
    class Fails:
        def data(self, data: bytes, frame: int, ts: int) -> None:
            raise ValueError(frame)

        def gap(self, missing: int, frame: int, ts: int) -> None:
            raise KeyError(missing)

    for cls in (_tcp.TcpHalf, reassembly.TcpHalf):
        h = cls(Fails(), Limits())
        h.syn(0)
        with pytest.raises(ValueError):
            h.segment(1, b"abc", False, 7, 0)
        h.segment(10, b"xyz", False, 8, 0)  # buffered: no call
        with pytest.raises(KeyError):
            h.peer_ack(13, 9, 0)
        assert (h.gaps, h.missing, h.ooo_segments) == (1, 6, 1)


@needs_c
def test_the_c_half_takes_part_in_the_cyclic_collector() -> None:
    """A connection, its sink and its halves refer to each other: the cycle must be collectable."""

    class Sink:
        def data(self, data: bytes, frame: int, ts: int) -> None: ...

        def gap(self, missing: int, frame: int, ts: int) -> None: ...

    sink = Sink()
    h = _tcp.TcpHalf(sink, Limits())
    sink.half = h  # type: ignore[attr-defined]
    h.segment(5, b"x", False, 1, 0)
    h.segment(50, b"ahead", False, 2, 0)  # a buffered segment held while collected
    ref = weakref.ref(sink)
    del sink, h
    gc.collect()
    assert ref() is None


@needs_c
def test_the_c_half_refuses_wrong_arguments() -> None:
    h = _tcp.TcpHalf(_NullSink(), Limits())
    with pytest.raises(TypeError):
        h.segment(1, b"x", False, 1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        h.segment("1", b"x", False, 1, 0)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        del h.deliver
    with pytest.raises(TypeError):
        _tcp.TcpHalf(_NullSink())  # type: ignore[call-arg]


class _NullSink:
    def data(self, data: bytes, frame: int, ts: int) -> None: ...

    def gap(self, missing: int, frame: int, ts: int) -> None: ...


def test_the_package_uses_the_c_half_when_built() -> None:
    """Not a silent fallback: connections reassemble with the compiled half where it was built."""
    assert analyzer.tcp.TcpHalf is (reassembly.TcpHalf if _tcp is None else _tcp.TcpHalf)


# -- one connection's packets (analyzer/tcp/core.py and its C twin) ------------------------------

CONN_FIELDS = ("packets", "server_packets", "client_bytes", "server_bytes", "client_isn", "reset", "finished")
CONN_FIELDS += ("last_frame", "last_ts")


def _connection(core: Any, half: Any, limits: Limits) -> tuple[Any, Record, Record]:
    class Conn(core):  # type: ignore[misc, valid-type]
        __slots__ = ()

    conn = Conn()
    c_sink, s_sink = Record(0), Record(0)
    conn.client = (b"\x0a\x00\x00\x02", 50000)
    conn.c2s, conn.s2c = half(c_sink, limits), half(s_sink, limits)
    c_sink.half, s_sink.half = conn.c2s, conn.s2c
    conn.packets = conn.server_packets = conn.client_bytes = conn.server_bytes = 0
    conn.client_isn, conn.reset, conn.last_frame, conn.last_ts = None, False, 0, 0
    return conn, c_sink, s_sink


PACKET_FIELDS = (
    st.booleans(),  # from the client
    st.sampled_from([0x02, 0x12, 0x10, 0x18, 0x11, 0x19, 0x04, 0x14, 0x01, 0x00, 0x03, 0x06]),  # flags
    st.integers(-20, 90),  # seq, relative to that side's ISN
    st.integers(-20, 90),  # ack, relative to the other side's ISN
    st.integers(0, 25),  # payload length
    st.integers(0, 255),  # its first byte
)
packet_op = st.tuples(*PACKET_FIELDS)


def drive(core: Any, half: Any, isns: tuple[int, int], limits: Limits, ops: list[tuple[Any, ...]]) -> list[Any]:
    from analyzer.capture.decode import PROTO_TCP, Packet

    conn, c_sink, s_sink = _connection(core, half, limits)
    c, s = conn.client, (b"\x0a\x00\x00\x01", 135)
    trace: list[Any] = []
    for frame, (from_client, flags, seq, ack, n, fill) in enumerate(ops, 1):
        mine, theirs = isns if from_client else isns[::-1]
        src, dst = (c, s) if from_client else (s, c)
        payload = bytes((fill + i) & 0xFF for i in range(n))
        seq32, ack32 = (mine + seq) & 0xFFFFFFFF, (theirs + ack) & 0xFFFFFFFF
        pkt = Packet(PROTO_TCP, src[0], dst[0], src[1], dst[1], seq32, ack32, flags, payload)
        if frame == 1 and flags == 0x02 and from_client and not n:
            conn.client_syn(pkt.seq, frame, frame * 10)
        else:
            conn.packet(pkt, from_client, frame, frame * 10)
        halves = tuple(tuple(getattr(h, k) for k in COUNTERS) for h in (conn.c2s, conn.s2c))
        trace.append((tuple(getattr(conn, k) for k in CONN_FIELDS), halves, list(c_sink.events), list(s_sink.events)))
        c_sink.events.clear()
        s_sink.events.clear()
    return trace


@needs_c
@settings(max_examples=1000, deadline=None)
@given(
    ops=st.lists(packet_op, max_size=30),
    isns=st.tuples(st.integers(0, 2**32 - 1), st.integers(2**32 - 60, 2**32 - 1)),
    max_segs=st.integers(0, 4),
)
def test_the_c_connection_core_follows_packets_as_the_python_one(
    ops: list[tuple[Any, ...]], isns: tuple[int, int], max_segs: int
) -> None:
    from analyzer.tcp import core

    limits = Limits(max_ooo_bytes=60, max_ooo_segments=max_segs)
    want = drive(core.ConnectionCore, reassembly.TcpHalf, isns, limits, ops)
    assert drive(_tcp.ConnectionCore, _tcp.TcpHalf, isns, limits, ops) == want
    assert drive(_tcp.ConnectionCore, reassembly.TcpHalf, isns, limits, ops) == want  # its halves in Python


def test_connections_use_the_c_core_when_built() -> None:
    from analyzer.tcp import connection, core

    assert connection.ConnectionCore is (core.ConnectionCore if _tcp is None else _tcp.ConnectionCore)


# -- a capture's TCP packets: `Follow` against `Conversations._tcp` ---------------------------------


class World:
    """What `Conversations._tcp` touches, made for one run: a flow table of two followed connections
    (the second one's client the other side), an entry that is not followed, and a flow not in it;
    every look-up, touch, hand-over to `_other` and close logged."""

    C, S = (b"\x0a\x00\x00\x02", 50000), (b"\x0a\x00\x00\x01", 135)
    FLOWS = ((C, S), ((C[0], 50001), S), ((C[0], 50002), S), ((C[0], 50003), S))

    def __init__(self, core: Any, half: Any) -> None:
        limits = Limits(max_ooo_bytes=40, max_ooo_segments=2)
        self.log: list[Any] = []
        self.table: dict[Any, Any] = {}
        self.conns: list[Any] = []
        self.sinks: list[Record] = []
        for i, (a, b) in enumerate(self.FLOWS[:3]):
            if i < 2:
                conn, c_sink, s_sink = _connection(core, half, limits)
                conn.client = a if i == 0 else b
                self.conns.append(conn)
                self.sinks += [c_sink, s_sink]
                entry: Any = conn
            else:
                entry = ("not followed", i)
            self.table[(a[0], a[1], b[0], b[1])] = self.table[(b[0], b[1], a[0], a[1])] = entry
        self.names = {id(e): n for n, e in enumerate([*self.conns, self.table[self._key(2)]])}

    def _key(self, i: int) -> Any:
        a, b = self.FLOWS[i]
        return (a[0], a[1], b[0], b[1])

    def _name(self, entry: Any) -> Any:
        return None if entry is None else self.names[id(entry)]

    def _lookup(self, key: Any) -> Any:
        self.log.append(("lookup", key))
        return self.table.get(key)

    def _touch(self, ident: int) -> None:
        self.log.append(("touch", self.names[ident]))

    def _other(self, key: Any, entry: Any, pkt: Any, frame: int, ts: int) -> None:
        self.log.append(("other", key, self._name(entry), pkt, frame, ts))

    def close(self, conn: Any, end: str, ts: int) -> None:
        self.log.append(("close", self._name(conn), end, ts))
        for k in [k for k, e in self.table.items() if e is conn]:
            del self.table[k]

    def state(self) -> Any:
        conns = [tuple(getattr(c, k) for k in CONN_FIELDS) for c in self.conns]
        halves = [tuple(getattr(h, k) for k in COUNTERS) for c in self.conns for h in (c.c2s, c.s2c)]
        events = [list(s.events) for s in self.sinks]
        for s in self.sinks:
            s.events.clear()
        log, self.log = self.log, []
        return conns, halves, events, log


tcp_op = st.tuples(st.integers(0, 3), *PACKET_FIELDS)  # which flow, then the packet's fields


def follow_run(c_path: bool, ops: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    from analyzer.capture.decode import PROTO_TCP, Packet
    from analyzer.pipeline import conversations
    from analyzer.tcp import core

    w = World(_tcp.ConnectionCore, _tcp.TcpHalf) if c_path else World(core.ConnectionCore, reassembly.TcpHalf)
    cls = type(w.conns[0])
    if c_path:
        tcp: Any = _tcp.Follow(w._lookup, w._touch, cls, w._other, w.close)
    else:
        monkeypatch.setattr(conversations, "TcpConnection", cls)

        def tcp(pkt: Any, frame: int, ts: int) -> None:
            conversations.Conversations._tcp(w, pkt, frame, ts)  # type: ignore[arg-type]

    trace = []
    for frame, (flow, from_a, flags, seq, ack, n, fill) in enumerate(ops, 1):
        a, b = World.FLOWS[flow]
        src, dst = (a, b) if from_a else (b, a)
        payload = bytes((fill + i) & 0xFF for i in range(n))
        pkt = Packet(PROTO_TCP, src[0], dst[0], src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, payload)
        tcp(pkt, frame, frame * 10)
        trace.append(w.state())
    return trace


@needs_c
@settings(max_examples=400, deadline=None)
@given(ops=st.lists(tcp_op, max_size=30))
def test_follow_dispatches_as_conversations_tcp(ops: list[tuple[Any, ...]]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        want = follow_run(False, ops, mp)
    with pytest.MonkeyPatch.context() as mp:
        assert follow_run(True, ops, mp) == want


@needs_c
def test_follow_refuses_a_class_that_is_not_a_connection_core() -> None:
    with pytest.raises(TypeError):
        _tcp.Follow(dict.get, print, dict, print, print)  # type: ignore[arg-type]


def test_conversations_follow_in_c_when_built() -> None:
    from analyzer.pipeline import conversations

    assert conversations.Follow is (None if _tcp is None else _tcp.Follow)


@needs_c
@needs_shared
def test_real_captures_give_the_same_tables_through_the_twins(monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end, on real captures (gaps, retransmissions, resets, SMB): the C dispatch and halves
    against `Conversations._tcp` and the Python halves (the C core then calls them by name)."""
    from analyzer.api import analyze
    from analyzer.pipeline import conversations
    from analyzer.tcp import connection

    paths = [CAPTURES / d for d in ("zerologon", "PetitPotam", "cve-2022-26809", "Pcaps")]
    tables = ("connections", "attempts", "violations", "binds", "calls")

    def read() -> list[Any]:
        result = analyze(paths)
        return [getattr(result, t).reset_index(drop=True) for t in tables]

    with_c = read()
    monkeypatch.setattr(conversations, "Follow", None)
    monkeypatch.setattr(connection, "TcpHalf", reassembly.TcpHalf)
    twins = read()
    assert len(with_c[0]) > 10  # connections followed, not an empty comparison
    for name, a, b in zip(tables, with_c, twins, strict=True):
        pd.testing.assert_frame_equal(a, b, obj=name)


@needs_c
def test_the_c_path_leaks_no_reference() -> None:
    """Halves, cores and `Follow` made, driven through every branch (buffered, cap, gap, flush, FIN,
    RST, a refused argument) and dropped, thousands of times: the allocated blocks do not grow (a
    reference kept per segment would leave thousands)."""
    import sys

    from analyzer.capture.decode import PROTO_TCP, Packet

    limits = Limits(max_ooo_bytes=50, max_ooo_segments=3)
    table: dict[Any, Any] = {}
    follow = _tcp.Follow(table.get, lambda _id: None, Conn, lambda *_a: None, lambda *_a: table.clear())
    a, b = (b"\x0a\x00\x00\x02", 50000), (b"\x0a\x00\x00\x01", 135)

    def once(i: int) -> None:
        h = _tcp.TcpHalf(_NullSink(), limits)
        h.syn(1000 + i)
        for off in (1, 30, 10, 20, 60, 5, 100, 200, 300):
            h.segment(1000 + i + off, b"x" * (i % 13 + 1) * 2, off == 300, i, i * 2)
        h.peer_ack(1000 + i + 150, i, i)
        h.flush(i, i)
        c = Conn()
        c.client, c.c2s, c.s2c = a, _tcp.TcpHalf(_NullSink(), limits), _tcp.TcpHalf(_NullSink(), limits)
        table[(*a, *b)] = table[(*b, *a)] = c
        for flags, (src, dst) in ((0x12, (b, a)), (0x18, (a, b)), (0x18, (b, a)), (0x11, (a, b)), (0x04, (b, a))):
            payload = b"payload" if flags & 0x08 else b""
            follow(Packet(PROTO_TCP, src[0], dst[0], src[1], dst[1], 5000 + i, 7000 + i, flags, payload), i, i)
        c.client_syn(2**40 + i, i, i)
        with pytest.raises(TypeError):
            h.segment("x", b"", False, 1, 1)  # type: ignore[arg-type]

    for i in range(2000):
        once(i)
    gc.collect()
    before = sys.getallocatedblocks()
    for i in range(5000):
        once(i)
    gc.collect()
    assert sys.getallocatedblocks() - before < 100


if _tcp is not None:

    class Conn(_tcp.ConnectionCore):
        __slots__ = ()
