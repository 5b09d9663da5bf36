"""A bounded memo of decode results, keyed by the exact stubs: an addition to the decoders, not a
substitute for their speed.

Many calls carry the very same stub bytes (a scanner's identical requests, the same query polled,
a flood of one request), and decoding them again gives the same `Decoded`. The memo keeps a result
only when it cannot depend on anything but its key: the decode neither read nor changed what the
association's calls taught each other (`StubState`'s handle names, see `StubState.consulted`), and
the key holds everything else it read: the interface, the opnum, every field of `Stubs` (bytes,
byte orders, NDR64, the object UUID) and the NDR limits. Results are shared between the calls that
hit, so nobody may change a `Decoded` once made (no one does: the state machines only read them).

Bounded: at most `_ENTRIES` results of stubs of at most `_STUB_BYTES` bytes together; when full, it
forgets them all and starts again (one dict operation a call, where dropping the oldest costs five).
An attacker who varies the bytes gets no hits: each call then pays one lookup and one insertion.
"""

from __future__ import annotations

import contextlib
from typing import Any

from analyzer.dcerpc.decoding import Stubs

_ENTRIES = 1024
_STUB_BYTES = 512  # request and response stub together: the small, repeated calls

Key = tuple[Any, str | None, int, Stubs]


class DecodeMemo:
    """Results by (NDR limits, interface, opnum, stubs)."""

    __slots__ = ("_results",)

    def __init__(self) -> None:
        self._results: dict[Key, Any] = {}

    def find(self, limits: Any, uuid: str | None, opnum: int, stubs: Stubs) -> tuple[Key | None, Any]:
        """A call's key and the result kept under it, the memo looked up once a call: (the key, or
        None when the stubs are too large to keep; the result, or None). The only look-up: a flood
        of identical requests asks once a request."""
        if len(stubs.request or b"") + len(stubs.response or b"") > _STUB_BYTES:
            return None, None
        key = (limits, uuid, opnum, stubs)
        try:
            return key, self._results.get(key)
        except TypeError:  # a stub in a mutable buffer (a caller's bytearray) is not hashable
            return key, None

    def keep(self, key: Key, result: Any) -> None:
        """Remember a result that read nothing but its key."""
        if len(self._results) >= _ENTRIES:
            self._results.clear()
        with contextlib.suppress(TypeError):  # unhashable, as in `find`
            self._results[key] = result

    def __len__(self) -> int:
        return len(self._results)


MEMO = DecodeMemo()  # one per process: results depend only on their keys, so runs may share it
