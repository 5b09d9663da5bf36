#!/usr/bin/env python3
"""Run fuzz targets: `python fuzz/run.py TARGET|all [--seconds N] [--random] [libFuzzer options]`.

With atheris installed (`pip install -e '.[fuzz]'`) the run is coverage-guided: the `analyzer`
package is instrumented as it is imported (`atheris.instrument_imports`), and libFuzzer starts from
a seed corpus of the bundled samples, the captures in ../shared/captures (those under 1 MB) and
payload-sized slices of them, written to fuzz/corpus/TARGET/ (which then keeps what libFuzzer finds).
Without atheris, or with `--random`, the driver mutates the same seeds at random (bit flips, byte
insertions and deletions, splices). The coverage-guided run loads the modules mypyc compiled
(setup.py's NATIVE) from their source, which the instrumentation sees (`analyzer.twins`); the random
one runs them compiled, as users do.

`all` runs every target, each in its own process, for an equal share of `--seconds` (the total), and
prints the executions per target. A crash saves its input under fuzz/crashes/ and exits non-zero.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

SAMPLES = ROOT / "samples" / "pcaps"
SHARED = ROOT.parent / "shared" / "captures"
CRASHES = HERE / "crashes"
CORPUS = HERE / "corpus"
NAMES = ["co_stream", "epm", "stubs", "smb", "cl", "capture", "pipeline", "end_to_end"]
MAX_SEED = 1 << 20  # shared captures above this are left out of the seeds
MAX_LEN = 1 << 16  # longest input libFuzzer makes
E2E_SEEDS, E2E_MAX_SEED = 60, 1 << 15  # the end-to-end target's seeds: how many, how large


def _netmon_seed() -> bytes:
    """A small NetMon 2.x file: header, two frames, frame table."""
    frame = (0).to_bytes(8, "little") + (60).to_bytes(4, "little") * 2 + bytes(60) + (1).to_bytes(2, "little")
    table_at = 128 + 2 * len(frame)
    header = b"GMBU" + bytes([1, 2]) + (1).to_bytes(2, "little") + bytes(16)
    header += table_at.to_bytes(4, "little") + (8).to_bytes(4, "little")
    return header.ljust(128, b"\0") + frame * 2 + (128).to_bytes(4, "little") + (128 + len(frame)).to_bytes(4, "little")


def corpus() -> list[bytes]:
    """Seeds: the bundled samples, the small shared captures, a NetMon file, and slices of them."""
    files = sorted(SAMPLES.glob("*.pcap*")) + sorted(SAMPLES.glob("*.cap"))
    if SHARED.is_dir():
        files += sorted(
            p
            for p in SHARED.rglob("*")
            if p.is_file() and p.suffix in (".pcap", ".pcapng", ".cap", ".gz") and p.stat().st_size <= MAX_SEED
        )
    out = [p.read_bytes() for p in files]
    out.append(_netmon_seed())
    # payload-sized slices too, so the stream parsers see PDUs near offset 0
    out += [b[i : i + 600] for b in out[:40] for i in range(40, min(len(b), 60_000), 600)]
    return out


def mutate(rnd: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        op = rnd.random()
        if not b:
            b += rnd.randbytes(16)
        elif op < 0.4:
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        elif op < 0.6:
            b[rnd.randrange(len(b))] = rnd.choice((0, 0xFF, 0x7F, 0x80, 5, 0x0B))
        elif op < 0.75:
            i = rnd.randrange(len(b))
            del b[i : i + rnd.randint(1, 64)]
        elif op < 0.9:
            i = rnd.randrange(len(b) + 1)
            b[i:i] = rnd.randbytes(rnd.randint(1, 32))
        else:
            other = rnd.choice(pool)
            i, j = rnd.randrange(len(b) + 1), rnd.randrange(len(other) + 1)
            b = b[:i] + other[j : j + rnd.randint(1, 512)]
    return bytes(b)


def _targets(instrument: bool) -> dict[str, Callable[[bytes], None]]:
    """The targets, with the analyzer package instrumented for coverage when asked. The libraries
    around it (pandas, pyarrow) are imported first, so that only our own code is instrumented."""
    if not instrument:
        from fuzz.targets import TARGETS

        return TARGETS
    import atheris  # type: ignore[import-not-found]
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    from analyzer import twins

    twins.use_source()  # the modules mypyc compiled, from their source: the instrumentation sees Python only
    with atheris.instrument_imports(include=["analyzer", "fuzz"]):
        import analyzer.api
        import analyzer.report.html
        import analyzer.report.output
        import analyzer.report.views  # noqa: F401
        from fuzz.targets import TARGETS
    return TARGETS


def _seed_dir(name: str) -> Path:
    """fuzz/corpus/NAME, seeded with the corpus (kept between runs: libFuzzer adds to it). The
    end-to-end target builds every table per input, so it gets the whole small files only."""
    d = CORPUS / name
    d.mkdir(parents=True, exist_ok=True)
    seeds = corpus()
    if name == "end_to_end":
        seeds = [s for s in seeds if 600 < len(s) <= E2E_MAX_SEED][:E2E_SEEDS]
    for seed in seeds:
        seed = seed[:MAX_LEN]
        path = d / hashlib.sha1(seed).hexdigest()
        if not path.exists():
            path.write_bytes(seed)
    return d


def run_atheris(name: str, seconds: float, rest: list[str]) -> None:
    import atheris

    target = _targets(instrument=True)[name]
    CRASHES.mkdir(exist_ok=True)
    argv = [
        sys.argv[0],
        *rest,
        f"-max_total_time={max(1, int(seconds))}",
        f"-max_len={MAX_LEN}",
        f"-artifact_prefix={CRASHES}/{name}-",
        "-print_final_stats=1",
        str(_seed_dir(name)),
    ]
    atheris.Setup(argv, target)
    atheris.Fuzz()


def run_random(name: str, seconds: float, seed: int) -> int:
    target = _targets(instrument=False)[name]
    rnd = random.Random(seed)
    pool = corpus()
    end = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < end:
        data = mutate(rnd, rnd.choice(pool), pool)
        try:
            target(data)
        except Exception:
            CRASHES.mkdir(exist_ok=True)
            path = CRASHES / f"{name}-{runs}.bin"
            path.write_bytes(data)
            traceback.print_exc()
            raise SystemExit(f"crash after {runs} runs; input saved to {path}") from None
        runs += 1
    print(f"{name}: {runs} runs, no crash")
    return runs


_DONE = re.compile(r"(?:Done (\d+) runs in \d+ second|stat::number_of_executed_units:\s+(\d+))")
_RANDOM = re.compile(r"^(\w+): (\d+) runs, no crash", re.M)


def run_all(seconds: float, random_mode: bool, seed: int, rest: list[str]) -> int:
    """Each target in its own process (libFuzzer exits the process when its time is up)."""
    share = seconds / len(NAMES)
    failed = 0
    print(f"{'target':12} {'mode':8} {'seconds':>8} {'executions':>11}  result", flush=True)
    for name in NAMES:
        cmd = [sys.executable, str(Path(__file__).resolve()), name, "--seconds", str(share), "--seed", str(seed)]
        cmd += ["--random"] if random_mode else []
        proc = subprocess.run([*cmd, *rest], capture_output=True, text=True, cwd=ROOT)
        out = proc.stdout + proc.stderr
        done = _DONE.search(out) or _RANDOM.search(out)
        runs = next((g for g in done.groups()[::-1] if g and g.isdigit()), "?") if done else "?"
        mode = "random" if random_mode or _RANDOM.search(out) else "atheris"
        result = "no escape" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        print(f"{name:12} {mode:8} {share:8.0f} {runs:>11}  {result}", flush=True)
        if proc.returncode:
            failed += 1
            print(out[-4000:], file=sys.stderr)
    return 1 if failed else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", choices=[*NAMES, "all"])
    ap.add_argument("--seconds", type=float, default=60, help="run time (for all: the total, shared equally)")
    ap.add_argument("--seed", type=int, default=0, help="random mode's seed")
    ap.add_argument("--random", action="store_true", help="random mutations even when atheris is installed")
    args, rest = ap.parse_known_args()
    try:
        import atheris  # noqa: F401
    except ImportError:
        have_atheris = False
    else:
        have_atheris = True
    random_mode = args.random or not have_atheris
    if args.target == "all":
        sys.exit(run_all(args.seconds, random_mode, args.seed, rest))
    if random_mode:
        run_random(args.target, args.seconds, args.seed)
    else:
        os.environ.setdefault("PYTHONHASHSEED", "0")
        run_atheris(args.target, args.seconds, rest)


if __name__ == "__main__":
    main()
