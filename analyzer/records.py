"""Where records go as they are made: Arrow batches on disk, read back by the report layer.

A run's records are its output, so holding them in memory would make memory grow with the capture
instead of with its live state. `Records` keeps, per kind, one `Spool`: it buffers `BATCH_ROWS`
records, then writes them as one Arrow IPC file in a temporary run directory, and reads them back,
in the order they were made, each time it is iterated: as the dataclasses they were, or as the Arrow
batches themselves, which the report layer builds its tables from column by column.

Violations go through a `violation_log.ViolationLog` first, which aggregates them per kind and
connection so that a flood is summarised, not listed.

The run directory is removed when its `Records` is closed or collected, and at interpreter exit.
A `Records` can be pickled (the forked reader sends one to its parent): the directory then belongs
to the copy that is unpickled.
"""

from __future__ import annotations

import operator
import os
import pickle
import shutil
import tempfile
import typing
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from analyzer.book import EndpointBook
from analyzer.capture.session import FrameMap
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.model import (
    AttemptRecord,
    BindRecord,
    CallRecord,
    CaptureSummary,
    ConnectionRecord,
    DatagramRecord,
    EndpointRecord,
    Flow,
    Violation,
)
from analyzer.readback import ReadBack
from analyzer.spool_codec import _arrays, _Codec, _column, _fields_of, _pa
from analyzer.violation_log import ViolationLog

if typing.TYPE_CHECKING:
    import numpy as np

BATCH_ROWS = 4096  # records buffered per kind before a batch is written
SMALL_SPOOL = 4 * BATCH_ROWS  # records of a table the report builds whole and keeps (`report.spooled.CACHE_ROWS`)
FLOW_CACHE = 4096  # flows shared between the records read back, at most: a batch's

R = TypeVar("R")


class _RunDir:
    """The temporary directory of one run's batches, made when the first batch is written (a small
    run makes none) and removed when closed or collected, or at exit."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.files = 0
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def _own(self, path: str) -> None:
        self.path = path
        self._finalizer = weakref.finalize(self, shutil.rmtree, path, True)

    def new_file(self, kind: str) -> str:
        if self.path is None:
            self._own(tempfile.mkdtemp(prefix="rpc-analyzer-run-"))
        assert self.path is not None
        self.files += 1
        return os.path.join(self.path, f"{kind}-{self.files:08d}")

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled, the directory belongs to the copy that is unpickled (the forked reader's parent)."""
        if self._finalizer is not None:
            self._finalizer.detach()
        return {"path": self.path, "files": self.files}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.files, self._finalizer = None, state["files"], None
        if state["path"] is not None:
            self._own(state["path"])


