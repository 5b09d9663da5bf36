"""The attempts rows of SYN-only flow-table entries (`flow_table.SynOnly`), written in bulk.

A SYN flood leaves a SYN-only entry per SYN: evicted past `max_tcp_flows` (`syn_runs`) or still in
the table at the end of the capture (`Conversations.close_all`), each becomes a syn_only attempts row,
as a connection that carried nothing gives. Here they are written as one Arrow batch of columns from
BULK_ATTEMPTS entries on (fewer: row by row), their addresses as text once per distinct address
(`classify.ip_texts`). Kept apart from `syn_runs` (which works on `Conversations`) so that
`conversations` can use it without an import cycle.
"""

from __future__ import annotations

from itertools import islice, repeat
from operator import attrgetter, is_
from typing import NamedTuple

from analyzer.capture.syns import SynArrays
from analyzer.pipeline.classify import ip_texts
from analyzer.pipeline.collector import Collector
from analyzer.pipeline.flow_table import SynOnly

BULK_ATTEMPTS = 512  # entries written as one Arrow batch from this many on (fewer: row by row)
_KEY, _FRAME, _LAST_TS = (attrgetter(name) for name in ("key", "frame", "last_ts"))  # of a SynOnly


class SynTail(NamedTuple):
    """The SYN-only entries a run of SYNs put last (`syn_runs._enter`, the run's last `max_tcp_flows`)
    and their SYNs' arrays: under a flood the next run evicts them all, in this order, and their
    attempts rows are then made from the arrays, as the rows of the SYNs evicted within a run are."""

    entries: list[SynOnly]
    syns: SynArrays

    def take(self, evicted: list[SynOnly]) -> tuple[SynArrays | None, SynTail | None]:
        """The arrays of the first of `evicted` that are these entries, consecutive and in order (None
        when the first is not one), and what is left of the tail after them. Under a flood the entries
        of a tail are evicted but the first (a SYN taken the per-packet way between two runs evicts
        it), then one more (that SYN's entry)."""
        first = _index(self.entries, evicted[0]) if evicted else None
        if first is None:
            return None, self
        same = list(map(is_, evicted, islice(self.entries, first, None)))
        end = first + (same.index(False) if False in same else len(same))
        rest = SynTail(self.entries[end:], self.syns.part(end)) if end < len(self.entries) else None
        return self.syns.part(first, end), rest


def _index(entries: list[SynOnly], entry: SynOnly) -> int | None:
    """Where `entry` itself is among `entries` (None: not there), looked for by identity."""
    if entries and entries[0] is entry:
        return 0
    hits = list(map(is_, repeat(entry), entries))
    return hits.index(True) if True in hits else None


def frames_of(entries: list[SynOnly]) -> list[int]:
    """The entries' SYN frames (by a C-level getter, not a Python step each)."""
    return list(map(_FRAME, entries))


def syn_only_attempts(collector: Collector, entries: list[SynOnly], frames: list[int]) -> None:
    """The syn_only attempts rows of SYN-only entries, in order (`frames`: theirs)."""
    c_addr, c_port, s_addr, s_port = (list(side) for side in zip(*map(_KEY, entries), strict=True))
    c_ips, s_ips = ip_texts(c_addr), ip_texts(s_addr)
    if len(entries) >= BULK_ATTEMPTS:
        collector.attempt_columns(frames, list(map(_LAST_TS, entries)), c_ips, c_port, s_ips, s_port)
    else:
        for s, c_ip, cp, s_ip, sp in zip(entries, c_ips, c_port, s_ips, s_port, strict=True):
            collector.attempt(s.frame, s.last_ts, c_ip, cp, s_ip, sp, "syn_only")


def syn_only_ended(collector: Collector, entries: list[SynOnly]) -> None:
    """`Conversations._syn_only_ended` for SYN-only entries still in the table at the end of the
    capture, in table order: an attempts row each. They are not forgotten one by one: `close_all`
    clears the table after (and a SynOnly holds no port). The caller writes the pipes closed."""
    if entries:
        syn_only_attempts(collector, entries, frames_of(entries))
