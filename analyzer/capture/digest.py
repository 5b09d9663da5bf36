"""The SHA-256 of an input file, for manifest.json. Here because the capture layer is the one that
reads input files.

`HashingFile` hashes a capture's bytes as its reader reads them, so that each input is read once;
the hashing runs on a thread (`Sha256Stream`: hashlib releases the GIL on large blocks), on the
core the reader does not use. `sha256_file` reads a file of its own, in fixed-size blocks (memory
stays flat whatever the capture's size), for the inputs no reader read to the end.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import stat
import threading
from typing import BinaryIO

BLOCK = 1 << 20
_QUEUED = 4  # blocks handed to the hashing thread and not yet hashed, at most (bounded memory)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The file's SHA-256 in hex, as stored (a .gz is hashed compressed). Only a regular file is read:
    anything else is an OSError, never a wait (opening a FIFO would block until a writer came)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    h = hashlib.sha256()
    with fh:
        while block := fh.read(BLOCK):
            h.update(block)
    return h.hexdigest()


class Sha256Stream:
    """SHA-256 of bytes fed in order, hashed on a thread of its own (started on the first block).
    Small pieces are gathered into a block first: hashlib holds the GIL on updates under 2 KiB."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._small = bytearray()
        self._queue: queue.Queue[bytes | None] = queue.Queue(_QUEUED)
        self._thread: threading.Thread | None = None

    def update(self, data: bytes) -> None:
        if len(data) < BLOCK:
            self._small += data
            if len(self._small) < BLOCK:
                return
            data, self._small = bytes(self._small), bytearray()
        elif self._small:
            self._put(bytes(self._small))
            self._small = bytearray()
        self._put(data)

    def _put(self, block: bytes) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="sha256", daemon=True)
            self._thread.start()
        self._queue.put(block)

    def _work(self) -> None:
        while (block := self._queue.get()) is not None:
            self._hash.update(block)

    def hexdigest(self) -> str:
        """The digest of everything fed (feed nothing after this)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._small:
            self._hash.update(self._small)
            self._small = bytearray()
        return self._hash.hexdigest()


class HashingFile:
    """A capture file whose bytes are hashed as its reader reads them (see the module docstring).

    Bytes count when they are read in order from the start, a byte once however often it is read
    (the format is sniffed, then read again from the start). A reader that reads past a gap (NetMon
    reads its frame table at the end first) or stops before the end leaves `sha256` None: the
    manifest then reads the file itself. Set when closed."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._size = os.fstat(f.fileno()).st_size
        self._pos = 0
        self._hashed = 0  # bytes [0, _hashed) are in the digest
        self._stream: Sha256Stream | None = Sha256Stream()
        self.sha256: str | None = None

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        pos, self._pos = self._pos, self._pos + len(data)
        if self._stream is not None and pos <= self._hashed < self._pos:
            self._stream.update(data if pos == self._hashed else data[self._hashed - pos :])
            self._hashed = self._pos
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._pos = self._f.seek(offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def fileno(self) -> int:
        return self._f.fileno()

    @property
    def closed(self) -> bool:
        return self._f.closed

    def close(self) -> None:
        """Close the file; `sha256` is then the digest if every byte was read in order."""
        stream, self._stream = self._stream, None
        if stream is not None:
            digest = stream.hexdigest()
            whole = self._hashed == self._size == os.fstat(self._f.fileno()).st_size
            self.sha256 = digest if whole else None
        self._f.close()

    def __enter__(self) -> HashingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
