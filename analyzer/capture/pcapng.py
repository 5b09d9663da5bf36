"""pcapng files: sections, several interfaces each with its own link type and time resolution.

Format: IETF draft-ietf-opsawg-pcapng. Enhanced (6), simple (3) and obsolete (2) packet blocks are
frames; section headers (0x0A0D0D0A) reset the interface table; every other block is skipped.
dpkt's reader honours only the first interface, which is why this one exists. The reader works in
batches (`batches()`, for the prefilter); iterating it yields their frames one by one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from itertools import pairwise, repeat
from typing import BinaryIO

import numpy as np

from analyzer.capture.prefilter import Batch, Ints
from analyzer.capture.reader import MAX_TS_NS, CaptureReader, RawFrame

c_epb_run: Callable[[bytes, int, bool, int], tuple[bytes, bytes, int]] | None
try:
    from analyzer.capture._batch import epb_run as c_epb_run
except ImportError:  # not built (no compiler at install): the Python walk in `_run`, the same blocks
    c_epb_run = None

# Bytes per read, as pcap's: fewer batches, and fewer blocks cut by a buffer's end (each then a batch
# of its own); 1 MiB before (the pipeline on the 200 MB capture as pcapng 0.32-0.34 s, now 0.29-0.31).
_CHUNK = 1 << 22
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
        self._stopped = False  # a frame named an interface never described: the file ends there

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
        for b in self.batches():
            yield from zip(b.ts.tolist(), repeat(b.link), repeat(b.buf), b.start.tolist(), b.end.tolist())

    def batches(self) -> Iterator[Batch]:
        """The frames in batches (see `prefilter`), read a buffer ahead of the consumer.

        Runs of enhanced packet blocks are walked with one unpack each (`_run`) and their fields read
        with numpy (`_enhanced`); every other block, and one that is not a plain enhanced packet
        block fitting the buffer, is read on its own (`_header`, `_block`; a frame it holds is a
        batch of one). A fault ends the file there, `truncated` saying why.
        """
        f = self._file
        buf = self._pending
        self._pending = b""
        off = 0
        eof = False
        while True:
            end = len(buf)
            run, heads, off = self._run(buf, off, end)
            if len(run):
                yield from self._enhanced(buf, run, heads, off)
                if self._stopped:
                    return
            blen = self._header(buf, off, end)
            if blen < 0:
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
            frame = self._block(buf, off, blen)
            if frame is False:
                return
            if isinstance(frame, tuple):
                yield _single(frame, self.frames - 1)
            off += blen
        self.bytes_read += off
        if off < len(buf):
            self.truncated = f"file ends inside a block after frame {self.frames} ({len(buf) - off} bytes left over)"

    def _run(self, buf: bytes, off: int, end: int, use_c: bool = True) -> tuple[Ints, Ints, int]:
        """(offsets, heads, end) of the enhanced packet blocks from `off` on that are well formed and
        fit the buffer: the common case, walked in C when built, else one unpack a block. heads has a
        row a block: its interface id, timestamp (upper, lower) and captured length."""
        if c_epb_run is not None and use_c and end == len(buf):
            raw, heads, stop = c_epb_run(buf, off, self._endian == "<", _MAX_BLOCK)
            return np.frombuffer(raw, dtype=np.int64), np.frombuffer(heads, dtype=np.int64).reshape(-1, 4), stop
        head = _HEAD[self._endian]
        run: list[int] = []
        mark = run.append
        while off + 12 <= end:
            btype, blen = head(buf, off)
            if btype != EPB or blen < 32 or blen % 4 or blen > _MAX_BLOCK or off + blen > end:
                break
            mark(off)
            off += blen
        offs = np.array(run, dtype=np.int64)
        view = np.frombuffer(buf, dtype=np.uint8)
        heads = view[offs[:, None] + np.arange(8, 24)].view(np.dtype(self._endian + "u4")).astype(np.int64)
        return offs, heads.reshape(-1, 4), off

    def _header(self, buf: bytes, off: int, end: int) -> int:
        """The length of the block at `off` (its section header's byte order taken first), 0 when the
        buffer does not hold its header yet, -1 when the file ends there (an impossible one)."""
        if off + 12 > end:
            return 0
        if _u32le(buf, off)[0] == SHB:  # SHB's type reads the same both ways
            magic = buf[off + 8 : off + 12]
            if magic == b"\x4d\x3c\x2b\x1a":
                self._endian = "<"
            elif magic == b"\x1a\x2b\x3c\x4d":
                self._endian = ">"
            else:
                return self._stop(f"section header after frame {self.frames} has a bad byte-order magic")
        blen: int = _HEAD[self._endian](buf, off)[1]
        if blen < 12 or blen % 4 or blen > _MAX_BLOCK:
            return self._stop(f"block after frame {self.frames} has an impossible length {blen}")
        return blen

    def _block(self, buf: bytes, off: int, blen: int) -> RawFrame | bool:
        """The frame of the whole block at `off` if it holds one, else True (go on) or False (the file
        ends there); interfaces and sections kept."""
        e = self._endian
        btype = _HEAD[e](buf, off)[0]
        body = off + 8
        bend = off + blen - 4
        if blen < _MIN_BLOCK.get(btype, 12):
            self._stop(f"block of type {btype} after frame {self.frames} is too short ({blen} bytes)")
            return False
        if btype == SPB:
            if not self._interfaces:
                self._stop(f"simple packet block after frame {self.frames} precedes any interface")
                return False
            orig = struct.unpack_from(e + "I", buf, body)[0]
            link, _m, _d, _o, snaplen = self._interfaces[0]
            caplen = min(orig, snaplen) if snaplen else orig
            start = body + 4
            self.frames += 1
            # A simple packet block has no timestamp (pcapng 4.4); 0 says "unknown".
            return 0, link, buf, start, min(start + caplen, bend)
        if btype in (OPB, EPB):  # an EPB here is one `_run` could not take
            if btype == OPB:
                iface, _drops, hi, lo, caplen, _orig = struct.unpack_from(e + "HHIIII", buf, body)
            else:
                iface, hi, lo, caplen, _orig = _EPB[e](buf, body)
            start = body + 20
            frame = self._frame(iface, (hi << 32) | lo, buf, start, min(start + caplen, bend))
            return False if frame is None else frame
        if btype == SHB:
            self._interfaces = []
            self._tsresol = []
        elif btype == IDB:
            self._interfaces.append(self._interface(buf[body:bend], e))
        return True

    def _stop(self, why: str) -> int:
        """End the file here, saying why; -1, for `_header`."""
        self.truncated = why
        return -1

    def _enhanced(self, buf: bytes, offs: Ints, fields: Ints, stop: int) -> Iterator[Batch]:
        """The contiguous enhanced packet blocks at `offs` in buf (the last ending at `stop`; their
        heads' `fields`, from `_run`) as batches, one per run of a link type. A block naming an
        interface never described ends the file there (`_stopped`), as `_frame` says."""
        iface, caplen = fields[:, 0], fields[:, 3]  # then the time's high and low words
        bend = np.empty_like(offs)  # each block ends where the next begins, less its trailing length
        bend[:-1] = offs[1:] - 4
        bend[-1] = stop - 4
        start = offs + 28
        end = np.minimum(start + caplen, bend)
        unknown = np.flatnonzero(iface >= len(self._interfaces))
        n = int(unknown[0]) if len(unknown) else len(offs)
        ts = self._times(iface[:n], fields[:n, 1], fields[:n, 2])
        links = np.array([i[0] for i in self._interfaces], dtype=np.int64)[iface[:n]] if n else iface[:0]
        cuts = [0, *(np.flatnonzero(links[1:] != links[:-1]) + 1).tolist(), n]
        for a, b in pairwise(cuts):
            if b > a:
                frame0 = self.frames
                self.frames += b - a
                yield Batch(buf, int(links[a]), frame0, start[a:b], end[a:b], ts[a:b])
        if n < len(offs):
            self._frame(int(iface[n]), 0, buf, 0, 0)  # says why the file ends here
            self._stopped = True

    def _times(self, iface: Ints, hi: Ints, lo: Ints) -> Ints:
        """Nanosecond times of frames self.frames + 1, ...: as `_frame` computes them, with numpy
        where the arithmetic cannot leave int64 (the usual decimal resolutions, times in range),
        one by one in Python's integers otherwise (and for a time out of range, which is noted)."""
        ts = np.zeros(len(iface), dtype=np.int64)
        slow = np.ones(len(iface), dtype=np.bool_)
        ticks = (hi << 32) | lo  # right where hi < 2**31, the only rows it is used for
        # Most files have one interface: no np.unique (a sort) then, and no masking by interface.
        one = len(iface) > 0 and bool((iface == iface[0]).all())
        for i in [int(iface[0])] if one else np.unique(iface).tolist():
            _link, mult, div, tsoff, _snap = self._interfaces[i]
            limit = (MAX_TS_NS - max(tsoff, 0)) // mult  # ticks * mult + tsoff <= MAX_TS_NS
            if div != 1 or limit < 0 or tsoff < -MAX_TS_NS:  # numpy's int64 cannot hold these sums
                continue
            ok = (hi < 1 << 31) & (ticks <= limit)
            if not one:
                ok &= iface == i
            if one and ok.all():  # every row: whole arrays, not the boolean gathers and scatters
                ts = ticks * mult + tsoff
                slow = ts < 0
                continue
            ts[ok] = ticks[ok] * mult + tsoff
            slow[ok] = ts[ok] < 0  # a negative if_tsoffset: out of range, said below
        for j in np.flatnonzero(slow).tolist():
            _link, mult, div, tsoff, _snap = self._interfaces[int(iface[j])]
            exact = (int(hi[j]) << 32) | int(lo[j])
            t = (exact * mult // div if div != 1 else exact * mult) + tsoff
            if not 0 <= t <= MAX_TS_NS:
                tsresol = self._tsresol[int(iface[j])]
                raw = f"{exact} ticks at if_tsresol {tsresol:#04x}, if_tsoffset {tsoff // 1_000_000_000} s"
                t = self._bad_time(self.frames + j + 1, raw)
            ts[j] = t
        return ts

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


def _single(frame: RawFrame, frame0: int) -> Batch:
    """One frame as a batch of its own."""
    ts, link, buf, start, end = frame
    return Batch(
        buf,
        link,
        frame0,
        np.array([start], dtype=np.int64),
        np.array([end], dtype=np.int64),
        np.array([ts], dtype=np.int64),
    )
