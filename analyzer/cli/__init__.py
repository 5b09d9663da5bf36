"""The command line: a thin layer over the library, one module per command group.

Library errors become one clear line on stderr and a non-zero exit here, and only here; nothing
below this package prints. Text from the wire is stripped of control characters before it reaches
the terminal.

Owns: `app` (the `rpc-analyzer` group), `options` (exit codes, shared options, loading the user's
files), `progress` (the progress bar), `reading` (captures -> result), and the commands:
`analyze_cmd`, `views_cmd` (endpoints, hosts), `report_cmd` (report, firewall), `findings_cmd`
(findings, sigma), `names_cmd`, `live_cmd`, and `echo` (what reaches stdout). The top of the package
layering: it may import any `analyzer` module and nothing in `analyzer` imports it. Its command
modules must not import this `__init__` (it imports them to register the commands): what they share
lives in `echo` and `options`.

One module, `echo`, decides what reaches stdout; every command goes through it (tests replace
`echo.stdout_is_terminal` and `echo.read_captures`).
"""

from __future__ import annotations

from analyzer.cli.app import main
from analyzer.report.terminal import printable

__all__ = ["main", "printable"]


# The commands register themselves on `main` when imported.
from analyzer.cli import (  # noqa: F401
    analyze_cmd,
    findings_cmd,
    live_cmd,
    names_cmd,
    report_cmd,
    views_cmd,
)
