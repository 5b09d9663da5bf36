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
from analyzer.report.terminal import printable, printable_lines

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


def rules_option(f: F) -> F:
    return click.option(
        "--rules",
        "rules_files",
        multiple=True,
        type=click.Path(dir_okay=False, exists=True),
        help="A tab-separated file of your own findings rules (the columns of analyzer/findings/rules.tsv); a "
        "row with a shipped rule's id replaces it, kind 'off' switches it off. Repeatable.",
    )(f)


def _load_rules(rules_files: tuple[str, ...]) -> None:
    """Check the user's rule files before any capture is read: a bad one is a usage error."""
    if rules_files:
        from analyzer import findings

        try:
            findings.load_rules(rules_files)
        except ValueError as e:
            _err(str(e))
            sys.exit(EXIT_USAGE)


def _load_sigma(paths: tuple[str, ...]) -> list[Any] | None:
    """The Sigma rules in paths converted for our tables (None without paths); a rule pySigma cannot
    convert is named on stderr and skipped; an unreadable rule set exits with a usage error."""
    if not paths:
        return None
    from analyzer.findings import sigma

    try:
        converted, errors = sigma.convert(sigma.load(paths))
    except ValueError as e:
        _err(str(e))
        sys.exit(EXIT_USAGE)
    for line in errors:
        _err(line)
    return list(converted)


def _add_sigma(result: AnalysisResult, converted: list[Any]) -> None:
    """Sigma matches join the findings (computed first, so they are there when written)."""
    from analyzer.findings import sigma

    result.add_findings(sigma.evaluate(converted, result.calls, result.connections))


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
      rpc-analyzer analyze capture.pcapng -o zeek/ --format zeek
      rpc-analyzer hosts capture.pcapng --role server
      rpc-analyzer endpoints capture.pcapng
      rpc-analyzer report capture.pcapng -o report.html
      rpc-analyzer firewall capture.pcapng --format md
      sudo rpc-analyzer live -i eth0 --rotate-seconds 300
      rpc-analyzer findings capture.pcapng
      rpc-analyzer sigma sigma/rules/network/zeek/ capture.pcapng
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
    type=click.Choice(["csv", "jsonl", "parquet", "zeek", "zeek-json"]),
    default="csv",
    show_default=True,
    help="File format of the tables; zeek (TSV) or zeek-json write Zeek-compatible logs instead: dce_rpc.log "
    "exactly as Zeek writes it, and dce_rpc_ext.log, dce_rpc_bind.log, dce_rpc_conn.log (and "
    "rpc_findings.log) joined on uid.",
)
@click.option(
    "--all-calls",
    is_flag=True,
    help="With --format zeek/zeek-json: every call in dce_rpc.log, not only the answered calls Zeek would log.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary; errors are still printed.")
@names_option
@rules_option
@click.option(
    "--sigma",
    "sigma_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Sigma rules (a .yml file or a directory of them, zeek dce_rpc or rpc_firewall logsources) to run "
    "with pySigma; their matches are added to findings.csv. Repeatable.",
)
def analyze(
    captures: tuple[str, ...],
    out_dir: str,
    fmt: str,
    all_calls: bool,
    quiet: bool,
    names_file: str | None,
    rules_files: tuple[str, ...],
    sigma_paths: tuple[str, ...],
) -> None:
    """Analyse CAPTURES (pcap, pcapng or NetMon files, .gz too, directories or globs) and write the tables,
    the views and findings.csv (what looks like an attack; see `rpc-analyzer findings`).

    Files of one series (ring buffers, splits: same directory and name but for digits) are read as one
    capture session, merged by timestamp where they overlap.

    \b
    Example:
      rpc-analyzer analyze incident.pcapng more/ -o out/
      rpc-analyzer analyze ring-*.pcap.gz -o out/ --format parquet
      rpc-analyzer analyze incident.pcapng -o zeek/ --format zeek    # dce_rpc.log + companions
      rpc-analyzer analyze incident.pcapng --rules my_rules.tsv --sigma sigma/rules/network/zeek/
    """
    _load_names(names_file)
    _load_rules(rules_files)
    sigma_rules = _load_sigma(sigma_paths)
    from analyzer.report.manifest import MANIFEST, Digests, foreign_files, hash_in_background, utc_now

    started = utc_now()
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        _err(f"{out_dir}: not a directory")
        sys.exit(EXIT_USAGE)
    before = foreign_files(out_dir)
    hashing: list[Callable[[], Digests]] = []
    result = _read_captures(captures, quiet, lambda paths: hashing.append(hash_in_background(paths)))
    result.started = started
    result.input_digests = hashing[0]() if hashing else None
    result.rule_files = rules_files
    if sigma_rules is not None:
        _add_sigma(result, sigma_rules)
    params = {"command": "analyze", "captures": list(captures), "out": out_dir, "format": fmt}
    try:
        written = result.write(
            out_dir,
            fmt,
            all_calls,
            arguments={
                **params,
                "names": names_file,
                "all_calls": all_calls,
                "rules": list(rules_files),
                "sigma": list(sigma_paths),
            },
        )
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
    if fmt.startswith("zeek"):
        if not quiet:
            logs = ", ".join(p.name for p in written) or "no log (no DCE/RPC call or bind)"
            click.echo(f"{len(result.calls)} calls, {len(result.binds)} binds -> {printable(out_dir)}: {logs}")
    elif not quiet:
        from analyzer.report.summary import print_summary

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

        from analyzer.report.output import LINE_TERMINATOR, neutralise

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


