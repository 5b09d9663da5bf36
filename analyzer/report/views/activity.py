"""Activity views: the timeline (RPC activity per minute, host pair and interface) and the matrix
(client x server x interface: who negotiated which service with whom, where and how often).

Both are folded from the binds and calls chunks (`report.fold`): per key, counts and byte sums add,
first and last seen take min and max, and the listed values (operations, transports, endpoints, auth
levels, users, attack techniques) are kept as sets, bounded by the distinct values of each key. The
matrix also keeps the connections of each key (stream numbers per capture) to count them."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyzer.report.columns import INT, STR, TIME
from analyzer.report.fold import MINUTE_NS, columns, sort_rows, table
from analyzer.report.lists import add, joined
from analyzer.report.passes import fold
from analyzer.report.source import Source
from analyzer.report.views.shape import REJECTED

TIMELINE: dict[str, str] = {
    "minute": TIME,
    "client_ip": STR,
    "server_ip": STR,
    "interface_uuid": STR,
    "interface_name": STR,
    "binds": INT,
    "calls": INT,
    "faults": INT,
    "request_bytes": INT,
    "response_bytes": INT,
    "operations": STR,
}


MATRIX: dict[str, str] = {
    "client_ip": STR,
    "server_ip": STR,
    "interface_uuid": STR,
    "interface_name": STR,
    "transports": STR,
    "endpoints": STR,
    "connections": INT,
    "binds": INT,
    "accepted": INT,
    "rejected": INT,
    "calls": INT,
    "faults": INT,
    "operations": STR,
    "auth_levels": STR,
    "users": STR,
    "first_seen": TIME,
    "last_seen": TIME,
    "attack": STR,
}

_PAIR = ["client_ip", "server_ip", "interface_uuid", "interface_name"]


_BIND_TIMES = ["ts", *_PAIR]
_CALL_TIMES = ["ts", *_PAIR, "fault_code", "request_bytes", "response_bytes", "operation"]


class Timeline:
    """The timeline as a fold (`report.passes`): per (minute, client, server, uuid, name) its binds,
    calls, faults, request and response bytes, and operations."""

    def __init__(self) -> None:
        self.per: dict[tuple[Any, ...], list[Any]] = {}

    def wants(self, table: str) -> list[str] | None:
        return _BIND_TIMES if table == "binds" else _CALL_TIMES if table == "calls" else None

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        per = self.per
        if table == "binds":
            for ts, *pair in zip(*columns(chunk, _BIND_TIMES), strict=True):
                if ts is not None:
                    _minute(per, ts, pair)[0] += 1
            return
        for ts, c, s, u, n, fault, req, resp, op in zip(*columns(chunk, _CALL_TIMES), strict=True):
            if ts is None:
                continue
            st = _minute(per, ts, [c, s, u, n])
            st[1] += 1
            st[2] += fault is not None
            st[3] += req or 0
            st[4] += resp or 0
            add(st[5], op)

    def done(self, source: Source) -> None:
        pass

    def result(self) -> pd.DataFrame:
        names = ["minute", *_PAIR, "binds", "calls", "faults", "request_bytes", "response_bytes"]
        data: dict[str, list[Any]] = {n: [] for n in [*names, "operations"]}
        for key, st in self.per.items():
            for n, v in zip(names, (*key, *st[:5]), strict=True):
                data[n].append(v)
            data["operations"].append(joined(st[5]))
        ordered = sort_rows(data, ["minute", "client_ip", "server_ip", "interface_name", "interface_uuid"])
        return table(TIMELINE, ordered)


def timeline(source: Source) -> pd.DataFrame:
    """RPC activity per minute, per client -> server pair and interface.

    Answers "what happened when": which host used which service on which other host in each minute,
    with the operations called, for incident notes. Every bind context item and every call of a known
    time lands in exactly one row, so the counts add up to the binds and calls tables.
    """
    view = Timeline()
    fold(source, view)
    return view.result()


def _minute(per: dict[tuple[Any, ...], list[Any]], ts: int, pair: list[Any]) -> list[Any]:
    key = (ts - ts % MINUTE_NS, *pair)
    st = per.get(key)
    if st is None:
        st = per[key] = [0, 0, 0, 0, 0, set()]
    return st


class _Pair:
    """What the matrix keeps of one (client, server, interface): counts, times, listed values, and the
    connections seen (their streams per capture, to count them)."""

    __slots__ = ("counts", "first", "last", "lists", "streams")

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0, 0]  # binds, accepted, rejected, calls, faults
        self.first: int | None = None
        self.last: int | None = None
        self.lists: tuple[set[str], ...] = tuple(set() for _ in _LISTED)
        self.streams: dict[str, set[int]] = {}

    def seen(self, ts: int | None, capture: str | None, stream: int | None, listed: tuple[Any, ...]) -> None:
        """A bind item or a call: its time, connection and listed values (in `_LISTED` order). The hot
        loop of a flood of binds: the time and each value are checked inline (text is listed when it is
        not missing or empty, as `lists.add` does)."""
        if ts is not None:
            if self.first is None or ts < self.first:
                self.first = ts
            if self.last is None or ts > self.last:
                self.last = ts
        if capture is not None and stream is not None:
            streams = self.streams.get(capture)
            if streams is None:
                streams = self.streams[capture] = set()
            streams.add(stream)
        for values, v in zip(self.lists, listed, strict=True):
            if v:
                values.add(v)


# The matrix's listed columns, in the order `_Pair.lists` holds them.
_LISTED = ["transports", "endpoints", "operations", "auth_levels", "users", "attack"]
_WHERE = ["ts", "capture", "stream", "pipe_name", "server_port", "transport", "auth_level"]


_BIND_WHERE = [*_PAIR, *_WHERE, "ack_result"]
_CALL_WHERE = [*_PAIR, *_WHERE, "fault_code", "operation", "user", "domain", "attack"]


class Matrix:
    """The matrix as a fold (`report.passes`): a `_Pair` per (client, server, uuid, name)."""

    def __init__(self) -> None:
        self.per: dict[tuple[Any, ...], _Pair] = {}

    def wants(self, table: str) -> list[str] | None:
        return _BIND_WHERE if table == "binds" else _CALL_WHERE if table == "calls" else None

    def _pair(self, key: tuple[Any, ...]) -> _Pair:
        p = self.per.get(key)
        if p is None:
            p = self.per[key] = _Pair()
        return p

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        pair = self._pair
        if table == "binds":
            for c, s, u, n, ts, cap, stream, pipe, port, transport, auth, ack in zip(
                *columns(chunk, _BIND_WHERE), strict=True
            ):
                p = pair((c, s, u, n))
                p.counts[0] += 1
                p.counts[1] += ack == "acceptance"
                p.counts[2] += ack in REJECTED
                p.seen(ts, cap, stream, (transport, _where(pipe, port), None, auth, None, None))
            return
        for c, s, u, n, ts, cap, stream, pipe, port, transport, auth, fault, op, user, domain, attack in zip(
            *columns(chunk, _CALL_WHERE), strict=True
        ):
            p = pair((c, s, u, n))
            p.counts[3] += 1
            p.counts[4] += fault is not None
            who = user if domain is None else None if user is None else f"{domain}\\{user}"
            p.seen(ts, cap, stream, (transport, _where(pipe, port), op, auth, who, attack))

    def done(self, source: Source) -> None:
        pass

    def result(self) -> pd.DataFrame:
        rows = _matrix_rows(self.per)
        return table(MATRIX, sort_rows(rows, ["server_ip", "client_ip", "interface_name", "interface_uuid"]))


def matrix(source: Source) -> pd.DataFrame:
    """Client x server x interface: who negotiated which RPC service with whom.

    One row per (client, server, interface) with where (ports or pipes, transports), how often
    (connections, context items bound, accepted and rejected, calls and faults, operations) and with
    what identity (auth levels, DOMAIN\\user). Rejected items count too: an attempt is an answer.
    """
    view = Matrix()
    fold(source, view)
    return view.result()


def _where(pipe: str | None, port: int | None) -> str | None:
    """Where a bind or call was made: its pipe, else its server port (as text)."""
    return pipe if pipe is not None else None if port is None else str(port)


def _matrix_rows(per: dict[tuple[Any, ...], _Pair]) -> dict[str, list[Any]]:
    counted = ["binds", "accepted", "rejected", "calls", "faults"]
    data: dict[str, list[Any]] = {n: [] for n in [*_PAIR, *counted, "connections", "first_seen", "last_seen", *_LISTED]}
    for key, p in per.items():
        for n, v in zip([*_PAIR, *counted], (*key, *p.counts), strict=True):
            data[n].append(v)
        data["connections"].append(sum(len(s) for s in p.streams.values()))
        data["first_seen"].append(p.first)
        data["last_seen"].append(p.last)
        for n, values in zip(_LISTED, p.lists, strict=True):
            data[n].append(joined(values))
    return data
