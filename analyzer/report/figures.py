"""What the HTML report reads of the base tables, folded from a `Source`'s chunks: the captures (one
row per file), row counts, the run's figures, the non-pipe connections per server and port (for the
dynamic-ports plot; bounded by the servers' ports), and the first violations (the report shows a few
hundred; the CSVs hold them all). No whole binds, calls or connections frame is held."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from analyzer.report.fold import columns
from analyzer.report.passes import fold
from analyzer.report.source import Source, empty_table
from analyzer.report.tables import SCHEMAS

VIOLATIONS_SHOWN = 200  # violations rows in the report

Port = tuple[str | None, int | None]


@dataclass
class Figures:
    """The report's figures of one run (see the module docstring)."""

    captures: pd.DataFrame
    rows: Counter[str] = field(default_factory=Counter)  # per table
    accepted: int = 0  # bind items accepted
    faults: int = 0
    encrypted: int = 0  # calls with an encrypted stub
    occurrences: int = 0  # violations, a row standing for its occurrences
    per_port: Counter[Port] = field(default_factory=Counter)  # non-pipe connections per server and port
    violations: pd.DataFrame = field(default_factory=lambda: empty_table("violations"))  # the first rows

    @property
    def dynamic_connections(self) -> int:
        """Connections (TCP, UDP, HTTP; not pipes) to a server port of 1024 or above."""
        return sum(n for (_, port), n in self.per_port.items() if port is not None and port >= 1024)


_READS: dict[str, list[str]] = {
    "connections": ["transport", "server_ip", "server_port"],
    "binds": ["ack_result"],
    "calls": ["fault_code", "encrypted"],
    "endpoints": ["capture"],
    "violations": list(SCHEMAS["violations"]),
    "captures": list(SCHEMAS["captures"]),
}


class FiguresFold:
    """The figures as a fold of the one pass over the base tables (`report.passes`)."""

    def __init__(self) -> None:
        self.fig = Figures(empty_table("captures"))
        self._captures: list[pd.DataFrame] = []
        self._shown: list[pd.DataFrame] = []

    def wants(self, table: str) -> list[str] | None:
        return _READS.get(table)

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        fig = self.fig
        if table == "captures":
            self._captures.append(chunk)
            return
        fig.rows[table] += len(chunk)
        if table == "connections":
            for transport, server, port in zip(*columns(chunk, _READS["connections"]), strict=True):
                if transport is not None and transport != "ncacn_np":  # a transport, and not a pipe
                    fig.per_port[(server, port)] += 1
        elif table == "binds":
            fig.accepted += int((chunk["ack_result"] == "acceptance").sum())
        elif table == "calls":
            fig.faults += int(chunk["fault_code"].notna().sum())
            fig.encrypted += int(chunk["encrypted"].fillna(False).astype(bool).sum())
        elif table == "violations":
            fig.occurrences += int(chunk["occurrences"].sum())
            if sum(map(len, self._shown)) < VIOLATIONS_SHOWN:
                self._shown.append(chunk.head(VIOLATIONS_SHOWN).astype(SCHEMAS["violations"]))

    def done(self, source: Source) -> None:
        fig = self.fig
        if self._captures:
            fig.captures = pd.concat(self._captures, ignore_index=True)
        if self._shown:
            fig.violations = pd.concat(self._shown, ignore_index=True).head(VIOLATIONS_SHOWN)

    def result(self) -> Figures:
        return self.fig


def figures(source: Source) -> Figures:
    """The figures of the run behind `source`."""
    made = FiguresFold()
    fold(source, made)
    return made.fig
