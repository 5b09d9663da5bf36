"""The reader interface every capture format implements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO, NoReturn

from analyzer.errors import CaptureError

if TYPE_CHECKING:
    from analyzer.capture.digest import HashingFile
    from analyzer.capture.gzipstream import GzipStream

# (ts_ns, link_type, buf, start, end): the frame's bytes are buf[start:end]. ts_ns 0 means "unknown".
RawFrame = tuple[int, int, bytes, int, int]

# Timestamps the tables can hold: nanoseconds since 1970 in a signed 64-bit integer (datetime64[ns]),
# i.e. 1970-01-01 to 2262-04-11. A frame whose time falls outside is given time 0, "unknown".
MAX_TS_NS = (1 << 63) - 1

# A note for the violations table: (frame or None, layer, what, detail).
Note = tuple[int | None, str, str, str]


class CaptureReader:
    """Iterates the frames of one capture file.

    After (or during) iteration: `frames` counts the frames yielded (Wireshark's frame numbers are
    1..frames), `bytes_read` how far into the (uncompressed) file the reader got, `link_types` the
    link types met, and `truncated` says why the file ended early, or is None. `notes()` lists what
    the violations table should say about the file (timestamps out of range, the gzip guard).
    """

    format = "unknown"

    def __init__(self, f: BinaryIO, name: str) -> None:
        self._file = f
        self.name = name
        self.frames = 0
        self.bytes_read = 0
        self.link_types: set[int] = set()
        self._truncated: str | None = None
        # The file as stored (compressed, for a .gz): its position is the reader's progress.
        self.raw: BinaryIO = f
        self.gzip: GzipStream | None = None  # the decompressor, for a .gz: it knows whether it was cut
        self.hashed: HashingFile | None = None  # the stored file, when hashed as it is read
        self.bad_times = 0  # frames whose timestamp is out of range (their time is unknown)
        self._first_bad_time: tuple[int, str] | None = None

    @property
    def truncated(self) -> str | None:
        """Why the file ended early. A cut or corrupt gzip stream is the cause whatever the format reader
        saw (a record cut in half at the end), so it wins, naming the last complete frame."""
        gz = self.gzip
        why = gz.cut or gz.tripped if gz is not None else None
        if why:
            return f"{why}; the last complete frame is {self.frames}"
        return self._truncated

    @truncated.setter
    def truncated(self, reason: str | None) -> None:
        self._truncated = reason

    def _bad_time(self, frame: int, raw: str) -> int:
        """Note a frame whose timestamp is out of range; 0, the unknown time, to use instead."""
        self.bad_times += 1
        if self._first_bad_time is None:
            self._first_bad_time = (frame, raw)
        return 0

    def notes(self) -> list[Note]:
        """Violations about the file as a whole, one row per kind (counted, never one per frame)."""
        out: list[Note] = []
        if self._first_bad_time is not None:
            frame, raw = self._first_bad_time
            out.append(
                (
                    frame,
                    "capture",
                    "timestamp_out_of_range",
                    f"{self.bad_times} frame(s) with a time outside 1970-01-01..2262-04-11, first frame {frame} "
                    f"({raw}); their time is unknown",
                )
            )
        if self.gzip is not None and self.gzip.tripped:
            out.append((None, "limits", "cap_gzip_ratio", f"{self.gzip.tripped}, after frame {self.frames}"))
        return out

    def __iter__(self) -> Iterator[RawFrame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fail(self, reason: str) -> NoReturn:
        raise CaptureError(self.name, reason)

    @property
    def sha256(self) -> str | None:
        """The stored file's SHA-256 when it was hashed as read (`open_capture(hashed=True)`), read
        to its end and closed; else None."""
        return self.hashed.sha256 if self.hashed is not None else None

    def position(self) -> int:
        """Bytes of the stored file consumed so far (for progress bars)."""
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        self._file.close()
        if self.raw is not self._file:
            self.raw.close()
        if self.gzip is not None:
            self.gzip.close()
