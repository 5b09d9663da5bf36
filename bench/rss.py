#!/usr/bin/env python3
"""Resident memory of a command and of every process it forks, sampled over time (issue 13).

`wait4` (what bench/floods.py reports) gives the peak of the biggest process only; this says which
process peaked and when: /proc/PID/status VmRSS of the command and its descendants every
`--every` seconds, then per process its peak, the second of the run it was reached at, and its
last sample (the peak split into heap, RssAnon, and mapped files, RssFile: shared libraries and
memory-mapped spool batches); with `--timeline FILE`, every sample as `seconds pid rss_mib file_mib`
lines. Linux only.

    python bench/rss.py [--every 0.01] [--timeline out.txt] -- rpc-analyzer analyze F -o OUT -q
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _rss_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, RssFile) in KiB: resident memory, and the part of it that is mapped files (shared
    libraries, memory-mapped spool batches) rather than the heap."""
    found: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "RssFile:")):
                found[line.split(":")[0]] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return (found["VmRSS"], found.get("RssFile", 0)) if "VmRSS" in found else None


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


Sample = tuple[float, int, int, int]  # (seconds since start, pid, VmRSS KiB, RssFile KiB)


class Peak:
    """One process's peak: KiB resident, when (seconds since start), of it mapped files, the last sample."""

    def __init__(self) -> None:
        self.kib = self.files = self.last = 0
        self.at = 0.0

    def add(self, now: float, kib: int, files: int) -> None:
        if kib > self.kib:
            self.kib, self.at, self.files = kib, now, files
        self.last = kib

    def __str__(self) -> str:
        heap, files = (self.kib - self.files) / 1024, self.files / 1024
        return f"peak {self.kib / 1024:7.1f} MiB at {self.at:6.2f} s ({heap:.1f} heap, {files:.1f} files)"


def sample(pid: int, every: float, running: Callable[[], bool], samples: list[Sample] | None = None) -> dict[int, Peak]:
    """Each process's peak (`pid` and its descendants) while `running()`, sampled every `every` s."""
    start = time.perf_counter()
    peaks: dict[int, Peak] = {}
    while running():
        now = time.perf_counter() - start
        for p in _descendants(pid):
            got = _rss_kib(p)
            if got is not None:
                peaks.setdefault(p, Peak()).add(now, *got)
                if samples is not None:
                    samples.append((now, p, *got))
        time.sleep(every)
    return peaks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--every", type=float, default=0.01, help="seconds between samples (default 0.01)")
    ap.add_argument("--timeline", type=Path, help="write every sample to this file")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    samples: list[Sample] = []
    peaks = sample(proc.pid, args.every, lambda: proc.poll() is None, samples)
    print(f"exit {proc.returncode}, {time.perf_counter() - start:.2f} s")
    for pid, peak in sorted(peaks.items()):
        print(f"{'command' if pid == proc.pid else 'child':8} pid {pid}: {peak}, last {peak.last / 1024:7.1f} MiB")
    if args.timeline:
        with open(args.timeline, "w") as f:
            f.writelines(f"{t:.3f} {pid} {kib / 1024:.1f} {files / 1024:.1f}\n" for t, pid, kib, files in samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
