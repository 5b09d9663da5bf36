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

import pickle
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


def _copy(state: SerialState) -> SerialState:
    """A state of its own (its book too), for reading ahead without touching the merge's."""
    copied: SerialState = pickle.loads(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    return copied


def _same(a: SerialState, b: SerialState) -> bool:
    """Whether two states are the same: ports, and the book's content in its order (pickled: a
    difference that does not matter only costs a reading again, never a wrong merge)."""
    return (
        a.tcp_ports == b.tcp_ports
        and a.udp_ports == b.udp_ports
        and pickle.dumps(a.book, protocol=pickle.HIGHEST_PROTOCOL)
        == pickle.dumps(b.book, protocol=pickle.HIGHEST_PROTOCOL)
    )


@dataclass
class _Again:
    """A reading again asked for: the state it starts from, and what it made once it has."""

    start: SerialState
    result: SessionResult | None = None


class Merger:
    """The merge done a session at a time, in session order, as the workers' results come in: the
    parent merges what it has while the workers read the rest (`multicore`), instead of all of it
    after the last one. `offer(r)` takes a fresh result (in any order), `redone(token, r)` a
    reading again; `progress()` merges every session it can, in order, and returns the readings
    again to start, each `(token, session, state)`.

    A session that must be read again from the state the sessions before it leave holds up the
    merge of every session after it until that reading is done, and a session after it that must
    be read again too could only start from that state. So the merge reads ahead: past a session
    being read again it carries on from the state the fresh result predicts (`advance` of it, as
    if it were exact) and starts the readings again that prediction asks for, side by side. A
    reading again is merged only if it started from the state the merge has when its turn comes
    (`_same`), and a fresh result only if it is exact for that state: a wrong prediction costs a
    reading again, never a wrong merge. On the 8 captures of 140 MB of `bench/run.py --large`,
    each of the three readings again made the fresh records and the predicted state.

    `records()` gives the merged records, or None when the sessions cannot be merged (the checks
    of `mergeable`, made as the results come: names seen twice, too many live violation
    aggregates; the rest of them are then dropped as they come)."""

    def __init__(self, limits: Limits, redo: Redo | None = None) -> None:
        self.limits, self.redo = limits, redo
        self.base = start_state(limits)
        self.state = _fresh_copy(self.base, limits)
        self.merged: Records | None = Records(limits)
        self.added = 0  # the sessions merged so far (the next one's index)
        self.fresh: dict[int, SessionResult] = {}  # fresh results not merged yet, by session
        self.again: dict[int, list[_Again]] = {}  # readings again asked for, by session
        self._tokens: dict[int, tuple[int, _Again]] = {}  # readings again not done yet
        self._token = 0
        self._ahead: tuple[int, int, SerialState] | None = None  # (merged, next, state): the walk ahead
        self._names: set[str] = set()
        self._held = 0

    def offer(self, r: SessionResult) -> None:
        """A fresh result, with the checks of `mergeable` (which the results' order does not change)."""
        self.fresh[r.index] = r
        self._held += r.held
        names = set(r.names)
        if self._names & names or len(names) < len(r.names) or self._held > LIVE_AGGREGATES:
            if self.merged is not None:
                self.merged.close()
                self.merged = None
        self._names |= names

    def redone(self, token: int, r: SessionResult) -> None:
        i, again = self._tokens.pop(token)
        if i < self.added:  # asked for ahead, and not needed after all
            _close(r)
            return
        again.result = r

    def progress(self) -> list[tuple[int, int, SerialState]]:
        """Merge what can be merged; the readings again to start (see the class docstring)."""
        asks: list[tuple[int, int, SerialState]] = []
        while self.added in self.fresh:
            i = self.added
            r = self.fresh[i]
            if self.merged is None:  # not mergeable: the run is read serially, nothing is kept
                _close(self.fresh.pop(i))
                self.added += 1
                continue
            after = advance(self.state, r, self.base) if exact(r, self.state, self.base, self.limits) else None
            if after is not None:
                self._merge(self.fresh.pop(i), after)
                continue
            again = next((a for a in self.again.get(i, []) if _same(a.start, self.state)), None)
            if again is None:
                asks.append(self._ask(i, _copy(self.state)))
                break
            if again.result is None:
                break  # being read again from this state
            redone = again.result
            _close(self.fresh.pop(i))
            after = advance(self.state, redone, self.base)
            assert after is not None  # a redone session hands its own state over
            self._merge(redone, after)
        asks += self._read_ahead()
        return asks

    def _read_ahead(self) -> list[tuple[int, int, SerialState]]:
        """The readings again the sessions after the first not merged would ask for, were every
        fresh result before them exact: from the state those results predict. The walk resumes
        where it stopped while the merge has not moved (each result is looked at once per move)."""
        asks: list[tuple[int, int, SerialState]] = []
        if self.added not in self.fresh or self.merged is None:
            return asks
        if self._ahead is None or self._ahead[0] != self.added:
            self._ahead = (self.added, self.added, _copy(self.state))
        _at, i, state = self._ahead
        while i in self.fresh:
            r = self.fresh[i]
            if i > self.added and not exact(r, state, self.base, self.limits):
                if not any(_same(a.start, state) for a in self.again.get(i, [])):
                    asks.append(self._ask(i, _copy(state)))
            predicted = advance(state, r, self.base)
            if predicted is None:
                break  # no prediction past it: the walk waits for the merge to get there
            state = predicted
            i += 1
        self._ahead = (self.added, i, state)
        return asks

    def _ask(self, i: int, start: SerialState) -> tuple[int, int, SerialState]:
        again = _Again(start)
        self.again.setdefault(i, []).append(again)
        self._token += 1
        self._tokens[self._token] = (i, again)
        return self._token, i, _copy(start)

    def _merge(self, r: SessionResult, after: SerialState) -> None:
        """Session `added` (fresh or read again) appended; the state moves on."""
        i = self.added
        self.added += 1
        for again in self.again.pop(i, []):
            if again.result is not None and again.result is not r:
                _close(again.result)
        if self.merged is None:
            _close(r)
        else:
            append(self.merged, r)
        self.state = after

    def add(self, r: SessionResult) -> None:
        """The next session's fresh result merged, a reading again it needs done with `redo`."""
        self.offer(r)
        while True:
            asks = [a for a in self.progress() if a[1] == r.index]
            if r.index < self.added:
                return
            assert self.redo is not None and asks
            token, i, state = asks[0]
            self.redone(token, self.redo(i, state))

    def records(self) -> Records | None:
        merged = self.merged
        if merged is not None:
            merged.book = self.state.book
        for r in self.fresh.values():
            _close(r)
        return merged


def _close(r: SessionResult) -> None:
    if isinstance(r.records, Records):
        r.records.close()


def merge(results: list[SessionResult], limits: Limits, redo: Redo) -> Records:
    """The serial run's records from the sessions' results (in session order); `redo(i, state)`
    reads session i again from the serial state at its start. Call `mergeable` first."""
    merger = Merger(limits, redo)
    for r in results:
        merger.add(r)
    merged = merger.records()
    assert merged is not None, "call mergeable first"
    return merged
