"""The commands that write a document from the captures: `report` (HTML) and `firewall` (allow-lists)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from analyzer.cli import echo
from analyzer.cli.app import main
from analyzer.cli.options import (
    CAPTURE_PATHS,
    EXIT_CODES_HELP,
    EXIT_INPUT_ERROR,
    err,
    exit_if_errors,
    format_option,
    jobs_options,
    load_names,
    load_rules,
    names_option,
    quiet_option,
    rules_option,
)
from analyzer.report.terminal import printable


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
@quiet_option("No progress bar and no closing line; errors are still printed.")
@jobs_options
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
    load_names(names_file)
    load_rules(rules_files)
    result = echo.read_captures(captures, quiet)
    result.rule_files = rules_files
    page = result.html(title, include_local=show_all)
    try:
        Path(out_file).write_text(page, encoding="utf-8")
    except OSError as e:
        err(f"{out_file}: cannot write: {e.strerror or e}")
        sys.exit(EXIT_INPUT_ERROR)
    if not quiet:
        click.echo(
            f"{len(result.captures)} capture(s), {len(result.hosts)} host roles, "
            f"{len(result.endpoint_inventory)} endpoints, {len(result.calls)} calls -> {printable(out_file)}"
        )
    exit_if_errors(result)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, type=click.Path())
@format_option(
    ["netsh", "rpcfw", "csv", "md"],
    "netsh",
    "netsh: a `netsh -f` script per server (RPC filters, Windows Firewall rules, dynamic port range); "
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
@quiet_option()
@jobs_options
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
    load_names(names_file)
    result = echo.read_captures(captures, quiet)
    from analyzer import firewall as fw

    outputs: dict[str, str] = {}
    if fmt in ("netsh", "rpcfw"):
        suffix = "netsh.txt" if fmt == "netsh" else "RpcFw.conf"
        outputs = {
            f"{server.replace(':', '_')}.{suffix}": text
            for server, text in fw.scripts(result, rest, opnums, fmt).items()
        }
        if not outputs:
            err("no RPC server with an accepted bind or a call in the captures: no script written")
    else:
        allow = fw.allow_list(result.binds, result.calls)
        if fmt == "csv":
            from analyzer.report.output import csv_text

            outputs = {"allow_list.csv": csv_text(allow, fw.ALLOW_LIST)}
        else:
            outputs = {"allow_list.md": fw.markdown(allow, fw.server_ports(result, allow))}
    if out_dir is None:
        for text in outputs.values():
            echo.echo_lines(text)
    else:
        try:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            for name, text in outputs.items():
                (Path(out_dir) / name).write_text(text, encoding="utf-8")
        except OSError as e:
            err(f"{out_dir}: cannot write: {e.strerror or e}")
            sys.exit(EXIT_INPUT_ERROR)
        if not quiet:
            click.echo(f"{len(outputs)} file(s) -> {printable(out_dir)}")
    exit_if_errors(result)
