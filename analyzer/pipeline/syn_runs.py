"""Runs of plain SYNs (`analyzer.capture.syns`) opened in bulk: a SYN flood at numpy's pace.

One by one, each SYN of a flood to a well-known RPC port becomes a `SynOnly` entry of the flow
table (`Conversations.tcp` -> `Classifier.start`), and past `max_tcp_flows` each new entry evicts
the least recently seen one, whose SYN-only attempt is written and the cap counted. `open_syns`
gives the same records, in the same order, and leaves the same table, for a run of SYNs that each
open a new flow, without an entry for the SYNs that would have been evicted within the run:

- of the run's k new flows and the table's n entries, the n + k - cap (at most) evicted are the
  table's oldest, in its order, then the run's first k - cap (the transients): nothing else is
  written in between, so the table's are evicted one by one as `put` would, then the transients'
  attempts rows and cap hits are written in bulk, and the run's last entries are put;
- the idle sweep the file loop runs every `every` packets is done at the same packets: a sweep
  that would close nothing (the table's oldest entry at that point is not idle) is skipped, and the
  run stops at one that would, for the loop to sweep;
- a SYN of a flow already in the table, or seen earlier in the run, goes the per-packet way;
- an eviction that changes the selector's ports (a connection's last bytes taught the run a port)
  stops the run after the SYN that caused it, for the decoder to look at the next frames again.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING

from analyzer.capture.decode import PROTO_TCP, Packet
from analyzer.capture.syns import SynRun
from analyzer.model import BY_PORT135, BY_PORT593, BY_SMB
from analyzer.pipeline.classify import EPM_PORT, HTTP_PORT, SMB_PORTS, ip_text
from analyzer.pipeline.flow_table import FlowKey, SynOnly
from analyzer.pipeline.syn_only import BULK_ATTEMPTS, SynTail, frames_of, syn_only_attempts

if TYPE_CHECKING:
    from analyzer.pipeline.conversations import Conversations

# How `Classifier.new_tcp` starts a connection to each well-known port: (kind, identified_by).
KINDS: dict[int, tuple[str, str]] = {
    EPM_PORT: ("co", BY_PORT135),
    HTTP_PORT: ("http", BY_PORT593),
    **{port: ("smb", BY_SMB) for port in SMB_PORTS},
}
_EVICT_AT_ONCE = 4096  # SynOnly entries evicted per bulk step: the lists it makes stay small


def _versions(conv: Conversations) -> tuple[int, int]:
    sel = conv.selector
    return sel.tcp_ports.version, sel.udp_ports.version


def _packet(run: SynRun, i: int) -> Packet:
    """The packet the decoder would have made of SYN i."""
    seq, ack, flags = int(run.seq[i]), int(run.ack[i]), int(run.flags[i])
    return Packet(PROTO_TCP, run.src[i], run.dst[i], run.sport[i], run.dport[i], seq, ack, flags, b"")


def open_syns(conv: Conversations, run: SynRun, lo: int, sweep_in: int, every: int) -> tuple[int, bool]:
    """SYNs from `lo` on, the next idle sweep due after `sweep_in` of them (then every `every`): how
    many were taken (at least one), and whether the selector's ports changed."""
    versions = _versions(conv)
    hi, keys = _new_flows(conv, run, lo)
    if hi == lo:  # a flow the table knows: the per-packet way
        conv.tcp(_packet(run, lo), run.frames[lo], run.ts[lo])
        return 1, _versions(conv) != versions
    hi = _until_sweep(conv, run, lo, hi, sweep_in, every)
    table = conv.table
    n, cap, k = len(table), table.cap, hi - lo
    detail = f"{cap + 1} live flows"  # what `put` says: the table is full when it evicts
    stopped = _evict(conv, min(n, max(0, n + k - cap)), detail, versions)
    if stopped is not None:  # evicted by SYN number cap - n + x: the run stops after it
        end = lo + cap - n + stopped + 1
        _enter(conv, run, lo, end, keys[: end - lo])
        return end - lo, True
    transients = max(0, k - cap)
    if transients:
        _transients(conv, run, lo, lo + transients, detail)
    _enter(conv, run, lo + transients, hi, keys[transients:k])
    return k, False


def _new_flows(conv: Conversations, run: SynRun, lo: int) -> tuple[int, list[FlowKey]]:
    """The end of the SYNs from `lo` that each open a flow the table does not hold, and the flow
    keys of the SYNs from `lo` (made once: the entries put hold them)."""
    keys = list(zip(run.src[lo:], run.sport[lo:], run.dst[lo:], run.dport[lo:], strict=True))
    return lo + conv.table.new_keys(keys), keys


def _until_sweep(conv: Conversations, run: SynRun, lo: int, hi: int, sweep_in: int, every: int) -> int:
    """The end of the SYNs from `lo` (before `hi`) after which no sweep would close anything: the
    sweep after SYN p looks at the oldest entry the table would then hold."""
    table = conv.table
    n, cap = len(table), table.cap
    idle = int(conv.limits.tcp_idle_timeout_s * 1_000_000_000)
    for p in range(lo + sweep_in - 1, hi, every):
        oldest = max(0, n + (p - lo + 1) - cap)  # its place in table-then-run order
        last_ts = table.nth_oldest(oldest).last_ts if oldest < n else run.ts[lo + oldest - n]
        if last_ts < run.ts[p] - idle:
            return p + 1
    return hi


