"""The attempts rows of SYN-only flow-table entries (`flow_table.SynOnly`), written in bulk.

A SYN flood leaves a SYN-only entry per SYN: evicted past `max_tcp_flows` (`syn_runs`) or still in
the table at the end of the capture (`Conversations.close_all`), each becomes a syn_only attempts row,
as a connection that carried nothing gives. Here they are written as one Arrow batch of columns from
BULK_ATTEMPTS entries on (fewer: row by row), their addresses as text once per distinct address
(`classify.ip_texts`). Kept apart from `syn_runs` (which works on `Conversations`) so that
`conversations` can use it without an import cycle.
"""

from __future__ import annotations

from operator import attrgetter

from analyzer.pipeline.classify import ip_texts
from analyzer.pipeline.collector import Collector
from analyzer.pipeline.flow_table import SynOnly

BULK_ATTEMPTS = 512  # entries written as one Arrow batch from this many on (fewer: row by row)
_KEY, _FRAME, _LAST_TS = (attrgetter(name) for name in ("key", "frame", "last_ts"))  # of a SynOnly


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
