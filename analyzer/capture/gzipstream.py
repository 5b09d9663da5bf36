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
"""

from __future__ import annotations

import zlib
from typing import BinaryIO

_IN_BLOCK = 1 << 16
_OUT_BLOCK = 1 << 20  # decompressed bytes per zlib call (max_length): a bomb never expands in one go
_GZIP_MAGIC = b"\x1f\x8b"


class GzipStream:
    """A read-only, forward-only file-like view of the decompressed data of a gzip file."""

    def __init__(self, raw: BinaryIO, max_ratio: int, floor: int) -> None:
        self._raw = raw
        self._max_ratio = max_ratio
        self._floor = floor
        self._reset()

    def _reset(self) -> None:
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
        self._done = False
        self.cut: str | None = None  # why the data ended before the gzip file did properly
        self.corrupt = False  # the reason is corrupt deflate data, not a stream cut short
        self.tripped: str | None = None  # the guard's sentence, when it stopped the data

    # -- the file interface the capture readers use --------------------------------------------

    def read(self, n: int = -1) -> bytes:
        want = n if n >= 0 else 1 << 62
        while self._held < want and not self._done:
            self._fill()
        data = self._take(want)
        self._pos += len(data)
        return data

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
        self._pending = []
        self._held = 0
        self._done = True

    # -- decompression ---------------------------------------------------------------------------

    def _fill(self) -> None:
        """Decompress at most `_OUT_BLOCK` more bytes into `_pending`, or end the data."""
        z = self._z
        if z.eof:
            data = self._next_member()
            if not data:
                self._done = True
                return
            z = self._z
        elif z.unconsumed_tail:
            data = z.unconsumed_tail
        else:
            data = self._read()
            if not data:  # the file ends inside a member
                self._done = True
                self._emit(self._flush(z))
                if not z.eof:
                    self.cut = f"compressed stream ends early (after {self._out} decompressed bytes)"
                return
        try:
            out = z.decompress(data, _OUT_BLOCK)
        except zlib.error as e:
            self._done = True
            self.cut = f"compressed data is corrupt after {self._out} decompressed bytes ({e})"
            self.corrupt = True
            return
        self._emit(out)

    def _flush(self, z: zlib._Decompress) -> bytes:
        try:
            return z.flush()
        except zlib.error:
            return b""

    def _emit(self, out: bytes) -> None:
        self._out += len(out)
        if out:
            self._pending.append(out)
            self._held += len(out)
        if self._out > self._floor:
            # Compressed bytes zlib has actually used: what was read, less what it has not reached yet.
            used = self._in - len(self._z.unconsumed_tail) - len(self._z.unused_data)
            if self._out > self._max_ratio * used:
                self._done = True
                self.tripped = (
                    f"decompression stopped after {self._out} bytes from {used} compressed bytes: over "
                    f"the {self._max_ratio}:1 ratio cap (Limits.max_gzip_ratio)"
                )

    def _read(self) -> bytes:
        block = self._raw.read(_IN_BLOCK)
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
            self.cut = "bytes that are not gzip follow the last member"
            return b""
        self._z = zlib.decompressobj(wbits=31)
        return rest
