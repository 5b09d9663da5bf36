"""One direction of an SMB connection as a stream of messages, parsed without keeping their bodies.

The reader frames session messages (`netbios`), looks at their magic and hands SMB1 and SMB2
messages to the dialect handlers, which pull only the bytes they need: the handler asks for the
first n bytes of the current unit (an SMB2 command of a compound chain, or a whole SMB1 message)
with `collect`, and when it has seen enough calls `done`, after which the rest of the unit streams
past uncounted and uncopied. A file copy thus costs a header and a fixed body per message.

Bytes are consumed in a loop of three phases: skip (drop bytes up to an offset), collect (append to
`buf` until it holds `want` bytes), step (call the handler, which collects more or moves on).
Offsets are absolute positions in the direction's byte stream, which makes TCP gaps simple: a gap
inside bytes being skipped costs nothing; a gap inside a message loses that message; a gap across
a message boundary loses the framing, and the reader scans for the next session header followed
by an SMB magic ([MS-SMB2] 2.2.1, 2.2.41, 2.2.42; [MS-CIFS] 2.2.3.1).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol

from analyzer.smb.netbios import (
    COMPRESSION_MAGIC,
    HEADER_LEN,
    SESSION_MESSAGE,
    SMB1_MAGIC,
    SMB2_MAGIC,
    TRANSFORM_MAGIC,
    header_problem,
    parse_header,
    plausible_message,
)
from analyzer.smb.state import Context

Step = Callable[["Reader"], None]

_TRANSFORM_LEN = 52  # [MS-SMB2] 2.2.41: SessionId at offset 44
# Bytes of a resync scan kept across chunks: a session header and magic less one byte.
_TAIL = 7


class Handler(Protocol):
    def begin(self, r: Reader) -> None:
        """A message with this handler's magic starts; r.buf holds its first 4 bytes."""


