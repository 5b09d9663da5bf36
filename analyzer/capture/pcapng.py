"""pcapng files: sections, several interfaces each with its own link type and time resolution.

Format: IETF draft-ietf-opsawg-pcapng. Enhanced (6), simple (3) and obsolete (2) packet blocks are
frames; section headers (0x0A0D0D0A) reset the interface table; every other block is skipped.
dpkt's reader honours only the first interface, which is why this one exists.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from analyzer.capture.reader import MAX_TS_NS, CaptureReader, RawFrame

_CHUNK = 1 << 20
_MAX_BLOCK = 1 << 26

SHB = 0x0A0D0D0A
IDB = 1
OPB = 2
SPB = 3
EPB = 6
# Smallest total length of each block type that carries fixed fields (header and trailer included).
_MIN_BLOCK = {EPB: 32, OPB: 32, SPB: 16, IDB: 20}
# Precompiled per byte order: the block header, and an enhanced packet block's fixed fields.
_HEAD = {e: struct.Struct(e + "II").unpack_from for e in "<>"}
_EPB = {e: struct.Struct(e + "IIIII").unpack_from for e in "<>"}
_u32le = struct.Struct("<I").unpack_from
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14


def _ts_scale(tsresol: int) -> tuple[int, int]:
    """(multiplier, divisor) turning timestamp units into nanoseconds."""
    if tsresol & 0x80:
        return 1_000_000_000, 1 << (tsresol & 0x7F)
    exp = tsresol
    if exp <= 9:
        return 10 ** (9 - exp), 1
    return 1, 10 ** (exp - 9)


class PcapngReader(CaptureReader):
    format = "pcapng"

    def __init__(self, f: BinaryIO, name: str) -> None:
        super().__init__(f, name)
        head = f.read(12)
        if len(head) < 12:
            self._fail(f"not a capture file: shorter than a pcapng section header ({len(head)} bytes)")
        if head[:4] != b"\x0a\x0d\x0d\x0a":
            self._fail("not a pcapng file: it does not start with a section header block")
        self._pending = head
        self._endian = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        if head[8:12] not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
            self._fail("pcapng byte-order magic is not 0x1A2B3C4D")
        # Per interface of the current section: (link_type, ts_mult, ts_div, ts_offset_ns, snaplen)
        self._interfaces: list[tuple[int, int, int, int, int]] = []
        self._tsresol: list[int] = []  # per interface: the if_tsresol byte, for the violation text

    def _interface(self, body: bytes, e: str) -> tuple[int, int, int, int, int]:
        link, _res, snaplen = struct.unpack_from(e + "HHI", body, 0)  # the caller checked len(body) >= 8
        tsresol = 6
        tsoffset = 0
        off = 8
        while off + 4 <= len(body):
            code, length = struct.unpack_from(e + "HH", body, off)
            off += 4
            if code == 0 or off + length > len(body):
                break
            if code == _OPT_IF_TSRESOL and length >= 1:
                tsresol = body[off]
            elif code == _OPT_IF_TSOFFSET and length >= 8:
                tsoffset = struct.unpack_from(e + "q", body, off)[0]
            off += (length + 3) & ~3
        mult, div = _ts_scale(tsresol)
        self.link_types.add(link)
        self._tsresol.append(tsresol)
        return link, mult, div, tsoffset * 1_000_000_000, snaplen

    def __iter__(self) -> Iterator[RawFrame]:
        f = self._file
        buf = self._pending
        self._pending = b""
        off = 0
        eof = False
        while True:
            end = len(buf)
            blen = 0
            if off + 12 <= end:
                btype = _u32le(buf, off)[0]  # SHB's type reads the same both ways
                if btype == SHB:
                    magic = buf[off + 8 : off + 12]
                    if magic == b"\x4d\x3c\x2b\x1a":
                        self._endian = "<"
                    elif magic == b"\x1a\x2b\x3c\x4d":
                        self._endian = ">"
                    else:
                        self.truncated = f"section header after frame {self.frames} has a bad byte-order magic"
                        return
                e = self._endian
                btype, blen = _HEAD[e](buf, off)
                if blen < 12 or blen % 4 or blen > _MAX_BLOCK:
                    self.truncated = f"block after frame {self.frames} has an impossible length {blen}"
                    return
            if blen == 0 or off + blen > end:
                if eof:
                    break
                # A block cut by the buffer's end is completed with a read of just its missing bytes
                # (or of its header's): joining a whole new chunk to it would copy the chunk, which
                # costs more than reading it. The next read then starts a fresh chunk, uncopied.
                left = end - off
                chunk = f.read((blen or 12) - left if left else _CHUNK)
                self.bytes_read += off
                buf = buf[off:] + chunk if left else chunk
                off = 0
                eof = not chunk
                continue
            body = off + 8
            bend = off + blen - 4
            if blen < _MIN_BLOCK.get(btype, 12):
                self.truncated = f"block of type {btype} after frame {self.frames} is too short ({blen} bytes)"
                return
            if btype == EPB:
                iface, hi, lo, caplen, _orig = _EPB[e](buf, body)
                start = body + 20
                stop = start + caplen if start + caplen < bend else bend
                interfaces = self._interfaces
                if iface < len(interfaces):  # the common case inline; `_frame` says the same, slower
                    link, mult, div, tsoff, _snap = interfaces[iface]
                    ts = (((hi << 32) | lo) * mult // div if div != 1 else ((hi << 32) | lo) * mult) + tsoff
                    if 0 <= ts <= MAX_TS_NS:
                        self.frames += 1
                        yield ts, link, buf, start, stop
                        off += blen
                        continue
                frame = self._frame(iface, (hi << 32) | lo, buf, start, stop)
                if frame is None:
                    return
                yield frame
            elif btype == SPB:
                if not self._interfaces:
                    self.truncated = f"simple packet block after frame {self.frames} precedes any interface"
                    return
                orig = struct.unpack_from(e + "I", buf, body)[0]
                link, _m, _d, _o, snaplen = self._interfaces[0]
                caplen = min(orig, snaplen) if snaplen else orig
                start = body + 4
                self.frames += 1
                # A simple packet block has no timestamp (pcapng 4.4); 0 says "unknown".
                yield 0, link, buf, start, min(start + caplen, bend)
            elif btype == OPB:
                iface, _drops, hi, lo, caplen, _orig = struct.unpack_from(e + "HHIIII", buf, body)
                start = body + 20
                frame = self._frame(iface, (hi << 32) | lo, buf, start, min(start + caplen, bend))
                if frame is None:
                    return
                yield frame
            elif btype == SHB:
                self._interfaces = []
                self._tsresol = []
            elif btype == IDB:
                self._interfaces.append(self._interface(buf[body:bend], e))
            off += blen
        self.bytes_read += off
        if off < len(buf):
            self.truncated = f"file ends inside a block after frame {self.frames} ({len(buf) - off} bytes left over)"

    def _frame(self, iface: int, ticks: int, buf: bytes, start: int, end: int) -> RawFrame | None:
        if iface >= len(self._interfaces):
            self.truncated = f"frame {self.frames + 1} names interface {iface}, which was never described"
            return None
        link, mult, div, tsoff, _snap = self._interfaces[iface]
        self.frames += 1
        ts = (ticks * mult // div if div != 1 else ticks * mult) + tsoff
        if not 0 <= ts <= MAX_TS_NS:  # if_tsresol and if_tsoffset can push any tick count out of range
            raw = f"{ticks} ticks at if_tsresol {self._tsresol[iface]:#04x}, if_tsoffset {tsoff // 1_000_000_000} s"
            ts = self._bad_time(self.frames, raw)
        return ts, link, buf, start, end
