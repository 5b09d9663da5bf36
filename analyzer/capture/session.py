"""One capture session across files: ring buffers, `tcpdump -C/-G`, `editcap -c` splits.

Files of one run are one continuous stream: flows, pipes, associations and pending calls carry across
their boundaries. Files belong to one session when they are in the same directory, their names are
the same once digit runs are removed (`cap`, `cap1`, `cap2`; `ring_00001_20240301.pcapng`, ...), and
their first frames have the same link type. A session's files are read in the order of their first
timestamps, one after the other; where one file's frames run past the next file's first timestamp
(two sensors writing the same period) the rest of the session is merged by timestamp, as mergecap
does, ties kept in file order.

Frames are numbered through the session (1, 2, ... across files); a `FrameMap` turns a session frame
number back into the file and the frame within it, so that every record names the file and frame
where it completed (`analyzer.capture.localise` applies it when records become tables).
"""

from __future__ import annotations

import bisect
import glob
import heapq
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, repeat

import numpy as np

from analyzer.capture.prefilter import Batch, Ints
from analyzer.capture.reader import CaptureReader, RawFrame
from analyzer.capture.source import display_name, open_capture
from analyzer.errors import CaptureError

_DIGITS = re.compile(r"\d+")
_GROUP = 4096  # frames at most in a batch made of frames that came one by one (`joined`)


@dataclass
class FrameMap:
    """Session frame number -> (file name, frame in that file), as runs of consecutive frames."""

    session: str
    starts: list[int] = field(default_factory=list)  # first session frame of each run
    files: list[str] = field(default_factory=list)
    locals: list[int] = field(default_factory=list)  # that frame's number within its file

    def run(self, session_frame: int, name: str, local_frame: int) -> None:
        """Frames from `session_frame` on are `name`'s, from its frame `local_frame` on."""
        self.starts.append(session_frame)
        self.files.append(name)
        self.locals.append(local_frame)

    def locate(self, session_frame: int) -> tuple[str, int]:
        i = max(bisect.bisect_right(self.starts, session_frame) - 1, 0)
        return self.files[i], self.locals[i] + session_frame - self.starts[i]


@dataclass
class Member:
    """One file of a session, as peeked before reading."""

    path: str
    name: str
    first_ts: int | None
    link: int | None


def expand_globs(paths: Iterable[str]) -> list[str]:
    """Paths as given; a path that does not exist but has glob characters is expanded (sorted), for
    a pattern the shell did not expand (quoted, or from Python)."""
    out: list[str] = []
    for p in paths:
        if not os.path.exists(p) and glob.has_magic(p):
            out.extend(sorted(glob.glob(p)) or [p])
        else:
            out.append(p)
    return out


def _series(path: str) -> str:
    directory, base = os.path.split(path)
    return os.path.join(directory, _DIGITS.sub("#", base))


def _peek(path: str) -> Member:
    name = display_name(path)
    try:
        reader = open_capture(path, name, peek=True)
    except CaptureError:
        return Member(path, name, None, None)
    try:
        ts, link, _buf, _s, _e = next(iter(reader))
        return Member(path, name, ts, link)
    except (StopIteration, OSError, EOFError, CaptureError):
        return Member(path, name, None, None)
    finally:
        reader.close()


def sessions(paths: list[str]) -> list[list[Member]]:
    """The files, grouped into sessions (in the order their first file was given), each session's
    files in the order of their first timestamps. A file that cannot be read is a session alone."""
    if len(paths) < 2:
        return [[Member(p, display_name(p), None, None)] for p in paths]
    groups: dict[tuple[str, int | None], list[Member]] = {}
    order: list[list[Member]] = []
    for p in paths:
        m = _peek(p)
        if m.first_ts is None:
            order.append([m])
            continue
        key = (_series(p), m.link)
        if key not in groups:
            groups[key] = []
            order.append(groups[key])
        groups[key].append(m)
    for g in order:
        g.sort(key=lambda m: m.first_ts or 0)
    return order


