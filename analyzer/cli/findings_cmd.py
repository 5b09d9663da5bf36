"""The commands that print findings: `findings` (the shipped and your rules) and `sigma` (Sigma rules)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from analyzer.cli import echo
from analyzer.cli.app import main
from analyzer.cli.options import (
    EXIT_CODES_HELP,
    EXIT_USAGE,
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


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, type=click.Path())
@format_option(
    ["text", "csv"], "text", "text: grouped by host, most severe first, with evidence frames; csv: the findings table."
)
@click.option(
    "--min-severity",
    type=click.Choice(["info", "low", "medium", "high", "critical"]),
    default="info",
    show_default=True,
    help="Only findings at least this severe.",
)
@quiet_option()
@jobs_options
@names_option
@rules_option
@sigma_option("Also run these Sigma rules (files or directories) with pySigma. Repeatable.")
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
    load_names(names_file)
    load_rules(rules_files)
    converted = load_sigma(sigma_paths)
    result = echo.read_captures(captures, quiet)
    result.rule_files = rules_files
    if converted is not None:
        add_sigma(result, converted)
    from analyzer.findings.rules import SEVERITIES

    table = result.findings[result.findings["severity"].isin(SEVERITIES[SEVERITIES.index(min_severity) :])]
    from analyzer.findings.text import render_findings

    echo.echo_findings(render_findings(table, fmt), fmt)
    exit_if_errors(result)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@format_option(["text", "csv"], "text", "text: grouped by host; csv: the matches as findings rows.")
@quiet_option()
@jobs_options
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
        err("give Sigma rule files or directories, then captures")
        sys.exit(EXIT_USAGE)
    load_names(names_file)
    converted = load_sigma(rules) or []
    result = echo.read_captures(captures, quiet)
    from analyzer.findings import sigma as sigma_rules

    matches = sigma_rules.evaluate(converted, result.calls, result.connections)
    from analyzer.findings.text import render_findings

    echo.echo_findings(render_findings(matches, fmt), fmt)
    exit_if_errors(result)


def _is_sigma_path(path: str) -> bool:
    p = Path(path)
    if p.is_file():
        return p.suffix.lower() in (".yml", ".yaml")
    return p.is_dir() and any(p.rglob("*.yml"))
