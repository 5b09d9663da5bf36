"""Runs of identical malformed PDUs (a bogus-PDU flood) are judged once and reported as one event
with its count (analyzer.dcerpc.stream, wire.copies): the violations, their counts and frames, and
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
from analyzer.dcerpc.wire import copies
from analyzer.limits import Limits
from analyzer.model import Violation
from analyzer.pipeline import Pipeline
from tests.conftest import ROOT, split_points

_spec = importlib.util.spec_from_file_location("bench_floods_runs", ROOT / "bench" / "floods.py")
assert _spec is not None and _spec.loader is not None
floods: Any = importlib.util.module_from_spec(_spec)
sys.modules["bench_floods_runs"] = floods
_spec.loader.exec_module(floods)


@settings(max_examples=300, deadline=None)
@given(
    unit=st.binary(min_size=1, max_size=5),
    before=st.binary(max_size=6),
    k=st.integers(0, 40),
    after=st.binary(max_size=8),
)
def test_copies_counts_back_to_back_repeats(unit: bytes, before: bytes, k: int, after: bytes) -> None:
    data = before + unit * k + after
    pos = len(before)
    naive = 0
    while data[pos + naive * len(unit) :].startswith(unit):
        naive += 1
    assert copies(data, pos, unit) == naive >= k
    assert copies(bytearray(data), pos, unit) == naive


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


def _frame(chunks: list[bytes]) -> tuple[_Events, int]:
    ev = _Events()
    s = CoStream(ev.pdu, ev.violation, Limits())
    for frame, chunk in enumerate(chunks, 1):
        s.data(chunk, frame, frame * 10)
    return ev, s.pdus


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    runs=st.lists(st.tuples(st.integers(0, len(PIECES) - 1), st.integers(1, 30)), min_size=1, max_size=8),
    cuts=st.integers(0, 12),
)
def test_runs_are_judged_as_every_pdu_alone(seed: int, runs: list[tuple[int, int]], cuts: int) -> None:
    data = b"".join(PIECES[i] * k for i, k in runs)
    chunks = list(split_points(data, random.Random(seed), cuts))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream_mod, "copies", lambda *_a: 0)  # every PDU judged alone
        alone = _frame(chunks)
    ev, pdus = _frame(chunks)
    assert (ev.pdus, ev.violations, pdus) == (alone[0].pdus, alone[0].violations, alone[1])


def _rows(path: Path, limits: Limits, judged_alone: bool) -> list[Violation]:
    with pytest.MonkeyPatch.context() as mp:
        if judged_alone:
            mp.setattr(stream_mod, "copies", lambda *_a: 0)
        records = Pipeline(limits, strict=True).run([str(path)])
        rows = list(records.violations)
        records.finish()
    return rows


def _misaligned_flood(path: Path, n: int, segment: int) -> None:
    """The bogus flood cut into segments of `segment` bytes, PDUs straddling them."""
    with open(path, "wb") as out:
        w = floods.PcapWriter(out)
        c = floods.Conn(w, bytes([10, 7, 7, 7]), 50002, floods.SERVER, 135)
        c.handshake()
        data = floods.co_header(0, 1, 0) * n
        for pos in range(0, len(data), segment):
            c.send(data[pos : pos + segment])


@pytest.mark.parametrize("segment", [0, 1000, 23])
def test_bogus_flood_rows_equal_the_per_pdu_path(tmp_path: Path, segment: int) -> None:
    """A scaled-down bogus flood, aligned to its segments or not: the same violation rows (listed
    ones, then the summary with its count and first and last frames) as judging PDU by PDU."""
    n = 3000
    path = tmp_path / "bogus.pcap"
    if segment:
        _misaligned_flood(path, n, segment)
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
