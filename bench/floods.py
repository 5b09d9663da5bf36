#!/usr/bin/env python3
"""Floods: hostile captures at full size, each timed and measured next to a normal capture of its size.

Each flood of issue 13 is written with `struct` (scapy would take minutes for a million packets):

    syn        1,000,000 TCP SYNs to port 135, each from its own client port (70 MB)
    binds      200,000 connections on 135 with one bind and its bind_ack each
    pending    100,000 requests on one connection, none answered
    epm        1,024 ept_map requests of 1 MiB of stub each, none answered (about 1.1 GB)
    bogus      a .pcap.gz of 16-byte bogus PDUs on one connection (4.2 M PDUs, 67 MB before gzip)

then `rpc-analyzer analyze FILE -o OUT -q` runs on it, and on a normal capture of the same
(uncompressed) size made by ../shared/bench/make_bench_pcap.py, and the wall time, CPU time (user +
sys) and peak resident memory (wait4: the biggest of the process and its forked reader; then, sampled
from /proc by bench/rss.py, the parent's and the biggest forked process's own) and the row counts of
violations.csv are printed. The runs load the analyzer from bytecode caches, as an installed package
does (`bytecode_env`). The target: peak RSS at most 200 MiB for each, time within 3x of the normal capture's.
Files are kept in bench/data/floods/ (ignored by git). Usage:

    python bench/floods.py [--scale 1.0] [--only syn,binds] [--tree DIR] [--no-normal]

`--tree DIR` runs the analyzer found in DIR (another checkout, e.g. the code before a change)
instead of this one. The tests import the builders below and run them scaled down.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import rss  # noqa: E402  (bench/rss.py, beside this file)

GENERATOR = ROOT.parent / "shared" / "bench" / "make_bench_pcap.py"
DATA = ROOT / "bench" / "data" / "floods"

EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
NDR = "8a885d04-1ceb-11c9-9fe8-08002b104860"
SRVSVC = "4b324fc8-1670-01d3-1278-5a47bf6ee188"
MiB = 1 << 20

SYN, RST, PSH_ACK, SYN_ACK = 0x02, 0x04, 0x18, 0x12


# -- wire encoders ([C706] 12.6, RFC 791/793), independent of the analyzer's decoder ------------


class PcapWriter:
    """Ethernet/IPv4/TCP frames into a classic pcap (microsecond timestamps)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.t = 1_700_000_000_000_000  # microseconds
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

    def tcp(self, src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int, flags: int, data: bytes) -> None:
        tcp = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 65535, 0, 0)
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(data), 0, 0x4000, 64, 6, 0, src, dst)
        frame = b"\x00\x11\x22\x33\x44\x55\x00\x66\x77\x88\x99\xaa\x08\x00" + ip + tcp + data
        self.t += 10
        sec, usec = divmod(self.t, 1_000_000)
        self.out.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)


def _syntax(u: str, major: int, minor: int = 0) -> bytes:
    return uuid.UUID(u).bytes_le + struct.pack("<HH", major, minor)


def co_header(ptype: int, call_id: int, body_len: int, flags: int = 3) -> bytes:
    """The 16-byte connection-oriented header, little-endian NDR ([C706] 12.6.3.1)."""
    return struct.pack("<BBBB4sHHI", 5, 0, ptype, flags, b"\x10\0\0\0", 16 + body_len, 0, call_id)


def bind_pdu(call_id: int, iface: str, major: int) -> bytes:
    ctx = struct.pack("<HBB", 0, 1, 0) + _syntax(iface, major) + _syntax(NDR, 2)
    body = struct.pack("<HHIBBH", 4280, 4280, 0, 1, 0, 0) + ctx
    return co_header(11, call_id, len(body)) + body


def bind_ack_pdu(call_id: int) -> bytes:
    sec = b"135\0"
    body = struct.pack("<HHIH", 4280, 4280, 0x1234, len(sec)) + sec
    body += b"\0" * (-len(body) % 4)
    body += struct.pack("<BBHHH", 1, 0, 0, 0, 0) + _syntax(NDR, 2)
    return co_header(12, call_id, len(body)) + body


def request_pdu(call_id: int, opnum: int, stub: bytes, flags: int = 3, alloc_hint: int = 0) -> bytes:
    body = struct.pack("<IHH", alloc_hint or len(stub), 0, opnum) + stub
    return co_header(0, call_id, len(body), flags) + body


