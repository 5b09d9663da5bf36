#!/usr/bin/env python3
"""The read path's steps inside the pipeline: CPU of each, on the reading thread.

    python bench/readpath.py CAPTURE [--digests] [--alone]

runs the pipeline on one pcap as the forked reader does (`Pipeline(...).run`) with a timer
(`time.thread_time`, so a busy machine's waiting is not counted) around each step of the read path:
the reads of the file, the C record walk, the batch's bounds and times, the prefilter's fields and
candidates, and the completion of records cut by a buffer's end; then prints each step's CPU, the
reading thread's and the process's (the hashing thread's, with --digests). `--alone` runs the same
steps in a loop of their own, without the pipeline (the well-known ports only, nothing decoded): the
difference is what the pipeline's work between two reads costs them (caches). A measuring aid for
issue 14 (README, Performance), not part of the analyzer.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable
from typing import Any

from analyzer.capture import pcap, prefilter
from analyzer.capture.source import open_capture
from analyzer.limits import DEFAULT_LIMITS
from analyzer.pipeline import Pipeline

SPENT: dict[str, float] = {}


def timed(step: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[step] = SPENT.get(step, 0.0) + time.thread_time() - start

    return wrapper


class TimedFile:
    """The capture file, its reads timed."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self.read = timed("read", f.read)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def instrument() -> None:
    assert pcap.c_walk is not None and prefilter.c_fields is not None, "build the extension first"
    pcap.c_walk = timed("walk (C)", pcap.c_walk)
    prefilter.c_fields = timed("fields (C)", prefilter.c_fields)
    prefilter.candidates = timed("candidates", prefilter.candidates)  # type: ignore[assignment]
    pcap.PcapReader._batch = timed("bounds and times", pcap.PcapReader._batch)  # type: ignore[method-assign]
    pcap.PcapReader._complete = timed("cut records", pcap.PcapReader._complete)  # type: ignore[method-assign]
    init = pcap.PcapReader.__init__

    def timed_init(self: pcap.PcapReader, f: Any, name: str) -> None:
        init(self, TimedFile(f), name)

    pcap.PcapReader.__init__ = timed_init  # type: ignore[method-assign]


def alone(path: str) -> None:
    """The read path's steps over the file, in a loop of their own."""
    reader = open_capture(path)
    assert isinstance(reader, pcap.PcapReader), "a pcap file"
    tcp_first, udp_first = prefilter.table({5}), prefilter.table({4})
    tcp, udp = prefilter.port_table({135, 139, 445, 593}), prefilter.port_table({135})
    for batch in reader.batches():
        f, base = prefilter.fields(batch, tcp_first, udp_first)
        prefilter.candidates(f, base, tcp, udp, 0)
    reader.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture")
    ap.add_argument("--digests", action="store_true", help="hash the input as the CLI does")
    ap.add_argument("--alone", action="store_true", help="the read path alone, without the pipeline")
    args = ap.parse_args()
    instrument()
    t0, c0 = time.thread_time(), os.times()
    if args.alone:
        alone(args.capture)
    else:
        Pipeline(DEFAULT_LIMITS, digests=args.digests).run([args.capture], None)
    c1 = os.times()
    for step, spent in SPENT.items():
        print(f"{step:<18}{spent:7.3f} s")
    print(f"{'reading thread':<18}{time.thread_time() - t0:7.3f} s")
    print(f"{'whole process':<18}{c1.user + c1.system - c0.user - c0.system:7.3f} s")


if __name__ == "__main__":
    main()
