"""Hosts, frames, the manifest and the capture being built, and the pcap / pcapng file writers.

Libpcap file format; pcapng (draft-ietf-opsawg-pcapng) section header, interface description, enhanced,
simple and obsolete packet blocks.
"""

from __future__ import annotations

import json
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ids import T0

HERE = Path(__file__).resolve().parents[1]  # samples/


PCAP_DIR = HERE / "pcaps"
EXPECTED_DIR = HERE / "expected"


@dataclass
class Host:
    name: str
    ip: str
    mac: str
    ip6: str = ""
    ipid: int = 0x1000
    ttl: int = 128

    def next_ipid(self) -> int:
        self.ipid = (self.ipid + 1) & 0xFFFF
        return self.ipid


def hosts() -> dict[str, Host]:
    """A fresh set of the sample network's hosts (fresh IP-ID counters for each capture)."""
    return {
        "ws01": Host("WS01", "10.0.0.20", "00:15:5d:01:02:14", "fd00:10::20", 0x2A00),
        "ws02": Host("WS02", "10.0.0.21", "00:15:5d:01:02:15", "fd00:10::21", 0x3100),
        "srv01": Host("SRV01", "10.0.0.10", "00:15:5d:01:02:0a", "fd00:10::10", 0x5C00),
        "dc01": Host("DC01", "10.0.0.5", "00:15:5d:01:02:05", "fd00:10::5", 0x6E00),
        "plc": Host("PLC1", "10.0.0.30", "00:0e:8c:aa:bb:01", "", 0x0100, 64),
        "hmi": Host("HMI1", "10.0.0.31", "00:1b:1b:aa:bb:02", "", 0x0200, 128),
        "lo": Host("localhost", "127.0.0.1", "00:00:00:00:00:00", "::1", 0x7700),
    }


@dataclass
class Frame:
    ts_ns: int
    data: bytes
    iface: int = 0
    block: str = "epb"  # pcapng block kind: epb (enhanced), spb (simple), pb (obsolete packet block)
    desc: str = ""


class Manifest:
    """The facts a capture holds, written as samples/expected/<file>.json."""

    def __init__(self, file: str, description: str) -> None:
        self.data: dict[str, Any] = {
            "file": file,
            "description": description,
            "format": {},
            "frame_count": 0,
            "first_timestamp": "2024-03-01T10:00:00Z",
            "binds": [],
            "epm_towers": [],
            "requests": [],
            "cl_pdus": [],
            "ntlm_auth": [],
            "tshark_notes": [],
        }

    def __getitem__(self, k: str) -> Any:
        return self.data[k]

    def __setitem__(self, k: str, v: Any) -> None:
        self.data[k] = v

    def note(self, text: str) -> None:
        self.data["tshark_notes"].append(text)


class Capture:
    """A list of frames with a deterministic clock, plus the manifest being written alongside."""

    def __init__(self, file: str, description: str, seed: int, linktype: int = 1, ts_resolution: str = "us") -> None:
        self.file = file
        self.rng = random.Random(seed)
        self.frames: list[Frame] = []
        self.t_ns = T0 * 1_000_000_000
        self.linktype = linktype
        self.ts_resolution = ts_resolution
        self.man = Manifest(file, description)
        self.h = hosts()
        self.iface_res: dict[int, str] = {0: ts_resolution}

    def tick(self, lo_us: int = 40, hi_us: int = 900) -> None:
        step = self.rng.randint(lo_us, hi_us) * 1000
        if self.ts_resolution == "ns":
            step += self.rng.randint(1, 999)
        self.t_ns += step

    def wait(self, ms: float) -> None:
        self.t_ns += int(ms * 1_000_000)

    def add(self, data: bytes, desc: str = "", iface: int = 0, block: str = "epb", tick: bool = True) -> int:
        if tick and self.frames:
            self.tick()
        ts = self.t_ns
        if self.iface_res.get(iface, "us") == "us":
            ts -= ts % 1000
        self.frames.append(Frame(ts, bytes(data), iface, block, desc))
        return len(self.frames)

    def ts_of(self, frame: int) -> int:
        return self.frames[frame - 1].ts_ns