class Conn:
    """One TCP connection's sequence numbers."""

    def __init__(self, w: PcapWriter, client: bytes, cport: int, server: bytes, sport: int) -> None:
        self.w, self.c, self.cp, self.s, self.sp = w, client, cport, server, sport
        self.cseq, self.sseq = 1000, 5000

    def syn(self) -> None:
        self.w.tcp(self.c, self.cp, self.s, self.sp, self.cseq - 1, 0, SYN, b"")

    def handshake(self) -> None:
        self.syn()
        self.w.tcp(self.s, self.sp, self.c, self.cp, self.sseq - 1, self.cseq, SYN_ACK, b"")

    def send(self, data: bytes, from_client: bool = True) -> None:
        if from_client:
            self.w.tcp(self.c, self.cp, self.s, self.sp, self.cseq, self.sseq, PSH_ACK, data)
            self.cseq += len(data)
        else:
            self.w.tcp(self.s, self.sp, self.c, self.cp, self.sseq, self.cseq, PSH_ACK, data)
            self.sseq += len(data)

    def reset(self) -> None:
        self.w.tcp(self.c, self.cp, self.s, self.sp, self.cseq, self.sseq, RST | 0x10, b"")


def _client(i: int) -> tuple[bytes, int]:
    """A distinct (address, port) per index: 10.x.y.z, ports 1024-65023."""
    host, port = divmod(i, 64000)
    return bytes([10, 1 + (host >> 16) % 200, (host >> 8) & 255, host & 255]), 1024 + port


SERVER = bytes([10, 0, 0, 1])


# -- the floods ---------------------------------------------------------------------------------


def syn_flood(out: BinaryIO, n: int) -> None:
    """n SYNs to port 135, each from its own client: every one a new flow."""
    w = PcapWriter(out)
    for i in range(n):
        addr, port = _client(i)
        Conn(w, addr, port, SERVER, 135).syn()


def bind_flood(out: BinaryIO, n: int) -> None:
    """n connections on 135, one after the other, each with a bind and its bind_ack, then reset."""
    w = PcapWriter(out)
    bind, ack = bind_pdu(1, EPM, 3), bind_ack_pdu(1)
    for i in range(n):
        addr, port = _client(i)
        c = Conn(w, addr, port, SERVER, 135)
        c.handshake()
        c.send(bind)
        c.send(ack, from_client=False)
        c.reset()


def pending_flood(out: BinaryIO, n: int) -> None:
    """One connection: a bind, then n requests nobody answers."""
    w = PcapWriter(out)
    c = Conn(w, bytes([10, 9, 9, 9]), 50000, SERVER, 49700)
    c.handshake()
    c.send(bind_pdu(1, SRVSVC, 3))
    c.send(bind_ack_pdu(1), from_client=False)
    for call_id in range(2, n + 2):
        c.send(request_pdu(call_id, 15, b"\0" * 40))


def epm_flood(out: BinaryIO, n: int, stub_bytes: int = MiB, fragment: int = 60_000) -> None:
    """One connection on 135: a bind to the endpoint mapper, then n ept_map requests of stub_bytes
    each, in fragments of `fragment` stub bytes, none answered: every stub is one a call keeps."""
    w = PcapWriter(out)
    c = Conn(w, bytes([10, 8, 8, 8]), 50001, SERVER, 135)
    c.handshake()
    c.send(bind_pdu(1, EPM, 3))
    c.send(bind_ack_pdu(1), from_client=False)
    chunk = b"\xab" * fragment
    for call_id in range(2, n + 2):
        left = stub_bytes
        flags = 1  # first fragment
        while left > 0:
            take = min(left, fragment)
            left -= take
            if not left:
                flags |= 2  # last fragment
            c.send(request_pdu(call_id, 3, chunk[:take], flags, alloc_hint=stub_bytes))
            flags = 0


def bogus_flood(out: BinaryIO, n: int, per_segment: int = 87) -> None:
    """One connection on 135 whose client sends n 16-byte PDUs, a request header that claims to
    be the whole PDU (a request needs 24 bytes at least), per_segment of them a segment. gzip."""
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        w = PcapWriter(gz)  # type: ignore[arg-type]
        c = Conn(w, bytes([10, 7, 7, 7]), 50002, SERVER, 135)
        c.handshake()
        pdu = co_header(0, 1, 0)
        while n > 0:
            k = min(n, per_segment)
            c.send(pdu * k)
            n -= k


FLOODS: dict[str, tuple[Callable[[BinaryIO, int], None], int, str]] = {
    "syn": (syn_flood, 1_000_000, "pcap"),
    "binds": (bind_flood, 200_000, "pcap"),
    "pending": (pending_flood, 100_000, "pcap"),
    "epm": (epm_flood, 1024, "pcap"),
    "bogus": (bogus_flood, 4_190_000, "pcap.gz"),
}


def build(name: str, scale: float, directory: Path = DATA) -> Path:
    """The flood's file at this scale (made once, then kept)."""
    fn, full, ext = FLOODS[name]
    n = max(1, int(full * scale))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}_{n}.{ext}"
    if not path.exists():
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as out:
            fn(out, n)
        tmp.rename(path)
    return path