class Spool(ReadBack[R]):
    """The records of one kind: an append-only sequence whose body lives on disk.

    `append` buffers; every `BATCH_ROWS` records the buffer is written as one Arrow IPC file (or,
    should a value not fit its Arrow type, a pickle). Iterating reads the files back in order, then
    the buffer. The report layer builds its tables from the Arrow batches themselves (`batches`,
    and `take_batch` for the rows at given positions: a table's rows in its order when the records
    were not made in it), without a record per row; it also reads some fields alone (`fields`,
    `arrow_fields`: sort keys, counts). Indexing reads everything and is meant for tests and small runs."""

    def __init__(self, run: _RunDir, kind: str, cls: type[R]) -> None:
        self._run = run
        self.kind = kind
        self._codec = _Codec(cls)
        self._files: list[str] = []
        self._sizes: list[int] = []  # records per file, for reading a record by its position
        self._buffer: list[R] = []
        self._count = 0
        self._buffered: tuple[int, Any] | None = None  # (`_count`, the buffer's batch) once `batches` made it

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_buffered": None}  # remade where it is read, not sent

    def append(self, rec: R) -> None:
        self._buffer.append(rec)
        self._count += 1
        if len(self._buffer) >= BATCH_ROWS:
            self.flush()

    def extend(self, recs: Iterable[R]) -> None:
        for rec in recs:
            self.append(rec)

    def adopt(self, other: Spool[R]) -> None:
        """Append another spool's records of the same kind without reading them: its batch files move
        into this run's directory (a parallel run's merge takes over its workers' spools), then its
        buffer is appended."""
        self.flush()  # what is buffered here comes first
        for path in other._files:
            moved = self._run.new_file(self.kind) + os.path.splitext(path)[1]
            os.replace(path, moved)
            self._files.append(moved)
        self._sizes.extend(other._sizes)  # `take` finds a record's file by these
        self._count += len(other) - len(other._buffer)
        buffered, other._files, other._sizes, other._buffer, other._count = other._buffer, [], [], [], 0
        other._buffered = None
        self.extend(buffered)

    def flush(self) -> None:
        """Write the buffered records as one batch."""
        if self._buffer:
            self._write(lambda pa: self._codec.encode(self._buffer), lambda: self._buffer, len(self._buffer))
            self._buffer = []

    def _write(self, encode: Callable[[Any], Any], records: Callable[[], list[R]], rows: int) -> None:
        """One batch file: the Arrow batch `encode` makes, or a pickle of the `records` should a value
        not fit its Arrow type."""
        pa = _pa()
        self._buffered = None  # the buffer it stood for is being written
        path = self._run.new_file(self.kind)
        try:
            batch = encode(pa)
        except (pa.ArrowInvalid, OverflowError, TypeError):  # a value out of its column's range
            path += ".pickle"
            with open(path, "wb") as out:
                pickle.dump(records(), out, protocol=pickle.HIGHEST_PROTOCOL)
        else:
            path += ".arrow"
            with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
                writer.write_batch(batch)
        self._files.append(path)
        self._sizes.append(rows)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[R]:
        flows: dict[tuple[Any, ...], Flow] = {}  # one Flow object per conversation, as when made
        for piece in self.batches():
            if len(flows) > FLOW_CACHE:
                flows.clear()
            yield from piece if isinstance(piece, list) else self._codec.decode(piece, flows)

    def _buffer_batch(self, pa: Any) -> Any:
        """The records not written yet as one Arrow batch, or as records should a value not fit."""
        try:
            return self._codec.encode(self._buffer)
        except (pa.ArrowInvalid, OverflowError, TypeError):
            return list(self._buffer)

    def _buffer_piece(self, pa: Any) -> Any:
        """`_buffer_batch`, made once while no record is added, for a spool of a table the report
        builds whole (`SMALL_SPOOL`): it is read several times (its sort keys, the other tables'
        names and totals, then its rows), and the reader sends the buffer unencoded. A bigger table's
        last piece is read once a pass and not kept beside the chunks the pass holds (2 MiB on the
        10.8 GB capture)."""
        if self._count > SMALL_SPOOL:
            return self._buffer_batch(pa)
        made = self._buffered
        if made is None or made[0] != self._count:
            made = self._buffered = (self._count, self._buffer_batch(pa))
        return made[1]

    def batches(self, names: list[str] | None = None) -> Iterator[Any]:
        """Every record in order, a batch at a time: an Arrow record batch (one column per field,
        `flow.capture` for a flow's field), or, for a batch that did not fit its Arrow types
        (written as a pickle), a list of records. What tables are built from column by column.
        With `names`, a batch file's batch holds only those fields (`_piece`)."""
        pa: Any = _pa() if self._files or self._count else None
        for f in range(len(self._files)):
            yield self._piece(pa, f, names)
        if self._count > sum(self._sizes):  # some still buffered
            yield self._buffer_piece(pa)

    def _piece(self, pa: Any, f: int, names: list[str] | None = None) -> Any:
        """Batch file `f` (the buffer when `f` is past the files) as `batches` gives it. Read, not
        mapped: what is made of a batch may outlive its file. With `names`, an Arrow batch of those
        fields only, mapped: their arrays point into the file's pages, no copy made and only their
        pages read (the sort keys, late names and totals, `arrow_fields`, read 1 to 5 of a table's
        columns; the calls have 41: the pending-calls flood's 25 files of calls 15 -> 5 ms a pass;
        10.8 GB capture, medians of 2 alternated runs: 10.46 -> 10.36 s, peaks unchanged). A reader
        of `names` uses them while it reads the spool, which outlives it. The IPC reader's own
        projection (`IpcReadOptions.included_fields`) was as fast, but copies, from Arrow's C++
        default pool: mimalloc's then (see `report.memory.system_pool_throughout`), which kept what
        it freed, the parent's peak on 10.8 GB 168 -> 178 MiB."""
        if f >= len(self._files):
            return self._buffer_piece(pa)
        path = self._files[f]
        if path.endswith(".pickle"):
            with open(path, "rb") as inp:
                return pickle.load(inp)
        if names is None:
            with pa.OSFile(path, "rb") as source:
                table = pa.ipc.open_file(source).read_all().combine_chunks()
        else:
            with pa.memory_map(path) as source:
                table = pa.ipc.open_file(source).read_all().select(names).combine_chunks()
        batches = table.to_batches()  # none for a file of no rows (`RowSpool.add_columns` of none)
        return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)

    def fields(self, names: list[str]) -> Iterator[dict[str, list[Any]]]:
        """Only some fields (`flow.capture` for a flow's field), as lists of values, a batch at a time in
        record order: what sorting keys are made of, read without making a record."""
        for piece in self.batches(names):
            yield _fields_of(piece, names) if isinstance(piece, list) else piece.select(names).to_pydict()

    def arrow_fields(self, names: list[str]) -> Iterator[list[Any]]:
        """`fields`, each batch as one pyarrow array per field (no Python object per value)."""
        pa: Any = _pa()
        for piece in self.batches(names):
            if isinstance(piece, list):
                yield _arrays(pa, _fields_of(piece, names), names, self._codec.schema)
            else:
                yield piece.select(names).columns

    def records_of(self, piece: Any) -> list[R]:
        """A piece of `batches` or `take_batch` as records (a list stays as it is)."""
        return piece if isinstance(piece, list) else list(self._codec.decode(piece, {}))

    def _where(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The batch file of each position (past the files: the buffer) and where each file starts."""
        import numpy as np

        starts = np.cumsum([0, *self._sizes])  # the last start is where the buffer's records begin
        return np.searchsorted(starts, positions, side="right") - 1, starts

    def take(self, positions: np.ndarray) -> list[R]:
        """The records at these positions (0 is the first made), in the order given: each batch file
        holding some is read once, and only those records are made."""
        piece = self.take_batch(positions)
        return self.records_of(piece)

    def take_batch(self, positions: np.ndarray) -> Any:
        """The records at these positions, in the order given, as one Arrow record batch (each batch
        file holding some is mapped once and only those rows are copied out; no record is made); as
        a list of records when one of them is in a batch that did not fit its Arrow types."""
        import numpy as np

        where, starts = self._where(positions)
        pa: Any = _pa()
        parts, order = [], []
        for f in np.unique(where).tolist():
            picked = np.flatnonzero(where == f)
            parts.append(self._rows_of(pa, f, positions[picked] - starts[f]))
            order.append(picked)
        if not parts:
            return pa.RecordBatch.from_pylist([], schema=self._codec.schema)
        if any(isinstance(part, list) for part in parts):
            out: list[Any] = [None] * len(positions)
            for part, picked in zip(parts, order, strict=True):
                for i, rec in zip(picked.tolist(), self.records_of(part), strict=True):
                    out[i] = rec
            return out
        gathered = pa.Table.from_batches(parts)
        back = np.empty(len(positions), dtype=np.int64)  # gathered file by file: back to the order given
        back[np.concatenate(order)] = np.arange(len(positions))
        return gathered.take(pa.array(back)).combine_chunks().to_batches()[0]

    def _rows_of(self, pa: Any, f: int, rows: np.ndarray) -> Any:
        """Rows `rows` (positions within it) of batch file `f` (past the files: the buffer), copied
        out of the mapped file as an Arrow batch, or as records (a pickle, an unfit buffer)."""
        if f < len(self._files) and not self._files[f].endswith(".pickle"):
            with pa.memory_map(self._files[f]) as source:
                table = pa.ipc.open_file(source).read_all()
                return table.take(pa.array(rows)).combine_chunks().to_batches()[0]
        piece = self._piece(pa, f)
        if isinstance(piece, list):
            return [piece[i] for i in rows.tolist()]
        return piece.take(pa.array(rows))

    def __repr__(self) -> str:
        return f"<Spool {self.kind}: {self._count} records, {len(self._files)} batches on disk>"


class RowSpool(Spool[R]):
    """A spool whose rows wait to be written as plain tuples in field order (a `Flow` field as the
    flow itself, a tuple field as its tuple: an Arrow list column either way): a flood of rows (the
    attempts of a SYN flood, a million of them; the calls of a flood of requests; the binds and
    connections of a flood of connections) builds no record object per row on its way to disk.
    `add(*fields)` and `add_row(fields)` are the producers' paths, `append` still takes a record;
    reading back gives records (`__iter__`), or the rows as Arrow record batches for a table built
    column by column (`batches`)."""

    def __init__(self, run: _RunDir, kind: str, cls: type[R]) -> None:
        super().__init__(run, kind, cls)
        self._rows: list[tuple[Any, ...]] = []
        self._names = tuple(self._codec.names)
        self._row_of = operator.attrgetter(*self._names)  # a record's row in one C call

    def add(self, *row: Any) -> None:
        """One row, its fields in the record's order."""
        self._rows.append(row)
        self._count += 1
        if len(self._rows) >= BATCH_ROWS:
            self.flush()

    def add_row(self, row: tuple[Any, ...]) -> None:
        """`add`, the row given as the tuple it is (a call's, `co_call.Call.row`)."""
        self._rows.append(row)
        self._count += 1
        if len(self._rows) >= BATCH_ROWS:
            self.flush()

    def append(self, rec: R) -> None:
        self.add_row(self._row_of(rec))

    def adopt(self, other: Spool[R]) -> None:
        other.flush()  # its rows as a batch file of its own, which moves with the others
        super().adopt(other)

    def add_columns(self, columns: list[Any]) -> None:
        """Rows given as columns (lists or Arrow arrays, in field order): one batch, after the rows before."""
        self.flush()

        def encode(pa: Any) -> Any:
            arrays = [_column(pa, c, t) for c, t in zip(columns, self._codec.schema.types, strict=True)]
            return pa.RecordBatch.from_arrays(arrays, schema=self._codec.schema)

        self._write(encode, lambda: self._records(zip(*(list(c) for c in columns), strict=True)), len(columns[0]))
        self._count += len(columns[0])

    def _batch(self, pa: Any) -> Any:
        """The buffered rows as one Arrow record batch (raises when a value does not fit its type)."""
        return self._codec.encode_rows(self._rows)

    def flush(self) -> None:
        if self._rows:
            self._write(self._batch, lambda: self._records(self._rows), len(self._rows))
            self._rows = []

    def _records(self, rows: Iterable[tuple[Any, ...]]) -> list[R]:
        cls: Any = self._codec.cls
        return [cls(*row) for row in rows]

    def _buffer_batch(self, pa: Any) -> Any:
        try:
            return self._batch(pa)
        except (pa.ArrowInvalid, OverflowError, TypeError):
            return self._records(self._rows)


class Records:
    """Everything an analysis produced, in the order it was produced: one `Spool` per kind
    (violations through their `ViolationLog`). `captures` (one summary per input file) stays in
    memory. Close it, or let it be collected, to remove its run directory.

    `datagrams`: spool a `DatagramRecord` for every connectionless PDU. Off by default: no table
    reads them (the calls and endpoints of connectionless conversations are spooled either way);
    the connectionless tracker's tests turn it on."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS, datagrams: bool = False) -> None:
        self._run = _RunDir()
        self.keep_datagrams = datagrams
        # Binds too (`add_row`): a bind flood makes one per connection.
        self.binds: RowSpool[BindRecord] = RowSpool(self._run, "binds", BindRecord)
        self.endpoints: Spool[EndpointRecord] = Spool(self._run, "endpoints", EndpointRecord)
        # Calls come as rows (`add_row`): a flood of requests makes one per request.
        self.calls: RowSpool[CallRecord] = RowSpool(self._run, "calls", CallRecord)
        # Connections too (`add_row`): a flood of short connections makes one per connection.
        self.connections: RowSpool[ConnectionRecord] = RowSpool(self._run, "connections", ConnectionRecord)
        self.datagrams: Spool[DatagramRecord] = Spool(self._run, "datagrams", DatagramRecord)
        self._violation_rows: Spool[Violation] = Spool(self._run, "violations", Violation)
        self.violations = ViolationLog(self._violation_rows, limits)
        self.captures: list[CaptureSummary] = []
        # TCP connection attempts that never carried a PDU (a port scan makes many: spooled too).
        self.attempts: RowSpool[AttemptRecord] = RowSpool(self._run, "attempts", AttemptRecord)
        # What the run learned about endpoints, for naming conversations when records become tables.
        self.book = EndpointBook(limits.max_learned_endpoints)
        # Capture sessions of several files: session frame numbers back to (file, frame in it).
        self.frame_maps: dict[str, FrameMap] = {}
        # path -> SHA-256 of the input files hashed as they were read (`Pipeline(digests=True)`).
        self.digests: dict[str, str] = {}

    def _spools(self) -> list[Spool[Any]]:
        return [self.binds, self.endpoints, self.calls, self.connections, self.datagrams, self.attempts]

    def finish(self) -> None:
        """Write out what is buffered and aggregated (the run is over)."""
        self.violations.flush()
        for spool in self._spools():
            spool.flush()

    def spool(self, kind: str) -> Spool[Any]:
        """The spool of one kind (binds, ..., attempts, violations) once the run is over: for the
        violations, what is still aggregated is written out first, so the spool holds every row."""
        if kind != "violations":
            return getattr(self, kind)  # type: ignore[no-any-return]
        self.violations.flush()
        return self._violation_rows

    def close(self) -> None:
        """Remove the run directory: the records cannot be read after this."""
        self._run.close()

    def __getstate__(self) -> dict[str, Any]:
        self.finish()
        return self.__dict__.copy()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s.kind}={len(s)}" for s in self._spools())
        return f"<Records {sizes}, violations={len(self.violations)}, captures={len(self.captures)}>"