def _echo_findings(rendered: str, fmt: str) -> None:
    """Findings on stdout (`findings.text.render_findings`): CSV through `_echo_csv`, so that a
    terminal gets no wire bytes, text line by line."""
    if fmt == "csv":
        _echo_csv(rendered)
    else:
        _echo_lines(rendered)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, type=CAPTURE_PATHS)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv"]),
    default="text",
    show_default=True,
    help="text: grouped by server then interface, in the layout of rpcdump.py / portqry -e 135; "
    "csv: the endpoint_inventory table.",
)
@click.option("--all", "show_all", is_flag=True, help="Also list local-only ncalrpc bindings (hidden by default).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; errors are still printed.")
@names_option
def endpoints(captures: tuple[str, ...], fmt: str, show_all: bool, quiet: bool, names_file: str | None) -> None:
    """List the RPC endpoints each server offered, rebuilt passively from CAPTURES.

    What `rpcdump.py` or `portqry -e 135` would have listed, per server and interface: Protocol
    (specification), Provider (binary), UUID and version, then every binding, from the endpoint
    mapper's answers and the binds and calls seen, each marked announced-only, announced-and-used or
    used-without-announcement. Local-only ncalrpc bindings are hidden unless --all.

    \b
    Example:
      rpc-analyzer endpoints incident.pcapng
      rpc-analyzer endpoints incident.pcapng --all
      rpc-analyzer endpoints captures/ --format csv > inventory.csv
    """
    _load_names(names_file)
    result = _read_captures(captures, quiet)
    from analyzer.report import views

    if fmt == "csv":
        from analyzer.report.output import csv_text

        _echo_csv(csv_text(result.endpoint_inventory, views.ENDPOINT_INVENTORY))
    else:
        from analyzer.report.endpoints_text import rpcdump_text

        _echo_lines(rpcdump_text(result.endpoint_inventory, show_all))
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
        from analyzer.report.hosts import HOSTS
        from analyzer.report.output import csv_text

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
@rules_option
def report(
    captures: tuple[str, ...],
    out_file: str,
    title: str,
    show_all: bool,
    quiet: bool,
    names_file: str | None,
    rules_files: tuple[str, ...],
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
    _load_rules(rules_files)
    result = _read_captures(captures, quiet)
    result.rule_files = rules_files
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


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["netsh", "rpcfw", "csv", "md"]),
    default="netsh",
    show_default=True,
    help="netsh: a `netsh -f` script per server (RPC filters, Windows Firewall rules, dynamic port range); "
    "rpcfw: an RpcFw.conf per server for zeronetworks' RPC Firewall; "
    "csv: the allow-list table (server, interface, endpoint, clients, opnums, ...); md: the same as Markdown.",
)
@click.option(
    "--rest",
    type=click.Choice(["audit", "block", "none"]),
    default="audit",
    show_default=True,
    help="What the netsh script does with other callers of an observed interface and with every interface "
    "not observed: permit and audit (Security event 5712), block and audit, or nothing.",
)
@click.option(
    "--opnums",
    is_flag=True,
    help="Permit only the observed opnums (opnum conditions: Windows 11 24H2 / Server 2025 or later only).",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Write into this directory (netsh: <server>.netsh.txt per server, rpcfw: <server>.RpcFw.conf; "
    "csv/md: allow_list.csv/.md) "
    "instead of printing.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; errors are still printed.")
@names_option
def firewall(
    captures: tuple[str, ...],
    fmt: str,
    rest: str,
    opnums: bool,
    out_dir: str | None,
    quiet: bool,
    names_file: str | None,
) -> None:
    """Write firewall allow-lists for each RPC server, from what CAPTURES show was bound and called.

    Per server: the interfaces bound and called with the clients that used them; a Windows RPC
    filter script (`netsh rpc filter`) that permits those and audits (or blocks) the rest; Windows
    Firewall rules for the endpoint mapper and the dynamic RPC range; the narrowest dynamic port range
    covering what was observed. Services nobody used during the capture are not in it: review first.

    \b
    Example:
      rpc-analyzer firewall incident.pcapng                       # netsh scripts on stdout
      rpc-analyzer firewall week/ -o rules/ --rest block          # rules/<server>.netsh.txt
      rpc-analyzer firewall dc.pcapng --opnums                    # Windows 11 24H2 / Server 2025
      rpc-analyzer firewall dc.pcapng --format md > allow-list.md
      rpc-analyzer firewall dc.pcapng --format rpcfw --opnums -o rpcfw/   # zeronetworks RPC Firewall
    """
    _load_names(names_file)
    result = _read_captures(captures, quiet)
    from analyzer import firewall as fw

    outputs: dict[str, str] = {}
    if fmt in ("netsh", "rpcfw"):
        suffix = "netsh.txt" if fmt == "netsh" else "RpcFw.conf"
        outputs = {
            f"{server.replace(':', '_')}.{suffix}": text
            for server, text in fw.scripts(result, rest, opnums, fmt).items()
        }
        if not outputs:
            _err("no RPC server with an accepted bind or a call in the captures: no script written")
    else:
        allow = fw.allow_list(result.binds, result.calls)
        if fmt == "csv":
            from analyzer.report.output import csv_text

            outputs = {"allow_list.csv": csv_text(allow, fw.ALLOW_LIST)}
        else:
            outputs = {"allow_list.md": fw.markdown(allow, fw.server_ports(result, allow))}
    if out_dir is None:
        for text in outputs.values():
            _echo_lines(text)
    else:
        try:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            for name, text in outputs.items():
                (Path(out_dir) / name).write_text(text, encoding="utf-8")
        except OSError as e:
            _err(f"{out_dir}: cannot write: {e.strerror or e}")
            sys.exit(EXIT_INPUT_ERROR)
        if not quiet:
            click.echo(f"{len(outputs)} file(s) -> {printable(out_dir)}")
    if result.errors:
        sys.exit(EXIT_INPUT_ERROR)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv"]),
    default="text",
    show_default=True,
    help="text: grouped by host, most severe first, with evidence frames; csv: the findings table.",
)
@click.option(
    "--min-severity",
    type=click.Choice(["info", "low", "medium", "high", "critical"]),
    default="info",
    show_default=True,
    help="Only findings at least this severe.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; errors are still printed.")
