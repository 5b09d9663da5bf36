"""Opening capture files: paths and directories expanded, gzip undone, the format sniffed.

Only regular files are read. A FIFO, a device or a socket is refused with one line (opening a FIFO
would wait forever for a writer), whether named or found in a directory; so is anything that cannot
be opened. A directory yields its captures, and its entries that cannot be judged, so they are
reported rather than skipped.
"""

from __future__ import annotations

import os
import stat
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, cast

from analyzer.capture.digest import HashingFile
from analyzer.capture.gzipstream import GzipStream
from analyzer.capture.netmon import NetmonReader
from analyzer.capture.pcap import MAGICS as PCAP_MAGICS
from analyzer.capture.pcap import PcapReader
from analyzer.capture.pcapng import PcapngReader
from analyzer.capture.reader import CaptureReader
from analyzer.errors import CaptureError
from analyzer.limits import DEFAULT_LIMITS, Limits

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


def _file_kind(mode: int) -> str:
    """What a non-regular file is, in the words of ls(1)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _open_regular(path: str) -> BinaryIO:
    """The file at `path` opened for reading if it is a regular file, else CaptureError.

    Opened non-blocking and checked with fstat on the descriptor itself: opening a FIFO for reading
    would otherwise wait for a writer forever, and checking the path first would leave a window for
    it to be replaced.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        try:  # a socket cannot be opened at all (ENXIO): say what it is rather than echo the errno
            mode = os.stat(path).st_mode
        except OSError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            raise CaptureError(
                path, f"is {_file_kind(mode)}, not a regular file: only capture files are read"
            ) from None
        raise CaptureError(path, f"cannot open: {e.strerror or e}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            try:
                os.listdir(path)
            except OSError as e:
                raise CaptureError(path, f"cannot list directory: {e.strerror or e}") from None
        if not stat.S_ISREG(mode):
            raise CaptureError(path, f"is {_file_kind(mode)}, not a regular file: only capture files are read")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


Opened = tuple[BinaryIO, BinaryIO, GzipStream | None, HashingFile | None]


def _open_raw(path: str, limits: Limits, hashed: bool) -> Opened:
    """(decompressed stream, underlying file, the gzip stream if any, the hashing file if `hashed`):
    the second tells how far the read has got, and is the fourth when there is one."""
    raw = _open_regular(path)
    hashing = None
    if hashed:
        hashing = HashingFile(raw)
        raw = cast(BinaryIO, hashing)
    try:
        head = raw.read(2)
        raw.seek(0)
    except OSError as e:
        raw.close()
        raise CaptureError(path, f"cannot read: {e.strerror or e}") from None
    if head == _GZIP_MAGIC:
        gz = GzipStream(raw, limits.max_gzip_ratio, limits.gzip_ratio_floor_bytes)
        return cast(BinaryIO, gz), raw, gz, hashing
    return raw, raw, None, hashing


def _spool(gz: GzipStream) -> BinaryIO:
    """The decompressed data in a temporary file on disk: NetMon jumps between its frame table at the
    end and the frames, and a gzip stream can only go forward."""
    tmp = tempfile.TemporaryFile()  # noqa: SIM115 - the reader owns and closes it
    while chunk := gz.read(1 << 20):
        tmp.write(chunk)
    tmp.seek(0)
    return cast(BinaryIO, tmp)


class _FirstReadCut:
    """A capture stream whose first large read returns at most `PEEK_BYTES` (every other read as
    asked), for a reader whose first frame is all that is wanted: pcap and pcapng readers read
    4 MiB at a time and walk every record of it, so peeking at the first frames of 8 files cost
    8 x 4 MiB read and walked (about 45 ms of CPU), for a frame in the first few hundred bytes. Both
    readers take a short buffer as they take the last one of a file: the frames are the same."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._cut = False

    def read(self, n: int = -1) -> bytes:
        if not self._cut and (n < 0 or n > PEEK_BYTES):
            self._cut = True
            n = PEEK_BYTES
        return self._f.read(n)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        self._f.close()


PEEK_BYTES = 1 << 16  # the first large read of `open_capture(peek=True)`


def open_capture(
    path: str, name: str | None = None, limits: Limits = DEFAULT_LIMITS, hashed: bool = False, peek: bool = False
) -> CaptureReader:
    """A reader for the capture at `path`, or CaptureError saying in one line why there is none.
    `hashed`: the file's SHA-256 is taken as it is read (the reader's `sha256`, once closed).
    `peek`: only the first frames will be read (a session's plan, `capture.session`): a pcap or
    pcapng reader's first buffer is `PEEK_BYTES`, not 4 MiB (`_FirstReadCut`)."""
    name = name or path
    f, raw, gz, hashing = _open_raw(path, limits, hashed)
    try:
        head = f.read(4)
    except (OSError, zlib.error) as e:  # zlib.error: belt and braces, GzipStream reports corrupt data itself
        raw.close()
        raise CaptureError(path, f"cannot read: {e}") from None
    kind = sniff(head)
    if kind is None:
        raw.close()
        if gz is not None and gz.corrupt:
            raise CaptureError(path, f"cannot read: {gz.cut}")
        if gz is not None and gz.cut:
            raise CaptureError(path, f"not a capture file: {gz.cut} before a capture header")
        if not head:
            raise CaptureError(path, "file is empty" if gz is None else "not a capture file: the gzip data is empty")
        raise CaptureError(path, f"not a capture file (pcap, pcapng or NetMon expected; starts with {head.hex()})")
    if kind == "netmon1":
        raw.close()
        raise CaptureError(path, "NetMon 1.x captures are not supported (only 2.x); convert with editcap")
    f.seek(0)
    reader: CaptureReader
    spooled: BinaryIO | None = None
    try:
        if kind == "netmon2" and gz is not None:
            f = spooled = _spool(gz)
        sequential = cast(BinaryIO, _FirstReadCut(f)) if peek else f
        if kind == "pcap":
            reader = PcapReader(sequential, name)
        elif kind == "pcapng":
            reader = PcapngReader(sequential, name)
        else:
            reader = NetmonReader(f, name)
    except CaptureError:
        raw.close()
        if spooled is not None:
            spooled.close()
        raise
    except (OSError, ValueError, zlib.error) as e:
        raw.close()
        raise CaptureError(path, f"cannot read: {e}") from None
    reader.raw = raw
    reader.gzip = gz
    reader.hashed = hashing
    return reader


def expand_paths(paths: Iterable[str]) -> list[tuple[str, bool]]:
    """Files to read, as (path, named_explicitly). Directories are walked in sorted order; regular files
    that look like captures (by their first bytes) are taken from them, and so is everything that
    cannot be judged (a FIFO, a device, a socket, a dangling link, an unreadable file or
    subdirectory), so that opening it reports the error instead of skipping it in silence."""
    out: list[tuple[str, bool]] = []
    for p in paths:
        if os.path.isdir(p):
            unreadable: list[str] = []

            def note(e: OSError, bad: list[str] = unreadable) -> None:
                bad.append(str(e.filename))

            for root, dirs, files in os.walk(p, onerror=note):
                dirs.sort()
                for fn in sorted(files):
                    full = os.path.join(root, fn)
                    if _looks_like_capture(full):
                        out.append((full, False))
            out.extend((d, False) for d in sorted(unreadable) if d != p)
            if p in unreadable:
                out.append((p, True))
        else:
            out.append((p, True))
    return out


def _looks_like_capture(path: str) -> bool:
    """True for a capture, and for anything that is not a readable regular file (see expand_paths)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return True  # a dangling symlink or a vanished file: say so when it is opened
    if not stat.S_ISREG(mode):
        return not stat.S_ISDIR(mode)  # os.walk lists links to directories as directories
    try:
        with _open_regular(path) as fh:
            head = fh.read(4)
            if head[:2] == _GZIP_MAGIC:
                fh.seek(0)
                gz = GzipStream(fh, DEFAULT_LIMITS.max_gzip_ratio, DEFAULT_LIMITS.gzip_ratio_floor_bytes)
                head = gz.read(4)
                if len(head) < 4 and gz.cut:
                    return True  # too damaged to tell: opening it says why
    except (OSError, CaptureError):
        return True
    return sniff(head) is not None


def display_name(path: str) -> str:
    """The capture's name in records: the path as given, with the separators normalised."""
    return Path(path).as_posix()


__all__ = ["CaptureReader", "display_name", "expand_paths", "open_capture", "sniff"]
