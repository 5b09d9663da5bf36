"""Classic libpcap files: microsecond and nanosecond magic, either byte order.

Format: https://www.tcpdump.org/manpages/pcap-savefile.5.html (24-byte file header, then 16-byte
record headers). Records are parsed straight out of large read buffers, without per-record objects
beyond the yielded tuple.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from analyzer.capture.reader import CaptureReader, RawFrame

_CHUNK = 1 << 20
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
        f = self._file
        unpack = struct.Struct(self._endian + "IIII").unpack_from
        mult = self._ts_mult
        # The fraction is below one second (10**6 us or 10**9 ns); seconds are unsigned 32-bit, so
        # the sum always fits the tables' range: the fraction is the only field to check.
        lim = 1_000_000_000 // mult
        link = self._link_type
        frames = self.frames  # counted in a local: this loop runs once per packet
        buf = b""
        try:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                buf = buf + chunk if buf else chunk
                off = 0
                end = len(buf)
                while off + 16 <= end:
                    sec, frac, incl, _orig = unpack(buf, off)
                    nxt = off + 16 + incl
                    if nxt > end:
                        if incl > _MAX_RECORD:
                            self.truncated = f"record header of frame {frames + 1} is corrupt (length {incl})"
                            return
                        break
                    frames += 1
                    if frac < lim:
                        yield sec * 1_000_000_000 + frac * mult, link, buf, off + 16, nxt
                    else:
                        yield (
                            self._bad_time(frames, f"fraction field {frac} is not below {lim}"),
                            link,
                            buf,
                            off + 16,
                            nxt,
                        )
                    off = nxt
                self.bytes_read += off
                self.frames = frames
                buf = buf[off:]
            if buf:
                self.truncated = f"file ends inside frame {frames + 1} ({len(buf)} bytes left over)"
        finally:
            self.frames = frames
