"""The `names` command: the interface and operation names the registry knows."""

from __future__ import annotations

import sys

import click

from analyzer.cli import echo
from analyzer.cli.app import main
from analyzer.cli.options import EXIT_INPUT_ERROR, EXIT_USAGE, err, format_option, load_names, names_option
from analyzer.report.terminal import printable

NAMES_EXIT_CODES_HELP = """\b
Exit codes:
  0  something matched (or the whole table was printed)
  1  nothing matches QUERY
  2  the command line is wrong (or the --names file cannot be read)
"""


@main.command(epilog=NAMES_EXIT_CODES_HELP)
@click.argument("query", required=False)
@format_option(
    ["text", "csv"],
    "text",
    "text: a readable list; csv: one row per interface operation (the whole table with no QUERY).",
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
    load_names(names_file)
    from analyzer.registry import query as q

    if query is None and fmt == "text":
        err("give a QUERY, or --format csv for the whole table")
        sys.exit(EXIT_USAGE)
    rows = q.all_rows() if query is None else q.search(query)
    if fmt == "csv":
        import csv
        import dataclasses
        import io

        from analyzer.report.csv_rows import neutralise
        from analyzer.report.output import LINE_TERMINATOR

        fields = [f.name for f in dataclasses.fields(q.NameRow)]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator=LINE_TERMINATOR)  # the tables' CSV: names may come from --names
        w.writerow(fields)
        for r in rows:
            w.writerow(
                ["" if v is None else neutralise(v) if isinstance(v, str) else v for v in dataclasses.astuple(r)]
            )
        echo.echo_csv(buf.getvalue())
        return
    if not rows:
        err(f"nothing matches {query!r}")
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
