#!/usr/bin/env python3
"""Run a fuzz target: `python fuzz/run.py TARGET [--seconds N]` (see fuzz/targets.py).

Coverage-guided with atheris when it is installed; otherwise random mutations (bit flips, byte
insertions and deletions, splices) of the bundled sample captures and of the payloads inside them.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz.targets import TARGETS

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "pcaps"
CRASHES = Path(__file__).resolve().parent / "crashes"


def corpus() -> list[bytes]:
    out = [p.read_bytes() for p in sorted(SAMPLES.glob("*.pcap*")) if not p.name.endswith(".gz")]
    # a small NetMon 2.x file: header, two frames, frame table
    frame = (0).to_bytes(8, "little") + (60).to_bytes(4, "little") * 2 + bytes(60) + (1).to_bytes(2, "little")
    table_at = 128 + 2 * len(frame)
    header = b"GMBU" + bytes([1, 2]) + (1).to_bytes(2, "little") + bytes(16)
    header += table_at.to_bytes(4, "little") + (8).to_bytes(4, "little")
    out.append(
        header.ljust(128, b"\0") + frame * 2 + (128).to_bytes(4, "little") + (128 + len(frame)).to_bytes(4, "little")
    )
    # payload-sized slices too, so the stream parsers see PDUs near offset 0
    out += [b[i : i + 600] for b in out for i in range(40, len(b), 600)]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("target", choices=sorted(TARGETS))
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args, rest = ap.parse_known_args()
    target = TARGETS[args.target]
    try:
        import atheris  # type: ignore[import-not-found]
    except ImportError:
        atheris = None
    if atheris is not None:
        atheris.Setup([sys.argv[0], *rest, f"-max_total_time={int(args.seconds)}"], target)
        atheris.Fuzz()
        return
    rnd = random.Random(args.seed)
    pool = corpus()
    end = time.monotonic() + args.seconds
    runs = 0
    while time.monotonic() < end:
        data = mutate(rnd, rnd.choice(pool), pool)
        try:
            target(data)
        except Exception:
            CRASHES.mkdir(exist_ok=True)
            path = CRASHES / f"{args.target}-{runs}.bin"
            path.write_bytes(data)
            traceback.print_exc()
            raise SystemExit(f"crash after {runs} runs; input saved to {path}") from None
        runs += 1
    print(f"{args.target}: {runs} runs, no crash")


if __name__ == "__main__":
    main()
