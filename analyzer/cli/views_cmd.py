"""The commands that print one view of the captures: `endpoints` (as rpcdump.py would) and `hosts`."""

from __future__ import annotations

import click

from analyzer.cli import echo
from analyzer.cli.app import main
from analyzer.cli.options import (
    CAPTURE_PATHS,
    EXIT_CODES_HELP,
    exit_if_errors,
    format_option,
    jobs_options,
    load_names,
    names_option,
    quiet_option,
)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, type=CAPTURE_PATHS)
@format_option(
    ["text", "csv"],
    "text",
    "text: grouped by server then interface, in the layout of rpcdump.py / portqry -e 135; "
    "csv: the endpoint_inventory table.",
)
@click.option("--all", "show_all", is_flag=True, help="Also list local-only ncalrpc bindings (hidden by default).")
@quiet_option()
@jobs_options
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
    load_names(names_file)
    result = echo.read_captures(captures, quiet)
    from analyzer.report import views

    if fmt == "csv":
        from analyzer.report.output import csv_text

        echo.echo_csv(csv_text(result.endpoint_inventory, views.ENDPOINT_INVENTORY))
    else:
        from analyzer.report.endpoints_text import rpcdump_text

        echo.echo_lines(rpcdump_text(result.endpoint_inventory, show_all))
    exit_if_errors(result)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, type=CAPTURE_PATHS)
@click.option(
    "--role",
    type=click.Choice(["server", "client"]),
    default=None,
    help="Only hosts seen in this role (default: both).",
)
@format_option(["text", "csv"], "text", "text: one block per host with the services negotiated; csv: the hosts table.")
@quiet_option()
@jobs_options
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
    load_names(names_file)
    result = echo.read_captures(captures, quiet)
    if fmt == "csv":
        from analyzer.report.output import csv_text
        from analyzer.report.tables import HOSTS

        table = result.hosts if role is None else result.hosts[result.hosts["role"] == role]
        echo.echo_csv(csv_text(table, HOSTS))
    else:
        echo.echo_lines(result.hosts_text(role))
    exit_if_errors(result)
