"""Opening capture files: paths and directories expanded, gzip undone, the format sniffed."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from analyzer.capture.netmon import NetmonReader
from analyzer.capture.pcap import MAGICS as PCAP_MAGICS
from analyzer.capture.pcap import PcapReader
from analyzer.capture.pcapng import PcapngReader
from analyzer.capture.reader import CaptureReader
from analyzer.errors import CaptureError

_GZIP_MAGIC = b"\x1f\x8b"
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_NETMON2_MAGIC = b"GMBU"
_NETMON1_MAGIC = b"RTSS"


def sniff(head: bytes) -> str | None:
    """The capture format a file's first bytes announce, or None."""
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == _PCAPNG_MAGIC:
        return "pcapng"
    if head[:4] == _NETMON2_MAGIC:
        return "netmon2"
    if head[:4] == _NETMON1_MAGIC:
        return "netmon1"
    return None


def _open_raw(path: str) -> tuple[BinaryIO, BinaryIO]:
    """(decompressed stream, underlying file): the second tells how far the read has got."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - the reader owns and closes it
    except OSError as e:
        raise CaptureError(path, f"cannot open: {e.strerror or e}") from None
    head = raw.read(2)
    raw.seek(0)
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw  # type: ignore[return-value]
    return raw, raw


def open_capture(path: str, name: str | None = None) -> CaptureReader:
    """A reader for the capture at `path`, or CaptureError saying in one line why there is none."""
    name = name or path
    f, raw = _open_raw(path)
    try:
        head = f.read(4)
    except (OSError, EOFError, zlib.error) as e:  # zlib.error: corrupt deflate data (found by fuzzing)
        raw.close()
        raise CaptureError(path, f"cannot read: {e}") from None
    kind = sniff(head)
    if kind is None:
        raw.close()
        if not head:
            raise CaptureError(path, "file is empty")
        raise CaptureError(path, f"not a capture file (pcap, pcapng or NetMon expected; starts with {head.hex()})")
    if kind == "netmon1":
        raw.close()
        raise CaptureError(path, "NetMon 1.x captures are not supported (only 2.x); convert with editcap")
    f.seek(0)
    reader: CaptureReader
    try:
        if kind == "pcap":
            reader = PcapReader(f, name)
        elif kind == "pcapng":
            reader = PcapngReader(f, name)
        else:
            reader = NetmonReader(f, name)
    except CaptureError:
        raw.close()
        raise
    except (OSError, EOFError, ValueError, zlib.error) as e:
        raw.close()
        raise CaptureError(path, f"cannot read: {e}") from None
    if raw is not f:
        reader.raw = raw
    return reader


def expand_paths(paths: Iterable[str]) -> list[tuple[str, bool]]:
    """Files to read, as (path, named_explicitly). Directories are walked in sorted order and
    only files that look like captures (by their first bytes) are taken from them."""
    out: list[tuple[str, bool]] = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for fn in sorted(files):
                    full = os.path.join(root, fn)
                    if _looks_like_capture(full):
                        out.append((full, False))
        else:
            out.append((p, True))
    return out


def _looks_like_capture(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            if head[:2] == _GZIP_MAGIC:
                fh.seek(0)
                with gzip.GzipFile(fileobj=fh) as gz:
                    head = gz.read(4)
    except (OSError, EOFError):
        return False
    return sniff(head) is not None


def display_name(path: str) -> str:
    """The capture's name in records: the path as given, with the separators normalised."""
    return Path(path).as_posix()


__all__ = ["CaptureReader", "display_name", "expand_paths", "open_capture", "sniff"]
