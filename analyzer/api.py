"""The Python API: `analyze(paths)` -> `AnalysisResult`, one DataFrame per table."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import pandas as pd

from analyzer import report
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.output import write_tables
from analyzer.pipeline import Pipeline, Progress, Records


@dataclass
class AnalysisResult:
    """What a run found. Every table is a DataFrame with explicit dtypes (see `report.SCHEMAS`
    and the column dictionary in the README); a table with no rows still has its columns.

    Attributes:
        binds: one row per presentation-context item of every bind and alter_context.
        endpoints: one row per tower in every endpoint-mapper response.
        calls: one row per request, with what answered it.
        connections: one row per DCE/RPC transport conversation.
        hosts: per host and role (client or server): the services negotiated.
        violations: everything malformed, inconsistent or capped.
        captures: one row per input file, with the error that stopped it, if any.
        records: the raw records the tables were built from.
    """

    binds: pd.DataFrame
    endpoints: pd.DataFrame
    calls: pd.DataFrame
    connections: pd.DataFrame
    hosts: pd.DataFrame
    violations: pd.DataFrame
    captures: pd.DataFrame
    records: Records

    @property
    def tables(self) -> report.Tables:
        return report.Tables(
            self.binds,
            self.endpoints,
            self.calls,
            self.connections,
            self.hosts,
            self.violations,
            self.captures,
        )

    @property
    def errors(self) -> list[str]:
        """One line per input file that could not be read: '<file>: <why>'."""
        return [f"{c.path}: {c.error}" for c in self.records.captures if c.error]

    def write(self, out_dir: str | PathLike[str], fmt: str = "csv") -> list[Path]:
        """Write every table to out_dir as CSV (default), JSON lines or Parquet."""
        return write_tables(self.tables, out_dir, fmt)


def from_records(records: Records) -> AnalysisResult:
    t = report.build(records)
    return AnalysisResult(t.binds, t.endpoints, t.calls, t.connections, t.hosts, t.violations, t.captures, records)


def analyze(
    paths: str | PathLike[str] | Iterable[str | PathLike[str]],
    *,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> AnalysisResult:
    """Analyse capture files and directories (pcap, pcapng, NetMon 2.x, optionally gzip-compressed).

    Files that cannot be read do not raise: they appear in `captures` with their `error`, and in
    `errors`. Everything read before a truncated file's cut is kept.

        >>> result = analyze(["samples/pcaps"])          # doctest: +SKIP
        >>> result.binds[["client_ip", "server_ip", "interface_name", "ack_result"]]  # doctest: +SKIP
    """
    if isinstance(paths, str | PathLike):
        paths = [paths]
    pipeline = Pipeline(limits)
    records = pipeline.run([str(p) for p in paths], progress)
    return from_records(records)
