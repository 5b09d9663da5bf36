"""Where records go as they are made: Arrow batches on disk, read back by the report layer.

A run's records are its output, so holding them in memory would make memory grow with the capture
instead of with its live state. `Records` keeps, per kind, one `Spool`: it buffers `BATCH_ROWS`
records, then writes them as one Arrow IPC file in a temporary run directory, and reads them back,
in the order they were made, each time it is iterated. Records in, records out: the report layer
(and any resolution step at read-back) sees the same dataclasses it always did.

Violations go through a `ViolationLog` first, which aggregates them per kind and connection so that
a flood is summarised, not listed (see its docstring).

The run directory is removed when its `Records` is closed or collected, and at interpreter exit.
A `Records` can be pickled (the forked reader sends one to its parent): the directory then belongs
to the copy that is unpickled.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import typing
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Any, Generic, TypeVar, overload

from analyzer.limits import CAP_CODES, CAPTURE_CAP_CODES, DEFAULT_LIMITS, Limits
from analyzer.model import (
    BindRecord,
    CallRecord,
    CaptureSummary,
    ConnectionRecord,
    DatagramRecord,
    EndpointRecord,
    Flow,
    Violation,
)

BATCH_ROWS = 4096  # records buffered per kind before a batch is written
FLOW_CACHE = 65_536  # flows shared between the records read back, at most
LIVE_AGGREGATES = 4096  # (kind, connection) violation aggregates held at once; the oldest is written out

R = TypeVar("R")


def _pa() -> Any:
    """pyarrow, imported when the first batch is written or read: a small run writes none, and
    the forked reader then never pays for the import."""
    import pyarrow

    return pyarrow


class _Codec(Generic[R]):
    """A record class as Arrow columns and back: scalar fields as they are, a `Flow` as one column
    per field (`flow.capture`, ...), a tuple of strings as a list column."""

    def __init__(self, cls: type[R]) -> None:
        assert is_dataclass(cls)
        self.cls = cls
        hints = typing.get_type_hints(cls)
        self.names = [f.name for f in fields(cls)]
        self.flow_fields = [f.name for f in fields(Flow)]
        self.is_flow = [hints[n] is Flow for n in self.names]
        self.tuples = {n for n in self.names if typing.get_origin(hints[n]) is tuple}
        self._hints = hints
        self._schema: Any = None

    @property
    def schema(self) -> Any:
        """The Arrow schema, built on first use."""
        if self._schema is None:
            pa = _pa()
            cols = []
            for name in self.names:
                hint = self._hints[name]
                if hint is Flow:
                    flow_hints = typing.get_type_hints(Flow)
                    cols += [pa.field(f"{name}.{f}", _arrow_type(flow_hints[f])) for f in self.flow_fields]
                else:
                    cols.append(pa.field(name, _arrow_type(hint)))
            self._schema = pa.schema(cols)
        return self._schema

    def encode(self, records: list[R]) -> Any:
        """An Arrow record batch of the records."""
        pa = _pa()
        columns: list[list[Any]] = []
        for name, is_flow in zip(self.names, self.is_flow, strict=True):
            values = [getattr(r, name) for r in records]
            if is_flow:
                columns += [[getattr(v, f) for v in values] for f in self.flow_fields]
            else:
                columns.append(values)
        return pa.RecordBatch.from_arrays(
            [pa.array(c, type=t) for c, t in zip(columns, self.schema.types, strict=True)], schema=self.schema
        )

    def decode(self, batch: Any, flows: dict[tuple[Any, ...], Flow]) -> Iterator[R]:
        data = batch.to_pydict()
        parts: list[Iterable[Any]] = []
        for name, is_flow in zip(self.names, self.is_flow, strict=True):
            if is_flow:
                keys = zip(*(data[f"{name}.{f}"] for f in self.flow_fields), strict=True)
                parts.append(flows.get(k) or flows.setdefault(k, Flow(*k)) for k in keys)
            elif name in self.tuples:
                parts.append(tuple(v) for v in data[name])
            else:
                parts.append(data[name])
        cls: Any = self.cls
        for values in zip(*parts, strict=True):
            yield cls(*values)


def _arrow_type(hint: Any) -> Any:
    """The Arrow type of a record field: int, str, bool, float (optional or not), tuple[str, ...]."""
    pa = _pa()
    if typing.get_origin(hint) is tuple:
        return pa.list_(pa.string())
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    return {int: pa.int64(), str: pa.string(), bool: pa.bool_(), float: pa.float64()}[base]


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


class Spool(Sequence[R]):
    """The records of one kind: an append-only sequence whose body lives on disk.

    `append` buffers; every `BATCH_ROWS` records the buffer is written as one Arrow IPC file (or,
    should a value not fit its Arrow type, a pickle). Iterating reads the files back in order, then
    the buffer. Indexing reads everything and is meant for tests and small runs."""

    def __init__(self, run: _RunDir, kind: str, cls: type[R]) -> None:
        self._run = run
        self.kind = kind
        self._codec = _Codec(cls)
        self._files: list[str] = []
        self._buffer: list[R] = []
        self._count = 0

    def append(self, rec: R) -> None:
        self._buffer.append(rec)
        self._count += 1
        if len(self._buffer) >= BATCH_ROWS:
            self.flush()

    def extend(self, recs: Iterable[R]) -> None:
        for rec in recs:
            self.append(rec)

    def flush(self) -> None:
        """Write the buffered records as one batch."""
        if not self._buffer:
            return
        pa = _pa()
        path = self._run.new_file(self.kind)
        try:
            batch = self._codec.encode(self._buffer)
        except (pa.ArrowInvalid, OverflowError, TypeError):  # a value out of its column's range
            path += ".pickle"
            with open(path, "wb") as out:
                pickle.dump(self._buffer, out, protocol=pickle.HIGHEST_PROTOCOL)
        else:
            path += ".arrow"
            with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
                writer.write_batch(batch)
        self._files.append(path)
        self._buffer = []

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[R]:
        flows: dict[tuple[Any, ...], Flow] = {}  # one Flow object per conversation, as when made
        pa: Any = _pa() if self._files else None
        for path in self._files:
            if len(flows) > FLOW_CACHE:
                flows.clear()
            if path.endswith(".pickle"):
                with open(path, "rb") as inp:
                    yield from pickle.load(inp)
                continue
            with pa.memory_map(path) as source:
                reader = pa.ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    yield from self._codec.decode(reader.get_batch(i), flows)
        yield from list(self._buffer)

    @overload
    def __getitem__(self, index: int) -> R: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[R]: ...
    def __getitem__(self, index: int | slice) -> R | Sequence[R]:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        """Same records in the same order (a list compares equal too)."""
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Spool {self.kind}: {self._count} records, {len(self._files)} batches on disk>"


class _Aggregate:
    """Occurrences of one violation kind on one connection, beyond those listed one by one."""

    __slots__ = ("count", "first", "last", "listed", "sample", "stream")

    def __init__(self, stream: int | None) -> None:
        self.stream = stream  # None for a run-wide cap, whichever connection its sample names
        self.listed = 0
        self.count = 0
        self.sample: Violation | None = None
        self.first: int | None = None
        self.last: int | None = None

    def add(self, v: Violation) -> None:
        if self.sample is None:
            self.sample = v
        self.count += v.count
        for f in (v.frame, v.last_frame):
            if f is not None:
                self.first = f if self.first is None else min(self.first, f)
                self.last = f if self.last is None else max(self.last, f)

    def row(self) -> Violation | None:
        if self.sample is None:
            return None
        return replace(self.sample, frame=self.first, stream=self.stream, count=self.count, last_frame=self.last)


_Key = tuple[str, int | None, str, str]


class ViolationLog(Sequence[Violation]):
    """Violations aggregated per kind (`what`) and connection, then spooled.

    - A cap (`limits.CAP_CODES`) is one row per cap and connection, or per capture for the caps of
      run-wide tables (`limits.CAPTURE_CAP_CODES`, e.g. the flow table): `count` says how often it
      was hit, `frame` and `last_frame` the first and last time, `detail` is the first hit's.
    - Any other kind is listed one row per occurrence up to `Limits.max_violations_listed` per
      connection; the rest of that kind and connection become one row with their count.

    Aggregates are held for the `LIVE_AGGREGATES` most recently active (kind, connection) pairs;
    the least recent is written out when a new one would pass that, so a kind that comes back on an
    old connection after that starts a second row (counts still add up)."""

    def __init__(self, spool: Spool[Violation], limits: Limits) -> None:
        self._spool = spool
        self._listed = limits.max_violations_listed
        self._live: OrderedDict[_Key, _Aggregate] = OrderedDict()

    def append(self, v: Violation) -> None:
        cap = v.what in CAP_CODES
        stream = None if v.what in CAPTURE_CAP_CODES else v.stream
        key = (v.capture, stream, v.layer, v.what)
        agg = self._live.get(key)
        if agg is None:
            agg = self._live[key] = _Aggregate(stream)
            if len(self._live) > LIVE_AGGREGATES:
                self._write(self._live.popitem(last=False)[1])
        else:
            self._live.move_to_end(key)
        if not cap and agg.listed < self._listed:
            agg.listed += 1
            self._spool.append(v if v.last_frame is not None else replace(v, last_frame=v.frame))
        else:
            agg.add(v)

    def extend(self, vs: Iterable[Violation]) -> None:
        for v in vs:
            self.append(v)

    def _write(self, agg: _Aggregate) -> None:
        row = agg.row()
        if row is not None:
            self._spool.append(row)

    def flush(self) -> None:
        """Write every aggregate out (the end of the run)."""
        while self._live:
            self._write(self._live.popitem(last=False)[1])
        self._spool.flush()

    def _pending(self) -> list[Violation]:
        return [row for agg in self._live.values() if (row := agg.row()) is not None]

    def __len__(self) -> int:
        return len(self._spool) + sum(agg.sample is not None for agg in self._live.values())

    def __iter__(self) -> Iterator[Violation]:
        pending = self._pending()
        yield from self._spool
        yield from pending

    @overload
    def __getitem__(self, index: int) -> Violation: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Violation]: ...
    def __getitem__(self, index: int | slice) -> Violation | Sequence[Violation]:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        """Same records in the same order (a list compares equal too)."""
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


class Records:
    """Everything an analysis produced, in the order it was produced: one `Spool` per kind
    (violations through their `ViolationLog`). `captures` (one summary per input file) stays in
    memory. Close it, or let it be collected, to remove its run directory."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._run = _RunDir()
        self.binds: Spool[BindRecord] = Spool(self._run, "binds", BindRecord)
        self.endpoints: Spool[EndpointRecord] = Spool(self._run, "endpoints", EndpointRecord)
        self.calls: Spool[CallRecord] = Spool(self._run, "calls", CallRecord)
        self.connections: Spool[ConnectionRecord] = Spool(self._run, "connections", ConnectionRecord)
        self.datagrams: Spool[DatagramRecord] = Spool(self._run, "datagrams", DatagramRecord)
        self.violations = ViolationLog(Spool(self._run, "violations", Violation), limits)
        self.captures: list[CaptureSummary] = []

    def _spools(self) -> list[Spool[Any]]:
        return [self.binds, self.endpoints, self.calls, self.connections, self.datagrams]

    def finish(self) -> None:
        """Write out what is buffered and aggregated (the run is over)."""
        self.violations.flush()
        for spool in self._spools():
            spool.flush()

    def close(self) -> None:
        """Remove the run directory: the records cannot be read after this."""
        self._run.close()

    def __getstate__(self) -> dict[str, Any]:
        self.finish()
        return self.__dict__.copy()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s.kind}={len(s)}" for s in self._spools())
        return f"<Records {sizes}, violations={len(self.violations)}, captures={len(self.captures)}>"
