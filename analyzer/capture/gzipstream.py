"""gzip input decompressed incrementally, keeping everything before a cut, with a bomb guard.

`gzip.GzipFile.read(n)` raises `EOFError` when the compressed stream ends early and drops what it had
decompressed for that call (up to the size asked for): a capture cut short lost up to its last MiB,
a small one everything. `GzipStream` feeds the compressed bytes to zlib a block at a time and hands
out whatever came out, so the capture reader sees a shorter file and stops at its last complete
frame; `cut` then says why the data ended (RFC 1952 member cut short, corrupt deflate data).

Members follow one another (RFC 1952 2.2: a gzip file is a series of members), as `cat a.gz b.gz`
makes; zero bytes after the last member are padding, as gzip(1) accepts. Anything else after a member
ends the data, with a note in `cut`.

The guard (issue: a few hundred KB of gzip can expand to GBs): once more than `floor` bytes have come
out, the output may not exceed `max_ratio` times the compressed input used, so a file of n bytes
yields at most max(floor, max_ratio * n). Deflate reaches about 1030:1; captures of traffic compress
2:1 to 20:1, zero-filled payloads in large offload segments about 560:1, which is why the ratio is
only judged past a floor. When the guard trips, the data ends there and `tripped` holds the sentence
for the `cap_gzip_ratio` violation. Below it nothing is held whole: memory is the readers' window.

Decompressing is most of the reading of a .gz (zlib 0.8 s of CPU for the 200 MB benchmark capture,
whose parsing takes 0.4 s), and zlib lets go of the GIL while it inflates. So once a reader asks for
a large read, a thread of its own decompresses ahead (`_Ahead`), at most `_AHEAD_BLOCKS` blocks of
`_OUT_BLOCK` bytes, while the reader parses what came before: on two cores the .gz is read in the
time zlib takes. What the thread found at the end (`cut`, `corrupt`, `tripped`) reaches this
stream only when the reader reads that far, as without it: a reader that stops sooner (a corrupt
record) says its own reason.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import zlib
from typing import BinaryIO

_IN_BLOCK = 1 << 16
_OUT_BLOCK = 1 << 20  # decompressed bytes per zlib call (max_length): a bomb never expands in one go
_GZIP_MAGIC = b"\x1f\x8b"
# A read this large starts the thread: the readers' buffers (pcap and pcapng 4 MiB, NetMon's copy
# 1 MiB), not the format sniffing, the headers or a session plan's peek (`source.PEEK_BYTES`, 64 KiB).
_AHEAD_FROM = 1 << 20
_AHEAD_BLOCKS = 8  # decompressed blocks the thread may hold ahead of the reader: 8 MiB at most
# Nor for a .gz smaller than this: its decompressing is short, and the thread's hand-overs cost more
# (the bogus-PDU flood, 546 KB of gzip: 0.495 s inline against 0.506 s with the thread).
_AHEAD_MIN_STORED = 4 << 20
_AHEAD_IN_BLOCK = 1 << 20
# While a thread decompresses, the interpreter hands the GIL over every 0.2 ms, not 5: the thread needs it
# a moment between inflates, and waited up to the whole interval for it while the reader parsed, so that
# the two took turns (1.24 s with the thread for 1.24 s without, on a reader parsing 6 ms a buffer).
_AHEAD_SWITCH_S = 0.0002


class GzipStream:
    """A read-only, forward-only file-like view of the decompressed data of a gzip file."""

    def __init__(self, raw: BinaryIO, max_ratio: int, floor: int) -> None:
        self._raw = raw
        self._max_ratio = max_ratio
        self._floor = floor
        try:  # a file of its own size; any other stream (in memory, a pipe) is taken to be big
            self._big = os.fstat(raw.fileno()).st_size >= _AHEAD_MIN_STORED
        except (AttributeError, OSError, ValueError):
            self._big = True
        self._ahead: _Ahead | None = None
        self._reset()

    def _reset(self) -> None:
        self._stop_ahead()
        self._raw.seek(0)
        self._z = zlib.decompressobj(wbits=31)
        # Decompressed, not yet handed out: the pieces zlib gave, joined only when read (appending
        # each piece to one bytes object copied the whole of it every time: 2.4 s of 5.5 for a
        # 200 MB capture that zlib hands out 64 KiB at a time).
        self._pending: list[bytes] = []
        self._held = 0  # their total length
        self._pos = 0  # decompressed bytes handed out so far
        self._in = 0  # compressed bytes read from the file
        self._out = 0  # decompressed bytes produced
        self._end = _End()  # how the data ended, once it has
        self._in_block = _IN_BLOCK
        self._done = False  # the decompression has ended (the thread's, once it runs)
        self._drained = False  # ... and this stream has been handed all it produced
        self.cut: str | None = None  # why the data ended before the gzip file did properly
        self.corrupt = False  # the reason is corrupt deflate data, not a stream cut short
        self.tripped: str | None = None  # the guard's sentence, when it stopped the data

    # -- the file interface the capture readers use --------------------------------------------

    def read(self, n: int = -1) -> bytes:
        want = n if n >= 0 else 1 << 62
        if self._ahead is None and want >= _AHEAD_FROM and not self._done and self._big:
            try:
                self._ahead = _Ahead(self)
            except RuntimeError:
                self._big = False  # decompressed here, as a small file is
        while self._held < want and not self._drained:
            self._more()
        data = self._take(want)
        self._pos += len(data)
        return data

    def _more(self) -> None:
        """One more decompressed block into `_pending`: from the thread when it runs, else here."""
        ahead = self._ahead
        if ahead is None:
            self._keep(self._fill())
            if self._done:
                self._ended(self._end)
            return
        item = ahead.blocks.get()
        if isinstance(item, bytes):
            self._keep(item)
        elif isinstance(item, _End):
            self._stop_ahead()  # the thread has ended: its switch interval goes
            self._ended(item)
        else:  # an error reading the file (OSError): raised here, where the reader reads
            self._stop_ahead()
            self._drained = True
            raise item

    def _ended(self, end: _End) -> None:
        self.cut, self.corrupt, self.tripped = end.cut, end.corrupt, end.tripped
        self._drained = True

    def _keep(self, out: bytes) -> None:
        if out:
            self._pending.append(out)
            self._held += len(out)

    def _take(self, want: int) -> bytes:
        """The first `want` bytes pending (all of them if fewer), joined: whole pieces, and the
        front of the one the end falls in (the only piece copied beside the join)."""
        pieces = self._pending
        got = whole = 0
        while whole < len(pieces) and got + len(pieces[whole]) <= want:
            got += len(pieces[whole])
            whole += 1
        out = pieces[:whole]
        del pieces[:whole]
        if got < want and pieces:
            cut = pieces[0]
            out.append(cut[: want - got])
            pieces[0] = cut[want - got :]
        data = out[0] if len(out) == 1 else b"".join(out)
        self._held -= len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        """Forward seeks skip data; a backward seek starts again from the beginning (rare: the
        format sniffing goes back to 0 once)."""
        target = offset if whence == 0 else self._pos + offset
        if whence not in (0, 1):
            raise OSError("GzipStream seeks only from the start or the current position")
        if target < self._pos:
            self._reset()
        while self._pos < target:
            if not self.read(min(target - self._pos, 1 << 20)):
                break
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._stop_ahead()
        self._pending = []
        self._held = 0
        self._done = self._drained = True

    def _stop_ahead(self) -> None:
        """The thread stopped and gone (a backward seek, a close): nothing of it is used again."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.stop()

    # -- decompression ---------------------------------------------------------------------------

    def _fill(self) -> bytes:
        """At most `_OUT_BLOCK` more decompressed bytes, or the end of the data (`_done`, and why in
        `_end`)."""
        z = self._z
        if z.eof:
            data = self._next_member()
            if not data:
                self._done = True
                return b""
            z = self._z
        elif z.unconsumed_tail:
            data = z.unconsumed_tail
        else:
            data = self._read()
            if not data:  # the file ends inside a member
                self._done = True
                out = self._emit(self._flush(z))
                if not z.eof:
                    self._end.cut = f"compressed stream ends early (after {self._out} decompressed bytes)"
                return out
        try:
            out = z.decompress(data, _OUT_BLOCK)
        except zlib.error as e:
            self._done = True
            self._end.cut = f"compressed data is corrupt after {self._out} decompressed bytes ({e})"
            self._end.corrupt = True
            return b""
        return self._emit(out)

    def _flush(self, z: zlib._Decompress) -> bytes:
        try:
            return z.flush()
        except zlib.error:
            return b""

    def _emit(self, out: bytes) -> bytes:
        """`out` counted, and judged by the guard (which may end the data after it)."""
        self._out += len(out)
        if self._out > self._floor:
            # Compressed bytes zlib has actually used: what was read, less what it has not reached yet.
            used = self._in - len(self._z.unconsumed_tail) - len(self._z.unused_data)
            if self._out > self._max_ratio * used:
                self._done = True
                self._end.tripped = (
                    f"decompression stopped after {self._out} bytes from {used} compressed bytes: over "
                    f"the {self._max_ratio}:1 ratio cap (Limits.max_gzip_ratio)"
                )
        return out

    def _read(self) -> bytes:
        block = self._raw.read(self._in_block)
        self._in += len(block)
        return block

    def _next_member(self) -> bytes:
        """The compressed bytes that start the next member (with a fresh decompressor), or b"" at the end."""
        rest = self._z.unused_data
        while len(rest) < 2:
            more = self._read()
            if not more:
                break
            rest += more
        if not rest:
            return b""
        if rest[:2] != _GZIP_MAGIC:
            while not rest.strip(b"\0"):  # zero padding after the last member is fine
                rest = self._read()
                if not rest:
                    return b""
            self._end.cut = "bytes that are not gzip follow the last member"
            return b""
        self._z = zlib.decompressobj(wbits=31)
        return rest


