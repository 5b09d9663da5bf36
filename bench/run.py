#!/usr/bin/env python3
"""Benchmark: rpc-analyzer against tshark on the same capture, in the same run.

Makes the 200 MB capture with ../shared/bench/make_bench_pcap.py --seed 1 --size 200M (once; it is
kept in bench/data/, which git ignores), then runs, alternately and --repeat times each:

    rpc-analyzer analyze CAPTURE -o OUT -q
    tshark -r CAPTURE -Y 'dcerpc.cn_bind_to_uuid || epm' -T fields -e frame.number ...

and prints both median wall times, their ratio, and each one's peak resident memory (from wait4).
It checks that the analyzer found every bind and every EPM-announced endpoint of the generator's truth
file, and exits non-zero if not. Times are only compared as a ratio: absolute times on a shared
machine drift. Usage:

    python bench/run.py [--size 200M] [--seed 1] [--repeat 3] [--capture FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GENERATOR = SHARED / "bench" / "make_bench_pcap.py"
DATA = ROOT / "bench" / "data"
TSHARK_FILTER = "dcerpc.cn_bind_to_uuid || epm"


def measure(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed ({os.waitstatus_to_exitcode(status)}): {err.strip()}")
    return wall, usage.ru_maxrss / 1024


def make_capture(size: str, seed: int) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    cap = DATA / f"bench_seed{seed}_{size}.pcap"
    if not cap.exists():
        if not GENERATOR.exists():
            raise SystemExit(f"benchmark generator not found at {GENERATOR}")
        print(f"making {cap} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, str(GENERATOR), "-o", str(cap), "--size", size, "--seed", str(seed)], check=True
        )
    return cap


def check_truth(cap: Path, out: Path) -> list[str]:
    """What the generator's truth has that the analyzer's tables lack."""
    truth_path = cap.with_suffix(".truth.json")
    truth = json.loads(truth_path.read_text())
    with (out / "binds.csv").open() as fh:
        binds = {
            (
                r["client_ip"],
                int(r["client_port"]),
                r["server_ip"],
                int(r["server_port"]),
                r["interface_uuid"],
            )
            for r in csv.DictReader(fh)
        }
    with (out / "endpoints.csv").open() as fh:
        eps = {
            (r["client_ip"], r["epm_server_ip"], int(r["port"]), r["interface_uuid"])
            for r in csv.DictReader(fh)
            if r["port"]
        }
    missing = [
        f"bind {b}"
        for b in truth["binds"]
        if (b["client"], b["client_port"], b["server"], b["port"], b["uuid"]) not in binds
    ]
    missing += [
        f"endpoint {e}"
        for e in truth["epm_endpoints"]
        if (e["client"], e["epm_server"], e["port"], e["uuid"]) not in eps
    ]
    print(
        f"truth: {len(truth['binds'])} binds, {len(truth['epm_endpoints'])} endpoints; "
        f"analyzer: {len(binds)} binds, {len(eps)} endpoints with ports; missing {len(missing)}"
    )
    return missing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="200M")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--capture", type=Path, help="use this capture (and its .truth.json) instead of making one")
    args = ap.parse_args()

    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark not found: apt-get install -y tshark")
    analyzer = shutil.which("rpc-analyzer") or str(Path(sys.executable).with_name("rpc-analyzer"))
    cap = args.capture or make_capture(args.size, args.seed)
    size_mb = cap.stat().st_size / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        ours_cmd = [analyzer, "analyze", str(cap), "-o", str(out), "-q"]
        theirs_cmd = [
            tshark,
            "-r",
            str(cap),
            "-Y",
            TSHARK_FILTER,
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "dcerpc.cn_bind_to_uuid",
            "-e",
            "epm.proto.tcp_port",
        ]
        # warm the page cache so neither run pays for the first read
        with cap.open("rb") as fh:
            while fh.read(1 << 24):
                pass
        ours, theirs = [], []
        for _ in range(args.repeat):
            ours.append(measure(ours_cmd))
            theirs.append(measure(theirs_cmd))
        missing = check_truth(cap, out)
    o_wall = statistics.median(w for w, _ in ours)
    t_wall = statistics.median(w for w, _ in theirs)
    o_rss = max(m for _, m in ours)
    t_rss = max(m for _, m in theirs)
    print(f"capture: {cap.name}, {size_mb:.0f} MB")
    print(f"rpc-analyzer: {o_wall:.2f} s (median of {args.repeat}), peak {o_rss:.0f} MiB")
    print(f"tshark:       {t_wall:.2f} s (median of {args.repeat}), peak {t_rss:.0f} MiB")
    print(f"ratio:        {o_wall / t_wall:.3f} x tshark's time, {o_rss / t_rss:.3f} x its memory")
    if missing:
        print("\n".join(missing[:20]), file=sys.stderr)
        raise SystemExit(f"{len(missing)} truth records not found")


if __name__ == "__main__":
    main()
