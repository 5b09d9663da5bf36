"""Runs of identical malformed PDUs (a bogus-PDU flood) are judged once and reported as one event
with its count (analyzer.dcerpc.stream, wire.co_run): the violations, their counts and frames, and
the PDUs handed on are exactly those of judging every PDU alone."""

from __future__ import annotations

import importlib.util
import random
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.dcerpc import stream as stream_mod
from analyzer.dcerpc.stream import CoStream
from analyzer.dcerpc.wire import py_co_run
from analyzer.limits import Limits
from analyzer.model import Violation
from analyzer.pipeline import Pipeline
from tests.conftest import ROOT, split_points

c_co_run: Any
try:
    from analyzer.capture._batch import co_run as c_co_run
except ImportError:
    c_co_run = None

_spec = importlib.util.spec_from_file_location("bench_floods_runs", ROOT / "bench" / "floods.py")
assert _spec is not None and _spec.loader is not None
floods: Any = importlib.util.module_from_spec(_spec)
sys.modules["bench_floods_runs"] = floods
_spec.loader.exec_module(floods)


@settings(max_examples=500, deadline=None)
@given(
    unit=st.binary(min_size=16, max_size=40),
    before=st.binary(max_size=6),
    ids=st.lists(st.binary(min_size=4, max_size=4), max_size=30),
    after=st.binary(max_size=50),
    flip=st.integers(0, 60),
)
def test_co_run_counts_repeats_but_call_id(
    unit: bytes, before: bytes, ids: list[bytes], after: bytes, flip: int
) -> None:
    """C and its Python twin agree with a naive count, with call_ids that differ and without,
    and with a byte flipped somewhere in the run."""
    copies = [unit[:12] + i + unit[16:] for i in ids]
    data = bytearray(before + unit + b"".join(copies) + after)
    if flip < len(data):
        data[flip] ^= 0x55
    data = bytes(data)
    pos = len(before) + len(unit)
    first = data[pos - len(unit) : pos]
    naive, at = 0, pos
    while at + len(unit) <= len(data):
        nxt = data[at : at + len(unit)]
        if nxt[:12] != first[:12] or nxt[16:] != first[16:]:
            break
        naive, at = naive + 1, at + len(unit)
    assert py_co_run(data, pos, len(unit)) == naive
    assert py_co_run(bytearray(data), pos, len(unit)) == naive
    assert py_co_run(memoryview(data), pos, len(unit)) == naive
    if c_co_run is not None:
        assert c_co_run(data, pos, len(unit)) == naive
        assert c_co_run(bytearray(data), pos, len(unit)) == naive
        assert c_co_run(memoryview(data), pos, len(unit)) == naive


def test_co_run_refuses_what_is_not_a_pdu_before_pos() -> None:
    for run in [py_co_run, *([c_co_run] if c_co_run is not None else [])]:
        for pos, size in ((8, 16), (20, 15), (40, 16)):
            with pytest.raises(ValueError):
                run(b"\5" * 32, pos, size)


def _header(ptype: int, body: bytes, call_id: int = 1) -> bytes:
    return struct.pack("<BBBB4sHHI", 5, 0, ptype, 3, b"\x10\0\0\0", 16 + len(body), 0, call_id) + body


# PDUs a flood might repeat: malformed ones (a request or fault too short, a bind whose context list
# overruns) and well-formed ones (a request, an auth3-like other PDU).
PIECES = [
    _header(0, b""),  # short_request
    _header(0, b"\0" * 4),  # short_request, another frag_length
    _header(3, b"\0" * 8),  # short_fault
    _header(11, struct.pack("<HHIB", 4280, 4280, 0, 3) + b"\0" * 3),  # short_context_item
    _header(0, struct.pack("<IHH", 4, 0, 1) + b"stub"),  # a request
    _header(16, b"\0" * 8),  # auth3 without a verifier: an OtherPdu
    b"\x05\x00\x63junk!",  # not a header: resync
]


class _Events:
    def __init__(self) -> None:
        self.pdus: list[tuple[int, int, int, int]] = []
        self.violations: list[tuple[int, str, str]] = []

    def pdu(self, pdu: Any, frame: int, ts: int, first: int) -> None:
        self.pdus.append((pdu.header.ptype, pdu.header.frag_length, frame, first))

    def violation(self, frame: int, what: str, detail: str, count: int) -> None:
        self.violations.extend([(frame, what, detail)] * count)


def _frame(chunks: list[bytes], gaps: frozenset[int] = frozenset()) -> tuple[_Events, int]:
    ev = _Events()
    s = CoStream(ev.pdu, ev.violation, Limits())
    for frame, chunk in enumerate(chunks, 1):
        s.data(chunk, frame, frame * 10)
        if frame in gaps:
            s.gap(5, frame, frame * 10)
    return ev, s.pdus


