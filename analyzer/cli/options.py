"""What the commands share: exit codes, the options several commands take, and the loaders of the
user's files (names, findings rules, Sigma rules), which turn a bad file into a usage error."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from analyzer.report.terminal import printable

if TYPE_CHECKING:
    from analyzer.api import AnalysisResult

EXIT_OK = 0
EXIT_INPUT_ERROR = 1  # at least one input could not be read (the others were analysed)
EXIT_USAGE = 2  # bad command line (click's own code)
EXIT_NO_INPUT = 3  # nothing to analyse: no capture file found

EXIT_CODES_HELP = """\b
Exit codes:
  0  every input was read (a truncated file still counts as read: see violations.csv)
  1  at least one input could not be read; the others were analysed and written
  2  the command line is wrong
  3  no capture file was found in the paths given
"""

F = TypeVar("F", bound=Callable[..., Any])

# Capture paths are checked when they are read, not by click: an unreadable or non-regular capture is
# an input error (exit 1, with the other files analysed), not a bad command line (exit 2).
CAPTURE_PATHS = click.Path(readable=False)


def err(message: str) -> None:
    click.echo(f"rpc-analyzer: {printable(message)}", err=True)


def format_option(choices: list[str], default: str, help: str) -> Callable[[F], F]:
    """--format FMT, one of `choices`."""
    return click.option("--format", "fmt", type=click.Choice(choices), default=default, show_default=True, help=help)


def quiet_option(help: str = "No progress bar; errors are still printed.") -> Callable[[F], F]:
    return click.option("-q", "--quiet", is_flag=True, help=help)


def sigma_option(help: str) -> Callable[[F], F]:
    """--sigma PATH (repeatable): Sigma rule files or directories."""
    return click.option("--sigma", "sigma_paths", multiple=True, type=click.Path(exists=True), help=help)


def exit_if_errors(result: AnalysisResult) -> None:
    """Exit 1 when an input could not be read (each was named on stderr as it was read)."""
    if result.errors:
        sys.exit(EXIT_INPUT_ERROR)


def names_option(f: F) -> F:
    return click.option(
        "--names",
        "names_file",
        type=click.Path(dir_okay=False, exists=True),
        help="CSV of your own interface/operation names (uuid,version,name,spec,provider,opnum,operation); "
        "they win over the shipped registry. Also read automatically: $RPC_ANALYZER_NAMES, "
        "else ~/.config/rpc-analyzer/names.csv.",
    )(f)


def rules_option(f: F) -> F:
    return click.option(
        "--rules",
        "rules_files",
        multiple=True,
        type=click.Path(dir_okay=False, exists=True),
        help="A tab-separated file of your own findings rules (the columns of analyzer/findings/rules.tsv); a "
        "row with a shipped rule's id replaces it, kind 'off' switches it off. Repeatable.",
    )(f)


JOBS = "rpc_analyzer.jobs"  # click context meta keys: what `reading` needs from the command line
SCHEDULER = "rpc_analyzer.scheduler"
NAMES = "rpc_analyzer.names"


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        ctx.meta[key] = value
        return value

    return callback


def jobs_options(f: F) -> F:
    """--jobs and --scheduler: where the captures are read (kept in the click context for `reading`)."""
    f = click.option(
        "--scheduler",
        metavar="ADDRESS",
        expose_value=False,
        callback=_remember(SCHEDULER),
        help="Read the capture sessions on a Dask cluster (tcp://HOST:8786): its workers must reach the "
        "captures at the same paths. With --format parquet each table is a dataset of one part per session.",
    )(f)
    return click.option(
        "-j",
        "--jobs",
        type=click.IntRange(min=1),
        expose_value=False,
        callback=_remember(JOBS),
        help="Worker processes reading the captures, one capture session each [default: every core from "
        "three cores on, from 16 MB of input in files of 4 MB on average; on two cores one reading process, "
        "whose input hashing and the tables take the other core]. Unless it is 1 (one process for everything), "
        "the views are also written in a second process beside the base tables wherever two cores are usable, "
        "whatever the input's size. The records and the files are the same either way.",
    )(f)


def load_rules(rules_files: tuple[str, ...]) -> None:
    """Check the user's rule files before any capture is read: a bad one is a usage error."""
    if rules_files:
        from analyzer import findings

        try:
            findings.load_rules(rules_files)
        except ValueError as e:
            err(str(e))
            sys.exit(EXIT_USAGE)


def load_sigma(paths: tuple[str, ...]) -> list[Any] | None:
    """The Sigma rules in paths converted for our tables (None without paths); a rule pySigma cannot
    convert is named on stderr and skipped; an unreadable rule set exits with a usage error."""
    if not paths:
        return None
    from analyzer.findings import sigma

    try:
        converted, errors = sigma.convert(sigma.load(paths))
    except ValueError as e:
        err(str(e))
        sys.exit(EXIT_USAGE)
    for line in errors:
        err(line)
    return list(converted)


def add_sigma(result: AnalysisResult, converted: list[Any]) -> None:
    """Sigma matches join the findings (computed first, so they are there when written)."""
    from analyzer.findings import sigma

    result.add_findings(sigma.evaluate(converted, result.calls, result.connections))


def load_names(names_file: str | None) -> None:
    if names_file:
        from analyzer import registry

        click.get_current_context().meta[NAMES] = names_file
        try:
            registry.load_overrides(names_file)
        except (OSError, ValueError) as e:
            err(str(e))
            sys.exit(EXIT_USAGE)
