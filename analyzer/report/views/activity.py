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


def timeline(source: Source) -> pd.DataFrame:
    """RPC activity per minute, per client -> server pair and interface.

    Answers "what happened when": which host used which service on which other host in each minute,
    with the operations called, for incident notes. Every bind context item and every call of a known
    time lands in exactly one row, so the counts add up to the binds and calls tables.
    """
    # Per (minute, client, server, uuid, name): [binds, calls, faults, request bytes, response bytes, operations].
    per: dict[tuple[Any, ...], list[Any]] = {}
    for chunk in source.chunks("binds", ["ts", *_PAIR]):
        for ts, *pair in zip(*columns(chunk, ["ts", *_PAIR]), strict=True):
            if ts is not None:
                _minute(per, ts, pair)[0] += 1
    call_columns = ["ts", *_PAIR, "fault_code", "request_bytes", "response_bytes", "operation"]
    for chunk in source.chunks("calls", call_columns):
        for ts, c, s, u, n, fault, req, resp, op in zip(*columns(chunk, call_columns), strict=True):
            if ts is None:
                continue
            st = _minute(per, ts, [c, s, u, n])
            st[1] += 1
            st[2] += fault is not None
            st[3] += req or 0
            st[4] += resp or 0
            add(st[5], op)
    names = ["minute", *_PAIR, "binds", "calls", "faults", "request_bytes", "response_bytes"]
    data: dict[str, list[Any]] = {n: [] for n in [*names, "operations"]}
    for key, st in per.items():
        for n, v in zip(names, (*key, *st[:5]), strict=True):
            data[n].append(v)
        data["operations"].append(joined(st[5]))
    ordered = sort_rows(data, ["minute", "client_ip", "server_ip", "interface_name", "interface_uuid"])
    return table(TIMELINE, ordered)


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


def matrix(source: Source) -> pd.DataFrame:
    """Client x server x interface: who negotiated which RPC service with whom.

    One row per (client, server, interface) with where (ports or pipes, transports), how often
    (connections, context items bound, accepted and rejected, calls and faults, operations) and with
    what identity (auth levels, DOMAIN\\user). Rejected items count too: an attempt is an answer.
    """
    per: dict[tuple[Any, ...], _Pair] = {}

    def pair(key: tuple[Any, ...]) -> _Pair:
        p = per.get(key)
        if p is None:
            p = per[key] = _Pair()
        return p

    for chunk in source.chunks("binds", [*_PAIR, *_WHERE, "ack_result"]):
        for c, s, u, n, ts, cap, stream, pipe, port, transport, auth, ack in zip(
            *columns(chunk, [*_PAIR, *_WHERE, "ack_result"]), strict=True
        ):
            p = pair((c, s, u, n))
            p.counts[0] += 1
            p.counts[1] += ack == "acceptance"
            p.counts[2] += ack in REJECTED
            p.seen(ts, cap, stream, (transport, _where(pipe, port), None, auth, None, None))
    call_columns = [*_PAIR, *_WHERE, "fault_code", "operation", "user", "domain", "attack"]
    for chunk in source.chunks("calls", call_columns):
        for c, s, u, n, ts, cap, stream, pipe, port, transport, auth, fault, op, user, domain, attack in zip(
            *columns(chunk, call_columns), strict=True
        ):
            p = pair((c, s, u, n))
            p.counts[3] += 1
            p.counts[4] += fault is not None
            who = user if domain is None else None if user is None else f"{domain}\\{user}"
            p.seen(ts, cap, stream, (transport, _where(pipe, port), op, auth, who, attack))
    return table(MATRIX, sort_rows(_matrix_rows(per), ["server_ip", "client_ip", "interface_name", "interface_uuid"]))


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
