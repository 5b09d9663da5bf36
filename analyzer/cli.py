"""The command line: a thin layer over the library.

Library errors become one clear line on stderr and a non-zero exit here, and only here; nothing
below this module prints. Text from the wire is stripped of control characters before it reaches
the terminal.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from analyzer import __version__
from analyzer.terminal import printable, printable_lines

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
      rpc-analyzer hosts capture.pcapng --role server
      rpc-analyzer endpoints capture.pcapng
      rpc-analyzer report capture.pcapng -o report.html
      rpc-analyzer names svcctl
    """


@contextmanager
def _progress(paths: list[str], quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr (bytes and files) for long runs on a terminal; nothing otherwise."""
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
        task = bar.add_task(f"reading 1/{len(paths)} files", total=total)

        def update(done: int, files_done: int) -> None:
            bar.update(
                task, completed=done, description=f"reading {min(files_done + 1, len(paths))}/{len(paths)} files"
            )

        yield update


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, type=CAPTURE_PATHS)
@click.option(
    "-o",
    "--out",
    "out_dir",
    default="rpc-analyzer-out",
    show_default=True,
    type=click.Path(),  # not a directory: checked below, to say so in those words
    help="Directory for the tables (binds, endpoints, calls, connections, hosts, violations, captures) and "
    "the views (endpoint_inventory, timeline, matrix, data_quality), and attempts (connection attempts "
    "that carried no PDU).",
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
    """Analyse CAPTURES (pcap, pcapng or NetMon files, .gz too, directories or globs) and write the tables.

    Files of one series (ring buffers, splits: same directory and name but for digits) are read as one
    capture session, merged by timestamp where they overlap.

    \b
    Example:
      rpc-analyzer analyze incident.pcapng more/ -o out/
      rpc-analyzer analyze ring-*.pcap.gz -o out/ --format parquet
    """
    _load_names(names_file)
    from analyzer.manifest import MANIFEST, Digests, foreign_files, hash_in_background, utc_now

    started = utc_now()
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        _err(f"{out_dir}: not a directory")
        sys.exit(EXIT_USAGE)
    before = foreign_files(out_dir)
    hashing: list[Callable[[], Digests]] = []
    result = _read_captures(captures, quiet, lambda paths: hashing.append(hash_in_background(paths)))
    result.started = started
    result.input_digests = hashing[0]() if hashing else None
    params = {"command": "analyze", "captures": list(captures), "out": out_dir, "format": fmt}
    try:
        written = result.write(out_dir, fmt, arguments={**params, "names": names_file})
    except OSError as e:
        why = "not a directory" if e.errno in (errno.ENOTDIR, errno.EEXIST) else e.strerror or str(e)
        _err(f"{out_dir}: cannot write: {why}")
        sys.exit(EXIT_INPUT_ERROR)
    left = sorted(before - {p.name for p in written} - {MANIFEST})
    if left:
        _err(
            f"warning: {out_dir} also holds files this run did not write (an earlier run's?): {', '.join(left)}; "
            f"{MANIFEST} lists this run's"
        )
    if not quiet:
        from analyzer.summary import print_summary

        print_summary(result, Path(out_dir), fmt)
    if result.errors:
        sys.exit(EXIT_INPUT_ERROR)


NAMES_EXIT_CODES_HELP = """\b
Exit codes:
  0  something matched (or the whole table was printed)
  1  nothing matches QUERY
  2  the command line is wrong (or the --names file cannot be read)
"""


@main.command(epilog=NAMES_EXIT_CODES_HELP)
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
        import io

        from analyzer.output import LINE_TERMINATOR, neutralise

        fields = [f.name for f in dataclasses.fields(q.NameRow)]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator=LINE_TERMINATOR)  # the tables' CSV: names may come from --names
        w.writerow(fields)
        for r in rows:
            w.writerow(
                ["" if v is None else neutralise(v) if isinstance(v, str) else v for v in dataclasses.astuple(r)]
            )
        _echo_csv(buf.getvalue())
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
            click.echo(printable(f"{r.uuid} v{r.version or '?'}  {r.name}{spec}{provider}"))
        if r.opnum is not None:
            click.echo(printable(f"    {r.opnum:>4}  {r.operation}"))


def _read_captures(
    captures: tuple[str, ...], quiet: bool, while_reading: Callable[[list[str]], None] | None = None
) -> AnalysisResult:
    """Analyse the captures for a reporting command: exit 3 when there is no file, one line per bad file.
    `while_reading(paths)` is called in this process while a child reads them (after the fork)."""
    from analyzer.capture.source import expand_paths

    files = expand_paths(captures)
    if not files:
        _err("no capture files found in " + ", ".join(captures))
        sys.exit(EXIT_NO_INPUT)
    from analyzer.limits import DEFAULT_LIMITS
    from analyzer.parallel import read_in_child

    def warm_up() -> None:
        """What the tables need, loaded while the captures are read: pandas and the name registry."""
        from analyzer import api, registry

        registry.interface_name("e1af8308-5d1f-11c9-91a4-08002b14a0fa")
        del api
        if while_reading is not None:
            while_reading(paths)

    paths = [p for p, _ in files]
    records = read_in_child(paths, DEFAULT_LIMITS, lambda: _progress(paths, quiet), warm_up)
    from analyzer.api import from_records

    result = from_records(records)
    for line in result.errors:
        _err(line)
    return result


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


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, type=CAPTURE_PATHS)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv"]),
    default="text",
    show_default=True,
    help="text: grouped by server, in the layout of portqry -e 135 / rpcdump; csv: the endpoint_inventory table.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; errors are still printed.")
@names_option
def endpoints(captures: tuple[str, ...], fmt: str, quiet: bool, names_file: str | None) -> None:
    """List the RPC endpoints each server offered, rebuilt passively from CAPTURES.

    What `portqry -e 135` or `rpcdump` would have listed (UUID, name, protocol, port or pipe,
    annotation), from the endpoint mapper's answers and the binds and calls seen, each marked
    announced-only, announced-and-used or used-without-announcement.

    \b
    Example:
      rpc-analyzer endpoints incident.pcapng
      rpc-analyzer endpoints captures/ --format csv > inventory.csv
    """
    _load_names(names_file)
    result = _read_captures(captures, quiet)
    from analyzer import views

    if fmt == "csv":
        from analyzer.output import csv_text

        _echo_csv(csv_text(result.endpoint_inventory, views.ENDPOINT_INVENTORY))
    else:
        _echo_lines(views.inventory_text(result.endpoint_inventory))
    if result.errors:
        sys.exit(EXIT_INPUT_ERROR)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, type=CAPTURE_PATHS)
@click.option(
    "--role",
    type=click.Choice(["server", "client"]),
    default=None,
    help="Only hosts seen in this role (default: both).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv"]),
    default="text",
    show_default=True,
    help="text: one block per host with the services negotiated; csv: the hosts table.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; errors are still printed.")
@names_option
def hosts(captures: tuple[str, ...], role: str | None, fmt: str, quiet: bool, names_file: str | None) -> None:
    """Show, per host, the RPC services it offered (server) or negotiated (client) in CAPTURES.

    As a server: interfaces and specifications, transports, ports and pipes, the dynamic port range,
    clients, binds, calls, faults and rejections, auth levels, first and last seen. As a client: the
    same from its side. Each block ends with the services negotiated per peer: interface, port or
    pipe, counts and the identities used.

    \b
    Example:
      rpc-analyzer hosts incident.pcapng
      rpc-analyzer hosts captures/ --role server
      rpc-analyzer hosts captures/ --format csv > hosts.csv
    """
    _load_names(names_file)
    result = _read_captures(captures, quiet)
    if fmt == "csv":
        from analyzer.output import csv_text
        from analyzer.report import HOSTS

        table = result.hosts if role is None else result.hosts[result.hosts["role"] == role]
        _echo_csv(csv_text(table, HOSTS))
    else:
        _echo_lines(result.hosts_text(role))
    if result.errors:
        sys.exit(EXIT_INPUT_ERROR)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, type=CAPTURE_PATHS)
@click.option(
    "-o",
    "--out",
    "out_file",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The HTML file to write.",
)
@click.option("--title", default="RPC traffic report", show_default=True, help="Title of the report.")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Also list ncalrpc (local) endpoints in the inventory; left out by default, as the network cannot reach them.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no closing line; errors are still printed.")
@names_option
def report(
    captures: tuple[str, ...], out_file: str, title: str, show_all: bool, quiet: bool, names_file: str | None
) -> None:
    """Write a self-contained HTML report of CAPTURES that opens offline.

    Summary, services negotiated between hosts, per-host tables (servers and clients), the endpoint
    inventory, plots (activity timeline, host x interface heat map, dynamic ports) and what the
    capture did not show. One file, no scripts, nothing fetched.

    \b
    Example:
      rpc-analyzer report incident.pcapng -o report.html
      rpc-analyzer report captures/ -o weekly.html --title "Port 135 review, week 12"
    """
    _load_names(names_file)
    result = _read_captures(captures, quiet)
    page = result.html(title, include_local=show_all)
    try:
        Path(out_file).write_text(page, encoding="utf-8")
    except OSError as e:
        _err(f"{out_file}: cannot write: {e.strerror or e}")
        sys.exit(EXIT_INPUT_ERROR)
    if not quiet:
        click.echo(
            f"{len(result.captures)} capture(s), {len(result.hosts)} host roles, "
            f"{len(result.endpoint_inventory)} endpoints, {len(result.calls)} calls -> {printable(out_file)}"
        )
    if result.errors:
        sys.exit(EXIT_INPUT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    main()
