"""The progress bar of a long run on a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress


@contextmanager
def progress_bar(paths: list[str], quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
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
