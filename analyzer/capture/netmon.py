"""Microsoft Network Monitor 2.x capture files (.cap).

Layout, as Wireshark's netmon reader documents it: a 128-byte little-endian header ("GMBU",
version, media type, capture start as a SYSTEMTIME, then the offset and length of the frame table);
the frame table lists the file offset of every frame, in frame order. Each frame is a 16-byte header
(microseconds since capture start, original length, captured length), the data, and from
version 2.1 on a trailer whose first field is the frame's own media type; from 2.3 on the trailer
also carries the frame's UTC time (100 ns units since 1601), which is what Wireshark shows.

Media types: 1 is Ethernet; 0xE000 + n is pcap link type n; the 0xFFxx types are NetMon's own
records (process info, network info, ...), which count as frames but carry no packet.
"""

from __future__ import annotations

import calendar
import struct
from collections.abc import Iterator
from typing import BinaryIO

from analyzer.capture.reader import CaptureReader, RawFrame

_HEADER = struct.Struct("<4sBBH8HII")
_FRAME = struct.Struct("<QII")
_FILETIME_EPOCH_DELTA = 11_644_473_600  # seconds from 1601-01-01 to 1970-01-01
LINK_NONE = -1  # a NetMon-internal record: counted as a frame, never decoded

_MEDIA = {1: 1, 2: 6, 3: 10, 4: 0}  # Ethernet, token ring (802.5), FDDI, ATM (not decoded)


def _link_type(media: int) -> int:
    if media in _MEDIA:
        return _MEDIA[media]
    if 0xE000 <= media < 0xF000:
        return media - 0xE000
    return LINK_NONE


class NetmonReader(CaptureReader):
    format = "netmon2"

    def __init__(self, f: BinaryIO, name: str) -> None:
        super().__init__(f, name)
        data = f.read()
        self._data = data
        if len(data) < _HEADER.size:
            self._fail("NetMon file header is truncated")
        (_magic, vmin, vmaj, media, year, month, _dow, day, hour, minute, sec, msec, table_off, table_len) = (
            _HEADER.unpack_from(data, 0)
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

    def __iter__(self) -> Iterator[RawFrame]:
        data = self._data
        n = self._table_len // 4
        if self._table_off + 4 * n > len(data):
            n = max(0, (len(data) - self._table_off) // 4)
            self.truncated = "the frame table is cut short"
        offsets = struct.unpack_from(f"<{n}I", data, self._table_off) if n > 0 else ()
        for off in offsets:
            if off + _FRAME.size > len(data):
                self.truncated = f"frame {self.frames + 1} lies beyond the end of the file"
                return
            delta_us, _orig, incl = _FRAME.unpack_from(data, off)
            start = off + _FRAME.size
            end = start + incl
            if end > len(data):
                self.truncated = f"frame {self.frames + 1} is cut short by the end of the file"
                return
            link = _link_type(self._media)
            ts = self._start_ns + delta_us * 1000
            if self._trailer >= 2 and end + self._trailer <= len(data):
                link = _link_type(struct.unpack_from("<H", data, end)[0])
                if self._trailer >= 14:
                    filetime = struct.unpack_from("<Q", data, end + 6)[0]
                    if filetime:
                        ts = filetime * 100 - _FILETIME_EPOCH_DELTA * 1_000_000_000
            self.frames += 1
            self.bytes_read = end
            self.link_types.add(link)
            yield ts, link, data, start, end
