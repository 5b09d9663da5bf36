"""The SHA-256 of an input file, for manifest.json: read in fixed-size blocks, so memory stays flat
whatever the capture's size. Here because the capture layer is the one that reads input files."""

from __future__ import annotations

import hashlib
import os

BLOCK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The file's SHA-256 in hex, as stored (a .gz is hashed compressed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            h.update(block)
    return h.hexdigest()
