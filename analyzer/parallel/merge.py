"""Merging the sessions a parallel run read apart into the records the serial run makes.

The serial run reads sessions in order with one `Pipeline`; what it carries from session to session
is the selector's ports and the endpoint book (`units.SerialState`). The merge walks the workers'
results in that order, keeping the state the serial run would have at each session's start:

1. A session read fresh is the serial one when nothing carried over can reach it (`_reaches`, from
   its census, `units.Census`: no probed payload, conversation end, UDP datagram on what the state
   adds to a fresh pipeline, ...) and the book cannot overflow its cap merging it. Otherwise it is
   read again from the state (`redo`), in a worker, which is exactly the serial reading.
2. The state moves on: a fresh session adds its ports and replays its book (`EndpointBook.learn`,
   in the order it learned them: the serial book's order, each endpoint's last announcements), less
   what a bind on a well-known port taught that the state already knew (`_replay`); a redone one
   hands over its own, which started from the state.
3. Its records are appended in order (violations through the merged log, which aggregates as the
   serial log does).

Two conditions are checked before any of that, and a run that fails one is read serially instead:
two sessions with the same name (their violations would share aggregates), and more violation
aggregates live at once than `violation_log.LIVE_AGGREGATES` (the serial log would write some out
earlier than the workers did). Either way the records are the serial run's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from analyzer.book import PER_ENDPOINT, SOURCE_SEC_ADDR, Announcement, Endpoint, EndpointBook
from analyzer.limits import Limits
from analyzer.parallel.units import Census, SerialState, SessionResult, conversation_starts, same_port_binds
from analyzer.pipeline.classify import ip_text
from analyzer.pipeline.state import Run
from analyzer.records import Records
from analyzer.violation_log import LIVE_AGGREGATES

Redo = Callable[[int, SerialState], SessionResult]

_UNCONFIRMED = re.compile(r".*:(\d+) -> .*:(\d+): ")  # the ports in an unconfirmed_conversation detail

_KINDS = ("binds", "endpoints", "calls", "connections", "datagrams", "attempts")


def start_state(limits: Limits) -> SerialState:
    """The state of a fresh pipeline: the well-known ports and an empty book."""
    run = Run(limits, strict=False)
    return SerialState(set(run.selector.tcp_ports), set(run.selector.udp_ports), run.learner.book)


def _fresh_copy(base: SerialState, limits: Limits) -> SerialState:
    """Another start state like `base`, with a book of its own (a `Run` made once, not twice: its
    spool's record codecs and its selector cost about 3 ms)."""
    return SerialState(set(base.tcp_ports), set(base.udp_ports), EndpointBook(limits.max_learned_endpoints))


def mergeable(results: list[SessionResult]) -> bool:
    """Whether the sessions can be merged at all (see the module docstring)."""
    names = [n for r in results for n in r.names]
    return len(names) == len(set(names)) and sum(r.held for r in results) <= LIVE_AGGREGATES


@dataclass
class _Carried:
    """What the state adds to a fresh pipeline: ports selected beyond the well-known ones (with the
    ports of the book's endpoints), and the book's TCP and HTTP endpoints."""

    tcp: set[int]
    udp: set[int]
    endpoints: set[tuple[str, int]]


def _carried(state: SerialState, base: SerialState) -> _Carried:
    c = _Carried(state.tcp_ports - base.tcp_ports, state.udp_ports - base.udp_ports, set())
    for (transport, ip, port), _a in state.book.entries():
        if transport == "udp":
            if port not in base.udp_ports:
                c.udp.add(port)
        elif port not in base.tcp_ports:
            c.tcp.add(port)
            c.endpoints.add((ip, port))
    return c


def _ports(key: bytes) -> tuple[int, int, int]:
    """(address length, source port, destination port) of a census flow key."""
    a = (len(key) - 4) // 2
    return a, int.from_bytes(key[2 * a : 2 * a + 2], "big"), int.from_bytes(key[2 * a + 2 :], "big")


def _port_bytes(ports: set[int]) -> set[bytes]:
    return {p.to_bytes(2, "big") for p in ports}


def _starts(r: SessionResult) -> dict[tuple[str, int, str, int], int]:
    """The first frame of every TCP conversation the fresh reading followed or counted as an
    attempt (`units.conversation_starts`), as the worker took it, else from the records."""
    return r.starts if r.starts is not None else conversation_starts(r.records)


def _probed(census: Census, carried: _Carried) -> bool:
    """Did the fresh probe look at a payload on a carried port (one the serial selector holds)?"""
    for p in census.probed:
        if int.from_bytes(p[:2], "big") in carried.tcp or int.from_bytes(p[2:], "big") in carried.tcp:
            return True
    return False


def _unconfirmed_on(r: SessionResult, carried: _Carried) -> bool:
    """Did the fresh reading give up on a conversation (a DCE/RPC header not confirmed) at a carried
    port? The serial one may have ignored it before (a flow judged not to be DCE/RPC stays ignored).
    A row that stands for several says nothing of the others' ports: it counts."""
    for v in r.records.violations:
        if v.what == "unconfirmed_conversation":
            ports = _UNCONFIRMED.match(v.detail)
            if v.count > 1 or ports is None or {int(ports[1]), int(ports[2])} & carried.tcp:
                return True
    return False


def _reaches(census: Census, r: SessionResult, carried: _Carried, base: SerialState, any_flow: bool) -> bool:
    """Whether the carried state could read one of the session's packets differently.

    A packet on a well-known TCP port is read the same way whatever is carried. Another on a carried
    port is selected only with the state; it then changes nothing unless: its payload may be DCE/RPC
    and the fresh selector did not hold its port (the probe was asked: `_probed`); one of its ends is
    an endpoint the book holds (the pipeline would follow it as announced); the fresh reading followed
    its conversation, but not from the conversation's first frame; the fresh reading gave up on a
    conversation there (`_unconfirmed_on`); it is UDP. `any_flow`: every flow
    on a carried port counts (the session is long enough for idle sweeps, whose timing selected
    packets set, or has as many flows as the flow-table cap)."""
    if _probed(census, carried) or (carried.tcp and _unconfirmed_on(r, carried)):
        return True
    starts: dict[tuple[str, int, str, int], int] | None = None
    flows = census.flows
    # Ports as the two bytes a key ends with (source port, destination port): no int per key.
    tcp, udp, known = _port_bytes(carried.tcp), _port_bytes(carried.udp), _port_bytes(base.tcp_ports)
    for key, first in flows.items():
        sport_b, dport_b = key[-4:-2], key[-2:]
        if sport_b in udp or dport_b in udp:
            return True
        if sport_b in known or dport_b in known or not (sport_b in tcp or dport_b in tcp):
            continue
        if any_flow:
            return True
        a, sport, dport = _ports(key)
        src, dst = ip_text(key[:a]), ip_text(key[a : 2 * a])
        if (src, sport) in carried.endpoints or (dst, dport) in carried.endpoints:
            return True
        starts = _starts(r) if starts is None else starts
        followed = starts.get((src, sport, dst, dport))
        back = key[a : 2 * a] + key[:a] + key[2 * a + 2 :] + key[2 * a : 2 * a + 2]
        if followed is not None and followed != min(first, flows.get(back, first)):
            return True
    return False


def _same_port_binds(r: SessionResult) -> set[tuple[str, int]]:
    """`units.same_port_binds` of the session, as the worker took it, else from the records."""
    return r.same_port if r.same_port is not None else same_port_binds(r.records)


def _replay(r: SessionResult, state: SerialState, base: SerialState) -> list[tuple[Endpoint, Announcement]] | None:
    """The announcements the serial run learns in session r, in order: the fresh book's, but for those
    of a well-known port's endpoint the state already holds that a same-port bind gave (see
    `_same_port_binds`). None when that cannot be told (the fresh book kept only the last of them).
    Only a well-known port's endpoint is looked up with the book this way: any other is a carried
    port, which `_reaches` has checked."""
    out: list[tuple[Endpoint, Announcement]] = []
    same_port: set[tuple[str, int]] | None = None
    for endpoint, announcements in r.records.book.entries():
        if endpoint[0] == "tcp" and endpoint[2] in base.tcp_ports and endpoint in state.book:
            same_port = _same_port_binds(r) if same_port is None else same_port
            kept = [a for a in announcements if (a.capture, a.frame) not in same_port or a.source != SOURCE_SEC_ADDR]
            if len(kept) < len(announcements) and len(announcements) >= PER_ENDPOINT:
                return None
            announcements = kept
        out += [(endpoint, a) for a in announcements]
    return out


def _span_ns(r: SessionResult) -> int:
    firsts = [c.first_ts for c in r.records.captures if c.first_ts is not None]
    lasts = [c.last_ts for c in r.records.captures if c.last_ts is not None]
    return max(lasts) - min(firsts) if firsts and lasts else 0


def exact(r: SessionResult, state: SerialState, base: SerialState, limits: Limits) -> bool:
    """Whether session r, read fresh, is what the serial run reads from `state`."""
    if r.redone:
        return True
    carried = _carried(state, base)
    if r.census is None:
        if carried.tcp or carried.udp or len(state.book):
            return False
    else:
        long = _span_ns(r) >= limits.tcp_idle_timeout_s * 1e9 or len(r.census.flows) >= limits.max_tcp_flows
        if _reaches(r.census, r, carried, base, long):
            return False
    # Merging might overflow the book: the serial run forgets, and says so.
    return len(state.book) + len(r.records.book) <= limits.max_learned_endpoints


def advance(state: SerialState, r: SessionResult, base: SerialState) -> SerialState | None:
    """The state after session r, or None when r's fresh book cannot be replayed (see `_replay`)."""
    if r.redone:
        return SerialState(r.tcp_ports, r.udp_ports, r.records.book)
    learned = _replay(r, state, base)
    if learned is None:
        return None
    for endpoint, a in learned:
        state.book.learn(endpoint, a)
    return replace(state, tcp_ports=state.tcp_ports | r.tcp_ports, udp_ports=state.udp_ports | r.udp_ports)


def append(merged: Records, r: SessionResult) -> None:
    """Session r's records after those merged so far, in the order they were made."""
    spools = isinstance(r.records, Records)  # a spool handed over on disk: its batch files are adopted
    for kind in _KINDS:
        if spools:
            getattr(merged, kind).adopt(getattr(r.records, kind))
        else:
            getattr(merged, kind).extend(getattr(r.records, kind))
    merged.violations.extend(r.records.violations)  # through the merged log, which aggregates
    merged.captures.extend(r.records.captures)
    merged.frame_maps.update(r.records.frame_maps)
    merged.digests.update(r.records.digests)
    if isinstance(r.records, Records):
        r.records.close()  # its directory goes, with what was not adopted


class Merger:
    """The merge done a session at a time, in session order, as the workers' results come in: the
    parent merges what it has while the workers read the rest (`multicore`), instead of all of it
    after the last one. `step(r)` takes session i's fresh result once sessions 0 to i-1 are merged
    and merges it, or returns the serial state it must be read again from: then `redone(r)` takes
    that reading (`add` does both, with `redo`). `records()` gives the merged records, or None when
    the sessions cannot be merged (the checks of `mergeable`, made as they come: names seen twice,
    too many live violation aggregates)."""

    def __init__(self, limits: Limits, redo: Redo | None = None) -> None:
        self.limits, self.redo = limits, redo
        self.base = start_state(limits)
        self.state = _fresh_copy(self.base, limits)
        self.merged: Records | None = Records(limits)
        self.added = 0  # the sessions taken so far (the next one's index)
        self.waiting = False  # the last one taken is being read again
        self._names: set[str] = set()
        self._held = 0

    def step(self, r: SessionResult) -> SerialState | None:
        """Session `added`'s fresh result merged (None), or the state to read it again from."""
        assert not self.waiting, "the session before is being read again"
        self.added += 1
        self._held += r.held
        names = set(r.names)
        if self.merged is None or self._names & names or len(names) < len(r.names) or self._held > LIVE_AGGREGATES:
            self._drop(r)
            return None
        self._names |= names
        after = advance(self.state, r, self.base) if exact(r, self.state, self.base, self.limits) else None
        if after is None:
            if isinstance(r.records, Records):
                r.records.close()
            self.waiting = True
            return self.state
        append(self.merged, r)
        self.state = after
        return None

    def redone(self, r: SessionResult) -> None:
        """The session `step` asked for, read again from the state it gave."""
        self.waiting = False
        if self.merged is None:
            self._drop(r)
            return
        after = advance(self.state, r, self.base)
        assert after is not None  # a redone session hands its own state over
        append(self.merged, r)
        self.state = after

    def add(self, r: SessionResult) -> None:
        """`step`, and the reading again it asks for done with `redo`."""
        state = self.step(r)
        if state is not None:
            assert self.redo is not None
            self.redone(self.redo(self.added - 1, state))

    def _drop(self, r: SessionResult) -> None:
        if isinstance(r.records, Records):
            r.records.close()
        if self.merged is not None:
            self.merged.close()
            self.merged = None

    def records(self) -> Records | None:
        merged = self.merged
        if merged is not None:
            merged.book = self.state.book
        return merged


def merge(results: list[SessionResult], limits: Limits, redo: Redo) -> Records:
    """The serial run's records from the sessions' results (in session order); `redo(i, state)`
    reads session i again from the serial state at its start. Call `mergeable` first."""
    merger = Merger(limits, redo)
    for r in results:
        merger.add(r)
    merged = merger.records()
    assert merged is not None, "call mergeable first"
    return merged
