"""The reader interface every capture format implements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, NoReturn

from analyzer.errors import CaptureError

# (ts_ns, link_type, buf, start, end): the frame's bytes are buf[start:end].
RawFrame = tuple[int, int, bytes, int, int]


class CaptureReader:
    """Iterates the frames of one capture file.

    After (or during) iteration: `frames` counts the frames yielded (Wireshark's frame numbers are
    1..frames), `bytes_read` how far into the (uncompressed) file the reader got, `link_types` the
    link types met, and `truncated` says why the file ended early, or is None.
    """

    format = "unknown"

    def __init__(self, f: BinaryIO, name: str) -> None:
        self._file = f
        self.name = name
        self.frames = 0
        self.bytes_read = 0
        self.link_types: set[int] = set()
        self.truncated: str | None = None
        # The file as stored (compressed, for a .gz): its position is the reader's progress.
        self.raw: BinaryIO = f

    def __iter__(self) -> Iterator[RawFrame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fail(self, reason: str) -> NoReturn:
        raise CaptureError(self.name, reason)

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
