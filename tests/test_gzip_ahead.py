"""A .gz decompressed on a thread ahead of its reader (`gzipstream._Ahead`, started by a read of a
MiB or more) gives what decompressing inline gives: the same bytes, and the same end (`cut`,
`corrupt`, `tripped`), told only once the reader reaches it. The thread's errors are raised where the
reader reads, and the interpreter's switch interval is the caller's again once the thread is gone.
Built inputs: gzip members of repeated random bytes, cut short, corrupted, followed by junk or zero
padding, and past the bomb guard."""

from __future__ import annotations

import gzip
import io
import random
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.capture import gzipstream
from analyzer.capture.gzipstream import GzipStream

BIG = 4 << 20  # a reader's buffer: decompressed on the thread
SMALL = 60_000  # below `_AHEAD_FROM`: decompressed inline


def _read_all(data: bytes, size: int, max_ratio: int, floor: int) -> tuple[bytes, Any, Any, Any]:
    stream = GzipStream(io.BytesIO(data), max_ratio=max_ratio, floor=floor)
    out = bytearray(stream.read(size))
    # The thread runs from a large read on (unless the data ended within the first): never from a small one.
    assert (stream._ahead is not None or stream._drained) if size >= gzipstream._AHEAD_FROM else stream._ahead is None
    while piece := stream.read(size):
        assert len(piece) <= size
        out += piece
    end = (stream.cut, stream.corrupt, stream.tripped)
    stream.close()
    return bytes(out), *end


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 1 << 30),
    members=st.integers(1, 3),
    size=st.integers(1, 3 << 20),
    damage=st.sampled_from(["none", "cut", "corrupt", "junk", "padding", "bomb"]),
)
def test_the_thread_gives_what_inline_decompression_gives(seed: int, members: int, size: int, damage: str) -> None:
    rng = random.Random(seed)
    parts = []
    for _ in range(members):
        unit = rng.randbytes(rng.randint(1, 4000))
        parts.append(gzip.compress(unit * (size // len(unit) // members + 1), compresslevel=1))
    data = b"".join(parts)
    if damage == "cut":
        data = data[: rng.randint(1, len(data) - 1)]
    elif damage == "corrupt":
        at = rng.randint(20, len(data) - 9)  # inside the deflate data, past the header
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    elif damage == "junk":
        data += b"not gzip"
    elif damage == "padding":
        data += b"\0" * 64
    max_ratio, floor = (3, 1 << 16) if damage == "bomb" else (1 << 30, 1 << 40)
    inline = _read_all(data, SMALL, max_ratio, floor)
    ahead = _read_all(data, BIG, max_ratio, floor)
    assert ahead == inline


def test_the_end_is_told_when_the_reader_reaches_it() -> None:
    """A stream cut short whose thread has already met the cut: `cut` stays None until the reader
    has read everything before it (a reader stopping sooner, at a corrupt record, says its own reason)."""
    data = gzip.compress(random.Random(1).randbytes(3 << 20), compresslevel=1)[:-100]
    stream = GzipStream(io.BytesIO(data), max_ratio=1 << 30, floor=1 << 40)
    first = stream.read(1 << 20)
    ahead = stream._ahead
    assert ahead is not None and len(first) == 1 << 20
    ahead._thread.join(timeout=10)  # the file is small: the thread ends, its blocks queued
    assert not ahead._thread.is_alive()
    assert stream.cut is None
    while stream.read(1 << 20):
        pass
    assert stream.cut is not None and "ends early" in stream.cut
    stream.close()


@pytest.mark.parametrize("early", [False, True])
def test_the_switch_interval_is_given_back(early: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    before = 0.004  # the caller's own, whatever an earlier test left
    monkeypatch.setattr(gzipstream._Ahead, "running", 0)
    original = sys.getswitchinterval()
    sys.setswitchinterval(before)
    try:
        _interval_given_back(early, before)
    finally:
        sys.setswitchinterval(original)


def _interval_given_back(early: bool, before: float) -> None:
    data = gzip.compress(random.Random(2).randbytes(1 << 20) * 20, compresslevel=1)
    stream = GzipStream(io.BytesIO(data), max_ratio=1 << 30, floor=1 << 40)
    stream.read(BIG)
    assert sys.getswitchinterval() == pytest.approx(min(before, gzipstream._AHEAD_SWITCH_S))
    if not early:
        while stream.read(BIG):
            pass
        assert stream._ahead is None  # gone with its last block
    stream.close()
    assert sys.getswitchinterval() == pytest.approx(before)


class _Failing(io.BytesIO):
    """A file whose reads fail past a point, as a disk error would."""

    def __init__(self, data: bytes, fail_after: int) -> None:
        super().__init__(data)
        self._fail_after = fail_after

    def read(self, n: int | None = -1) -> bytes:
        if self.tell() >= self._fail_after:
            raise OSError(5, "Input/output error")
        return super().read(n)


def test_a_read_error_on_the_thread_is_raised_where_the_reader_reads() -> None:
    data = gzip.compress(random.Random(3).randbytes(6 << 20), compresslevel=1)
    stream = GzipStream(_Failing(data, 2 << 20), max_ratio=1 << 30, floor=1 << 40)
    with pytest.raises(OSError, match="Input/output error"):
        while stream.read(BIG):
            pass
    stream.close()
    assert stream._ahead is None


def test_without_a_thread_to_be_had_it_decompresses_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that cannot start one more thread still reads its .gz, the same bytes."""
    data = gzip.compress(random.Random(4).randbytes(3 << 20), compresslevel=1)
    before = sys.getswitchinterval()

    def refuse(self: Any) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(gzipstream.threading.Thread, "start", refuse)
    stream = GzipStream(io.BytesIO(data), max_ratio=1 << 30, floor=1 << 40)
    out = bytearray()
    while piece := stream.read(BIG):
        out += piece
    assert bytes(out) == gzip.decompress(data) and stream._ahead is None
    assert sys.getswitchinterval() == before
