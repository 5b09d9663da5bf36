"""One rule over its rows as they go by: groups, bursts, sequence steps, and the bursts that qualify.

A rule's rows are grouped by capture and its `group` columns and ordered by time; a burst is a run of
a group's rows with no gap longer than window_s (an unknown time never cuts: it sorts last and has
no gap). The tables come in their ORDER (capture, frame, ...), which is time order within a capture
in every ordinary capture, so a group's rows arrive in burst order and `RuleStream` keeps one open
burst per group (`Evidence`, bounded by distinct values) and emits each burst when the next gap or
the end closes it. What it holds: per group its key, last time and open burst; per emitted burst
its findings row (and for a rule with `after`, its client/server pairs).

A group whose last row is a window older than its capture's latest row cannot grow its burst any
more in a capture in time order: the next row of that group will cut. So whenever the groups have
doubled since the last sweep, such groups are closed and forgotten (`_sweep`): what is held is the
groups active within a window, not every client of a day's capture (each group's evidence is a few
hundred bytes to a few KiB, to the end of the run before). A row that would have joined a
forgotten group's burst is less than a window after that group's last row: a new group's first row
that early is taken as `disordered` (the sorted pass then), so the bursts are those the whole-table
engine cuts.

A row earlier than one already seen in its group (or a known time after an unknown one) means this
capture is not in time order: the stream then says `disordered`, and the engine gives the rule its
rows again sorted by time (`engine._Run.sorted_pass`), as the whole-table engine sorted them.

Sequence rules (`operations` a list of steps) keep, per open burst, the step reached; only the rows
that advance or repeat a step reached go into the burst's evidence.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from analyzer.findings.evidence import Evidence, Rows, finding
from analyzer.findings.rules import Rule

_NS = 1_000_000_000
SWEEP_GROUPS = 256  # groups held before the first sweep (then twice what the last sweep kept)
_PAST = -(1 << 63)  # before any time


def _seconds(ns: int) -> float:
    """A gap in seconds exactly as pandas' `total_seconds` gives it (whole seconds plus the rest)."""
    whole, rest = divmod(ns, _NS)
    return whole + rest / _NS


def cut_ns(window_s: float) -> int | None:
    """The shortest gap in nanoseconds that cuts a burst (its seconds > window_s, computed as the
    whole-table engine computed them, so a gap of exactly window_s cuts where it cut); None: none can."""
    lo, hi = 0, 1 << 63  # gaps between int64 nanosecond times are below 2**63
    if not _seconds(hi) > window_s:
        return None
    while lo < hi:  # _seconds is non-decreasing
        mid = (lo + hi) // 2
        if _seconds(mid) > window_s:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass
class _Group:
    key: tuple[str, ...]
    ev: Evidence
    top: int | None = None  # the latest known time seen (its last row's, while in time order)
    unknown: bool = False  # a row of unknown time was seen (only such rows may follow)


@dataclass
class Emitted:
    """A qualifying burst: where it sorts (group key, then the order bursts closed in: a group's bursts
    close in time order), its row, and what `after` needs."""

    key: tuple[str, ...]
    number: int
    row: dict[str, Any]
    pairs: AbstractSet[tuple[Any, Any]]


