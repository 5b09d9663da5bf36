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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--every", type=float, default=0.01, help="seconds between samples (default 0.01)")
    ap.add_argument("--timeline", type=Path, help="write every sample to this file")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peaks: dict[int, tuple[int, float, int, int]] = {}  # pid -> (peak KiB, at s, of it files KiB, last KiB)
    samples: list[tuple[float, int, int, int]] = []
    while proc.poll() is None:
        now = time.perf_counter() - start
        for pid in _descendants(proc.pid):
            got = _rss_kib(pid)
            if got is None:
                continue
            kib, files = got
            samples.append((now, pid, kib, files))
            peak, at, at_files, _ = peaks.get(pid, (0, 0.0, 0, 0))
            peaks[pid] = (kib, now, files, kib) if kib > peak else (peak, at, at_files, kib)
        time.sleep(args.every)
    wall = time.perf_counter() - start
    print(f"exit {proc.returncode}, {wall:.2f} s")
    for pid, (peak, at, files, last) in sorted(peaks.items()):
        role = "command" if pid == proc.pid else "child"
        print(
            f"{role:8} pid {pid}: peak {peak / 1024:7.1f} MiB at {at:6.2f} s "
            f"({(peak - files) / 1024:.1f} heap, {files / 1024:.1f} files), last {last / 1024:7.1f} MiB"
        )
    if args.timeline:
        with open(args.timeline, "w") as f:
            f.writelines(f"{t:.3f} {pid} {kib / 1024:.1f} {files / 1024:.1f}\n" for t, pid, kib, files in samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
