"""The SHA-256 of an input file, for manifest.json: read in fixed-size blocks, so memory stays flat
whatever the capture's size. Here because the capture layer is the one that reads input files."""

from __future__ import annotations

import errno
import hashlib
import os
import stat

BLOCK = 1 << 20


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
