"""A record class as Arrow columns and back, for the spools of `analyzer.records`: scalar fields as
they are, a `Flow` as one column per field (`flow.capture`, ...), a tuple of strings as a list column.

Records come either as the dataclasses of `analyzer.model` (`_Codec.encode`) or as rows, tuples of
their fields in the record's order (`_Codec.encode_rows`: a call's row, spooled without a record
object made for it); both make the same Arrow batch.
"""

from __future__ import annotations

import operator
import typing
from collections.abc import Iterable, Iterator
from dataclasses import fields, is_dataclass
from itertools import repeat
from typing import Any, Generic, TypeVar

from analyzer.model import Flow

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
        # A column at a time, a field of every record in one C loop: no row tuples to transpose (a third less).
        self._fields = [operator.attrgetter(n) for n in self.names]
        self._flow_fields = [operator.attrgetter(f) for f in self.flow_fields]
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
        return self._batch([list(map(field, records)) for field in self._fields])

    def encode_rows(self, rows: list[tuple[Any, ...]]) -> Any:
        """An Arrow record batch of rows (each a tuple of a record's fields, in field order): the
        batch `encode` makes of the records the rows stand for."""
        if not rows:
            return _pa().RecordBatch.from_pylist([], schema=self.schema)
        return self._batch(list(zip(*rows, strict=True)))

    def _batch(self, fields: list[Any]) -> Any:
        """The batch of the records' fields, one sequence of values a field: a flow field is spread
        over its columns."""
        pa = _pa()
        types = iter(self.schema.types)
        arrays: list[Any] = []
        for values, is_flow in zip(fields, self.is_flow, strict=True):
            if not is_flow:
                arrays.append(_column(pa, values, next(types)))
            elif values and all(map(operator.is_, values, repeat(values[0]))):
                # The rows of one conversation (a flood's on one connection): each of its fields
                # repeated, no list of the same value made and converted per field.
                n = len(values)
                arrays += [pa.repeat(pa.scalar(field(values[0]), next(types)), n) for field in self._flow_fields]
            else:
                # `_column`: a text field of one value (a flood's capture, transport, server) repeated
                arrays += [_column(pa, list(map(field, values)), next(types)) for field in self._flow_fields]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

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


def _fields_of(records: list[Any], names: list[str]) -> dict[str, list[Any]]:
    """`Spool.fields` of records in memory (the buffer, a pickled batch)."""
    out: dict[str, list[Any]] = {}
    for name in names:
        record_field, _, flow_field = name.partition(".")
        values = [getattr(r, record_field) for r in records]
        out[name] = [getattr(v, flow_field) for v in values] if flow_field else values
    return out


def _arrays(pa: Any, fields: dict[str, list[Any]], names: list[str], schema: Any) -> list[Any]:
    """`fields` as Arrow arrays of their schema's types (inferred for a value that does not fit)."""
    out = []
    for n in names:
        try:
            out.append(pa.array(fields[n], type=schema.field(n).type))
        except (pa.ArrowInvalid, OverflowError, TypeError):
            out.append(pa.array(fields[n]))
    return out


def _column(pa: Any, values: Any, arrow_type: Any) -> Any:
    """A column (list or Arrow array) as an Arrow array; one string over and over (a SYN run's) repeated."""
    if isinstance(values, pa.Array):
        return values.cast(arrow_type)
    same = values and isinstance(values[0], str) and values[-1] == values[0] and values.count(values[0]) == len(values)
    return pa.repeat(pa.scalar(values[0], arrow_type), len(values)) if same else pa.array(values, type=arrow_type)


def _arrow_type(hint: Any) -> Any:
    """The Arrow type of a record field: int, str, bool, float (optional or not), tuple[str, ...]."""
    pa = _pa()
    if typing.get_origin(hint) is tuple:
        return pa.list_(pa.string())
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    return {int: pa.int64(), str: pa.string(), bool: pa.bool_(), float: pa.float64()}[base]
