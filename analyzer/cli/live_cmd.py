"""The `live` command: capture on an interface and write the tables every N seconds."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from analyzer.cli.app import main
from analyzer.cli.options import (
    EXIT_CODES_HELP,
    EXIT_INPUT_ERROR,
    err,
    format_option,
    load_names,
    names_option,
    quiet_option,
)
from analyzer.report.terminal import printable


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
@format_option(
    ["csv", "jsonl", "parquet", "zeek", "zeek-json"],
    "csv",
    "File format of the tables; the Zeek logs (dce_rpc.log and companions, TSV) are written beside "
    "them. zeek / zeek-json: the Zeek logs only, in TSV or JSON.",
)
@quiet_option("No line per interval; errors are still printed.")
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
    load_names(names_file)
    from analyzer.live import capture_problem, run_live

    problem = capture_problem(iface, bpf)
    if problem is not None:
        err(problem)
        sys.exit(EXIT_INPUT_ERROR)
    echo: Callable[[str], None] = (
        (lambda _line: None) if quiet else (lambda line: click.echo(printable(line), err=True))
    )
    try:
        run_live(iface, out_dir, bpf, rotate_seconds, duration, fmt, echo)
    except OSError as e:
        err(f"live capture on {iface} failed: {e.strerror or e}")
        sys.exit(EXIT_INPUT_ERROR)