class _End:
    """How the decompressed data ended: `GzipStream`'s cut, corrupt and tripped, handed to it when its
    reader reaches the end (inline, at once; from the thread, after its last block)."""

    __slots__ = ("corrupt", "cut", "tripped")

    def __init__(self) -> None:
        self.cut: str | None = None
        self.corrupt = False
        self.tripped: str | None = None


class _Ahead:
    """The thread that decompresses a `GzipStream` ahead of its reader: `_fill` in a loop, each
    block into `blocks` (bounded: it waits when `_AHEAD_BLOCKS` are not yet read), then the `_End`,
    or the exception that stopped it. From its start only it touches the stream's decompressor and
    file."""

    running = 0  # threads decompressing in this process
    interval = 0.0  # the switch interval before the first of them started

    def __init__(self, stream: GzipStream) -> None:
        self.blocks: queue.Queue[bytes | _End | BaseException] = queue.Queue(_AHEAD_BLOCKS)
        self._stream = stream
        self._stopping = False
        stream._in_block = _AHEAD_IN_BLOCK
        self._thread = threading.Thread(target=self._run, name="gunzip", daemon=True)
        try:
            self._thread.start()
        except RuntimeError:  # no thread to be had (a process at its limit): the caller reads inline
            stream._in_block = _IN_BLOCK
            raise
        if not _Ahead.running:
            _Ahead.interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_Ahead.interval, _AHEAD_SWITCH_S))
        _Ahead.running += 1

    def _run(self) -> None:
        s = self._stream
        try:
            while not s._done and not self._stopping:
                out = s._fill()
                if out:
                    self.blocks.put(out)
            self.blocks.put(s._end)
        except BaseException as e:  # an OSError reading the file: the reader's to raise
            self.blocks.put(e)

    def stop(self) -> None:
        """Stop the thread and wait for it: what it holds is dropped, so that a put it waits on returns."""
        self._stopping = True
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self.blocks.get(timeout=0.05)
        self._thread.join()
        _Ahead.running -= 1
        if not _Ahead.running:
            sys.setswitchinterval(_Ahead.interval)
