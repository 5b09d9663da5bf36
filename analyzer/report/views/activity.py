"""Activity views: the timeline (RPC activity per minute, host pair and interface) and the matrix
(client x server x interface: who negotiated which service with whom, where and how often).

Both are folded from the binds and calls chunks (`report.fold`), a group of rows alike at a time
(`fold.Grouped`): per key, counts and byte sums add,
first and last seen take min and max, and the listed values (operations, transports, endpoints, auth
levels, users, attack techniques) are kept as sets, bounded by the distinct values of each key. The
matrix also keeps the connections of each key (stream numbers per capture, as sorted int64 arrays:
a binds flood's 200 k connections are 1.6 MB, not a set of 200 k objects) to count them."""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np
import pandas as pd

from analyzer.report.columns import INT, STR, TIME
from analyzer.report.fold import Grouped, minutes, sort_rows, table
from analyzer.report.lists import Listed, joined, put
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
_NONE = -(1 << 63)  # an unknown time in an int64 column of nanoseconds (NaT's integer)


_BIND_TIMES = ["ts", *_PAIR]
_CALL_TIMES = ["ts", *_PAIR, "fault_code", "request_bytes", "response_bytes", "operation"]


class Timeline:
    """The timeline as a fold (`report.passes`): per (minute, client, server, uuid, name) its binds,
    calls, faults, request and response bytes, and operations."""

    def __init__(self) -> None:
        self.per: dict[tuple[Any, ...], int] = {}  # each key's row number in `counts` and `operations`
        # binds, calls, faults, request and response bytes: a column of int64 each, a row per key
        self.counts = [array("q") for _ in range(5)]
        self.operations: list[Listed] = []

    def wants(self, table: str) -> list[str] | None:
        return _BIND_TIMES if table == "binds" else _CALL_TIMES if table == "calls" else None

    def _row(self, minute: int, pair: list[Any]) -> int:
        """The key's row number, a new row of zeros the first time (a key is a tuple and a number: its
        counts are a column's items, not a list and its int objects: 340 -> 250 traced bytes a key
        with its operations, `tests/test_jobs1_memory.py`; 25,700 keys in the 10.8 GB capture's)."""
        key = (minute, *pair)
        at = self.per.get(key)
        if at is None:
            at = self.per[key] = len(self.operations)
            for column in self.counts:
                column.append(0)
            self.operations.append(None)
        return at

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        """A chunk added up per minute and key (`fold.Grouped`); rows of unknown time are left out."""
        known = chunk[chunk["ts"].notna().to_numpy(dtype=bool)]
        if known.empty:
            return
        timed = known.assign(ts=minutes(known["ts"]))
        binds, calls, faults, request, response = self.counts
        if table == "binds":
            g = Grouped(timed, _BIND_TIMES)
            for n, (minute, *pair) in zip(g.sizes(), g.rows(_BIND_TIMES), strict=True):
                binds[self._row(minute, pair)] += n
            return
        keys = [*_BIND_TIMES, "operation"]
        g = Grouped(timed, keys)
        faulted = g.counts(timed["fault_code"].notna().to_numpy(dtype=bool))
        sums = zip(g.sums("request_bytes"), g.sums("response_bytes"), strict=True)
        operations = self.operations
        for n, f, (req, resp), (minute, c, s, u, name, op) in zip(g.sizes(), faulted, sums, g.rows(keys), strict=True):
            at = self._row(minute, [c, s, u, name])
            calls[at] += n
            faults[at] += f
            request[at] += req
            response[at] += resp
            operations[at] = put(operations[at], op)

    def done(self, source: Source) -> None:
        pass

    def result(self) -> pd.DataFrame:
        counted = ["binds", "calls", "faults", "request_bytes", "response_bytes"]
        data: dict[str, list[Any]] = {n: [] for n in ["minute", *_PAIR]}
        for key in self.per:  # in the rows' order: a key's row number is its place among them
            for n, v in zip(["minute", *_PAIR], key, strict=True):
                data[n].append(v)
        data |= {n: column.tolist() for n, column in zip(counted, self.counts, strict=True)}
        data["operations"] = [joined(listed) for listed in self.operations]
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


