"""The `analyze` command: every table, view and finding of the captures, written to a directory."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from analyzer.cli import echo
from analyzer.cli.app import main
from analyzer.cli.options import (
    CAPTURE_PATHS,
    EXIT_CODES_HELP,
    EXIT_INPUT_ERROR,
    EXIT_USAGE,
    SCHEDULER,
    add_sigma,
    err,
    exit_if_errors,
    format_option,
    jobs_options,
    load_names,
    load_rules,
    load_sigma,
    names_option,
    quiet_option,
    rules_option,
    sigma_option,
)
from analyzer.report.terminal import printable

if TYPE_CHECKING:
    from analyzer.api import AnalysisResult


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
@format_option(
    ["csv", "jsonl", "parquet", "zeek", "zeek-json"],
    "csv",
    "File format of the tables; zeek (TSV) or zeek-json write Zeek-compatible logs instead: dce_rpc.log "
    "exactly as Zeek writes it, and dce_rpc_ext.log, dce_rpc_bind.log, dce_rpc_conn.log (and "
    "rpc_findings.log) joined on uid.",
)
@click.option(
    "--all-calls",
    is_flag=True,
    help="With --format zeek/zeek-json: every call in dce_rpc.log, not only the answered calls Zeek would log.",
)
@quiet_option("No progress bar and no summary; errors are still printed.")
@jobs_options
@names_option
@rules_option
@sigma_option(
    "Sigma rules (a .yml file or a directory of them, zeek dce_rpc or rpc_firewall logsources) to run "
    "with pySigma; their matches are added to findings.csv. Repeatable."
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
    load_names(names_file)
    load_rules(rules_files)
    sigma_rules = load_sigma(sigma_paths)
    from analyzer.report.manifest import foreign_files, read_digests, utc_now

    started = utc_now()
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        err(f"{out_dir}: not a directory")
        sys.exit(EXIT_USAGE)
    before = foreign_files(out_dir)
    result = echo.read_captures(captures, quiet)
    result.started = started
    result.input_digests = read_digests(result.records.digests)  # hashed as read; the manifest hashes the rest
    result.rule_files = rules_files
    if sigma_rules is not None:
        add_sigma(result, sigma_rules)
    params = {"command": "analyze", "captures": list(captures), "out": out_dir, "format": fmt}
    arguments = {
        **params,
        "names": names_file,
        "all_calls": all_calls,
        "rules": list(rules_files),
        "sigma": list(sigma_paths),
    }
    written = _write(result, out_dir, fmt, all_calls, arguments)
    _tell(result, written, before, out_dir, fmt, quiet)
    exit_if_errors(result)


def _write(
    result: AnalysisResult, out_dir: str, fmt: str, all_calls: bool, arguments: Mapping[str, object]
) -> list[Path]:
    """The tables (or Zeek logs) and the manifest written; a directory that cannot be written exits 1."""
    try:
        partitioned = bool(click.get_current_context().meta.get(SCHEDULER))
        return result.write(out_dir, fmt, all_calls, arguments=arguments, partitioned=partitioned)
    except OSError as e:
        why = "not a directory" if e.errno in (errno.ENOTDIR, errno.EEXIST) else e.strerror or str(e)
        err(f"{out_dir}: cannot write: {why}")
        sys.exit(EXIT_INPUT_ERROR)


def _tell(result: AnalysisResult, written: list[Path], before: set[str], out_dir: str, fmt: str, quiet: bool) -> None:
    """What the run wrote: a warning about files an earlier run left, then the summary (unless quiet)."""
    from analyzer.report.manifest import MANIFEST

    left = sorted(before - {p.name for p in written} - {MANIFEST})
    if left:
        err(
            f"warning: {out_dir} also holds files this run did not write (an earlier run's?): {', '.join(left)}; "
            f"{MANIFEST} lists this run's"
        )
    if fmt.startswith("zeek"):
        if not quiet:
            logs = ", ".join(p.name for p in written) or "no log (no DCE/RPC call or bind)"
            calls, binds = len(result.records.calls), len(result.records.binds)  # a row per record: no table built
            click.echo(f"{calls} calls, {binds} binds -> {printable(out_dir)}: {logs}")
    elif not quiet:
        from analyzer.report.summary import print_summary

        print_summary(result, Path(out_dir), fmt)
