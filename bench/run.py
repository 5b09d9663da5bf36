#!/usr/bin/env python3
"""Benchmark: rpc-analyzer against tshark on the same capture, in the same run.

Makes the 200 MB capture with ../shared/bench/make_bench_pcap.py --seed 1 --size 200M (once; it is
kept in bench/data/, which git ignores), then runs, alternately and --repeat times each:

    rpc-analyzer analyze CAPTURE -o OUT -q
    tshark -r CAPTURE -Y 'dcerpc.cn_bind_to_uuid || epm' -T fields -e frame.number ...

and prints both median wall times, their ratio, and each one's peak resident memory (from wait4).
It checks that the analyzer found every bind and every EPM-announced endpoint of the generator's truth
file, and exits non-zero if not. Times are only compared as a ratio: absolute times on a shared
machine drift.

`--capture 1g` (issue 14, one core) makes or reuses the 1.1 GB seed-2 capture (--seed 2 --size 1G) and
adds to the same alternation the floors no reader of the file can beat: `cat` (the file read once)
and libpcap keeping the RPC services' ports (`tcpdump -r F -w /dev/null 'tcp port 135 or ...'`, the
"BPF floor"). It prints each one's median wall time, CPU time (user + system) and peak memory, and the
analyzer's ratios to tshark and to the BPF floor, in wall and in CPU time: on a machine other jobs
share, wall times stretch with the load and the CPU times are the steadier figure.

--jobs measures every core instead: `analyze --jobs 1` (one process), `analyze` without --jobs (the
default: on two cores, since round 13, one forked reader while the parent imports, the views beside
the base tables; workers from three cores on) and `analyze --jobs 2` (two workers), alternately
(median wall and CPU time, the ratios of the wall times, and that all three wrote the same bytes) on
(a) a directory
of 8 independent captures made by the generator with seeds 11-18 (bench/data/independent8/) and (b)
the 200 MB capture split into 8 rotated files with `editcap -c` (bench/data/rotated8/), next to tshark
over the same files and the BPF floor (tcpdump reading them with the RPC port filter) measured in the
same run. `--large` adds (c), the shape of (a) at five times the size (8 independent captures of
about 140 MB, seeds 21-28, 1.1 GB, bench/data/large8/): (a) and (b) take about a second, most of it
a run's fixed and serial costs; (c) shows what the workers give once the reading dominates, as it
does in an incident's tens of GB. Every measured run loads the analyzer from bytecode caches, as an
installed package does (`with_bytecode`; before round 6 the one-core runs compiled the modules from
source each time, about 0.3 s of CPU, because this project's sessions set PYTHONDONTWRITEBYTECODE).
Usage:

    python bench/run.py [--size 200M] [--seed 1] [--repeat 3] [--capture FILE|1g] [--tree DIR]
    python bench/run.py --jobs [--repeat 3] [--tree DIR] [--large]

--tree DIR adds another checkout's analyzer (DIR/.venv/bin/rpc-analyzer, e.g. ../main) to the same
alternation as a baseline, and checks that it wrote the same CSVs: a before/after measured in the
same minutes, which on a shared machine is the only comparison that holds.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GENERATOR = SHARED / "bench" / "make_bench_pcap.py"
DATA = ROOT / "bench" / "data"
TSHARK_FILTER = "dcerpc.cn_bind_to_uuid || epm"
# Capture aliases: name -> (size, seed) of the generator's run; these also measure the floors.
ALIASES = {"1g": ("1G", 2)}
# The BPF floor of issue 14: libpcap reading the file and keeping the RPC services' well-known ports.
BPF_FILTER = "tcp port 135 or tcp port 445 or tcp port 139 or tcp port 593 or udp port 135"


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


def resolve_capture(given: str | None, size: str, seed: int) -> Path:
    """The capture to measure: a file, an alias of ALIASES (made once), or the --size/--seed one."""
    if given is None:
        return make_capture(size, seed)
    if given.lower() in ALIASES:
        return make_capture(*ALIASES[given.lower()])
    return Path(given)


# -- one core (issue 14): the analyzer next to cat, the BPF floor and tshark ----------------------


class Run(NamedTuple):
    wall: float  # seconds
    cpu: float  # user + system seconds, the process and the children it waited for
    peak: float  # MiB


def measure_run(cmd: list[str]) -> Run:
    """Wall, CPU and peak memory of one command. The peak comes from GNU time where it is installed:
    wait4's figure for a child forked from this Python includes the RSS it inherited (some 10 MiB),
    more than cat or tcpdump ever use."""
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    if gnu_time is None:
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        wall = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)  # cumulative: a fallback
    with tempfile.NamedTemporaryFile("r") as out:
        wall, _peak = measure([gnu_time, "-f", "%U %S %M", "-o", out.name, *cmd])
        user, system, peak_kib = out.read().split()[-3:]
    return Run(wall, float(user) + float(system), int(peak_kib) / 1024)


def one_core(cap: Path, repeat: int, ours_cmd: list[str], theirs_cmd: list[str], base_cmd: list[str] | None) -> None:
    """Measure the four jobs (five with a --tree baseline) alternately `repeat` times and print
    medians, peaks and ratios."""
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        raise SystemExit("tcpdump not found: apt-get install -y tcpdump")
    jobs = {
        "cat": ["cat", str(cap)],
        "BPF floor": [tcpdump, "-r", str(cap), "-w", os.devnull, BPF_FILTER],
        "tshark": theirs_cmd,
        "rpc-analyzer": ours_cmd,
    }
    if base_cmd is not None:
        jobs["baseline"] = base_cmd
    runs: dict[str, list[Run]] = {k: [] for k in jobs}
    for _ in range(repeat):
        for label, cmd in jobs.items():
            runs[label].append(measure_run(cmd))
    print(f"capture: {cap.name}, {cap.stat().st_size / 1e6:.0f} MB, {os.cpu_count()} cores; medians of {repeat}")
    med: dict[str, Run] = {}
    for label, measured in runs.items():
        wall = statistics.median(r.wall for r in measured)
        cpu = statistics.median(r.cpu for r in measured)
        m = med[label] = Run(wall, cpu, max(r.peak for r in measured))
        print(f"{label + ':':<14}{m.wall:7.2f} s wall {m.cpu:7.2f} s CPU  peak {m.peak:6.0f} MiB")
    for label in ("rpc-analyzer", "baseline")[: len(jobs) - 3]:
        ours, tshark, floor = med[label], med["tshark"], med["BPF floor"]
        print(f"{label}:")
        print(f"  ratio:      {ours.wall / tshark.wall:.3f} x tshark's time ({ours.cpu / tshark.cpu:.3f} in CPU time)")
        print(
            f"  ratio:      {ours.wall / floor.wall:.1f} x the BPF floor's time "
            f"({ours.cpu / floor.cpu:.1f} in CPU time)"
        )


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


# -- every core (--jobs) --------------------------------------------------------------------------

# The reading phase alone (records, no tables, findings or files), to separate it from the serial rest.
# Each input hashed as it is read either way, as `analyze` does (the workers always hash; a serial
# baseline that did not would be 0.2 s of CPU cheaper on these inputs for no reason of parallelism).
READ_ONLY = (
    "import sys; from analyzer.limits import DEFAULT_LIMITS; from analyzer.parallel.multicore import run; "
    "from analyzer.pipeline import Pipeline; paths = sys.argv[2:]; "
    "run(paths, DEFAULT_LIMITS, int(sys.argv[1]), serial=lambda: Pipeline(DEFAULT_LIMITS, digests=True).run(paths))"
)
INDEPENDENT = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]  # no digits: 8 sessions
# (c), --large: the same shape as (a) at five times the size (seeds 21-28, about 140 MB each, 1.1 GB),
# where the fixed costs of a run weigh less and the reading, which the workers share, more.
LARGE = ["india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"]


def make_independent(names: list[str] = INDEPENDENT, first_seed: int = 11, size: str = "14M") -> list[Path]:
    """8 independent captures, seeds 11-18, about 25 MB each (made once); with `LARGE`, seeds 21-28
    at --size 112M, about 140 MB each, in bench/data/large8/."""
    d = DATA / ("independent8" if names is INDEPENDENT else "large8")
    d.mkdir(parents=True, exist_ok=True)
    caps = []
    for seed, name in enumerate(names, first_seed):
        cap = d / f"{name}.pcap"
        if not cap.exists():
            print(f"making {cap} ...", file=sys.stderr)
            cmd = [sys.executable, str(GENERATOR), "-o", str(cap), "--size", size, "--seed", str(seed)]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        caps.append(cap)
    return caps


def make_rotated(cap: Path, parts: int = 8) -> list[Path]:
    """The capture split into `parts` rotated files of equal frame counts with editcap -c (made once)."""
    d = DATA / f"rotated{parts}"
    if not any(d.glob("*.pcap")):
        d.mkdir(parents=True, exist_ok=True)
        per_file = -(-_frames(cap) // parts)
        subprocess.run(["editcap", "-c", str(per_file), str(cap), str(d / "rot.pcap")], check=True)
    return sorted(d.glob("*.pcap"))


def _frames(cap: Path) -> int:
    out = subprocess.run(["capinfos", "-c", "-M", str(cap)], capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1].split()[-1])


def _median_wall(cmds: list[list[str]], repeat: int) -> float:
    """Median over `repeat` rounds of the wall time of the commands run one after the other."""
    return statistics.median(sum(measure(c)[0] for c in cmds) for _ in range(repeat))


def _alternated(cmds: dict[str, list[str]], repeat: int) -> dict[str, Run]:
    """Each command `repeat` times, alternately (a drift in the machine's load hits each alike): the
    median wall and CPU time (the process and every worker it waited for) and the highest peak."""
    runs: dict[str, list[Run]] = {k: [] for k in cmds}
    for _ in range(repeat):
        for label, cmd in cmds.items():
            runs[label].append(measure_run(cmd))
    return {
        k: Run(statistics.median(r.wall for r in v), statistics.median(r.cpu for r in v), max(r.peak for r in v))
        for k, v in runs.items()
    }


def bench_jobs(name: str, caps: list[Path], analyzer: str, tshark: str, repeat: int, base: str | None) -> None:
    """--jobs 1 (one process), the default (no --jobs: on two cores one forked reader, the views beside
    the base tables) and --jobs 2 on these files, alternately, with tshark and the BPF floor over the
    same files; with a baseline (`--tree`), its --jobs 1 and --jobs 2 in the same alternation."""
    tcpdump = shutil.which("tcpdump")
    with tempfile.TemporaryDirectory() as tmp:
        # label: (the analyzer, its --jobs; None: the default, no --jobs)
        runs_of: dict[str, tuple[str, str | None]] = {
            "1": (analyzer, "1"),
            "default": (analyzer, None),
            "2": (analyzer, "2"),
        }
        if base:
            runs_of |= {"b1": (base, "1"), "b2": (base, "2")}
        labels = tuple(runs_of)
        outs = {j: Path(tmp) / f"jobs{j}" for j in labels}
        for c in caps:  # warm the page cache
            c.read_bytes()
        cmds = {j: _jobs_cmd(tree, caps, outs[j], jobs) for j, (tree, jobs) in runs_of.items()}
        runs = _alternated(cmds, repeat)
        same = all(_same_csvs(outs["1"], outs[j]) for j in labels[1:])
    reads = _alternated({j: [sys.executable, "-c", READ_ONLY, j, *map(str, caps)] for j in ("1", "2")}, repeat)
    t_wall = _median_wall(
        [[tshark, "-r", str(c), "-Y", TSHARK_FILTER, "-T", "fields", "-e", "frame.number"] for c in caps], 1
    )
    floor = (
        _median_wall([[tcpdump, "-r", str(c), "-w", "/dev/null", BPF_FILTER] for c in caps], repeat)
        if tcpdump
        else float("nan")
    )
    mb = sum(c.stat().st_size for c in caps) / 1e6
    one, default, two = runs["1"], runs["default"], runs["2"]
    print(f"{name}: {len(caps)} files, {mb:.0f} MB, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(
        f"  --jobs 1 (one process): {one.wall:.2f} s ({one.cpu:.2f} s CPU)   default (no --jobs): "
        f"{default.wall:.2f} s ({default.cpu:.2f} s CPU)   --jobs 2: {two.wall:.2f} s ({two.cpu:.2f} s CPU)"
    )
    print(
        f"  ratio --jobs 1 / default: {one.wall / default.wall:.2f}x   --jobs 1 / --jobs 2: {one.wall / two.wall:.2f}x"
        f"   peak {one.peak:.0f} / {default.peak:.0f} / {two.peak:.0f} MiB"
    )
    r1, r2 = reads["1"], reads["2"]
    print(
        f"  reading only (records, no tables): {r1.wall:.2f} s ({r1.cpu:.2f} s CPU) and {r2.wall:.2f} s "
        f"({r2.cpu:.2f} s CPU), ratio {r1.wall / r2.wall:.2f}x"
    )
    print(f"  tshark:   {t_wall:.2f} s ({default.wall / t_wall:.3f}x tshark's time by default)")
    print(f"  BPF floor (tcpdump): {floor:.2f} s ({default.wall / floor:.1f}x the floor by default)")
    if base:
        b1, b2 = runs["b1"], runs["b2"]
        print(
            f"  baseline {base}: --jobs 1 {b1.wall:.2f} s ({b1.cpu:.2f} s CPU)   --jobs 2 {b2.wall:.2f} s "
            f"({b2.cpu:.2f} s CPU)   ratio {b1.wall / b2.wall:.2f}x"
        )
    print(f"  CSVs byte-identical between the {len(outs)} runs: {'yes' if same else 'NO'}")
    if not same:
        raise SystemExit(f"{name}: the runs wrote different tables")


def _jobs_cmd(analyzer: str, caps: list[Path], out: Path, jobs: str | None) -> list[str]:
    """`analyze` of the captures with `--jobs jobs`, or without --jobs (the default) when None."""
    return [analyzer, "analyze", *map(str, caps), "-o", str(out), "-q", *(("--jobs", jobs) if jobs else ())]


def _same_csvs(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.glob("*.csv"))
    return names == sorted(p.name for p in b.glob("*.csv")) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


def with_bytecode(analyzer: str) -> None:
    """Let the measured runs load the analyzer's modules from bytecode caches, as an installed package
    does (pip compiles them): with PYTHONDONTWRITEBYTECODE set (as in this project's sessions) and an
    editable install, every run compiled some 100 modules from source, 0.3 s of CPU, all of it
    before the first frame is read, in the one process of --jobs 1 as in the parent of --jobs 2.
    The caches go to a directory of their own (PYTHONPYCACHEPREFIX), written by one unmeasured run."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "rpc-analyzer-bench-pycache")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([analyzer, "analyze", str(SHARED / "captures"), "-o", tmp, "-q"], check=False)
    print(f"bytecode caches in {os.environ['PYTHONPYCACHEPREFIX']} (PYTHONDONTWRITEBYTECODE unset for the runs)")


def main_jobs(args: argparse.Namespace, analyzer: str, tshark: str, base: str | None) -> None:
    bench_jobs("(a) 8 independent captures", make_independent(), analyzer, tshark, args.repeat, base)
    rotated = make_rotated(resolve_capture(args.capture, args.size, args.seed))
    bench_jobs("(b) the capture in 8 rotated files", rotated, analyzer, tshark, args.repeat, base)
    if args.large:
        large = make_independent(LARGE, 21, "112M")
        bench_jobs("(c) 8 independent captures, 1.1 GB", large, analyzer, tshark, args.repeat, base)


def baseline(tree: str | None) -> str | None:
    """The analyzer of another checkout (`--tree DIR`: DIR/.venv/bin/rpc-analyzer), run alternately
    with this one as a baseline: a before/after in the same minutes, on the same files."""
    if tree is None:
        return None
    exe = Path(tree).resolve() / ".venv" / "bin" / "rpc-analyzer"
    if not exe.exists():
        raise SystemExit(f"--tree {tree}: no {exe} (make its virtualenv as the README says)")
    return str(exe)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="200M")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--capture",
        help="use this capture (and its .truth.json) instead of making one; '1g' makes or reuses the 1.1 GB "
        "seed-2 capture and measures cat and the BPF floor as well",
    )
    ap.add_argument("--jobs", action="store_true", help="measure --jobs 1 against --jobs 2 (see above)")
    ap.add_argument(
        "--large",
        action="store_true",
        help="with --jobs, also (c): 8 independent captures of about 140 MB (1.1 GB, made once in bench/data/large8/)",
    )
    ap.add_argument(
        "--tree",
        help="another checkout (DIR/.venv/bin/rpc-analyzer) measured alternately as a baseline, e.g. --tree ../main",
    )
    args = ap.parse_args()
    base = baseline(args.tree)

    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark not found: apt-get install -y tshark")
    analyzer = shutil.which("rpc-analyzer") or str(Path(sys.executable).with_name("rpc-analyzer"))
    with_bytecode(analyzer)
    if base is not None:
        with_bytecode(base)
    if args.jobs:
        main_jobs(args, analyzer, tshark, base)
        return
    floors = args.capture is not None and args.capture.lower() in ALIASES
    cap = resolve_capture(args.capture, args.size, args.seed)
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
        base_cmd = None if base is None else [base, "analyze", str(cap), "-o", str(Path(tmp) / "base"), "-q"]
        if floors:
            one_core(cap, args.repeat, ours_cmd, theirs_cmd, base_cmd)
            require_truth(check_truth(cap, out))
            if base_cmd is not None and not _same_csvs(out, Path(tmp) / "base"):
                raise SystemExit("the baseline wrote different tables")
            return
        ours, theirs, based = [], [], []
        for _ in range(args.repeat):
            ours.append(measure(ours_cmd))
            theirs.append(measure(theirs_cmd))
            if base_cmd is not None:
                based.append(measure(base_cmd))
        missing = check_truth(cap, out)
        if base_cmd is not None and not _same_csvs(out, Path(tmp) / "base"):
            raise SystemExit("the baseline wrote different tables")
    o_wall = statistics.median(w for w, _ in ours)
    t_wall = statistics.median(w for w, _ in theirs)
    o_rss = max(m for _, m in ours)
    t_rss = max(m for _, m in theirs)
    print(f"capture: {cap.name}, {size_mb:.0f} MB")
    print(f"rpc-analyzer: {o_wall:.2f} s (median of {args.repeat}), peak {o_rss:.0f} MiB")
    print(f"tshark:       {t_wall:.2f} s (median of {args.repeat}), peak {t_rss:.0f} MiB")
    print(f"ratio:        {o_wall / t_wall:.3f} x tshark's time, {o_rss / t_rss:.3f} x its memory")
    if based:
        b_wall = statistics.median(w for w, _ in based)
        print(f"baseline:     {b_wall:.2f} s (median of {args.repeat}), {b_wall / t_wall:.3f} x tshark's time")
    require_truth(missing)


def require_truth(missing: list[str]) -> None:
    if missing:
        print("\n".join(missing[:20]), file=sys.stderr)
        raise SystemExit(f"{len(missing)} truth records not found")


if __name__ == "__main__":
    main()