class _Connections:
    """The distinct (matrix key, capture, stream) the matrix's rows were seen on, to count each key's
    connections: three int64 columns gathered a chunk at a time and made distinct whenever what came
    since outgrows what is distinct (so that costs O(n log n) over the run). 24 bytes a connection of
    a key, and nothing per key: the matrix of a 10 GB capture has 18,700 keys, and a set or an array
    per key and capture (about 100 bytes of header each) held 20 MiB there."""

    def __init__(self) -> None:
        self.captures: dict[str, int] = {}  # each capture's number in the columns
        self.held: list[np.ndarray] = []  # blocks of (key, capture, stream) columns, shape (3, n)
        self.rows = self.distinct = 0

    def capture(self, name: str | None) -> int:
        """The capture's number (-1: none, whose rows count no connection)."""
        return -1 if name is None else self.captures.setdefault(name, len(self.captures))

    def add(self, keys: np.ndarray, captures: np.ndarray, streams: np.ndarray) -> None:
        """Rows seen on these (key, capture, stream): any number of times each, in any order."""
        known = captures >= 0
        block = np.stack([keys[known], captures[known], streams[known]])
        self.held.append(block)
        self.rows += block.shape[1]
        if self.rows - self.distinct > max(self.distinct, 65536):
            self._gather()

    def _gather(self) -> None:
        both = np.concatenate(self.held, axis=1) if len(self.held) > 1 else self.held[0]
        both = both[:, np.lexsort(both[::-1])]
        new = np.ones(both.shape[1], dtype=bool)
        new[1:] = (both[:, 1:] != both[:, :-1]).any(axis=0)
        self.held = [both[:, new]]
        self.rows = self.distinct = int(new.sum())

    def counts(self, keys: int) -> list[int]:
        """Per key (numbered from 0 up to `keys`), its distinct connections."""
        if not self.held:
            return [0] * keys
        self._gather()
        counted: list[int] = np.bincount(self.held[0][0], minlength=keys).tolist()
        return counted


# The matrix's listed columns, in the order `Matrix.lists` holds them.
_LISTED = ["transports", "endpoints", "operations", "auth_levels", "users", "attack"]
_WHERE = ["ts", "capture", "stream", "pipe_name", "server_port", "transport", "auth_level"]


_BIND_WHERE = [*_PAIR, *_WHERE, "ack_result"]
_CALL_WHERE = [*_PAIR, *_WHERE, "fault_code", "operation", "user", "domain", "attack"]
# What rows of a group share (their times, streams and faults are added up column-wise).
_BIND_KEYS = [c for c in _BIND_WHERE if c not in ("ts", "stream")]
_CALL_KEYS = [c for c in _CALL_WHERE if c not in ("ts", "stream", "fault_code")]


