"""One pass over the base tables for every reader that folds them: the views, the per-host table, the
run summary, the HTML report's figures and the findings engine.

Each reader is a `Fold`: as each table comes up it says which of its columns it reads (`wants`), then
takes the table's chunks (`add`), then ends (`done`). `Pass(source, folds)` reads each table once, a
chunk at a time (`Source.chunks`), with the union of the columns its folds want (every column when
the writer takes the chunks too: `chunks(table, everything=True)`), and hands each chunk to each fold
that wants the table, cut to that fold's columns: a fold sees the values its own read would have
given. A flood's big table is so read back from the spool and converted once, not once per reader.

Order. The tables come up in `PASS_ORDER`, whoever asks: `chunks(table)` first reads, for the folds,
any table before it not read yet. A fold may count on that order: the data-quality view and the
findings take the violations before the connections, so each connection's row is made as it goes by
(no connection is held), and the per-host table takes the binds, endpoints and calls before the
connections that make its hosts. `finish()` reads the tables not read yet and ends every fold.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import pandas as pd

from analyzer.report.memory import release
from analyzer.report.source import TABLES, Source

# The order the tables come up in (see the module docstring).
PASS_ORDER = ("binds", "endpoints", "calls", "violations", "connections", "captures", "attempts")


class Fold(Protocol):
    """A reader of the base tables, a chunk at a time (see the module docstring)."""

    def wants(self, table: str) -> Sequence[str] | None:
        """The columns of `table` it reads (None: not this table), asked as the table comes up."""
        ...

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        """One chunk of `table`, in the table's order, holding the columns `wants` named."""
        ...

    def done(self, source: Source) -> None:
        """Every table went by (`source`: for a fold that must read one again, as the findings do for
        a rule whose rows came out of time order)."""
        ...


class Pass:
    """Each base table read once for every fold (see the module docstring)."""

    def __init__(self, source: Source, folds: Iterable[Fold]) -> None:
        self.source = source
        self.folds = list(folds)
        self._read: set[str] = set()
        self._finished = False

    def chunks(self, table: str, everything: bool = False) -> Iterator[pd.DataFrame]:
        """The table's chunks, each handed to the folds that want it first; `everything`: with every
        column (for the writer), else with the union of the folds' columns. A table already read
        yields nothing more."""
        at = PASS_ORDER.index(table)
        for before in PASS_ORDER[:at]:
            if before not in self._read:
                for _ in self.chunks(before):
                    pass
        if table in self._read:
            return
        self._read.add(table)
        readers = [(fold, list(cols)) for fold in self.folds if (cols := fold.wants(table)) is not None]
        if not readers and not everything:
            return
        wanted = {c for _, cols in readers for c in cols}
        columns = None if everything else [c for c in TABLES[table] if c in wanted]
        for chunk in self.source.chunks(table, columns):
            names = list(chunk.columns)
            arrays: dict[str, object] | None = None
            for fold, cols in readers:
                if cols == names:
                    fold.add(table, chunk)
                    continue
                arrays = arrays if arrays is not None else columns_of(chunk)
                fold.add(table, pd.DataFrame({c: arrays[c] for c in cols}, index=chunk.index, copy=False))
            yield chunk
        release()  # the table's chunks are freed: their heap pages back before the next table's

    def finish(self) -> None:
        """Read the tables not read yet, then end every fold (once)."""
        if self._finished:
            return
        for _ in self.chunks(PASS_ORDER[-1]):
            pass
        self._finished = True
        for fold in self.folds:
            fold.done(self.source)
            release()  # what making its result freed (the fold's state) back before the next one


def columns_of(chunk: pd.DataFrame) -> dict[str, object]:
    """A chunk's columns as their arrays, by name: each fold's frame of some of them is made from
    these (a quarter of the time of `chunk[cols]`, which reindexed the chunk's blocks for every fold:
    0.85 ms a fold and chunk of the binds table, 7 folds)."""
    return {str(name): values.array for name, values in chunk.items()}


def fold(source: Source, *folds: Fold) -> None:
    """The folds over the source in one pass (a single view's or reader's way in)."""
    Pass(source, folds).finish()
