"""Microsoft Network Monitor 2.x capture files (.cap).

Layout, as Wireshark's netmon reader documents it: a 72-byte little-endian header ("GMBU", version,
media type, capture start as a SYSTEMTIME, the offset and length of the frame table, then offsets of
user data, comments, process and network info, of which only the first 32 bytes are needed); the frame
table lists the file offset of every frame, in frame order, and is usually the last thing in the file.
Each frame is a 16-byte header (microseconds since capture start, original length, captured length), the
data, and from
version 2.1 on a trailer whose first field is the frame's own media type; from 2.3 on the trailer
also carries the frame's UTC time (100 ns units since 1601), which is what Wireshark shows.

Media types: 1 is Ethernet; 0xE000 + n is pcap link type n; the 0xFFxx types are NetMon's own
records (process info, network info, ...), which count as frames but carry no packet.

A file cut short has lost its frame table. Its frames are then found by walking them from the end of
the header, one after the other as NetMon writes them, as long as each is plausible (captured length
within the original length, a known media type in the trailer), so that every frame before the cut
is still read.
"""

from __future__ import annotations

import calendar
import struct
from collections.abc import Iterator
from typing import BinaryIO

from analyzer.capture.reader import MAX_TS_NS, CaptureReader, RawFrame

_HEADER = struct.Struct("<4sBBH8HII")
_FRAME = struct.Struct("<QII")
_FILETIME_EPOCH_DELTA = 11_644_473_600  # seconds from 1601-01-01 to 1970-01-01
LINK_NONE = -1  # a NetMon-internal record: counted as a frame, never decoded
_WINDOW = 1 << 20  # bytes read at once for the frames
_TABLE_BLOCK = 1 << 14  # frame-table entries read at once
_MAX_RECORD = 1 << 24  # a frame this long cannot be a packet: the file is corrupt
_HEADER_END = 72  # where NetMon 2.x writes the first frame

_MEDIA = {1: 1, 2: 6, 3: 10, 4: 0}  # Ethernet, token ring (802.5), FDDI, ATM (not decoded)


def _link_type(media: int) -> int:
    if media in _MEDIA:
        return _MEDIA[media]
    if 0xE000 <= media < 0xF000:
        return media - 0xE000
    return LINK_NONE


class NetmonReader(CaptureReader):
    """Reads the frame table a block at a time and the frames through a sliding window: memory is the
    window and one table block, whatever the file's size (issue: the whole file used to be read)."""

    format = "netmon2"

    def __init__(self, f: BinaryIO, name: str) -> None:
        super().__init__(f, name)
        header = f.read(_HEADER.size)
        if len(header) < _HEADER.size:
            self._fail(f"not a capture file: shorter than the {_HEADER.size}-byte NetMon header ({len(header)} bytes)")
        (_magic, vmin, vmaj, media, year, month, _dow, day, hour, minute, sec, msec, table_off, table_len) = (
            _HEADER.unpack_from(header, 0)
        )
        if vmaj != 2:
            self._fail(f"NetMon version {vmaj}.{vmin} is not supported (only 2.x)")
        self._version = (vmaj, vmin)
        self._media = media
        try:
            start = calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0))
        except (ValueError, OverflowError):
            start = 0
        self._start_ns = start * 1_000_000_000 + msec * 1_000_000
        self._table_off = table_off
        self._table_len = table_len
        if vmin >= 3:
            self._trailer = 2 + 4 + 8 + 1
        elif vmin == 2:
            self._trailer = 2 + 4
        elif vmin == 1:
            self._trailer = 2
        else:
            self._trailer = 0
        self._pos = _HEADER.size  # where the file is positioned
        self._win = b""  # the sliding window: file bytes [self._win_off, self._win_off + len(self._win))
        self._win_off = 0

    def _at(self, off: int, n: int) -> bytes:
        """At most n bytes of the file from `off`, read once: sequential reads reuse the window."""
        end = self._win_off + len(self._win)
        if self._win_off <= off and off + n <= end:
            return self._win
        if self._pos != off:
            self._file.seek(off)
        self._win = self._file.read(max(n, _WINDOW))
        self._win_off = off
        self._pos = off + len(self._win)
        return self._win

    def _offsets(self) -> Iterator[int]:
        """The frame table's entries, read _TABLE_BLOCK of them at a time; when the table is not (all)
        in the file, the frames found by walking them instead."""
        n = self._table_len // 4
        self._file.seek(0, 2)
        size = self._file.tell()
        self._pos = size
        if self._table_off + 4 * n > size:
            yield from self._walk(min(self._table_off, size))
            return
        for first in range(0, n, _TABLE_BLOCK):
            count = min(_TABLE_BLOCK, n - first)
            self._file.seek(self._table_off + 4 * first)
            block = self._file.read(4 * count)
            self._pos = self._table_off + 4 * first + len(block)
            yield from struct.unpack_from(f"<{count}I", block)

    def _walk(self, stop: int) -> Iterator[int]:
        """Offsets of the frames laid one after the other from the end of the header up to `stop`."""
        self.truncated = "the frame table is missing (the file is cut short): frames read in file order"
        off = _HEADER_END
        while off + _FRAME.size + self._trailer <= stop:
            win = self._at(off, _FRAME.size + self._trailer)
            _delta, orig, incl = _FRAME.unpack_from(win, off - self._win_off)
            end = off + _FRAME.size + incl
            if incl > orig or incl > _MAX_RECORD or end + self._trailer > stop:
                return
            if self._trailer >= 2:
                media = struct.unpack_from("<H", self._at(end, 2), end - self._win_off)[0]
                if media not in _MEDIA and not 0xE000 <= media < 0xF000 and media < 0xFF00:
                    return
            yield off
            off = end + self._trailer

    def __iter__(self) -> Iterator[RawFrame]:
        link_of = _link_type
        for off in self._offsets():
            win = self._at(off, _FRAME.size)
            rel = off - self._win_off
            if rel + _FRAME.size > len(win):
                self.truncated = f"frame {self.frames + 1} lies beyond the end of the file"
                return
            delta_us, _orig, incl = _FRAME.unpack_from(win, rel)
            if incl > _MAX_RECORD:
                self.truncated = f"frame {self.frames + 1} claims {incl} bytes: the file is corrupt"
                return
            size = _FRAME.size + incl + self._trailer
            win = self._at(off, size)
            rel = off - self._win_off
            start = rel + _FRAME.size
            end = start + incl
            if end > len(win):
                self.truncated = f"frame {self.frames + 1} is cut short by the end of the file"
                return
            self.frames += 1
            link = link_of(self._media)
            ts = self._start_ns + delta_us * 1000
            if self._trailer >= 2 and end + self._trailer <= len(win):
                link = link_of(struct.unpack_from("<H", win, end)[0])
                if self._trailer >= 14:
                    filetime = struct.unpack_from("<Q", win, end + 6)[0]
                    if filetime:
                        ts = filetime * 100 - _FILETIME_EPOCH_DELTA * 1_000_000_000
            if not 0 <= ts <= MAX_TS_NS:  # FILETIME and the microsecond offset are 64-bit: check both
                ts = self._bad_time(self.frames, f"FILETIME or offset of {delta_us} us puts it at {ts} ns")
            self.bytes_read = max(self.bytes_read, off + size - self._trailer)
            self.link_types.add(link)
            yield ts, link, win, start, end
