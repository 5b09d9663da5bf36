"""What each base table is made of: its columns (`report.tables`), its records, and what a chunk of them
becomes before its columns are read: calls named late and connections with their totals.

A chunk is what the spool gives (`records.Spool.batches`, `take_batch`): an Arrow record batch, the
common case, whose columns the table is computed from (`report.vector.columnar`), or a list of records
(a batch that did not fit its Arrow types; the captures, held in memory) converted row by row
(`report.columns.convert`). Late naming (`report.naming`) and the connection totals
(`report.connstats`) apply to either: on a batch, late naming makes records of the few rows it may
change (a call on a context no bind named, a connection joined midstream) and puts their new values
back into the columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.model import BY_MIDSTREAM, CallRecord, ConnectionRecord
from analyzer.records import Records, Spool
from analyzer.report.attempts import ATTEMPT_COLUMNS
from analyzer.report.columns import Column, convert
from analyzer.report.connstats import NOTHING, ConnTotals
from analyzer.report.memory import use_system_pool
from analyzer.report.names import Names
from analyzer.report.naming import LateNames
from analyzer.report.tables import (
    BIND_COLUMNS,
    CALL_COLUMNS,
    CAPTURE_COLUMNS,
    CHUNK_ROWS,
    CONNECTION_COLUMNS,
    ENDPOINT_COLUMNS,
    VIOLATION_COLUMNS,
)
from analyzer.report.vector import Batch, columnar, known

# What late naming can change in a row (`report.naming`): a reader of none of these columns skips it.
_LATE_CALL = {"interface_uuid", "interface_version", "interface_name", "interface_source", "operation", "attack"}
_LATE_CONNECTION = {"epm_capture", "epm_frame", "epm_client_ip", "epm_delay_s"}
_TOTALS = {"binds", "calls", "faults", "interfaces", "violations"}  # a connection's ConnTotals
_CALL_NAMING = ("interface_uuid", "if_major", "if_minor", "interface_source")  # what late naming sets


def _same(recs: Any, _columns: set[str]) -> Any:
    return recs


def _as_batch(piece: Any, _columns: set[str]) -> Batch:
    return Batch(piece)


@dataclass(frozen=True)
class Declaration:
    """How one table is made: its columns, the records it comes from (a `records.Spool`, or a list),
    what a chunk of them becomes for the columns read (`rows(records, columns)` for records,
    `batch(record_batch, columns)` for an Arrow batch), and the context its columns are given."""

    columns: Sequence[Column[Any, Any]]
    records: Any
    rows: Callable[[list[Any], set[str]], list[Any]]
    context: Any
    batch: Callable[[Any, set[str]], Batch] = _as_batch

    def frame(self, piece: Any, read: set[str]) -> pd.DataFrame:
        """A chunk (an Arrow record batch or a list of records) as a typed frame of the columns in
        `read`, in their declared order."""
        wanted = [c for c in self.columns if c.name in read]
        if not isinstance(piece, list) and any(c.vector is None for c in wanted):
            piece = self.records.records_of(piece)  # a table declared row by row only
        if isinstance(piece, list):
            return convert(wanted, self.rows(piece, read), self.context)
        return columnar(wanted, self.batch(piece, read), self.context)


def _positions(spool: Spool[Any], fields: list[str], keep: Callable[..., Any]) -> np.ndarray:
    """Positions of the records whose `fields` satisfy `keep` (a numpy mask of Arrow arrays), read
    from the fields alone."""
    out, at = [], 0
    for arrays in spool.arrow_fields(fields):
        n = len(arrays[0])
        out.append(np.flatnonzero(keep(*arrays)) + at)
        at += n
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _taken(spool: Spool[Any], positions: np.ndarray) -> Iterator[Any]:
    for start in range(0, len(positions), CHUNK_ROWS):
        yield from spool.take(positions[start : start + CHUNK_ROWS])


def _is(values: Any, text: str) -> np.ndarray:
    """Where an Arrow text array equals `text` (missing: no)."""
    return np.asarray(pc.equal(values, text).fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


class Builder:
    """The tables of one run's records: each table's `Declaration`, and the memoised names and late
    naming its rows share. `report.spooled.Spooled` reads the tables through it."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self.names = Names()
        use_system_pool()

    @cached_property
    def late(self) -> LateNames:
        """Interfaces of conversations whose bind was not seen, from what the whole run learned (only
        calls and connections need it). Late naming looks only at accepted alter_context items and at
        the connections a lookup can concern (midstream ones, those with a call on an unnamed
        context), so only those records are made, found from their fields: a flood of binds or
        connections costs a pass over a few columns here."""
        r = self.records
        binds, calls, conns = r.spool("binds"), r.spool("calls"), r.spool("connections")
        alters = _positions(binds, ["pdu_type"], lambda t: _is(t, "alter_context"))
        unnamed: set[tuple[str, int]] = set()
        for capture, stream, uuid in calls.arrow_fields(["flow.capture", "flow.stream", "interface_uuid"]):
            missing = pa.array(~known(uuid))
            keys = zip(capture.filter(missing).to_pylist(), stream.filter(missing).to_pylist(), strict=True)
            unnamed.update(keys)

        def wanted(by: Any, capture: Any, stream: Any) -> np.ndarray:
            mask = _is(by, BY_MIDSTREAM)
            if unnamed:
                pairs = zip(capture.to_pylist(), stream.to_pylist(), strict=True)
                mask |= np.fromiter((p in unnamed for p in pairs), dtype=bool, count=len(by))
            return mask

        chosen = _positions(conns, ["identified_by", "flow.capture", "flow.stream"], wanted)
        return LateNames(r.book, _taken(binds, alters), _taken(conns, chosen))

    @cached_property
    def totals(self) -> ConnTotals:
        return ConnTotals(self.records, self.names, self.late)

    def _calls(self, calls: list[CallRecord], columns: set[str]) -> list[Any]:
        return list(map(self.late.call, calls)) if columns & _LATE_CALL else calls

    def _connections(self, conns: list[ConnectionRecord], columns: set[str]) -> list[Any]:
        if columns & _LATE_CONNECTION:
            conns = list(map(self.late.connection, conns))
        stats = self.totals.rows(conns) if columns & _TOTALS else [NOTHING] * len(conns)
        return list(zip(conns, stats, strict=True))

    def _call_batch(self, piece: Any, columns: set[str]) -> Batch:
        b = Batch(piece)
        if columns & _LATE_CALL:
            unnamed = ~known(b["interface_uuid"])
            self._name_late(b, piece, unnamed, self.records.spool("calls"), self.late.call, _CALL_NAMING)
        return b

    def _connection_batch(self, piece: Any, columns: set[str]) -> Batch:
        b = Batch(piece)
        if columns & _LATE_CONNECTION:
            unlinked = ~known(b["epm_frame"]) & _is(b["identified_by"], BY_MIDSTREAM)
            conns = self.records.spool("connections")
            self._name_late(b, piece, unlinked, conns, self.late.connection, sorted(_LATE_CONNECTION))
        if columns & _TOTALS:
            for name, values in self.totals.arrays(b["flow.capture"], b["flow.stream"]).items():
                b.set(name, values)
        return b

    @staticmethod
    def _name_late(
        b: Batch, piece: Any, rows: np.ndarray, spool: Spool[Any], name: Callable[[Any], Any], fields: Sequence[str]
    ) -> None:
        """Late naming of a batch of `spool`'s records: the records of the `rows` it may change made
        and named, and the `fields` it sets put back into the batch's columns."""
        if not rows.any():
            return
        named = list(map(name, spool.records_of(piece.filter(pa.array(rows)))))
        mask = pa.array(rows)
        for field in fields:
            values = pa.array([getattr(rec, field) for rec in named], type=b[field].type)
            b.set(field, pc.replace_with_mask(b[field], mask, values))

    def declaration(self, table: str) -> Declaration:
        """How `table` is made (see `Declaration`)."""
        r, names = self.records, self.names
        if table == "captures":
            return Declaration(CAPTURE_COLUMNS, r.captures, _same, None)
        made: dict[str, tuple[Sequence[Column[Any, Any]], Any, Any, Any]] = {
            "binds": (BIND_COLUMNS, _same, _as_batch, names),
            "endpoints": (ENDPOINT_COLUMNS, _same, _as_batch, names),
            "calls": (CALL_COLUMNS, self._calls, self._call_batch, names),
            "connections": (CONNECTION_COLUMNS, self._connections, self._connection_batch, names),
            "violations": (VIOLATION_COLUMNS, _same, _as_batch, None),
            "attempts": (ATTEMPT_COLUMNS, _same, _as_batch, None),
        }
        columns, rows, batch, context = made[table]
        return Declaration(columns, r.spool(table), rows, context, batch)
