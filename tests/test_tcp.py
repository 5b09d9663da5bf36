"""TCP reassembly: one direction, sans-IO ([analyzer.tcp])."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.limits import Limits
from analyzer.tcp import TcpHalf


class Collect:
    """A StreamSink that records what it was given."""

    def __init__(self) -> None:
        self.chunks: list[tuple[bytes, int]] = []
        self.gaps: list[tuple[int, int]] = []

    def data(self, data: bytes, frame: int, ts: int) -> None:
        self.chunks.append((data, frame))

    def gap(self, missing: int, frame: int, ts: int) -> None:
        self.gaps.append((missing, frame))

    @property
    def bytes(self) -> bytes:
        return b"".join(c for c, _ in self.chunks)


def half(limits: Limits | None = None) -> tuple[TcpHalf, Collect]:
    sink = Collect()
    return TcpHalf(sink, limits or Limits()), sink


def test_in_order_after_syn() -> None:
    h, s = half()
    h.syn(999)
    h.segment(1000, b"hello ", False, 1, 0)
    h.segment(1006, b"world", False, 2, 0)
    assert s.bytes == b"hello world"
    assert s.chunks[1][1] == 2


def test_retransmission_and_overlap_keep_first_copy() -> None:
    h, s = half()
    h.syn(0)
    h.segment(1, b"abcdef", False, 1, 0)
    h.segment(1, b"abcdef", False, 2, 0)  # full retransmission
    h.segment(4, b"XYZghi", False, 3, 0)  # overlaps "def" with other bytes, then new "ghi"
    assert s.bytes == b"abcdefghi"
    assert h.retransmitted == 6 + 3


def test_out_of_order_is_buffered_and_completes_with_frames_of_arrival() -> None:
    h, s = half()
    h.syn(0)
    h.segment(4, b"def", False, 1, 0)  # ahead of a hole
    assert s.bytes == b""
    h.segment(1, b"abc", False, 2, 0)  # fills it
    assert s.bytes == b"abcdef"
    # each piece carries the frame it arrived in; the consumer takes the latest
    assert [f for _, f in s.chunks] == [2, 1]
    assert h.ooo_segments == 1 and not s.gaps


def test_hole_acknowledged_by_peer_is_a_gap() -> None:
    h, s = half()
    h.syn(0)
    h.segment(1, b"abc", False, 1, 0)
    h.peer_ack(10, 2, 0)  # the receiver got 9 bytes: bytes 4..9 were sent
    h.segment(10, b"xyz", False, 3, 0)  # arrives after a hole the peer acknowledged
    assert s.gaps == [(6, 3)]
    assert s.bytes == b"abcxyz"
    assert h.missing == 6


def test_ack_after_buffered_segment_declares_gap() -> None:
    h, s = half()
    h.syn(0)
    h.segment(1, b"abc", False, 1, 0)
    h.segment(10, b"xyz", False, 2, 0)
    assert not s.gaps
    h.peer_ack(13, 3, 0)
    assert s.gaps == [(6, 3)]
    assert s.bytes == b"abcxyz"


def test_out_of_order_cap_forces_gap() -> None:
    h, s = half(Limits(max_ooo_segments=2))
    h.syn(0)
    for i in range(4):
        h.segment(100 + 10 * i, b"0123456789", False, i + 1, 0)
    assert s.gaps and h.cap_hits >= 1
    assert s.bytes.startswith(b"0123456789")


def test_mid_stream_start_and_sequence_wrap() -> None:
    h, s = half()
    start = 0xFFFFFFF0
    h.segment(start, b"A" * 16, False, 1, 0)  # first segment seen sets the origin
    h.segment(0, b"B" * 8, False, 2, 0)  # wrapped around 2**32
    assert s.bytes == b"A" * 16 + b"B" * 8


def test_fin_ends_stream_once_all_bytes_arrived() -> None:
    h, s = half()
    h.syn(0)
    h.segment(4, b"def", True, 1, 0)  # data + FIN ahead of a hole
    assert not h.finished
    h.segment(1, b"abc", False, 2, 0)
    assert h.finished and s.bytes == b"abcdef"


def test_flush_gives_up_on_holes() -> None:
    h, s = half()
    h.syn(0)
    h.segment(1, b"abc", False, 1, 0)
    h.segment(20, b"tail", False, 2, 0)
    h.flush(3, 0)
    assert s.bytes == b"abctail" and s.gaps == [(16, 3)]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=3000), seed=st.integers(0, 2**32 - 1), isn=st.integers(0, 2**32 - 1))
def test_any_segmentation_order_and_duplication_gives_the_same_bytes(data: bytes, seed: int, isn: int) -> None:
    """Cut the stream anywhere, shuffle the segments locally, retransmit some: the bytes out are
    the bytes in, as long as nothing is lost."""
    rnd = random.Random(seed)
    cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randint(0, 20)))) if len(data) > 1 else []
    segs = []
    prev = 0
    for c in [*cuts, len(data)]:
        segs.append((prev, data[prev:c]))
        prev = c
    # local reordering: swap some neighbours; duplicate some
    for i in range(len(segs) - 1):
        if rnd.random() < 0.3:
            segs[i], segs[i + 1] = segs[i + 1], segs[i]
    segs += [segs[rnd.randrange(len(segs))] for _ in range(rnd.randint(0, 3))]
    h, s = half()
    h.syn(isn)
    for frame, (off, chunk) in enumerate(segs, 1):
        h.segment((isn + 1 + off) & 0xFFFFFFFF, chunk, False, frame, 0)
    h.flush(len(segs) + 1, 0)
    assert s.bytes == data
    assert not s.gaps


def test_in_order_segments_are_delivered_each_with_its_frame_and_wait_behind_a_buffered_one() -> None:
    """An in-order segment with nothing buffered is delivered at once; once a segment waits ahead
    of a hole, the next in-order one fills the hole and both come out, each with its own frame."""
    h, s = half()
    h.syn(0xFFFFFFF0)  # the stream wraps past 2**32 within its first bytes
    h.segment(0xFFFFFFF1, b"a" * 8, False, 1, 0)
    h.segment(0xFFFFFFF9, b"b" * 8, False, 2, 0)
    h.segment(0x00000005, b"d" * 4, False, 3, 0)  # ahead of the hole of 4 bytes
    assert s.chunks == [(b"a" * 8, 1), (b"b" * 8, 2)]
    h.segment(0x00000001, b"c" * 4, False, 4, 0)
    assert s.chunks[2:] == [(b"c" * 4, 4), (b"d" * 4, 3)]
    h.segment(0x00000009, b"e", True, 5, 0)
    assert s.chunks[-1] == (b"e", 5) and h.finished and not s.gaps
