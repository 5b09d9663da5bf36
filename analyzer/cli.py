"""The command line: a thin layer over the library.

Library errors become one clear line on stderr and a non-zero exit here, and only here; nothing
below this module prints. Text from the wire is stripped of control characters before it reaches
the terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import click

from analyzer import __version__

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


def printable(text: object) -> str:
    """Text safe for a terminal: control characters from the wire become '?'."""
    s = str(text)
    return "".join(ch if ch.isprintable() else "?" for ch in s)


def _err(message: str) -> None:
    click.echo(f"rpc-analyzer: {printable(message)}", err=True)


def names_option(f: F) -> F:
    return click.option(
        "--names",
        "names_file",
        type=click.Path(dir_okay=False, exists=True),
        help="CSV of your own interface/operation names (uuid,version,name,spec,provider,opnum,operation); "
        "they win over the shipped registry. Also read automatically: $RPC_ANALYZER_NAMES, "
        "else ~/.config/rpc-analyzer/names.csv.",
    )(f)


def _load_names(names_file: str | None) -> None:
    if names_file:
        from analyzer import registry

        try:
            registry.load_overrides(names_file)
        except (OSError, ValueError) as e:
            _err(str(e))
            sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="rpc-analyzer")
def main() -> None:
    """Passive analyzer for Microsoft RPC (DCE/RPC) traffic in Wireshark/tcpdump captures.

    Which RPC services were negotiated, between which hosts, over which ports: every bind and
    its answer, every endpoint the endpoint mapper (TCP 135) announced with its dynamic port,
    the connections that used those ports, the calls made, and a per-host view.

    \b
    Example:
      rpc-analyzer analyze capture.pcapng -o out/
      rpc-analyzer names svcctl
    """


@contextmanager
def _progress(paths: list[str], quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """A byte-based progress bar on stderr for long runs on a terminal; nothing otherwise."""
    total = 0
    for p in paths:
        with suppress(OSError):
            total += os.path.getsize(p)
    if quiet or total < 20_000_000 or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("reading", total=total)

        def update(done: int) -> None:
            bar.update(task, completed=done)

        yield update


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--out",
    "out_dir",
    default="rpc-analyzer-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory for the tables (binds, endpoints, calls, connections, hosts, violations, captures).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    default="csv",
    show_default=True,
    help="File format of the tables.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary; errors are still printed.")
@names_option
def analyze(captures: tuple[str, ...], out_dir: str, fmt: str, quiet: bool, names_file: str | None) -> None:
    """Analyse CAPTURES (pcap, pcapng or NetMon files, .gz too, or directories) and write the tables.

    \b
    Example:
      rpc-analyzer analyze incident.pcapng more/ -o out/
      rpc-analyzer analyze ring-*.pcap.gz -o out/ --format parquet
    """
    _load_names(names_file)
    from analyzer.capture.source import expand_paths

    files = expand_paths(captures)
    if not files:
        _err("no capture files found in " + ", ".join(captures))
        sys.exit(EXIT_NO_INPUT)
    import analyzer

    paths = [p for p, _ in files]
    with _progress(paths, quiet) as progress:
        result = analyzer.analyze(paths, progress=progress)
    for line in result.errors:
        _err(line)
    try:
        result.write(out_dir, fmt)
    except OSError as e:
        _err(f"{out_dir}: cannot write: {e.strerror or e}")
        sys.exit(EXIT_INPUT_ERROR)
    if not quiet:
        from analyzer.summary import print_summary

        print_summary(result, Path(out_dir), fmt)
    if result.errors:
        sys.exit(EXIT_INPUT_ERROR)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("query", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv"]),
    default="text",
    show_default=True,
    help="text: a readable list; csv: one row per interface operation (the whole table with no QUERY).",
)
@names_option
def names(query: str | None, fmt: str, names_file: str | None) -> None:
    """Look up interfaces and operations by UUID, name, named pipe or specification.

    \b
    Example:
      rpc-analyzer names svcctl
      rpc-analyzer names 367abb81
      rpc-analyzer names '\\pipe\\samr'
      rpc-analyzer names MS-DRSR
      rpc-analyzer names --format csv > registry.csv
    """
    _load_names(names_file)
    from analyzer.registry import query as q

    if query is None and fmt == "text":
        _err("give a QUERY, or --format csv for the whole table")
        sys.exit(EXIT_USAGE)
    rows = q.all_rows() if query is None else q.search(query)
    if fmt == "csv":
        import csv
        import dataclasses

        fields = [f.name for f in dataclasses.fields(q.NameRow)]
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(fields)
        for r in rows:
            w.writerow(["" if v is None else v for v in dataclasses.astuple(r)])
        return
    if not rows:
        _err(f"nothing matches {query!r}")
        sys.exit(EXIT_INPUT_ERROR)
    current = None
    for r in rows:
        head = (r.uuid, r.version)
        if head != current:
            current = head
            spec = f" {r.spec}" if r.spec else ""
            provider = f" ({r.provider})" if r.provider else ""
            click.echo(f"{r.uuid} v{r.version or '?'}  {r.name}{spec}{provider}")
        if r.opnum is not None:
            click.echo(f"    {r.opnum:>4}  {r.operation}")


if __name__ == "__main__":  # pragma: no cover
    main()
