"""The short summary the CLI prints after a run: what was read, what was found, where it went.

Its figures are the run's `report.counts`, folded in the one pass over the base tables
(`report.passes`): rows per capture and per table, and per server, port or pipe and interface the
clients, binds and calls; so a flood's million rows cost their counters, never a whole table.

Every cell reaches rich as a `Text` (see analyzer.report.terminal), so a pipe or file name is printed as it
is, never read as markup. On a terminal the tables fit its width; piped or redirected, nothing is
squeezed to rich's default of 80 columns: the console is as wide as the longest line needs.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Protocol

import pandas as pd
from rich.console import Console
from rich.table import Table

from analyzer.report.counts import RunCounts
from analyzer.report.terminal import plain_text


class RunTables(Protocol):
    """What the summary reads: the run's counts (`report.counts`) and the findings (an
    `analyzer.AnalysisResult`)."""

    @property
    def counts(self) -> RunCounts: ...
    @property
    def findings(self) -> pd.DataFrame: ...


# Wide enough for any row of these tables; rich only uses what the content needs.
PIPED_WIDTH = 1000


def display_names(captures: Iterable[str]) -> dict[str, str]:
    """Each capture's short name: its file name, or, when several inputs share a file name (eleven
    `input.pcap` from one test-suite tree), its path relative to the directory all inputs share."""
    names = list(dict.fromkeys(captures))
    counts = Counter(PurePath(n).name for n in names)
    if all(c == 1 for c in counts.values()):
        return {n: PurePath(n).name for n in names}
    try:
        common = os.path.commonpath(names) if len(names) > 1 else ""
    except ValueError:  # absolute and relative paths mixed
        common = ""
    out = {}
    for n in names:
        short = PurePath(n).name
        if counts[short] > 1:
            short = os.path.relpath(n, common) if common else n
        out[n] = short
    return out


def _console() -> Console:
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=PIPED_WIDTH)
    return console


def _print_findings(findings: pd.DataFrame, out_dir: Path, fmt: str, console: Console) -> None:
    """The findings count by severity, and the most severe few (`rpc-analyzer findings` shows them all)."""
    if findings.empty:
        console.print(plain_text(f"0 findings -> {out_dir}/findings.{fmt}"))
        return
    counts = findings["severity"].value_counts()
    order = ("critical", "high", "medium", "low", "info")
    by = ", ".join(f"{int(counts[s])} {s}" for s in order if s in counts)
    console.print(plain_text(f"{len(findings)} findings ({by}) -> {out_dir}/findings.{fmt}"))
    for r in findings.head(5).itertuples(index=False):
        console.print(plain_text(f"  {r.severity}: {r.technique} {r.title} ({r.client_ip} -> {r.server_ip})"))


def print_summary(result: RunTables, out_dir: Path, fmt: str, console: Console | None = None) -> None:
    console = console or _console()
    counted = result.counts
    caps, per = counted.captures, counted.per

    t = Table(title="Captures", title_justify="left", show_edge=False)
    for col in ("capture", "frames", "RPC conns", "binds", "EPM towers", "calls", "violations", "status"):
        t.add_column(col, justify="right" if col not in ("capture", "status") else "left")
    shown = display_names(caps["capture"].astype(str))
    for _, c in caps.iterrows():
        name = c["capture"]
        status = f"error: {c['error']}" if not pd.isna(c["error"]) else "truncated" if bool(c["truncated"]) else "ok"
        t.add_row(
            plain_text(shown[str(name)]),
            str(c["frames"]),
            *(str(per[table][name]) for table in ("connections", "binds", "endpoints", "calls", "violations")),
            plain_text(status),
        )
    console.print(t)

    services = counted.services()
    if services:
        s = Table(title="Services negotiated", title_justify="left", show_edge=False)
        for col in ("server", "port/pipe", "interface", "clients", "binds", "accepted", "calls"):
            s.add_column(col, justify="right" if col in ("clients", "binds", "accepted", "calls") else "left")
        for row in services[:25]:
            s.add_row(*(plain_text(v) for v in row))
        console.print(s)
        if len(services) > 25:
            console.print(plain_text(f"... and {len(services) - 25} more: see hosts.{fmt} and binds.{fmt}"))
    _print_findings(result.findings, out_dir, fmt, console)
    rows = {table: sum(counted.values()) for table, counted in per.items() if table != "violations"}
    console.print(
        plain_text(
            f"{rows['binds']} context items bound, {rows['endpoints']} EPM towers ({counted.ported} with ports), "
            f"{rows['calls']} calls, {rows['connections']} RPC connections, {counted.occurrences} violations -> "
            f"{out_dir}/*.{fmt}"
        )
    )
