"""TCP reassembly in C (analyzer/tcp/_tcp.c) against its Python twin (analyzer/tcp/reassembly.py):
random segment sequences (sequence wrap, overlaps with other bytes, holes, acknowledgements, FIN,
caps with small limits, receivers that flush from inside a delivery) give the same deliveries,
the same gaps and the same counters after every step ([RFC 9293] 3.4, 3.10.7.4)."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analyzer.tcp
from analyzer.limits import Limits
from analyzer.tcp import reassembly

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
