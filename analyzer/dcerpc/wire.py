"""Small helpers for reading wire structures: UUIDs and bounds-checked integers.

`Malformed` is how parsers inside this package say "these bytes are not what the spec says";
the stream layer turns it into a violation record. It never escapes the package.
"""

from __future__ import annotations

import struct

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


def copies(data: bytes | bytearray, pos: int, unit: bytes) -> int:
    """How many copies of `unit` lie back to back at data[pos:].

    A flood repeats one PDU, so a framer judges a run of identical ones once. Galloping (1, 2, 4,
    ... copies, then halving) keeps a run of k copies at O(log k) comparisons of O(k) bytes, each
    `bytes.startswith` (memcmp), whatever follows the run."""
    size = len(unit)
    most = (len(data) - pos) // size if size else 0
    if not most or not data.startswith(unit, pos):
        return 0
    have, probe = 1, 2
    while probe <= most and data.startswith(unit * probe, pos):
        have, probe = probe, probe * 2
    lack = min(probe, most + 1)  # `have` copies are there, `lack` are not
    while lack - have > 1:
        mid = (have + lack) // 2
        if data.startswith(unit * mid, pos):
            have = mid
        else:
            lack = mid
    return have