# -- measuring ----------------------------------------------------------------------------------


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, float, float]:
    """(wall seconds, CPU seconds (user + sys), peak RSS in MiB) of one child process and the
    children it waited for (the forked reader), from wait4; then the peaks of the command itself
    and of the biggest process it forked (the reader, a worker), sampled from /proc (`bench/rss.py`;
    NaN where /proc is not there)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    done = threading.Event()
    peaks: dict[int, Any] = {}
    sampler = threading.Thread(target=lambda: peaks.update(rss.sample(proc.pid, 0.01, lambda: not done.is_set())))
    sampler.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"analyzer failed ({os.waitstatus_to_exitcode(status)}): {err.strip()[-2000:]}")
    nan = float("nan")
    parent = peaks[proc.pid].kib / 1024 if proc.pid in peaks else nan
    forked = max((p.kib / 1024 for pid, p in peaks.items() if pid != proc.pid), default=nan)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, parent, forked


def normal_capture(size: int) -> Path | None:
    """A normal capture of about `size` bytes from the shared benchmark generator."""
    if not GENERATOR.exists():
        return None
    mb = max(1, round(size / 1e6))
    path = DATA / f"normal_{mb}M.pcap"
    if not path.exists():
        subprocess.run(
            [sys.executable, str(GENERATOR), "-o", str(path), "--size", f"{mb}M", "--seed", "1"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


def uncompressed_size(path: Path) -> int:
    if path.suffix != ".gz":
        return path.stat().st_size
    n = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += len(chunk)
    return n


def violation_rows(out_dir: Path) -> Counter[str]:
    path = out_dir / "violations.csv"
    if not path.exists():
        return Counter()
    with open(path, newline="") as f:
        return Counter(row["what"] for row in csv.DictReader(f))


# Runs `python -m analyzer` from the tree in $FLOODS_TREE: an editable install's import hook would
# otherwise win over PYTHONPATH and always run this checkout.
_BOOT = (
    "import os, runpy, sys;"
    "sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable__')];"
    "sys.path.insert(0, os.environ['FLOODS_TREE']);"
    "sys.argv[0] = 'analyzer';"
    "runpy.run_module('analyzer', run_name='__main__')"
)


def run_one(path: Path, env: dict[str, str]) -> tuple[tuple[float, ...], Counter[str]]:
    """`measure` of one run on `path`, and the rows of its violations.csv by `what`."""
    out = Path(tempfile.mkdtemp(prefix="floods-out-"))
    try:
        figures = measure([sys.executable, "-c", _BOOT, "analyze", str(path), "-o", str(out), "-q"], env)
        return figures, violation_rows(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def bytecode_env(tree: Path) -> dict[str, str]:
    """The runs' environment: the analyzer in `tree`, its modules loaded from bytecode caches as an
    installed package's are. With PYTHONDONTWRITEBYTECODE set (as in this project's sessions) every run
    compiled about 140 modules from source, some 0.45 s of CPU added to the flood and its normal capture
    alike, which shrank their ratio; bench/run.py does the same (`with_bytecode`). The caches go to a
    directory of their own, written by one unmeasured run on a bundled sample."""
    env = dict(os.environ, FLOODS_TREE=str(tree.resolve()))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "rpc-analyzer-bench-pycache")
    with tempfile.TemporaryDirectory() as tmp:
        sample = ROOT / "samples" / "pcaps"
        subprocess.run([sys.executable, "-c", _BOOT, "analyze", str(sample), "-o", tmp, "-q"], env=env, check=False)
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (default 1)")
    ap.add_argument("--only", default=",".join(FLOODS), help="comma-separated floods to run")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose analyzer runs")
    ap.add_argument("--no-normal", action="store_true", help="skip the normal captures of the same size")
    args = ap.parse_args(argv)
    env = bytecode_env(args.tree)
    head = ("flood", "file MB", "time s", "cpu s", "peak MiB", "parent", "forked", "normal s", "cpu s", "MiB")
    print("{:8} {:>8} {:>7} {:>7} {:>8} {:>6} {:>6} {:>8} {:>7} {:>6}  violations rows".format(*head))
    nan = float("nan")
    for name in args.only.split(","):
        path = build(name, args.scale)
        size = uncompressed_size(path)
        (wall, cpu, peak, parent, forked), rows = run_one(path, env)
        normal = None if args.no_normal else normal_capture(size)
        n_wall, n_cpu, n_peak = run_one(normal, env)[0][:3] if normal is not None else (nan, nan, nan)
        top = ", ".join(f"{w} {c}" for w, c in rows.most_common(3))
        figures = (
            f"{wall:7.1f} {cpu:7.1f} {peak:8.0f} {parent:6.0f} {forked:6.0f} {n_wall:8.1f} {n_cpu:7.1f} {n_peak:6.0f}"
        )
        print(f"{name:8} {size / 1e6:8.1f} {figures}  {top}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
