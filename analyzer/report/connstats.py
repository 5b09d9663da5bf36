"""What a connection's binds, calls and violations add to its row in the `connections` table.

Counted per (capture, stream) from the spooled records' fields alone (`records.Spool.fields`): a
record is made only for a call whose interface late naming may supply. What is kept is column-wise:
per kind, the sorted keys of the connections it touched and their counts, and for the interfaces
the distinct sets of names (one per connection type, not per connection). So 200,000 connections
with a bind each cost a few arrays of 200,000 numbers, not 200,000 objects.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from analyzer.model import ConnectionRecord
from analyzer.records import Records
from analyzer.report.lists import join
from analyzer.report.names import Names
from analyzer.report.naming import LateNames

_STREAMS = 1 << 32  # a key is capture code * _STREAMS + stream (streams are the run's own counters)
_ACCEPTED = ("acceptance", "none")  # a bind item whose interface the connection used


class ConnStats:
    """One connection's binds, calls, faults and violations, and its interfaces ';'-joined."""

    __slots__ = ("binds", "calls", "faults", "interfaces", "violations")

    def __init__(
        self, binds: int = 0, calls: int = 0, faults: int = 0, violations: int = 0, interfaces: str | None = None
    ) -> None:
        self.binds, self.calls, self.faults, self.violations = binds, calls, faults, violations
        self.interfaces = interfaces


NOTHING = ConnStats()  # a connection nothing was counted for (shared: never changed)


class _Keys:
    """Capture names as small codes, and (capture, stream) as one int64 key."""

    def __init__(self) -> None:
        self.captures: dict[str, int] = {}

    def key(self, capture: str, stream: int | None) -> int:
        code = self.captures.setdefault(capture, len(self.captures))
        return code * _STREAMS + ((stream or 0) % _STREAMS)


def _batch_rows(batch: dict[str, list[Any]], names: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    return zip(*(batch[n] for n in names), strict=True)


class ConnTotals:
    """Per connection, what its binds, calls and violations add to its row (`rows`)."""

    def __init__(self, records: Records, names: Names, late: LateNames) -> None:
        self._keys = _Keys()
        self._names: dict[str, int] = {}  # interface name -> code
        counts: dict[str, array[int]] = {k: array("q") for k in ("binds", "calls", "faults", "violations", "count")}
        used_keys, used_names = array("q"), array("q")
        key = self._keys.key

        def used(k: int, name: str | None) -> None:
            if name is not None:
                used_keys.append(k)
                used_names.append(self._names.setdefault(name, len(self._names)))

        fields = ["flow.capture", "flow.stream", "ack_result", "interface_uuid", "if_major"]
        for batch in records.spool("binds").fields(fields):
            for capture, stream, ack, uuid, major in _batch_rows(batch, fields):
                k = key(capture, stream)
                counts["binds"].append(k)
                if ack in _ACCEPTED:
                    used(k, names.interface(uuid, major))
        for capture, stream, fault, uuid, major in self._calls(records, late):
            k = key(capture, stream)
            counts["calls"].append(k)
            if fault is not None:
                counts["faults"].append(k)
            if uuid is not None:
                used(k, names.interface(uuid, major))
        for batch in records.spool("violations").fields(["capture", "stream", "count"]):
            for capture, stream, n in _batch_rows(batch, ["capture", "stream", "count"]):
                if stream is not None:
                    counts["violations"].append(key(capture, stream))
                    counts["count"].append(n)
        self._tally(counts)
        self._interfaces(np.frombuffer(used_keys, dtype=np.int64), np.frombuffer(used_names, dtype=np.int64))

    @staticmethod
    def _calls(records: Records, late: LateNames) -> Iterator[tuple[Any, ...]]:
        """Each call's capture, stream, fault, interface UUID and major version: from its fields, or,
        for a call with no interface (late naming may name it), from its record late-named."""
        fields = ["flow.capture", "flow.stream", "fault_status", "interface_uuid", "if_major"]
        spool, at, unnamed = records.spool("calls"), 0, array("q")
        for batch in spool.fields(fields):
            for row in _batch_rows(batch, fields):
                if row[3] is None:
                    unnamed.append(at)
                else:
                    yield row
                at += 1
        positions = np.frombuffer(unnamed, dtype=np.int64)
        for start in range(0, len(positions), 4096):
            for c in map(late.call, spool.take(positions[start : start + 4096])):
                yield c.flow.capture, c.flow.stream, c.fault_status, c.interface_uuid, c.if_major

    def _tally(self, counts: dict[str, array[int]]) -> None:
        self._counts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for kind in ("binds", "calls", "faults"):
            self._counts[kind] = np.unique(np.frombuffer(counts[kind], dtype=np.int64), return_counts=True)
        keys = np.frombuffer(counts["violations"], dtype=np.int64)
        weights = np.frombuffer(counts["count"], dtype=np.int64)
        unique, inverse = np.unique(keys, return_inverse=True)
        self._counts["violations"] = (
            unique,
            np.bincount(inverse, weights=weights, minlength=len(unique)).astype(np.int64),
        )

    def _interfaces(self, keys: np.ndarray, codes: np.ndarray) -> None:
        """Per connection the set of interface names it used, as one code among the distinct sets."""
        order = np.lexsort((codes, keys))
        keys, codes = keys[order], codes[order]
        distinct = np.ones(len(keys), dtype=bool)
        distinct[1:] = (keys[1:] != keys[:-1]) | (codes[1:] != codes[:-1])
        keys, codes = keys[distinct], codes[distinct]
        self._used, starts, sizes = np.unique(keys, return_index=True, return_counts=True)
        by_code = {code: name for name, code in self._names.items()}
        sets: dict[tuple[int, ...], int] = {}
        self._set = np.empty(len(self._used), dtype=np.int64)
        for i, (start, size) in enumerate(zip(starts.tolist(), sizes.tolist(), strict=True)):
            self._set[i] = sets.setdefault(tuple(codes[start : start + size].tolist()), len(sets))
        self._joined = [join(by_code[c] for c in members) for members in sets]

    def rows(self, connections: Sequence[ConnectionRecord]) -> list[ConnStats]:
        """The totals of these connections, in their order (zeros where nothing was counted)."""
        keys = np.array([self._keys.key(c.flow.capture, c.flow.stream) for c in connections], dtype=np.int64)
        got = {kind: _lookup(keys, *self._counts[kind]) for kind in self._counts}
        used = _lookup(keys, self._used, self._set, missing=-1)
        return [
            ConnStats(b, c, f, v, self._joined[u] if u >= 0 else None)
            for b, c, f, v, u in zip(
                got["binds"].tolist(),
                got["calls"].tolist(),
                got["faults"].tolist(),
                got["violations"].tolist(),
                used.tolist(),
                strict=True,
            )
        ]


def _lookup(keys: np.ndarray, known: np.ndarray, values: np.ndarray, missing: int = 0) -> np.ndarray:
    """values[i] where known[i] == key, for each key (known sorted); `missing` elsewhere."""
    if len(known) == 0:
        return np.full(len(keys), missing, dtype=np.int64)
    at = np.minimum(np.searchsorted(known, keys), len(known) - 1)
    out: np.ndarray = np.where(known[at] == keys, values[at], missing)
    return out