class Reader:
    """One direction. Handlers read `buf` (the current unit from its start), `frame`, `ts`,
    `from_client`, `unit_len`, and drive it with `collect`, `split` and `done`."""

    __slots__ = (
        "_chain",
        "_ctx",
        "_resync_skipped",
        "_resyncing",
        "_skip_to",
        "_smb1",
        "_smb2",
        "_step",
        "_tail",
        "_transport_hdr",
        "_want",
        "buf",
        "frame",
        "from_client",
        "msg_end",
        "pos",
        "ts",
        "unit_end",
        "unit_start",
    )

    def __init__(self, ctx: Context, from_client: bool, smb1: Handler, smb2: Handler) -> None:
        self._ctx = ctx
        self.from_client = from_client
        self._smb1 = smb1
        self._smb2 = smb2
        self.buf = bytearray()
        self.frame = 0
        self.ts = 0
        self.pos = 0  # stream offset of the next byte to arrive
        self._skip_to = 0  # drop bytes until pos reaches this
        self._want = HEADER_LEN  # then collect until buf holds this many bytes
        self._step: Step = Reader._transport  # then call this
        self._chain: Step | None = None  # starts the next unit of the message (SMB2 compounds)
        self.unit_start = 0  # stream offset of buf[0]
        self.unit_end = 0
        self.msg_end = 0
        self._transport_hdr = b""
        self._resyncing = False
        self._tail = b""
        self._resync_skipped = 0

    # -- what handlers use ----------------------------------------------------------------------

    @property
    def unit_len(self) -> int:
        return self.unit_end - self.unit_start

    def collect(self, n: int, step: Step) -> None:
        """Call `step` once buf holds the unit's first n bytes (fewer if the unit is shorter)."""
        self._want = min(n, self.unit_end - self.unit_start)
        self._step = step

    def split(self, length: int, next_unit: Step) -> None:
        """The current unit is `length` bytes; the rest of the message is another unit, started
        by `next_unit` (an SMB2 NextCommand chain)."""
        self.unit_end = self.unit_start + length
        self._chain = next_unit

    def done(self) -> None:
        """Finished with the current unit: skip the rest of it, then go on to the next one."""
        self.buf.clear()
        self._skip_to = self.unit_end
        chain = self._chain
        self._chain = None
        if chain is not None and self.unit_end < self.msg_end:
            self.unit_start = self.unit_end
            self.unit_end = self.msg_end
            self._want = 0
            self._step = chain
        else:
            self._skip_to = self.unit_start = self.unit_end = self.msg_end
            self._want = HEADER_LEN
            self._step = Reader._transport

    def violation(self, what: str, detail: str) -> None:
        self._ctx.violation(self.frame, what, detail)

    # -- input ----------------------------------------------------------------------------------

    def data(self, data: bytes, frame: int, ts: int) -> None:
        self.frame = frame
        self.ts = ts
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        n = len(data)
        i = 0
        mv = memoryview(data)
        buf = self.buf
        ctx = self._ctx
        while True:
            if self._resyncing:
                if i >= n:
                    return
                i = self._scan(data, i)
                continue
            ahead = self._skip_to - self.pos
            if ahead > 0:
                if i >= n:
                    return
                k = min(ahead, n - i)
                i += k
                self.pos += k
                ctx.bulk_bytes += k
                continue
            need = self._want - len(buf)
            if need > 0:
                if i >= n:
                    return
                k = min(need, n - i)
                buf += mv[i : i + k]
                i += k
                self.pos += k
                if len(buf) > ctx.peak_buffered:
                    ctx.peak_buffered = len(buf)
                if k < need:
                    return
            self._step(self)

    def gap(self, missing: int, frame: int, ts: int) -> None:
        """`missing` bytes of this direction were lost."""
        if missing <= 0:
            return
        self.frame = frame
        self.ts = ts
        self._ctx.gap_bytes += missing
        new = self.pos + missing
        if self._resyncing:
            self._tail = b""
            self.pos = new
            return
        if self.pos < self._skip_to and new <= self._skip_to:
            self.pos = new  # lost inside bytes nobody needed
            return
        at_boundary = self._step is Reader._transport and self.pos - len(self.buf) >= self.msg_end
        if not at_boundary and new <= self.msg_end:
            self.violation("smb_gap", f"{missing} bytes lost inside an SMB message; its rest is skipped")
            self.buf.clear()
            self._chain = None
            self.pos = new
            self._skip_to = self.unit_start = self.unit_end = self.msg_end
            self._want = HEADER_LEN
            self._step = Reader._transport
            return
        self.violation("smb_gap", f"{missing} bytes lost across SMB message boundaries; resynchronising")
        self.buf.clear()
        self._chain = None
        self.pos = new
        self._start_resync()

    def close(self) -> None:
        if self._resyncing:
            dropped = self._resync_skipped + len(self._tail)
            if dropped:
                self._ctx.skipped_bytes += len(self._tail)
                self.violation("smb_resync", f"{dropped} bytes with no SMB header before the end")
            self._tail = b""
            return
        buf = self.buf
        # A lone byte where a header should start is a TCP keep-alive probe's garbage byte.
        if buf and not (self._step is Reader._transport and buf == b"\x00"):
            self.violation("smb_truncated", f"the connection ended {len(buf)} bytes into an SMB message")
        buf.clear()

    # -- framing --------------------------------------------------------------------------------

    def _transport(self) -> None:
        buf = self.buf
        parsed = parse_header(buf, 0)
        if parsed is None:
            self._lose("smb_bad_header", f"no session-service header: {header_problem(buf)}", bytes(buf))
            return
        kind, length = parsed
        self._transport_hdr = bytes(buf)
        buf.clear()
        self.unit_start = self.pos
        self.msg_end = self.unit_end = self.pos + length
        if kind != SESSION_MESSAGE or not length:
            # Session request, responses, keep-alives (RFC 1002 4.3.2-4.3.7): nothing to learn.
            self._skip_to = self.msg_end
            self._want = HEADER_LEN
            self._step = Reader._transport
            return
        self.collect(4, Reader._magic)

    def _magic(self) -> None:
        buf = self.buf
        magic = bytes(buf[:4])
        ctx = self._ctx
        if magic == SMB2_MAGIC:
            self._smb2.begin(self)
        elif magic == SMB1_MAGIC:
            self._smb1.begin(self)
        elif magic == TRANSFORM_MAGIC:
            self.collect(_TRANSFORM_LEN, Reader._transform)
        elif magic == COMPRESSION_MAGIC:
            ctx.compressed_messages += 1
            ctx.violation_once(self.frame, "smb_compressed", "SMB2 compressed messages are not decompressed")
            self.done()
        elif len(buf) < 4:
            self.violation("smb_truncated", f"a {len(buf)}-byte session message")
            self.done()
        else:
            self._lose(
                "smb_bad_header",
                f"protocol id {magic.hex()} is none of fe534d42 (SMB2), ff534d42 (SMB1), fd534d42, fc534d42",
                self._transport_hdr + magic,
            )

    def _transform(self) -> None:
        buf = self.buf
        if len(buf) < _TRANSFORM_LEN:
            self.violation("smb_truncated", "an SMB2 transform header cut short")
        else:
            self._ctx.encrypted(struct.unpack_from("<Q", buf, 44)[0], self.frame, self.ts)
        self.done()

    # -- resynchronisation ----------------------------------------------------------------------

    def _start_resync(self) -> None:
        self._resyncing = True
        self._tail = b""
        self._resync_skipped = 0

    def _lose(self, what: str, detail: str, consumed: bytes) -> None:
        """The framing is lost: report it, and scan again from the second of the bytes `consumed`
        since the header that failed."""
        self.violation(what, detail)
        self.buf.clear()
        self._chain = None
        self._start_resync()
        self._resync_skipped = 1
        self._ctx.skipped_bytes += 1
        pushback = consumed[1:]
        self.pos -= len(pushback)
        self._feed(pushback)

    def _scan(self, data: bytes, i: int) -> int:
        """Look for a session header and SMB magic in the tail kept so far and data[i:]."""
        tail = self._tail
        s = tail + data[i:]
        j = s.find(b"SMB", 5)
        while j >= 0 and not plausible_message(s, j - 5):
            j = s.find(b"SMB", j + 1)
        ctx = self._ctx
        if j < 0:
            keep = min(len(s), _TAIL)
            dropped = len(s) - keep
            self._resync_skipped += dropped
            ctx.skipped_bytes += dropped
            self._tail = s[len(s) - keep :]
            self.pos += len(data) - i
            return len(data)
        c = j - 5
        self._resync_skipped += c
        ctx.skipped_bytes += c
        if self._resync_skipped:
            self.violation("smb_resync", f"skipped {self._resync_skipped} bytes to the next SMB header")
        self._resyncing = False
        self._tail = b""
        self.buf.clear()
        self._want = HEADER_LEN
        self._step = Reader._transport
        if c >= len(tail):
            self.pos += c - len(tail)
            self._skip_to = self.unit_start = self.unit_end = self.msg_end = self.pos
            return i + c - len(tail)
        # The header starts inside the tail: those bytes were counted in pos when they arrived.
        self.pos -= len(tail) - c
        self._skip_to = self.unit_start = self.unit_end = self.msg_end = self.pos
        self._feed(tail[c:])
        return i