def pcap_bytes(cap: Capture, big_endian: bool = False, nano: bool = False, snaplen: int = 262144) -> bytes:
    """Classic libpcap file: magic a1b2c3d4 (us) or a1b23c4d (ns), written in either byte order."""
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = bytearray(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, cap.linktype))
    div = 1 if nano else 1000
    for fr in cap.frames:
        sec, frac = divmod(fr.ts_ns, 1_000_000_000)
        out += struct.pack(e + "IIII", sec, frac // div, len(fr.data), len(fr.data)) + fr.data
    return bytes(out)


def write_file(name: str, data: bytes) -> None:
    PCAP_DIR.mkdir(parents=True, exist_ok=True)
    (PCAP_DIR / name).write_bytes(data)


def write_manifest(cap: Capture, fmt: dict[str, Any], frame_count: int | None = None) -> None:
    m = cap.man.data
    m["format"] = fmt
    m["frame_count"] = len(cap.frames) if frame_count is None else frame_count
    m["frame_log"] = [f"{i + 1} {f.desc}" for i, f in enumerate(cap.frames)]
    EXPECTED_DIR.mkdir(parents=True, exist_ok=True)
    (EXPECTED_DIR / f"{cap.file}.json").write_text(json.dumps(m, indent=1) + "\n")


def save_pcap(cap: Capture, **kw: Any) -> None:
    data = pcap_bytes(cap, **kw)
    write_file(cap.file, data)
    write_manifest(
        cap,
        {
            "container": "pcap",
            "linktype": cap.linktype,
            "ts_resolution": "ns" if kw.get("nano") else "us",
            "byte_order": "big" if kw.get("big_endian") else "little",
        },
    )


def pcapng_block(btype: int, body: bytes) -> bytes:
    """A pcapng block (draft-ietf-opsawg-pcapng 3.1): type, total length, body padded to 32 bits,
    total length again."""
    body += b"\0" * ((-len(body)) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def pcapng_options(opts: list[tuple[int, bytes]]) -> bytes:
    """Options: code u16, length u16, value padded to 32 bits; opt_endofopt last."""
    out = b""
    for code, val in opts:
        out += struct.pack("<HH", code, len(val)) + val + b"\0" * ((-len(val)) % 4)
    return out + struct.pack("<HH", 0, 0)


def pcapng_bytes(cap: Capture, interfaces: list[dict[str, Any]]) -> bytes:
    """Section header, one interface description block per interface (link type, if_name, if_tsresol), then
    one block per frame: enhanced packet blocks (type 6), a simple packet block (type 3: no interface id,
    no timestamp, interface 0 implied) or an obsolete packet block (type 2: 16-bit interface id,
    drops count)."""
    out = pcapng_block(
        0x0A0D0D0A,
        struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        + pcapng_options([(3, b"Linux 6.1 x86_64"), (4, b"samples/make_samples.py")]),
    )
    for itf in interfaces:
        out += pcapng_block(
            1,
            struct.pack("<HHI", itf["linktype"], 0, 262144)
            + pcapng_options([(2, itf["name"].encode()), (9, bytes([6 if itf["tsresol"] == "us" else 9]))]),
        )
    for fr in cap.frames:
        ts = fr.ts_ns // 1000 if interfaces[fr.iface]["tsresol"] == "us" else fr.ts_ns
        hi, lo = ts >> 32, ts & 0xFFFFFFFF
        n = len(fr.data)
        if fr.block == "spb":
            out += pcapng_block(3, struct.pack("<I", n) + fr.data)
        elif fr.block == "pb":
            out += pcapng_block(
                2,
                struct.pack("<HHIIII", fr.iface, 0, hi, lo, n, n)
                + fr.data
                + b"\0" * ((-n) % 4)
                + pcapng_options([(1, b"obsolete packet block")]),
            )
        else:
            out += pcapng_block(6, struct.pack("<IIIII", fr.iface, hi, lo, n, n) + fr.data)
    return out
