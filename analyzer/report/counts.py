"""What the run summary the CLI prints counts (`report.summary` prints it), folded in the one pass over
the base tables (`report.passes`): rows per capture and per table (violations: their occurrences, as a
row may stand for many), the towers with a port, the captures' rows, and per server, port or pipe
and interface the clients, binds and calls. A flood's million rows cost these counters, never a
whole table."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from analyzer.report.fold import Grouped, columns
from analyzer.report.source import Source, empty_table

_SERVICE = ["server_ip", "pipe_name", "server_port", "interface_name", "client_ip"]
_CAPTURE_COLUMNS = ["capture", "frames", "error", "truncated"]
_READS: dict[str, list[str]] = {
    "connections": ["capture"],
    "binds": ["capture", *_SERVICE, "ack_result"],
    "endpoints": ["capture", "port"],
    "calls": ["capture", *_SERVICE],
    "violations": ["capture", "occurrences"],
    "captures": _CAPTURE_COLUMNS,
}


class RunCounts:
    """The summary's figures as a fold (see the module docstring)."""

    def __init__(self) -> None:
        self.per: dict[str, Counter[Any]] = {t: Counter() for t in ("connections", "binds", "endpoints", "calls")}
        self.per["violations"] = Counter()
        self.ported = 0  # towers with a port
        self.occurrences = 0  # violations, every row its occurrences
        self._services: dict[tuple[str, str, str], list[Any]] = {}  # binds, accepted, calls, clients x2
        self._captures: list[pd.DataFrame] = []

    def wants(self, table: str) -> list[str] | None:
        return _READS.get(table)

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        if table == "captures":
            self._captures.append(chunk)
            return
        if table == "violations":
            for capture, n in zip(*columns(chunk, ["capture", "occurrences"]), strict=True):
                self.per["violations"][capture] += n or 0
                self.occurrences += n or 0
            return
        self.per[table].update(columns(chunk, ["capture"])[0])
        if table == "endpoints":
            self.ported += int(chunk["port"].notna().sum())
        elif table in ("binds", "calls"):
            self._service(table, chunk)

    def _service(self, table: str, chunk: pd.DataFrame) -> None:
        """A chunk's binds or calls per service, a group of rows alike at a time (`fold.Grouped`)."""
        per = self._services
        read = [*_SERVICE, "ack_result"] if table == "binds" else _SERVICE
        g = Grouped(chunk, read)
        for n, (server, pipe, port, name, client, *ack) in zip(g.sizes(), g.rows(read), strict=True):
            where = pipe if pipe is not None else None if port is None else str(port)
            if server is None or where is None or name is None:
                continue
            counts = per.get((server, where, name))
            if counts is None:
                counts = per[(server, where, name)] = [0, 0, 0, set(), set()]
            clients = counts[3 if ack else 4]
            if client is not None:
                clients.add(client)
            if ack:
                counts[0] += n
                counts[1] += n if ack[0] == "acceptance" else 0
            else:
                counts[2] += n

    def done(self, source: Source) -> None:
        pass

    def result(self) -> RunCounts:
        return self

    @property
    def captures(self) -> pd.DataFrame:
        """The captures' rows (their capture, frames, error and truncated columns)."""
        if not self._captures:
            return empty_table("captures", _CAPTURE_COLUMNS)
        return pd.concat(self._captures, ignore_index=True)

    def services(self) -> list[tuple[Any, ...]]:
        """Per server, port or pipe, and interface (all known): clients, binds, accepted items, calls;
        the most bound first, then the most called, then by server, port or pipe and interface."""
        per = self._services
        rows = [(*key, max(len(c[3]), len(c[4])), c[0], c[1], c[2]) for key, c in sorted(per.items())]
        return sorted(rows, key=lambda r: (-r[4], -r[6]))
