"""What the commands put on stdout, in one place: CSV byte for byte when piped, and on a terminal
nothing from the wire but printable text (`report.terminal`). Also the one way a command reads its
captures, so that tests can replace it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from analyzer.report.terminal import printable, printable_lines

if TYPE_CHECKING:
    from analyzer.api import AnalysisResult


def read_captures(captures: tuple[str, ...], quiet: bool) -> AnalysisResult:
    """The analysis of the captures for a command (see `reading.read_captures`)."""
    from analyzer.cli.reading import read_captures

    return read_captures(captures, quiet)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def echo_csv(text: str) -> None:
    """A table as CSV on stdout: byte for byte the file's when piped; on a terminal, each record on a
    line with every control character (a CR or LF inside a quoted cell included) as '?', so no wire
    bytes reach the terminal."""
    if stdout_is_terminal():
        text = printable_lines(text.replace("\r\n", "\n").removesuffix("\n")) + "\n"
    click.echo(text, nl=False)


def echo_lines(text: str) -> None:
    """Text for the terminal, each line stripped of control characters that came off the wire."""
    for line in text.splitlines():
        click.echo(printable(line))


def echo_findings(rendered: str, fmt: str) -> None:
    """Findings on stdout (`findings.text.render_findings`): CSV through `echo_csv`, so that a
    terminal gets no wire bytes, text line by line."""
    if fmt == "csv":
        echo_csv(rendered)
    else:
        echo_lines(rendered)