def _run_of(piece: bytes, k: int, vary: bool) -> bytes:
    """k copies of a piece, each with its own call_id when `vary` (and the piece is a header)."""
    if not vary or len(piece) < 16:
        return piece * k
    return b"".join(piece[:12] + struct.pack("<I", 7 + j) + piece[16:] for j in range(k))


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    runs=st.lists(
        st.tuples(st.integers(0, len(PIECES) - 1), st.integers(1, 30), st.booleans()), min_size=1, max_size=8
    ),
    cuts=st.integers(0, 12),
    gaps=st.frozensets(st.integers(1, 13), max_size=3),
)
def test_runs_are_judged_as_every_pdu_alone(
    seed: int, runs: list[tuple[int, int, bool]], cuts: int, gaps: frozenset[int]
) -> None:
    """PDUs (good or not, the same or differing in call_id) in runs, cut anywhere, bytes lost here
    and there: the PDUs with their frames, the violations with theirs, and the count framed are
    those of the framer before runs, the whole-PDU path after a completed PDU and the in-step start
    (each PDU judged alone, everything not in step buffered), with the C run and its Python twin."""
    data = b"".join(_run_of(PIECES[i], k, vary) for i, k, vary in runs)
    chunks = list(split_points(data, random.Random(seed), cuts))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream_mod, "co_run", lambda *_a: 0)
        mp.setattr(CoStream, "_complete", lambda self, data, frame, ts: data)
        mp.setattr(CoStream, "_starts", staticmethod(lambda data: False))
        before, before_pdus = _frame(chunks, gaps)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream_mod, "co_run", py_co_run)
        twin, twin_pdus = _frame(chunks, gaps)
    ev, pdus = _frame(chunks, gaps)
    assert (ev.pdus, ev.violations, pdus) == (before.pdus, before.violations, before_pdus)
    assert (twin.pdus, twin.violations, twin_pdus) == (before.pdus, before.violations, before_pdus)


def _rows(path: Path, limits: Limits, judged_alone: bool) -> list[Violation]:
    with pytest.MonkeyPatch.context() as mp:
        if judged_alone:
            mp.setattr(stream_mod, "co_run", lambda *_a: 0)
        records = Pipeline(limits, strict=True).run([str(path)])
        rows = list(records.violations)
        records.finish()
    return rows


def _cut_flood(path: Path, n: int, segment: int, vary: bool) -> None:
    """The bogus flood cut into segments of `segment` bytes, PDUs straddling them, each with its
    own call_id when `vary`."""
    with open(path, "wb") as out:
        w = floods.PcapWriter(out)
        c = floods.Conn(w, bytes([10, 7, 7, 7]), 50002, floods.SERVER, 135)
        c.handshake()
        data = b"".join(floods.co_header(0, i if vary else 1, 0) for i in range(n))
        for pos in range(0, len(data), segment):
            c.send(data[pos : pos + segment])


@pytest.mark.parametrize(("segment", "vary"), [(0, False), (1392, True), (1000, False), (1000, True), (23, False)])
def test_bogus_flood_rows_equal_the_per_pdu_path(tmp_path: Path, segment: int, vary: bool) -> None:
    """A scaled-down bogus flood, aligned to its segments or not, one call_id or many: the same
    violation rows (listed ones, then the summary with its count and first and last frames) as
    judging PDU by PDU."""
    n = 3000
    path = tmp_path / "bogus.pcap"
    if segment:
        _cut_flood(path, n, segment, vary)
    else:
        with open(path, "wb") as out:
            floods.bogus_flood(out, n)
    limits = Limits(max_violations_listed=25)
    rows = _rows(path, limits, judged_alone=False)
    assert rows == _rows(path, limits, judged_alone=True)
    assert sum(v.count for v in rows if v.what == "short_request") == n
    assert len([v for v in rows if v.what == "short_request"]) == 26
    summary = rows[-1]
    assert summary.what == "short_request" and summary.count == n - 25
    assert summary.frame is not None and summary.last_frame is not None and summary.frame < summary.last_frame


def test_a_segment_of_one_bad_pdu_is_one_event() -> None:
    """87 bogus requests in a segment, call_ids differing: one violation event counting 87, and
    a good PDU after them is still handed on."""
    calls: list[tuple[int, str, int]] = []
    pdus: list[int] = []
    s = CoStream(
        lambda pdu, frame, ts, first: pdus.append(pdu.header.call_id),
        lambda frame, what, detail, count: calls.append((frame, what, count)),
        Limits(),
    )
    good = _header(0, struct.pack("<IHH", 4, 0, 1) + b"stub", call_id=99)
    s.data(_run_of(PIECES[0], 87, vary=True) + good, 5, 50)
    assert calls == [(5, "short_request", 87)] and pdus == [99] and s.pdus == 88
