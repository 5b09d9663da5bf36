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

from analyzer.capture.reader import CaptureReader, RawFrame
from analyzer.capture.source import display_name, open_capture
from analyzer.errors import CaptureError

_DIGITS = re.compile(r"\d+")


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
        reader = open_capture(path, name)
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

    def _open(self, i: int) -> Iterator[RawFrame] | None:
        m = self.members[i]
        try:
            reader = self.readers[i] = open_capture(m.path, m.name, hashed=self.hashed)
        except CaptureError as e:
            self.errors[i] = e.reason
            return None
        return self._guarded(i, iter(reader))

    def _guarded(self, i: int, it: Iterator[RawFrame]) -> Iterator[RawFrame]:
        """A file's frames; a read error ends that file (it is reported), not the session."""
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
        n = len(self.members)
        i = 0
        while i < n:
            it = self._open(i)
            if it is None:
                i += 1
                continue
            nxt = self.members[i + 1].first_ts if i + 1 < n else None
            self.fmap.run(self.frames + 1, self.members[i].name, 1)
            for local, rec in enumerate(it, 1):
                ts = rec[0]
                if nxt is not None and ts > nxt:  # this file runs past the next one's start: merge
                    yield from self._merge(i, local - 1, rec, it)
                    return
                self.frames += 1
                if local == 1:
                    self.first_ts[i] = ts
                self.last_ts[i] = ts
                yield rec
            i += 1

    def _merge(self, i: int, local: int, pending: RawFrame, it: Iterator[RawFrame]) -> Iterator[RawFrame]:
        """Merge by timestamp file i (from its frame `local` + 1, `pending`) and every later file."""
        streams: list[tuple[int, Iterator[RawFrame]]] = [(i, _prepend(pending, it))]
        for j in range(i + 1, len(self.members)):
            other = self._open(j)
            if other is not None:
                streams.append((j, other))
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
            yield rec

    def position(self) -> int:
        """Bytes of the session's stored files consumed so far (for progress bars)."""
        return sum(r.position() for r in self.readers.values())

    def close(self) -> None:
        for r in self.readers.values():
            r.close()


def _tagged(j: int, frames: Iterator[RawFrame]) -> Iterator[tuple[int, int, RawFrame]]:
    for rec in frames:
        yield rec[0], j, rec


def _prepend(first: RawFrame, rest: Iterator[RawFrame]) -> Iterator[RawFrame]:
    yield first
    yield from rest