@dataclass
class RuleStream:
    """The open bursts of one rule and the bursts it emitted (see the module docstring)."""

    rule: Rule
    has: set[str] = field(default_factory=set)  # the source's columns
    groups: dict[tuple[str, ...], _Group] = field(default_factory=dict)
    emitted: list[Emitted] = field(default_factory=list)
    disordered: bool = False
    cut: int | None = None
    # per capture, the time before which a burst `_sweep` forgot could still grow
    swept: dict[str, int] = field(default_factory=dict)
    sweep_at: int = field(init=False)  # the number of groups held that makes the next sweep

    def __post_init__(self) -> None:
        self.cut = cut_ns(self.rule.window_s)
        self.sweep_at = SWEEP_GROUPS

    def feed(self, rows: Rows, has: set[str]) -> None:
        """The rule's selected rows of one chunk, in table order."""
        self.has = has
        if not rows.n:
            return
        runs = rows.runs() if rows.ts_known.all() else None
        if runs is not None:
            for key, a, b in runs:
                if not self._feed_run(rows, key, a, b):
                    return
            self._sweep()
            return
        cut = self.cut
        last = rows.keys[0]
        g = self._group(last)
        pending: dict[tuple[str, ...], list[int]] = {last: []}
        run = pending[last]
        for i, (key, t) in enumerate(zip(rows.keys, rows.ts, strict=True)):
            if key != last:  # a chunk's rows of one group often come together
                g = self._group(key)
                run = pending.setdefault(key, [])
                last = key
            if t is None:
                g.unknown = True
            elif g.unknown or (g.top is not None and t < g.top) or (g.top is None and self._forgotten(key, t)):
                self.disordered = True
                return
            else:
                if g.top is not None and cut is not None and t - g.top >= cut:
                    self._add(g, rows, run)
                    self._close(g)
                    run = pending[key] = []
                g.top = t
            run.append(i)
        for key, idx in pending.items():
            self._add(self.groups[key], rows, idx)
        self._sweep()

    def _feed_run(self, rows: Rows, key: tuple[str, ...], a: int, b: int) -> bool:
        """`feed` for rows a..b-1, all of group `key` and of known time (a flood from one client is):
        its cuts found column-wise. False when they are out of time order (`disordered`)."""
        g = self._group(key)
        ts = rows.ts_ns[a:b]
        gaps = np.diff(ts, prepend=ts[0] if g.top is None else g.top)
        if g.unknown or (gaps < 0).any() or (g.top is None and self._forgotten(key, int(ts[0]))):
            self.disordered = True
            return False
        cuts = [] if self.cut is None else np.flatnonzero(gaps >= self.cut).tolist()
        first = bool(cuts) and cuts[0] == 0  # the first row is far from the group's last one
        for j, (x, y) in enumerate(pairwise([0, *cuts[first:], b - a])):
            if j or (first and g.top is not None):
                self._close(g)
            if self.rule.kind == "sequence":
                self._add(g, rows, list(range(a + x, a + y)))
            else:  # a run of one group's rows: aggregated column-wise
                g.ev.add_range(rows, a + x, a + y)
        g.top = int(ts[-1])
        return True

    def _group(self, key: tuple[str, ...]) -> _Group:
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _Group(key, Evidence(self.rule))
        return g

    def _forgotten(self, key: tuple[str, ...], t: int) -> bool:
        """Whether a new group's first known time may belong to a burst `_sweep` forgot: earlier than
        a window after the last row of a group forgotten in its capture (the rows are then out of
        time order, or that group's next row would have joined its burst)."""
        return t < self.swept.get(key[0], _PAST)

    def _sweep(self) -> None:
        """Once the groups held doubled: close and forget each group whose last row is a window older
        than its capture's latest row (see the module docstring)."""
        if len(self.groups) < self.sweep_at or self.cut is None:
            return
        latest: dict[str, int] = {}
        for g in self.groups.values():
            if g.top is not None and g.top > latest.get(g.key[0], _PAST):
                latest[g.key[0]] = g.top
        for key, g in list(self.groups.items()):
            if g.top is not None and not g.unknown and latest[key[0]] - g.top >= self.cut:
                self._close(g)
                del self.groups[key]
                # a row before this could still have joined its burst
                self.swept[key[0]] = max(g.top + self.cut, self.swept.get(key[0], _PAST))
        self.sweep_at = max(SWEEP_GROUPS, 2 * len(self.groups))

    def _add(self, g: _Group, rows: Rows, idx: list[int]) -> None:
        if self.rule.kind == "sequence":
            idx = self._steps(g.ev, rows, idx)
        g.ev.add(rows, idx)

    def _steps(self, ev: Evidence, rows: Rows, idx: list[int]) -> list[int]:
        """The rows that advance or repeat a step already reached (the rule's steps in order)."""
        steps, keep = self.rule.operations, []
        for i in idx:
            op, num = rows.steps[i]
            for s in range(min(ev.step + 1, len(steps))):
                if any(op == a or num == a or (a.endswith("*") and str(op).startswith(a[:-1])) for a in steps[s]):
                    keep.append(i)
                    ev.step = max(ev.step, s + 1)
                    break
        return keep

    def _close(self, g: _Group) -> None:
        ev, rule = g.ev, self.rule
        qualifies = ev.n > 0 and (
            (rule.kind == "count" and ev.holds())
            or (rule.kind == "sequence" and ev.step == len(rule.operations))
            or rule.kind == "call"
        )
        if qualifies:
            self.emitted.append(Emitted(g.key, len(self.emitted), finding(ev, self.has), ev.pairs))
        g.ev = Evidence(rule)

    def finish(self) -> list[Emitted]:
        """Close every open burst; the emitted bursts in group-key order, then burst order."""
        for g in self.groups.values():
            self._close(g)
        self.groups.clear()
        return sorted(self.emitted, key=lambda e: (e.key, e.number))
