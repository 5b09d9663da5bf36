"""Errors the library raises to its callers.

Malformed bytes from the wire are never exceptions: they become `Violation` records (see `model`).
Exceptions are for the caller's own mistakes and for files that cannot be read at all.
"""

from __future__ import annotations


class AnalyzerError(Exception):
    """Base class of every error the analyzer raises on purpose."""


class CaptureError(AnalyzerError):
    """A capture file cannot be read: not a capture, unsupported format or link type, I/O error.

    The message names the file and says why, in one line, so the CLI can print it as is.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