class SessionFrames:
    """The frames of a session's files as one stream, numbered through the session. Readers are
    opened one at a time while the files follow one another; when they overlap, all the remaining
    files are opened and merged by timestamp. `readers` are the readers opened so far (for their
    counters); `errors` the files that could not be opened or read, with why. `hashed`: each file's
    SHA-256 is taken as it is read (see `open_capture`)."""

    def __init__(self, members: list[Member], fmap: FrameMap, hashed: bool = False) -> None:
        self.members = members
        self.hashed = hashed
        self.fmap = fmap
        self.readers: dict[int, CaptureReader] = {}
        self.errors: dict[int, str] = {}
        self.first_ts: dict[int, int] = {}
        self.last_ts: dict[int, int] = {}
        self.frames = 0

    def _open(self, i: int) -> Iterator[Batch] | None:
        """File i's frames in batches numbered within the file (the reader's own batches where it
        has them, else its frames joined into batches), a read error ending them; None if it
        cannot be opened."""
        m = self.members[i]
        try:
            reader = self.readers[i] = open_capture(m.path, m.name, hashed=self.hashed)
        except CaptureError as e:
            self.errors[i] = e.reason
            return None
        batches = getattr(reader, "batches", None)
        if batches is not None:
            return self._guarded(i, batches())
        return self._guarded(i, joined(enumerate(iter(reader), 1)))

    def _guarded(self, i: int, it: Iterator[Batch]) -> Iterator[Batch]:
        """A file's batches; a read error ends that file (it is reported), not the session."""
        reader = self.readers[i]
        try:
            yield from it
        except (OSError, zlib.error) as e:  # zlib.error: corrupt compressed data
            self.errors[i] = f"read error after frame {reader.frames}: {e}"
        except CaptureError as e:
            self.errors[i] = f"{e.reason} (after frame {reader.frames})"
        except EOFError:
            reader.truncated = reader.truncated or f"compressed file ends early, after frame {reader.frames}"

    def __iter__(self) -> Iterator[RawFrame]:
        for b in self.batches():
            yield from frames_of(b)

    def batches(self) -> Iterator[Batch]:
        """The session's frames in batches (see `prefilter`), numbered through the session: each
        file's own batches while the files follow one another, so a rotated series takes the batched
        path a single file takes. Where a file runs past the next one's first timestamp its batch is
        cut there, and the rest of the session comes merged by timestamp (`_merge`)."""
        n = len(self.members)
        for i in range(n):
            batches = self._open(i)
            if batches is None:
                continue
            nxt = self.members[i + 1].first_ts if i + 1 < n else None
            self.fmap.run(self.frames + 1, self.members[i].name, 1)
            local = 0
            for b in batches:
                size = len(b.ts)
                cut = size if nxt is None else _first_after(b.ts, nxt)
                if cut:
                    if local == 0:
                        self.first_ts[i] = int(b.ts[0])
                    self.last_ts[i] = int(b.ts[cut - 1])
                    yield b._replace(frame0=self.frames) if cut == size else _part(b, 0, cut, self.frames)
                    self.frames += cut
                    local += cut
                if cut < size:  # this file runs past the next one's start: merge from here
                    rest = chain(frames_of(_part(b, cut, size, 0)), (f for b2 in batches for f in frames_of(b2)))
                    yield from joined(self._merge(i, local, rest))
                    return

    def _merge(self, i: int, local: int, rest: Iterator[RawFrame]) -> Iterator[tuple[int, RawFrame]]:
        """(session frame number, frame), merged by timestamp: file i from its frame `local` + 1
        (`rest`) and every later file."""
        streams: list[tuple[int, Iterator[RawFrame]]] = [(i, rest)]
        for j in range(i + 1, len(self.members)):
            other = self._open(j)
            if other is not None:
                streams.append((j, (f for b in other for f in frames_of(b))))
        counts = {i: local}
        tagged = [_tagged(j, s) for j, s in streams]
        current = -1
        for ts, j, rec in heapq.merge(*tagged, key=lambda t: (t[0], t[1])):
            counts[j] = counts.get(j, 0) + 1
            self.frames += 1
            if j != current:
                self.fmap.run(self.frames, self.members[j].name, counts[j])
                current = j
            if counts[j] == 1:
                self.first_ts[j] = ts
            self.last_ts[j] = ts
            yield self.frames, rec

    def position(self) -> int:
        """Bytes of the session's stored files consumed so far (for progress bars)."""
        return sum(r.position() for r in self.readers.values())

    def close(self) -> None:
        for r in self.readers.values():
            r.close()


def _tagged(j: int, frames: Iterator[RawFrame]) -> Iterator[tuple[int, int, RawFrame]]:
    for rec in frames:
        yield rec[0], j, rec


def frames_of(b: Batch) -> Iterator[RawFrame]:
    """A batch's frames one by one, as a reader's iteration yields them."""
    return zip(b.ts.tolist(), repeat(b.link), repeat(b.buf), b.start.tolist(), b.end.tolist())


def _first_after(ts: Ints, limit: int) -> int:
    """The index of the first time past `limit`, or len(ts) if none is."""
    over = np.flatnonzero(ts > limit)
    return int(over[0]) if len(over) else len(ts)


def _part(b: Batch, lo: int, hi: int, frame0: int) -> Batch:
    return Batch(b.buf, b.link, frame0, b.start[lo:hi], b.end[lo:hi], b.ts[lo:hi])


def joined(frames: Iterable[tuple[int, RawFrame]]) -> Iterator[Batch]:
    """Numbered frames (consecutive numbers) as batches of at most `_GROUP` frames of one link type,
    each batch's frames copied into one buffer of its own. For the frames that come one by one (a
    reader without batches, NetMon; files merged by timestamp, whose consecutive frames come from
    different buffers): a copy costs less than a batch per buffer, which interleaved sensors would
    make a batch of one frame each (the 200 MB capture dealt alternately to two files: 8.8 s of CPU
    with a batch per buffer, 1.5 s with the copies, 1.4 s frame by frame)."""
    parts: list[bytes] = []
    stamps: list[int] = []
    link = frame0 = 0
    for number, (ts, lk, buf, start, end) in frames:
        if parts and (lk != link or len(parts) >= _GROUP):
            yield _joined(parts, stamps, link, frame0)
            parts, stamps = [], []
        if not parts:
            link, frame0 = lk, number - 1
        parts.append(buf[start:end])
        stamps.append(ts)
    if parts:
        yield _joined(parts, stamps, link, frame0)


def _joined(parts: list[bytes], stamps: list[int], link: int, frame0: int) -> Batch:
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    end = np.cumsum(lengths)
    return Batch(b"".join(parts), link, frame0, end - lengths, end, np.array(stamps, dtype=np.int64))
