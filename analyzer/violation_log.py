"""Violations aggregated per kind and connection before they are spooled: floods summarised.

A flood of bad bytes or a cap hit per packet would otherwise be millions of rows, each its own
`Violation`. The log keeps a count, the first and last frame and a sample per (capture, connection,
layer, kind), and lists only the first few of a kind one by one (see `ViolationLog`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Protocol

from analyzer.limits import CAP_CODES, CAPTURE_CAP_CODES, Limits
from analyzer.model import Violation
from analyzer.readback import ReadBack

LIVE_AGGREGATES = 4096  # (kind, connection) aggregates held at once; the oldest is written out


class _Spool(Protocol):
    """Where rows go: `records.Spool`."""

    def append(self, rec: Violation) -> None: ...
    def flush(self) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Violation]: ...


class _Aggregate:
    """Occurrences of one violation kind on one connection, beyond those listed one by one."""

    __slots__ = ("count", "first", "last", "listed", "sample", "stream")

    def __init__(self, stream: int | None) -> None:
        self.stream = stream  # None for a run-wide cap, whichever connection its sample names
        self.listed = 0
        self.count = 0
        self.sample: Violation | None = None
        self.first: int | None = None
        self.last: int | None = None

    def add(self, v: Violation) -> None:
        if self.sample is None:
            self.sample = v
        self.count += v.count
        for f in (v.frame, v.last_frame):
            if f is not None:
                self.seen(f)

    def seen(self, frame: int) -> None:
        if self.first is None or self.last is None:
            self.first = self.last = frame
        elif frame < self.first:
            self.first = frame
        elif frame > self.last:
            self.last = frame

    def row(self) -> Violation | None:
        if self.sample is None:
            return None
        return replace(self.sample, frame=self.first, stream=self.stream, count=self.count, last_frame=self.last)


_Key = tuple[str, int | None, str, str]


class ViolationLog(ReadBack[Violation]):
    """Violations aggregated per kind (`what`) and connection, then spooled.

    - A cap (`limits.CAP_CODES`) is one row per cap and connection, or per capture for the caps of
      run-wide tables (`limits.CAPTURE_CAP_CODES`, e.g. the flow table): `count` says how often it
      was hit, `frame` and `last_frame` the first and last time, `detail` is the first hit's.
    - Any other kind is listed one row per occurrence up to `Limits.max_violations_listed` per
      connection; the rest of that kind and connection become one row with their count.

    Aggregates are held for the `LIVE_AGGREGATES` most recently active (kind, connection) pairs;
    the least recent is written out when a new one would pass that, so a kind that comes back on an
    old connection after that starts a second row (counts still add up)."""

    def __init__(self, spool: _Spool, limits: Limits) -> None:
        self._spool = spool
        self._listed = limits.max_violations_listed
        self._live: OrderedDict[_Key, _Aggregate] = OrderedDict()

    def _aggregate(self, capture: str, stream: int | None, layer: str, what: str) -> _Aggregate:
        """The live aggregate of this kind and connection, now the most recently active."""
        if what in CAPTURE_CAP_CODES:
            stream = None
        key = (capture, stream, layer, what)
        agg = self._live.get(key)
        if agg is None:
            agg = self._live[key] = _Aggregate(stream)
            if len(self._live) > LIVE_AGGREGATES:
                self._write(self._live.popitem(last=False)[1])
        else:
            self._live.move_to_end(key)
        return agg

    def append(self, v: Violation) -> None:
        agg = self._aggregate(v.capture, v.stream, v.layer, v.what)
        if v.what not in CAP_CODES and agg.listed < self._listed:
            agg.listed += 1
            self._spool.append(v if v.last_frame is not None else replace(v, last_frame=v.frame))
        else:
            agg.add(v)

    def event(
        self, capture: str, stream: int | None, layer: str, what: str, frame: int | None, detail: str, count: int = 1
    ) -> None:
        """`append(Violation(capture, frame, stream, layer, what, detail))` `count` times over, the
        violation made only when it is listed or becomes a row's sample: a flood reports one per
        packet or PDU, or one per run of identical ones (`dcerpc.stream`)."""
        agg = self._aggregate(capture, stream, layer, what)
        if what not in CAP_CODES and agg.listed < self._listed:
            listed = min(count, self._listed - agg.listed)
            agg.listed += listed
            count -= listed
            row = Violation(capture, frame, stream, layer, what, detail, last_frame=frame)
            for _ in range(listed):
                self._spool.append(row)
            if not count:
                return
        if agg.sample is None:
            agg.sample = Violation(capture, frame, stream, layer, what, detail)
        agg.count += count
        if frame is not None:
            agg.seen(frame)

    def cap_hits(self, capture: str, stream: int | None, layer: str, what: str, frames: list[int], detail: str) -> None:
        """`event` of a cap (`what` in `CAP_CODES`) once per frame of `frames`, in order, all at once."""
        agg = self._aggregate(capture, stream, layer, what)
        if agg.sample is None:
            agg.sample = Violation(capture, frames[0], stream, layer, what, detail)
        agg.count += len(frames)
        agg.seen(min(frames))
        agg.seen(max(frames))

    @property
    def held(self) -> int:
        """(kind, connection) aggregates live now: a parallel run checks that its sessions' total stays
        within `LIVE_AGGREGATES`, so that none is written out early."""
        return len(self._live)

    def extend(self, vs: Iterable[Violation]) -> None:
        for v in vs:
            self.append(v)

    def _write(self, agg: _Aggregate) -> None:
        row = agg.row()
        if row is not None:
            self._spool.append(row)

    def flush(self) -> None:
        """Write every aggregate out (the end of the run)."""
        while self._live:
            self._write(self._live.popitem(last=False)[1])
        self._spool.flush()

    def _pending(self) -> list[Violation]:
        return [row for agg in self._live.values() if (row := agg.row()) is not None]

    def __len__(self) -> int:
        return len(self._spool) + sum(agg.sample is not None for agg in self._live.values())

    def __iter__(self) -> Iterator[Violation]:
        pending = self._pending()
        yield from self._spool
        yield from pending
