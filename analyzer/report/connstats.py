"""What a connection's binds, calls and violations add to its row in the `connections` table.

Counted per (capture, stream) from the spooled records' Arrow columns (`records.Spool.arrow_fields`): a
record is made only for a call whose interface late naming may supply. What is kept is column-wise:
per kind, the sorted keys of the connections it touched and their counts, and for the interfaces
the distinct sets of names (one per connection type, not per connection). So 200,000 connections
with a bind each cost a few arrays of 200,000 numbers, not 200,000 objects, and are counted and
looked up with numpy (`arrays`: a chunk of the connections table's totals as Arrow columns).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.model import ConnectionRecord
from analyzer.records import Records
from analyzer.report.columns import INT
from analyzer.report.lists import join
from analyzer.report.names import Names
from analyzer.report.naming import LateNames
from analyzer.report.vector import Batch, known

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


def _mask(values: Any) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


class ConnTotals:
    """Per connection, what its binds, calls and violations add to its row (`arrays`, `rows`)."""

    def __init__(self, records: Records, names: Names, late: LateNames) -> None:
        self._captures: dict[str, int] = {}  # capture name -> code
        self._names: dict[str, int] = {}  # interface name -> code
        self._interface_names = names
        counts: dict[str, list[np.ndarray]] = {k: [] for k in ("binds", "calls", "faults", "violations", "count")}
        used_keys: list[np.ndarray] = []
        used_names: list[np.ndarray] = []

        def used(keys: np.ndarray, uuid: Any, major: Any, rows: np.ndarray) -> None:
            codes = self._codes(uuid, major)
            rows = rows & (codes >= 0)
            used_keys.append(keys[rows])
            used_names.append(codes[rows])

        fields = ["flow.capture", "flow.stream", "ack_result", "interface_uuid", "if_major"]
        for capture, stream, ack, uuid, major in records.spool("binds").arrow_fields(fields):
            keys = self._keys(capture, stream, add=True)
            counts["binds"].append(keys)
            used(keys, uuid, major, _mask(pc.is_in(ack, value_set=pa.array(_ACCEPTED)).fill_null(False)))
        for capture, stream, fault, uuid, major in self._calls(records, late):
            keys = self._keys(capture, stream, add=True)
            counts["calls"].append(keys)
            counts["faults"].append(keys[_mask(fault.is_valid())])
            used(keys, uuid, major, np.ones(len(keys), dtype=bool))
        for capture, stream, n in records.spool("violations").arrow_fields(["capture", "stream", "count"]):
            rows = pa.array(_mask(stream.is_valid()))
            counts["violations"].append(self._keys(capture.filter(rows), stream.filter(rows), add=True))
            counts["count"].append(np.asarray(n.filter(rows).to_numpy(zero_copy_only=False), dtype=np.int64))
        self._tally({k: _joined(v) for k, v in counts.items()})
        self._interfaces(_joined(used_keys), _joined(used_names))

    def _keys(self, capture: Any, stream: Any, add: bool = False) -> np.ndarray:
        """(capture, stream) as one int64 key per row: the capture's code * _STREAMS + stream. A
        capture met for the first time gets a code when `add`, else a negative key no count has."""
        encoded = pc.dictionary_encode(capture)
        known = self._captures
        codes = [known.setdefault(c, len(known)) if add else known.get(c, -1) for c in encoded.dictionary.to_pylist()]
        at = np.asarray(encoded.indices.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        code = np.asarray(codes or [0], dtype=np.int64)[at]
        streams = np.asarray(stream.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64) % _STREAMS
        return np.where(code < 0, -1 - streams, code * _STREAMS + streams)

    def _codes(self, uuid: Any, major: Any) -> np.ndarray:
        """Each row's interface name as its code (-1: no name), named once per distinct (uuid, major)."""
        batch = Batch(pa.RecordBatch.from_arrays([uuid, major], names=["uuid", "major"]))

        def code(u: str | None, m: int | None) -> int:
            name = self._interface_names.interface(u, m)
            return -1 if name is None else self._names.setdefault(name, len(self._names))

        return np.asarray(batch.distinct(code, ["uuid", "major"], INT).to_numpy(zero_copy_only=False), dtype=np.int64)

    @staticmethod
    def _calls(records: Records, late: LateNames) -> Iterator[list[Any]]:
        """Each call's capture, stream, fault, interface UUID and major version as Arrow arrays, a
        batch at a time: from its fields, or, for a call with no interface (late naming may name it),
        from its record late-named."""
        fields = ["flow.capture", "flow.stream", "fault_status", "interface_uuid", "if_major"]
        spool, at, unnamed = records.spool("calls"), 0, []
        for arrays in spool.arrow_fields(fields):
            named = known(arrays[3])
            unnamed.append(np.flatnonzero(~named) + at)
            at += len(named)
            keep = pa.array(named)
            yield [a.filter(keep) for a in arrays]
        positions = _joined(unnamed)
        types = [pa.string(), pa.int64(), pa.int64(), pa.string(), pa.int64()]
        for start in range(0, len(positions), 4096):
            calls = list(map(late.call, spool.take(positions[start : start + 4096])))
            rows = [(c.flow.capture, c.flow.stream, c.fault_status, c.interface_uuid, c.if_major) for c in calls]
            yield [pa.array(list(c), type=t) for c, t in zip(zip(*rows, strict=True), types, strict=True)]

    def _tally(self, counts: dict[str, np.ndarray]) -> None:
        self._counts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for kind in ("binds", "calls", "faults"):
            self._counts[kind] = np.unique(counts[kind], return_counts=True)
        keys, weights = counts["violations"], counts["count"]
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
        sets: list[tuple[int, ...]] = []
        self._set = np.empty(len(self._used), dtype=np.int64)
        # The connections with as many names alike: their codes a row each of one matrix, whose
        # distinct rows are their distinct sets (a flood's 200,000 connections: numpy, no loop).
        for size in np.unique(sizes).tolist():
            rows = np.flatnonzero(sizes == size)
            matrix = codes[starts[rows][:, None] + np.arange(size)]
            distinct, inverse = np.unique(matrix, axis=0, return_inverse=True)
            self._set[rows] = inverse.ravel() + len(sets)
            sets += [tuple(members) for members in distinct.tolist()]
        self._joined = [join(by_code[c] for c in members) for members in sets]

    def arrays(self, capture: Any, stream: Any) -> dict[str, Any]:
        """The totals of the connections whose captures and streams these Arrow arrays hold, one
        Arrow array per column (zeros where nothing was counted)."""
        keys = self._keys(capture, stream)
        got: dict[str, Any] = {kind: pa.array(_lookup(keys, *self._counts[kind])) for kind in self._counts}
        used = _lookup(keys, self._used, self._set, missing=len(self._joined))
        got["interfaces"] = pa.array([*self._joined, None], type=pa.string()).take(pa.array(used))
        return got

    def rows(self, connections: Sequence[ConnectionRecord]) -> list[ConnStats]:
        """The totals of these connections, in their order (zeros where nothing was counted)."""
        capture = pa.array([c.flow.capture for c in connections], type=pa.string())
        stream = pa.array([c.flow.stream for c in connections], type=pa.int64())
        got = {kind: values.to_pylist() for kind, values in self.arrays(capture, stream).items()}
        columns = (got["binds"], got["calls"], got["faults"], got["violations"], got["interfaces"])
        return [ConnStats(*row) for row in zip(*columns, strict=True)]


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def _lookup(keys: np.ndarray, known: np.ndarray, values: np.ndarray, missing: int = 0) -> np.ndarray:
    """values[i] where known[i] == key, for each key (known sorted); `missing` elsewhere."""
    if len(known) == 0:
        return np.full(len(keys), missing, dtype=np.int64)
    at = np.minimum(np.searchsorted(known, keys), len(known) - 1)
    out: np.ndarray = np.where(known[at] == keys, values[at], missing)
    return out
