"""The spool-backed `Source`: the base tables read straight from a run's spooled records.

`Spooled(records).chunks(table, columns)` reads the table's rows from the spool's Arrow batches
(`records.Spool.batches`) a chunk of `CHUNK_ROWS` at a time, computes only the requested columns
from the batch's columns (`report.builder.Declaration.frame`: no record made per row), names
multi-file sessions by file (`capture.localise`) and yields the chunk: the whole table is never
held, whatever its size.

Order. Records are mostly made in their table's `ORDER` (a bind when its ack is seen, an attempt as
its flow ends); calls are recorded when answered and connections when they end, so those are not
always. Before the first read of a table its sort keys alone are read, from the spooled fields
(`Spool.arrow_fields`), and checked a batch at a time (`report.order.OrderCheck`: nothing held);
only for a table found out of order are they read again and gathered (with multi-file sessions,
always: from the converted and localised key columns, in the compact form, `report.compact`: a text
key costs its code). Already in order (the usual case): the batches stream as they were made,
regrouped into chunks of exactly `CHUNK_ROWS`. Otherwise the stable permutation of the keys (8 bytes
a row) is kept, and each chunk is the rows at its positions (`Spool.take_batch`, which maps each
batch file holding some of them once and copies out only those). The result is the rows
`sort_values(ORDER, kind="stable")` would give.

Small tables (at most `CACHE_ROWS` rows: every table of an ordinary capture) are built whole once
and kept: the views, the per-host table, the findings and the writer all read them, and each read
would otherwise convert them again. `table` builds a table whole (the API's DataFrames). `frame`,
for the readers of a whole table, keeps what it built for the next reader (and the writer slices
it rather than convert the table again); asked for some columns only, it makes just those, for
that reader. `attempts` (a SYN flood's million rows) comes compact (text columns categorical)
from `frame`, whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analyzer.capture.localise import FRAME_COLUMNS, localise
from analyzer.records import SMALL_SPOOL, Records, Spool
from analyzer.report.attempts import attempt_chunks, compact_attempts, typed
from analyzer.report.builder import Builder
from analyzer.report.columns import STR
from analyzer.report.compact import Compact
from analyzer.report.memory import release
from analyzer.report.order import OrderCheck, SortKeys, arrays_order, in_order, sort_order
from analyzer.report.source import TABLES, empty_table
from analyzer.report.tables import CHUNK_ROWS, ORDER

CACHE_ROWS = SMALL_SPOOL  # a table this small is built once and kept whole (its spool encodes its buffer once)
# The attempts rows stream a spooled batch at a time, in slices of at most this many: a SYN flood's
# batches (tens of thousands of rows: a run's evictions, its transients) sliced at CHUNK_ROWS cost
# the writer and the folds their per-chunk steps some 250 times for a million rows (0.12 s of 0.8
# writing them). Four times CHUNK_ROWS keeps most of that and no more memory (16 times: 10 MiB more).
ATTEMPT_CHUNK_ROWS = 4 * CHUNK_ROWS
# Streamed, these tables come in chunks of twice CHUNK_ROWS. Each column of a chunk costs every step
# that reads it (a view's fold, data_quality's Arrow spill, the writer) a fixed 50 to 200 us
# whatever the chunk's length, and a flood of short connections has two rows per connection here.
# Medians of 3 alternated runs (round 14), tables byte-identical: the 200,000-connection binds
# flood 7.23 -> 6.93 s (CPU 8.74 -> 8.02 s), peak 161 -> 164 MiB; the 10.8 GB capture's peak 164
# -> 172 MiB. Not the calls: twice CHUNK_ROWS there (43 columns, decoded arguments) cost the
# 100,000 unanswered requests 16 MiB of peak for 0.1 s.
_LONGER_CHUNKS = {"binds": 2, "connections": 2}


def _chunk_rows(table: str) -> int:
    """Rows per chunk of a base table streamed from the spool."""
    return CHUNK_ROWS * _LONGER_CHUNKS.get(table, 1)


# Each ORDER key of a table as the record field it is read from (before localisation).
_KEY_FIELDS: dict[str, dict[str, str]] = {
    "binds": {"capture": "flow.capture", "frame": "frame", "ctx_id": "ctx_id"},
    "endpoints": {"capture": "flow.capture", "frame": "frame", "tower_index": "tower_index"},
    "calls": {"capture": "flow.capture", "frame": "frame", "call_id": "call_id"},
    "connections": {"capture": "flow.capture", "stream": "flow.stream"},
    "violations": {"capture": "capture", "frame": "frame"},
    "attempts": {"capture": "capture", "frame": "frame"},
}
# What localising a table's rows reads beside its frame columns.
_LOCALISE_EXTRA = {"connections": ("epm_capture", "epm_frame")}


class Spooled:
    """A `report.source.Source` over a run's spooled records (see the module docstring)."""

    def __init__(self, records: Records) -> None:
        self.builder = Builder(records)
        self.records = records
        self._orders: dict[str, np.ndarray | None] = {}
        self._whole: dict[str, pd.DataFrame] = {}
        self._big: dict[str, pd.DataFrame] = {}

    def rows(self, table: str) -> int:
        return len(self._records(table))

    def _records(self, table: str) -> Any:
        return self.builder.declaration(table).records

    def chunks(self, table: str, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        whole = self._small(table)
        if whole is None:  # a big table a reader of `frame` already holds whole: sliced, not made again
            whole = self._big.get(table)
        if whole is None:
            yield from self._stream(table, columns)
            return
        df = whole if columns is None else whole[list(columns)]
        compact = table == "attempts" and whole is self._big.get(table)  # back to the table's own dtypes
        schema = TABLES[table]
        for start in range(0, len(df), CHUNK_ROWS):
            piece = df.iloc[start : start + CHUNK_ROWS]
            yield (
                (typed(piece) if columns is None else piece.astype({c: schema[c] for c in piece.columns}))
                if compact
                else piece
            )

    def frame(self, table: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        whole = None if table == "attempts" else self._small(table)
        if whole is None:
            whole = self._big.get(table)
        if whole is None and columns is not None:  # a few columns of a big table: made for this reader
            return self.table(table, columns, compact=table == "attempts")
        if whole is None:  # a big table (or attempts) read whole: kept for the next such reader
            whole = self._big[table] = self.table(table, None, compact=table == "attempts")
        return whole if columns is None else whole[list(columns)]

    def forget(self) -> None:
        """Drop the big tables kept whole for `frame` (their readers are done)."""
        self._big.clear()
        release()

    def table(self, table: str, columns: Sequence[str] | None = None, compact: bool = False) -> pd.DataFrame:
        """The table whole, in its ORDER, with its dtypes (`compact`: text columns categorical)."""
        whole = self._small(table)
        if whole is not None and not compact:
            return whole if columns is None else whole[list(columns)]
        if compact and table == "attempts" and columns is None and self._order(table, self._records(table)) is None:
            lean = compact_attempts(self.records)  # straight from the Arrow batches (report.attempts)
            if lean is not None:
                return lean
        pieces = self._stream(table, columns)
        if compact:
            made = Compact()
            for piece in pieces:
                made.add(piece)
            df = made.frame() if made.parts else empty_table(table, columns)
        else:
            df = _concat(list(pieces), table, columns)
        release()  # what building it freed (see report.memory)
        return df

    def _small(self, table: str) -> pd.DataFrame | None:
        """The whole table when it is small enough to keep (built on first use), else None."""
        if table not in TABLES:
            raise KeyError(f"no base table {table!r}")
        if table not in self._whole:
            if self.rows(table) > CACHE_ROWS:
                return None
            self._whole[table] = self._sorted_whole(table)
        return self._whole[table]

    def _sorted_whole(self, table: str) -> pd.DataFrame:
        """A small table converted at once in record order, then stably sorted unless in order
        already: for a few thousand rows one sort is cheaper than gathering keys and taking records."""
        decl = self.builder.declaration(table)
        names = {c.name for c in decl.columns}
        df = decl.frame(_whole(decl.records), names)
        df = localise(df, table, self.records.frame_maps)
        keys = ORDER.get(table)
        if keys and not in_order(df, keys):
            df = df.sort_values(keys, kind="stable", ignore_index=True)
        return df

    def _stream(self, table: str, columns: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        """The table's rows in ORDER, converted a chunk at a time (only `columns`, all when None)."""
        decl = self.builder.declaration(table)
        wanted = list(columns) if columns is not None else [c.name for c in decl.columns]
        if table == "attempts" and self._order(table, decl.records) is None:  # typed from Arrow batches
            for batch in attempt_chunks(self.records):
                whole = list(batch.columns) == wanted  # no copy of the columns (0.6 ms a chunk)
                if len(batch) <= ATTEMPT_CHUNK_ROWS:  # a batch that fits: its own frame, not a copy
                    yield batch if whole else batch[wanted]
                    continue
                for start in range(0, len(batch), ATTEMPT_CHUNK_ROWS):
                    piece = batch.iloc[start : start + ATTEMPT_CHUNK_ROWS].reset_index(drop=True)
                    yield piece if whole else piece[wanted]
            return
        read = set(wanted) | self._localise_needs(table)
        maps = self.records.frame_maps
        for piece in self._pieces(table, decl.records):
            df = decl.frame(piece, read)
            if maps:
                df = localise(df, table, maps)
            yield df if list(df.columns) == wanted else df[wanted]
            del df

    def _localise_needs(self, table: str) -> set[str]:
        if not self.records.frame_maps or table not in FRAME_COLUMNS:
            return set()
        by, frames = FRAME_COLUMNS[table]
        return {"capture", by, *frames, *_LOCALISE_EXTRA.get(table, ())}

    def _pieces(self, table: str, records: Any) -> Iterator[Any]:
        """The table's records in ORDER, `_chunk_rows` at a time: Arrow record batches (a list of
        records for records in memory, or for a chunk holding one the spool kept as records)."""
        order = self._order(table, records)
        size = _chunk_rows(table)
        if order is None:
            yield from _chunked(records, size)
            return
        for start in range(0, len(order), size):
            at = order[start : start + size]
            yield records.take_batch(at) if isinstance(records, Spool) else [records[i] for i in at.tolist()]

    def _order(self, table: str, records: Any) -> np.ndarray | None:
        """The stable permutation that puts the records in ORDER (None: they are in it), memoised."""
        if table not in self._orders:
            keys = ORDER.get(table)
            self._orders[table] = self._keys(table, records) if keys and len(records) > 1 else None
        return self._orders[table]

    def _keys(self, table: str, records: Any) -> np.ndarray | None:
        """`_order` from the table's ORDER keys of every record, in record order."""
        keys = ORDER[table]
        if self.records.frame_maps or not isinstance(records, Spool):  # the keys as the rows have them
            made = Compact()
            for chunk in self._convert_in_record_order(table, records, keys):
                made.add(chunk)
            return sort_order(made.frame() if made.parts else empty_table(table, keys), keys)
        names, text = [_KEY_FIELDS[table][k] for k in keys], [TABLES[table][k] == STR for k in keys]
        check = OrderCheck(text)
        if all(check.add(batch) for batch in records.arrow_fields(names)):
            return None  # in order (the usual case): no key was kept
        gathered = SortKeys(text)  # out of order: every key, read again from the first batch
        for batch in records.arrow_fields(names):
            gathered.add(batch)
        return arrays_order(gathered.arrays())

    def _convert_in_record_order(self, table: str, records: Any, keys: list[str]) -> Iterator[pd.DataFrame]:
        decl = self.builder.declaration(table)
        read = set(keys) | self._localise_needs(table)
        for piece in _chunked(records, _chunk_rows(table)):
            yield localise(decl.frame(piece, read), table, self.records.frame_maps)[keys]


def _chunked(records: Any, rows_per: int) -> Iterator[Any]:
    """A spool's records in record order as pieces of exactly `rows_per` rows (the last: the rest), each
    an Arrow record batch, or a list of records where the spool kept some as records (a list of
    records in memory: lists)."""
    if not isinstance(records, Spool):
        for start in range(0, len(records), rows_per):
            yield records[start : start + rows_per]
        return
    held: list[Any] = []
    size = 0
    for piece in records.batches():
        rows, at = len(piece) if isinstance(piece, list) else piece.num_rows, 0
        while at < rows:
            n = min(rows_per - size, rows - at)
            held.append(piece[at : at + n] if isinstance(piece, list) else piece.slice(at, n))
            size, at = size + n, at + n
            if size == rows_per:
                yield _joined(records, held)
                held, size = [], 0
    if held:
        yield _joined(records, held)


def _joined(spool: Spool[Any], pieces: list[Any]) -> Any:
    """Consecutive pieces of a spool's batches as one: an Arrow batch, or records if one is."""
    if len(pieces) == 1:
        return pieces[0]
    if any(isinstance(p, list) for p in pieces):
        return [rec for p in pieces for rec in spool.records_of(p)]
    import pyarrow as pa

    return pa.concat_batches(pieces)


def _whole(records: Any) -> Any:
    """Every record of a small table as one piece (see `_chunked`)."""
    if not isinstance(records, Spool):
        return list(records)
    pieces = list(records.batches())
    return _joined(records, pieces) if pieces else records.records_of([])


def _concat(parts: list[pd.DataFrame], table: str, columns: Sequence[str] | None) -> pd.DataFrame:
    if not parts:
        return empty_table(table, columns)
    df: pd.DataFrame = parts[0].reset_index(drop=True) if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return df