class Matrix:
    """The matrix as a fold (`report.passes`): a number per (client, server, uuid, name), its row in
    the matrix's columns (counts and times as int64 items, listed values as `lists.Listed` items) and
    in `_Connections`. Nothing is an object of its own per key: an object, its list of six and their
    headers per key were about 150 bytes of the 10.8 GB capture's 18,700 keys (`tests/test_views_memory.py`)."""

    def __init__(self) -> None:
        self.per: dict[tuple[Any, ...], int] = {}
        self.connections = _Connections()
        # binds, accepted, rejected, calls, faults: a column of int64 each, a row per key
        self.counts = [array("q") for _ in range(5)]
        # first and last seen in nanoseconds, `_NONE` while unknown
        self.times = (array("q"), array("q"))
        self.lists: list[list[Listed]] = [[] for _ in _LISTED]  # a column per listed value, a row per key

    def wants(self, table: str) -> list[str] | None:
        return _BIND_WHERE if table == "binds" else _CALL_WHERE if table == "calls" else None

    def _number(self, key: tuple[Any, ...]) -> int:
        at = self.per.get(key)
        if at is None:
            at = self.per[key] = len(self.per)
            for column in self.counts:
                column.append(0)
            for column in self.times:
                column.append(_NONE)
            for listed in self.lists:
                listed.append(None)
        return at

    def _seen(self, at: int, first: int | None, last: int | None, listed: tuple[Any, ...]) -> None:
        """The key's first and last seen widened to these times (None: unknown), and its listed values
        of bind items or calls alike (in `_LISTED` order)."""
        firsts, lasts = self.times
        if first is not None and (firsts[at] == _NONE or first < firsts[at]):
            firsts[at] = first
        if last is not None and (lasts[at] == _NONE or last > lasts[at]):
            lasts[at] = last
        for column, v in zip(self.lists, listed, strict=True):
            if v is not None:
                column[at] = put(column[at], v)

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        """A chunk added up a group of rows alike (but for their times and connections) at a time."""
        keys = _BIND_KEYS if table == "binds" else _CALL_KEYS
        g = Grouped(chunk, keys)
        sizes, rows, times = g.sizes(), g.rows(keys), zip(g.earliest("ts"), g.latest("ts"), strict=True)
        numbers: list[int] = []
        binds, accepted, rejected, calls, faults = self.counts
        if table == "binds":
            for n, (first, last), (c, s, u, name, _cap, pipe, port, transport, auth, ack) in zip(
                sizes, times, rows, strict=True
            ):
                at = self._number((c, s, u, name))
                binds[at] += n
                accepted[at] += n if ack == "acceptance" else 0
                rejected[at] += n if ack in REJECTED else 0
                self._seen(at, first, last, (transport, _where(pipe, port), None, auth, None, None))
                numbers.append(at)
        else:
            faulted = g.counts(chunk["fault_code"].notna().to_numpy(dtype=bool))
            for n, f, (first, last), row in zip(sizes, faulted, times, rows, strict=True):
                c, s, u, name, _cap, pipe, port, transport, auth, op, user, domain, attack = row
                at = self._number((c, s, u, name))
                calls[at] += n
                faults[at] += f
                who = user if domain is None else None if user is None else f"{domain}\\{user}"
                self._seen(at, first, last, (transport, _where(pipe, port), op, auth, who, attack))
                numbers.append(at)
        self._connections(g, numbers, [row[4] for row in rows])

    def _connections(self, g: Grouped, numbers: list[int], captures: list[str | None]) -> None:
        """The chunk's (key, capture, stream) to `_Connections`: each group's key number and capture."""
        groups, streams = g.distinct_pairs("stream")
        keys = np.array(numbers, dtype=np.int64)
        caps = np.array([self.connections.capture(c) for c in captures], dtype=np.int64)
        self.connections.add(keys[groups], caps[groups], streams)

    def done(self, source: Source) -> None:
        pass

    def result(self) -> pd.DataFrame:
        rows = _matrix_rows(self)
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


def _matrix_rows(m: Matrix) -> dict[str, list[Any]]:
    """The matrix's columns, a row per key in the order the keys came."""
    counted = ["binds", "accepted", "rejected", "calls", "faults"]
    data: dict[str, list[Any]] = {n: [] for n in _PAIR}
    for key in m.per:
        for n, v in zip(_PAIR, key, strict=True):
            data[n].append(v)
    data |= {n: column.tolist() for n, column in zip(counted, m.counts, strict=True)}
    data["connections"] = m.connections.counts(len(m.per))
    data["first_seen"], data["last_seen"] = ([None if v == _NONE else v for v in c] for c in m.times)
    for n, column in zip(_LISTED, m.lists, strict=True):
        data[n] = [joined(listed) for listed in column]
    return data
