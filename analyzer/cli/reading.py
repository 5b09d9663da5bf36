"""Reading the captures for a command: the files found, the records made (in a forked child, in worker
processes with --jobs, or on a Dask cluster with --scheduler), and one line per file that failed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from analyzer.cli.options import EXIT_NO_INPUT, err
from analyzer.cli.progress import progress_bar

if TYPE_CHECKING:
    from analyzer.api import AnalysisResult


def read_captures(
    captures: tuple[str, ...], quiet: bool, while_reading: Callable[[list[str]], None] | None = None
) -> AnalysisResult:
    """Analyse the captures for a reporting command: exit 3 when there is no file, one line per bad file.
    `while_reading(paths)` is called in this process while a child reads them (after the fork)."""
    from analyzer.capture.source import expand_paths

    files = expand_paths(captures)
    if not files:
        err("no capture files found in " + ", ".join(captures))
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
    records = read_in_child(paths, DEFAULT_LIMITS, lambda: progress_bar(paths, quiet), warm_up)
    from analyzer.api import from_records

    result = from_records(records)
    for line in result.errors:
        err(line)
    return result
