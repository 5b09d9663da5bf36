"""Classic libpcap files: microsecond and nanosecond magic, either byte order.

Format: https://www.tcpdump.org/manpages/pcap-savefile.5.html (24-byte file header, then 16-byte
record headers). Records are read in batches of 4 MiB buffers (`batches()`, for the prefilter): the
record lengths are walked in C (`_batch`, built with the package) or, where it was not built, in
Python; bounds and times come as numpy arrays.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from itertools import repeat
from typing import BinaryIO

import numpy as np

from analyzer.capture.prefilter import Batch, Ints
from analyzer.capture.reader import CaptureReader, RawFrame

c_walk: Callable[[bytes, bool], tuple[bytes, bytes, bytes, int]] | None
try:
    from analyzer.capture._batch import walk as c_walk
except ImportError:  # not built (no compiler at install): the Python walk below, same records
    c_walk = None

_BATCH = 1 << 22  # bytes per batch: numpy's per-call cost is paid per batch, not per record
# A record this long cannot be a packet (the largest snaplen in use is 256 KiB): the file is corrupt.
_MAX_RECORD = 1 << 24

MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}


class PcapReader(CaptureReader):
    format = "pcap"

    def __init__(self, f: BinaryIO, name: str) -> None:
        super().__init__(f, name)
        header = f.read(24)
        if len(header) < 24:
            self._fail(f"not a capture file: shorter than the 24-byte pcap file header ({len(header)} bytes)")
        if header[:4] not in MAGICS:
            self._fail(f"not a pcap file (magic {header[:4].hex()})")
        endian, self._ts_mult = MAGICS[header[:4]]
        self._endian = endian
        _vmaj, _vmin, _zone, _sigfigs, _snaplen, network = struct.unpack(endian + "HHiIII", header[4:24])
        # The upper bits of the link-type field may carry FCS information (pcap-savefile(5)).
        self._link_type = network & 0x0FFFFFFF
        self.link_types.add(self._link_type)
        self.bytes_read = 24

    def __iter__(self) -> Iterator[RawFrame]:
        for b in self.batches():
            yield from zip(b.ts.tolist(), repeat(b.link), repeat(b.buf), b.start.tolist(), b.end.tolist())

    def batches(self) -> Iterator[Batch]:
        """The records in batches (see `prefilter`), read a buffer ahead of the consumer; iterating
        the reader yields their frames one by one.

        Each buffer is read whole from the file and never joined with the next one (joining costs
        more than walking the records): a record cut by the buffer's end is completed with a read of
        its own and comes as a batch of one.
        """
        f = self._file
        while True:
            buf = f.read(_BATCH)
            if not buf:
                return
            walked = self._walk(buf)
            off = walked[3]
            if len(walked[0]):
                yield self._batch(buf, *walked)
                self.bytes_read += off
            if off < len(buf):
                tail = self._complete(buf[off:])
                if tail is None:
                    return
                yield self._batch(tail, *self._walk(tail))  # exactly one record
                self.bytes_read += len(tail)

    def _walk(self, buf: bytes, use_c: bool = True) -> tuple[Ints, Ints, Ints, int]:
        """(offsets of the records that end inside buf, their seconds and fractions, where the last
        one ends): in C when built."""
        if c_walk is not None and use_c:
            raw, secs, fracs, stop = c_walk(buf, self._endian == "<")
            ints = np.int64
            return (
                np.frombuffer(raw, dtype=ints),
                np.frombuffer(secs, dtype=ints),
                np.frombuffer(fracs, dtype=ints),
                stop,
            )
        walk = struct.Struct(self._endian + "I").unpack_from
        offs: list[int] = []
        mark = offs.append
        off = 0
        end = len(buf)
        while off + 16 <= end:
            nxt = off + 16 + walk(buf, off + 8)[0]
            if nxt > end:
                break
            mark(off)
            off = nxt
        at = np.array(offs, dtype=np.int64)
        head = np.frombuffer(buf, dtype=np.uint8)[at[:, None] + np.arange(8)].view(self._endian + "u4")
        return at, head[:, 0].astype(np.int64), head[:, 1].astype(np.int64), off  # (n, 2): seconds, fraction

    def _complete(self, part: bytes) -> bytes | None:
        """The record that starts with `part` (cut by the end of a read buffer), read to its end, or
        None when the file ends first or its header is corrupt (`truncated` then says so)."""
        if len(part) < 16:
            part += self._file.read(16 - len(part))
        if len(part) >= 16:
            incl = struct.unpack_from(self._endian + "I", part, 8)[0]
            need = 16 + incl - len(part)
            if need > 0:
                if incl > _MAX_RECORD:
                    self.truncated = f"record header of frame {self.frames + 1} is corrupt (length {incl})"
                    return None
                part += self._file.read(need)
            if len(part) >= 16 + incl:
                return part
        self.truncated = f"file ends inside frame {self.frames + 1} ({len(part)} bytes left over)"
        return None

    def _batch(self, buf: bytes, offs: Ints, sec: Ints, frac: Ints, stop: int) -> Batch:
        """The records at `offs` in buf (their headers' seconds and fractions), the last ending at
        `stop`, as a Batch; frames counted, out-of-range times noted. Records are contiguous: each
        one ends where the next begins."""
        start = offs + 16
        end = np.empty_like(offs)
        end[:-1] = offs[1:]
        end[-1] = stop
        lim = 1_000_000_000 // self._ts_mult
        ts = sec * 1_000_000_000 + frac * self._ts_mult
        bad = np.flatnonzero(frac >= lim)
        frame0 = self.frames
        if len(bad):
            ts[bad] = 0
            first = int(bad[0])
            self._bad_time(frame0 + first + 1, f"fraction field {int(frac[first])} is not below {lim}")
            self.bad_times += len(bad) - 1
        self.frames = frame0 + len(offs)
        return Batch(buf, self._link_type, frame0, start, end, ts)