def _evict(conv: Conversations, count: int, detail: str, versions: tuple[int, int]) -> int | None:
    """Evict the table's `count` oldest entries as `put` would one by one, the SYN-only ones in bulk;
    the number of the eviction after which the selector's ports changed, if one did (then no more)."""
    table = conv.table
    syn_only: list[SynOnly] = []
    x = 0
    while x < count:
        oldest = table.pop_syn_only(min(count - x, _EVICT_AT_ONCE))  # the SynOnly entries at the head, in bulk
        if oldest:
            syn_only += oldest
            x += len(oldest)
            continue
        old = table.pop_oldest()
        _syn_only_evicted(conv, syn_only, detail)
        syn_only = []
        conv.evicted(old, detail)
        if _versions(conv) != versions:
            return x
        x += 1
    _syn_only_evicted(conv, syn_only, detail)
    return None


def _syn_only_evicted(conv: Conversations, entries: list[SynOnly], detail: str) -> None:
    """`Conversations.evicted` for SYN-only entries, in order: a cap hit and an attempts row each."""
    if not entries:
        return
    frames = frames_of(entries)
    conv.collector.cap_hits(entries[0].stream, frames, "cap_tcp_flows", detail)
    syns, conv.syn_tail = conv.syn_tail.take(entries) if conv.syn_tail is not None else (None, None)
    done = 0
    if syns is not None and len(syns.frames) >= BULK_ATTEMPTS:  # the first, the last run's: rows from its arrays
        conv.collector.syn_only_attempts(syns)
        done = len(syns.frames)
    if done < len(entries):
        syn_only_attempts(conv.collector, entries[done:], frames[done:])
    conv.pipes_closed()


def _enter(conv: Conversations, run: SynRun, a: int, b: int, keys: list[FlowKey]) -> None:
    """SYNs a..b-1 as the `SynOnly` entries `Classifier.start` makes, put in one step (the table has
    room for them). Tuples are made as `NamedTuple._make` makes them, without a call per field; an
    entry's key is the table's (`keys`: those of SYNs a..b-1)."""
    src, sport, dst, dport = run.src[a:b], run.sport[a:b], run.dst[a:b], run.dport[a:b]
    kinds, identified_by = _kinds(dport)
    streams = _streams(conv, kinds)
    seq, ack, flags = (values[a:b].tolist() for values in (run.seq, run.ack, run.flags))
    syns = (seq, ack, flags, repeat(b""), run.frames[a:b], run.ts[a:b])
    made = zip(keys, *syns, streams, kinds, identified_by, repeat(None), strict=False)  # with repeats
    entries: list[SynOnly] = list(map(tuple.__new__, repeat(SynOnly), made))
    conv.table.put_many(keys, zip(dst, dport, src, sport, strict=True), entries)
    conv.syn_tail = SynTail(entries, run.arrays(a, b))


def _kinds(dports: list[int]) -> tuple[list[str], list[str]]:
    """The kind and identified_by `KINDS` gives each port: for a run to one port (a flood's), one
    look-up and two lists of one value, not a look-up and a tuple per SYN."""
    if dports and dports.count(dports[0]) == len(dports):
        kind, by = KINDS[dports[0]]
        return [kind] * len(dports), [by] * len(dports)
    pairs = [KINDS[port] for port in dports]
    return [kind for kind, _by in pairs], [by for _kind, by in pairs]


def _streams(conv: Conversations, kinds: list[str]) -> Sequence[int]:
    """The stream numbers `Classifier.start` gives connections of these kinds, one after the other:
    the next number each, -1 for SMB (not a conversation: its pipes are). Taken at once, as a range
    (no list of them made), when none is SMB (a flood to 135)."""
    if "smb" not in kinds:
        first = conv.next_streams(len(kinds))
        return range(first, first + len(kinds))
    return [-1 if kind == "smb" else conv.next_stream() for kind in kinds]


def _transients(conv: Conversations, run: SynRun, a: int, b: int, detail: str) -> None:
    """SYNs a..b-1, put and evicted within the run: each a cap hit and a syn_only attempts row (and
    the first writes the rows of the pipes closed meanwhile, as `Conversations.syn_only_ended` does)."""
    kinds, _identified_by = _kinds(run.dport[a:b])
    # The run's stream numbers taken; only the first is said.
    conv.collector.cap_hits(_streams(conv, kinds)[0], run.frames[a:b], "cap_tcp_flows", detail)
    if b - a >= BULK_ATTEMPTS:
        conv.collector.syn_only_attempts(run.arrays(a, b))
    else:
        for i in range(a, b):
            client, server = ip_text(run.src[i]), ip_text(run.dst[i])
            conv.collector.attempt(run.frames[i], run.ts[i], client, run.sport[i], server, run.dport[i], "syn_only")
    conv.pipes_closed()
