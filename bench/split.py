#!/usr/bin/env python3
"""Split check: the benchmark capture cut into files (as `tcpdump -C`, a dumpcap ring buffer or
`editcap -c` do) gives the whole file's binds, calls, endpoints and connections, row for row apart
from the columns that say where a record fell (capture and frame numbers).

Makes (once) the capture of bench/run.py (../shared/bench/make_bench_pcap.py --seed 1 --size 200M),
splits it with `editcap -c` into 4 and into 16 files, analyses the whole file and each split, and
prints the row counts of each table and whether they agree. Exits non-zero if any table differs.

    python bench/split.py [--size 200M] [--seed 1] [--parts 4 16] [--capture FILE]
    python bench/split.py --shared 3    # every capture of ../shared/captures, each split into 3 files
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import analyzer
from bench.run import make_capture

WHERE = {"capture", "frame", "ack_frame", "request_frame", "response_frame", "first_frame", "last_frame"}
WHERE |= {"epm_frame", "epm_capture"}
TABLES = ("binds", "endpoints", "calls", "connections")


def rows(res: analyzer.AnalysisResult, table: str) -> list[str]:
    df = getattr(res, table)
    cols = [c for c in df.columns if c not in WHERE]
    return sorted(str(r) for r in df[cols].astype(str).values.tolist())


def split_shared(parts: int) -> int:
    """Each capture with truth files in ../shared/captures, split into `parts` pcapng files."""
    from tests.truth_compare import capture_paths, truth_name

    checked = differing = 0
    for path in capture_paths():
        whole = analyzer.analyze([path])
        frames = int(whole.captures["frames"].iloc[0])
        if frames < parts:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            cmd = ["editcap", "-F", "pcapng", "-c", str(-(-frames // parts)), str(path), str(Path(tmp) / "part.pcapng")]
            if subprocess.run(cmd, capture_output=True).returncode:
                print(f"{truth_name(path)}: editcap cannot split it, skipped")
                continue
            split = analyzer.analyze([tmp])
            checked += 1
            diff = [t for t in TABLES if rows(split, t) != rows(whole, t)]
            if diff:
                differing += 1
                print(f"{truth_name(path)}: {', '.join(diff)} differ")
    print(f"{checked} captures split into {parts} files: {differing} differ from the whole file")
    return 1 if differing else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="200M")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--parts", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--capture", type=Path)
    ap.add_argument("--shared", type=int, metavar="PARTS", help="split every shared capture into PARTS files")
    args = ap.parse_args()
    if args.shared:
        return split_shared(args.shared)
    cap = args.capture or make_capture(args.size, args.seed)
    t = time.perf_counter()
    whole = analyzer.analyze([cap])
    print(f"whole: {cap.name}, {whole.captures['frames'].iloc[0]} frames, {time.perf_counter() - t:.1f} s")
    want = {table: rows(whole, table) for table in TABLES}
    frames = int(whole.captures["frames"].iloc[0])
    ok = True
    for n in args.parts:
        with tempfile.TemporaryDirectory() as tmp:
            per_file = -(-frames // n)
            subprocess.run(["editcap", "-c", str(per_file), str(cap), str(Path(tmp) / "part.pcap")], check=True)
            t = time.perf_counter()
            split = analyzer.analyze([tmp])
            took = time.perf_counter() - t
            files = len(split.captures)
            for table in TABLES:
                got = rows(split, table)
                same = got == want[table]
                ok &= same
                print(
                    f"{n:>3} parts ({files} files, editcap -c {per_file}, {took:.1f} s): {table:<12}"
                    f" whole {len(want[table]):>6}  split {len(got):>6}  {'same' if same else 'DIFFERENT'}"
                )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