@names_option
@rules_option
@click.option(
    "--sigma",
    "sigma_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Also run these Sigma rules (files or directories) with pySigma. Repeatable.",
)
def findings(
    captures: tuple[str, ...],
    fmt: str,
    min_severity: str,
    quiet: bool,
    names_file: str | None,
    rules_files: tuple[str, ...],
    sigma_paths: tuple[str, ...],
) -> None:
    """Show what in CAPTURES looks like an attack, reconnaissance or a risky admin action.

    One finding per technique, client, server and burst of activity: PsExec-style services,
    scheduled tasks, WMI and DCOM execution, DCSync from a host that is not a domain controller,
    ZeroLogon bursts and whether one succeeded, coercion (PetitPotam, PrinterBug, ...), endpoint-mapper
    dumps, brute force, user/group/session/share enumeration. Grouped by the host acted upon, most
    severe first, with the frames to open in Wireshark (frame.number in {...}).

    \b
    Example:
      rpc-analyzer findings incident.pcapng
      rpc-analyzer findings captures/ --min-severity high
      rpc-analyzer findings incident.pcapng --rules site_rules.tsv --format csv > findings.csv
    """
    _load_names(names_file)
    _load_rules(rules_files)
    converted = _load_sigma(sigma_paths)
    result = _read_captures(captures, quiet)
    result.rule_files = rules_files
    if converted is not None:
        _add_sigma(result, converted)
    from analyzer.findings.rules import SEVERITIES

    table = result.findings[result.findings["severity"].isin(SEVERITIES[SEVERITIES.index(min_severity) :])]
    from analyzer.findings.text import render_findings

    _echo_findings(render_findings(table, fmt), fmt)
    if result.errors:
        sys.exit(EXIT_INPUT_ERROR)


