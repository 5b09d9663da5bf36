"""Small helpers for reading wire structures: UUIDs, bounds-checked integers, runs of one PDU.

`Malformed` is how parsers inside this package say "these bytes are not what the spec says";
the stream layer turns it into a violation record. It never escapes the package.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from analyzer.dcerpc.constants import CO_HEADER_LEN

_LE_UUID = struct.Struct("<IHH")
_BE_UUID = struct.Struct(">IHH")
# The texts of UUIDs read so far, per byte order: interfaces and transfer syntaxes repeat in every
# bind, so most are looked up rather than formatted. Bounded: past the cap, new ones are formatted.
_TEXTS: tuple[dict[bytes, str], dict[bytes, str]] = ({}, {})  # [big-endian, little-endian]
_TEXTS_MAX = 4096


class Malformed(Exception):
    """Bytes that do not follow the grammar; the message says what was wrong."""

    def __init__(self, what: str, detail: str = "") -> None:
        super().__init__(what if not detail else f"{what}: {detail}")
        self.what = what
        self.detail = detail


def uuid_at(data: bytes, off: int, little: bool = True) -> str:
    """The UUID at data[off:off+16] in canonical lower-case text; the first three fields follow
    the data representation's byte order ([C706] Appendix A, uuid_t on the wire)."""
    if off + 16 > len(data):
        raise Malformed("short_uuid", f"need 16 bytes at offset {off}, have {max(0, len(data) - off)}")
    raw = bytes(data[off : off + 16]) if off >= 0 else bytes(data[off:][:16])
    texts = _TEXTS[little]
    text = texts.get(raw)
    if text is None:
        a, b, c = (_LE_UUID if little else _BE_UUID).unpack_from(raw)
        rest = raw[8:].hex()
        text = f"{a:08x}-{b:04x}-{c:04x}-{rest[:4]}-{rest[4:]}"
        if len(texts) < _TEXTS_MAX:
            texts[raw] = text
    return text


def need(data: bytes, off: int, n: int, what: str) -> None:
    if off < 0 or off + n > len(data):
        raise Malformed(what, f"need {n} bytes at offset {off}, have {max(0, len(data) - off)}")


def py_co_run(data: bytes | bytearray | memoryview, pos: int, size: int) -> int:
    """How many PDUs of `size` bytes lie back to back at data[pos:] that equal the one just before
    them, data[pos - size:pos], in every byte but call_id (header bytes 12-15, [C706] 12.6.3.1).

    No verdict on a PDU depends on its call_id (`pdu.parse_co_pdu` only reads it into the header),
    so a framer judges a malformed PDU once and counts the run. `co_run` is this in C
    (analyzer/capture/_batch.c), used when built; this is its twin, one step per PDU."""
    if size < CO_HEADER_LEN or not size <= pos <= len(data):
        raise ValueError("co_run: need 16 <= size <= pos <= len(buf)")
    view = memoryview(data)  # any buffer, as the C function takes; slices copy nothing
    first = pos - size
    head, body = view[first : first + 12], view[first + CO_HEADER_LEN : pos]
    n, end = 0, len(view)
    while size <= end - pos and view[pos : pos + 12] == head and view[pos + CO_HEADER_LEN : pos + size] == body:
        n += 1
        pos += size
    return n


co_run: Callable[[bytes | bytearray | memoryview, int, int], int]
try:
    from analyzer.capture._batch import co_run
except ImportError:  # not built (no compiler at install): the same count in Python
    co_run = py_co_run
