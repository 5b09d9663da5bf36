"""The command line: a thin layer over the library, one module per command group.

Library errors become one clear line on stderr and a non-zero exit here, and only here; nothing
below this package prints. Text from the wire is stripped of control characters before it reaches
the terminal.

Owns: `app` (the `rpc-analyzer` group), `options` (exit codes, shared options, loading the user's
files), `progress` (the progress bar), `reading` (captures -> result), and the commands:
`analyze_cmd`, `views_cmd` (endpoints, hosts), `report_cmd` (report, firewall), `findings_cmd`
(findings, sigma), `names_cmd`, `live_cmd`. The top of the package layering: it may import any
`analyzer` module; nothing in `analyzer` imports it.

The output helpers below are looked up here, through the package, by every command, so that one
place decides what reaches stdout (tests replace `_stdout_is_terminal` and `_read_captures`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from analyzer.cli.app import main
from analyzer.report.terminal import printable, printable_lines

if TYPE_CHECKING:
    from analyzer.api import AnalysisResult

__all__ = ["main", "printable"]


def _read_captures(
    captures: tuple[str, ...], quiet: bool, while_reading: Callable[[list[str]], None] | None = None
) -> AnalysisResult:
    """The analysis of the captures for a command (see `reading.read_captures`)."""
    from analyzer.cli.reading import read_captures

    return read_captures(captures, quiet, while_reading)


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def _echo_csv(text: str) -> None:
    """A table as CSV on stdout: byte for byte the file's when piped; on a terminal, each record on a
    line with every control character (a CR or LF inside a quoted cell included) as '?', so no wire
    bytes reach the terminal."""
    if _stdout_is_terminal():
        text = printable_lines(text.replace("\r\n", "\n").removesuffix("\n")) + "\n"
    click.echo(text, nl=False)


def _echo_lines(text: str) -> None:
    """Text for the terminal, each line stripped of control characters that came off the wire."""
    for line in text.splitlines():
        click.echo(printable(line))


def _echo_findings(rendered: str, fmt: str) -> None:
    """Findings on stdout (`findings.text.render_findings`): CSV through `_echo_csv`, so that a
    terminal gets no wire bytes, text line by line."""
    if fmt == "csv":
        _echo_csv(rendered)
    else:
        _echo_lines(rendered)


# The commands register themselves on `main` when imported.
from analyzer.cli import (  # noqa: E402, F401
    analyze_cmd,
    findings_cmd,
    live_cmd,
    names_cmd,
    report_cmd,
    views_cmd,
)
