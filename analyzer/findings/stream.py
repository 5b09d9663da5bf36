"""One rule over its rows as they go by: groups, bursts, sequence steps, and the bursts that qualify.

A rule's rows are grouped by capture and its `group` columns and ordered by time; a burst is a run of
a group's rows with no gap longer than window_s (an unknown time never cuts: it sorts last and has
no gap). The tables come in their ORDER (capture, frame, ...), which is time order within a capture
in every ordinary capture, so a group's rows arrive in burst order and `RuleStream` keeps one open
burst per group (`Evidence`, bounded by distinct values) and emits each burst when the next gap or
the end closes it. What it holds: per group its key, last time and open burst; per emitted burst
its findings row (and for a rule with `after`, its client/server pairs).

A row earlier than one already seen in its group (or a known time after an unknown one) means this
capture is not in time order: the stream then says `disordered`, and the engine gives the rule its
rows again sorted by time (`engine._sorted_pass`), as the whole-table engine sorted them.

Sequence rules (`operations` a list of steps) keep, per open burst, the step reached and the rows
that made it ([C706] has nothing to say here; the steps are the rule's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.findings.evidence import Evidence, Rows, finding
from analyzer.findings.rules import Rule

_NS = 1_000_000_000


def _seconds(ns: int) -> float:
    """A gap in seconds exactly as pandas' `total_seconds` gives it (whole seconds plus the rest), so
    that a gap of exactly window_s cuts where the whole-table engine cut."""
    whole, rest = divmod(ns, _NS)
    return whole + rest / _NS


@dataclass
class _Group:
    ev: Evidence
    prev: int | None = None  # the time of the group's last row (None: unknown)
    top: int | None = None  # the latest known time seen
    unknown: bool = False  # a row of unknown time was seen
    bursts: int = 0


@dataclass
class Emitted:
    """A qualifying burst: where it sorts (group key, burst number), its row, and what `after` needs."""

    key: tuple[str, ...]
    number: int
    row: dict[str, Any]
    pairs: set[tuple[Any, Any]]


@dataclass
class RuleStream:
    """The open bursts of one rule and the bursts it emitted (see the module docstring)."""

    rule: Rule
    has: set[str] = field(default_factory=set)  # the source's columns
    groups: dict[tuple[str, ...], _Group] = field(default_factory=dict)
    emitted: list[Emitted] = field(default_factory=list)
    disordered: bool = False

    def feed(self, rows: Rows, has: set[str]) -> None:
        """The rule's selected rows of one chunk, in table order."""
        self.has = has
        window = self.rule.window_s
        pending: dict[tuple[str, ...], list[int]] = {}
        for i, (key, t) in enumerate(zip(rows.keys, rows.ts, strict=True)):
            g = self.groups.get(key)
            if g is None:
                g = self.groups[key] = _Group(Evidence(self.rule))
            if t is not None:
                if g.unknown or (g.top is not None and t < g.top):
                    self.disordered = True
                    return
                if g.prev is not None and _seconds(t - g.prev) > window:
                    self._add(g, rows, pending.pop(key, []))
                    self._close(key, g)
                g.top = t
            else:
                g.unknown = True
            g.prev = t
            pending.setdefault(key, []).append(i)
        for key, idx in pending.items():
            self._add(self.groups[key], rows, idx)

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

    def _close(self, key: tuple[str, ...], g: _Group) -> None:
        ev, rule = g.ev, self.rule
        qualifies = ev.n > 0 and (
            (rule.kind == "count" and ev.holds())
            or (rule.kind == "sequence" and ev.step == len(rule.operations))
            or rule.kind == "call"
        )
        if qualifies:
            self.emitted.append(Emitted(key, g.bursts, finding(ev, self.has), ev.pairs))
        g.bursts += 1
        g.ev = Evidence(rule)

    def finish(self) -> list[Emitted]:
        """Close every open burst; the emitted bursts in group-key order, then burst order."""
        for key, g in self.groups.items():
            self._close(key, g)
        self.groups.clear()
        return sorted(self.emitted, key=lambda e: (e.key, e.number))