@main.command(epilog=EXIT_CODES_HELP)
@click.option("-i", "--interface", "iface", required=True, help="Network interface to capture on (e.g. eth0, lo).")
@click.option("--bpf", default=None, help="BPF capture filter, e.g. 'tcp port 135 or tcp portrange 49152-65535'.")
@click.option(
    "--rotate-seconds",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0.5),
    help="Write the records completed in the last N seconds into a new live-<time>/ directory.",
)
@click.option("--duration", type=click.FloatRange(min=0), default=None, help="Stop after this many seconds.")
@click.option(
    "-o",
    "--out",
    "out_dir",
    default="rpc-analyzer-live",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory for the interval directories (tables and Zeek logs).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet", "zeek", "zeek-json"]),
    default="csv",
    show_default=True,
    help="File format of the tables; the Zeek logs (dce_rpc.log and companions, TSV) are written beside "
    "them. zeek / zeek-json: the Zeek logs only, in TSV or JSON.",
)
@click.option("-q", "--quiet", is_flag=True, help="No line per interval; errors are still printed.")
@names_option
def live(
    iface: str,
    bpf: str | None,
    rotate_seconds: float,
    duration: float | None,
    out_dir: str,
    fmt: str,
    quiet: bool,
    names_file: str | None,
) -> None:
    """Capture on an interface and write the tables and Zeek logs every N seconds.

    Uses scapy's sniffer; needs capture rights (root, or CAP_NET_RAW and CAP_NET_ADMIN) and says so
    when it has none. A conversation's records appear in the interval it completes in; Ctrl-C (or
    --duration) closes every open conversation and writes the last interval.

    \b
    Example:
      sudo rpc-analyzer live -i eth0 --rotate-seconds 300 -o /var/log/rpc/
      rpc-analyzer live -i lo --bpf 'tcp port 135' --duration 60
    """
    _load_names(names_file)
    from analyzer.live import capture_problem, run_live

    problem = capture_problem(iface, bpf)
    if problem is not None:
        _err(problem)
        sys.exit(EXIT_INPUT_ERROR)
    echo: Callable[[str], None] = (
        (lambda _line: None) if quiet else (lambda line: click.echo(printable(line), err=True))
    )
    try:
        run_live(iface, out_dir, bpf, rotate_seconds, duration, fmt, echo)
    except OSError as e:
        _err(f"live capture on {iface} failed: {e.strerror or e}")
        sys.exit(EXIT_INPUT_ERROR)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv"]),
    default="text",
    show_default=True,
    help="text: grouped by host; csv: the matches as findings rows.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; errors are still printed.")
@names_option
def sigma(paths: tuple[str, ...], fmt: str, quiet: bool, names_file: str | None) -> None:
    """Run Sigma RULES over CAPTURES with pySigma: PATHS are rule files or directories (.yml), then captures.

    Rules for the logsources `zeek` / `dce_rpc` (fields endpoint, operation, id.orig_h, ...), `zeek` /
    `smb_files` (path, name of the named pipes) and `rpc_firewall` (InterfaceUuid, OpNum, ...) are
    evaluated over views of the calls and connections tables. Each match is a findings row naming the
    rule. A path is a rule when it is a .yml/.yaml file or a directory holding them.

    \b
    Example:
      rpc-analyzer sigma sigma/rules/network/zeek/ sigma/rules/application/rpc_firewall/ incident.pcapng
      rpc-analyzer sigma zeek_dce_rpc_mitre_bzar_execution.yml captures/ --format csv
    """
    rules = tuple(p for p in paths if _is_sigma_path(p))
    captures = tuple(p for p in paths if p not in rules)
    if not rules or not captures:
        _err("give Sigma rule files or directories, then captures")
        sys.exit(EXIT_USAGE)
    _load_names(names_file)
    converted = _load_sigma(rules) or []
    result = _read_captures(captures, quiet)
    from analyzer.findings import sigma as sigma_rules

    matches = sigma_rules.evaluate(converted, result.calls, result.connections)
    from analyzer.findings.text import render_findings

    _echo_findings(render_findings(matches, fmt), fmt)
    if result.errors:
        sys.exit(EXIT_INPUT_ERROR)


def _is_sigma_path(path: str) -> bool:
    p = Path(path)
    if p.is_file():
        return p.suffix.lower() in (".yml", ".yaml")
    return p.is_dir() and any(p.rglob("*.yml"))


if __name__ == "__main__":  # pragma: no cover
    main()
