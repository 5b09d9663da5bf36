"""A bounds-checked NDR reader for the stubs the analyzer decodes ([C706] 14, [MS-RPCE] 2.2.5).

NDR 2.0 (transfer syntax 8a885d04...): 4-byte pointers and conformance/variance counts.
NDR64 (71710533...): 8-byte pointers and counts, 8-byte alignment for them ([MS-RPCE] 2.2.5.3).
Alignment is relative to the start of the stub. Every read checks its bounds and raises
`Malformed`; the caller turns that into a violation. The reader is also bounded in work: a stub
may claim at most `max_elements` array elements in all, nest pointers `max_depth` deep and hold
strings of `max_string_chars` (`Limits.max_ndr_*`; past one, `Malformed` carries the cap's code),
so a hostile count can neither allocate nor loop past what the stub's own bytes could hold.
The declarative types built on it live in `analyzer.dcerpc.ndr_types`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from analyzer.dcerpc.wire import Malformed, uuid_at
from analyzer.limits import DEFAULT_LIMITS

# Reads one aligned integer of a given format and byte order: (reader, what) -> value.
Scalar = Callable[..., int]


class NdrReader:
    __slots__ = (
        "_e",
        "boxed",
        "data",
        "depth",
        "elements",
        "full_refs",
        "max_depth",
        "max_string_chars",
        "ndr64",
        "off",
    )

    def __init__(
        self,
        data: bytes,
        little: bool = True,
        ndr64: bool = False,
        off: int = 0,
        max_depth: int = DEFAULT_LIMITS.max_ndr_depth,
        max_elements: int = DEFAULT_LIMITS.max_ndr_elements,
        max_string_chars: int = DEFAULT_LIMITS.max_ndr_string_chars,
    ) -> None:
        self.data = data
        self.off = off
        self._e = "<" if little else ">"
        self.ndr64 = ndr64
        self.depth = 0
        self.max_depth = max_depth
        self.elements = max_elements  # what is left of the element budget
        self.max_string_chars = max_string_chars
        self.full_refs: dict[int, Any] = {}  # full pointers: referent id -> referent ([C706] 14.3.12.3)
        self.boxed = False  # a full pointer's shared referent was read: values hold boxes to undo

    @property
    def little(self) -> bool:
        return self._e == "<"

    @property
    def left(self) -> int:
        return len(self.data) - self.off

    def align(self, n: int) -> None:
        self.off += -self.off % n

    def _take(self, fmt: str, size: int, what: str) -> int:
        return SCALARS[fmt, self._e == "<"](self, what)

    def u8(self, what: str = "short_stub") -> int:
        return self._take("B", 1, what)

    def u16(self, what: str = "short_stub") -> int:
        return self._take("H", 2, what)

    def u32(self, what: str = "short_stub") -> int:
        return self._take("I", 4, what)

    def i32(self, what: str = "short_stub") -> int:
        return self._take("i", 4, what)

    def u64(self, what: str = "short_stub") -> int:
        return self._take("Q", 8, what)

    def count(self, what: str = "short_stub") -> int:
        """A conformance, offset or actual count: u32 in NDR, u64 in NDR64."""
        return self.u64(what) if self.ndr64 else self.u32(what)

    def pointer(self, what: str = "short_stub") -> int:
        """A referent id (0 is a null pointer)."""
        return self.u64(what) if self.ndr64 else self.u32(what)

    def enum(self, what: str = "short_stub") -> int:
        """An enum: 16 bits in NDR 2.0, 32 bits in NDR64 ([MS-RPCE] 2.2.5.2.1)."""
        return self.u32(what) if self.ndr64 else self.u16(what)

    def raw(self, n: int, what: str = "short_stub") -> bytes:
        if n < 0 or self.off + n > len(self.data):
            raise Malformed(what, f"stub ends at {len(self.data)}, need {n} bytes at {self.off}")
        out = self.data[self.off : self.off + n]
        self.off += n
        return out

    def uuid(self, what: str = "short_stub") -> str:
        self.align(4)
        value = uuid_at(self.data, self.off, self.little)
        self.off += 16
        return value

    def context_handle(self) -> bytes:
        """policy_handle / ndr_context_handle: 4-byte attributes + 16-byte uuid."""
        self.align(4)
        return self.raw(20, "short_context_handle")

    def budget(self, n: int, size: int, what: str) -> None:
        """Claim `n` elements of at least `size` bytes each: refused when the stub cannot hold them
        or the stub's element budget is spent (`cap_ndr_elements`)."""
        if n < 0 or n * size > self.left:
            raise Malformed(what, f"{n} elements of {size} bytes do not fit in {self.left} bytes left")
        if n > self.elements:
            raise Malformed("cap_ndr_elements", f"{n} more elements, {self.elements} left of the stub's budget")
        self.elements -= n

    def enter(self) -> None:
        """One level deeper into pointed-to data; refused past `max_depth` (`cap_ndr_depth`)."""
        self.depth += 1
        if self.depth > self.max_depth:
            raise Malformed("cap_ndr_depth", f"pointers nested more than {self.max_depth} deep")

    def leave(self) -> None:
        self.depth -= 1

    def varying(self, size: int, what: str) -> int:
        """The offset and actual count of a varying array; returns the actual count, budgeted."""
        _offset = self.count(what)  # the elements before the offset are absent ([C706] 14.3.3.2)
        actual = self.count(what)
        self.budget(actual, size, what)
        return actual

    def string(self, wide: bool = True, what: str = "short_string") -> str:
        """A conformant varying string ([C706] 14.3.4.2, [string] wchar_t* / char*): maximum count,
        offset, actual count, then the characters; text up to the first NUL."""
        _max = self.count(what)
        return self.varying_string(wide, what)

    def varying_string(self, wide: bool = True, what: str = "short_string") -> str:
        """The varying part of a string (offset, actual count, characters)."""
        size = 2 if wide else 1
        actual = self.varying(size, what)
        if actual > self.max_string_chars:
            raise Malformed("cap_ndr_string_chars", f"string of {actual} characters")
        return decode_text(self.raw(actual * size, what), wide, self.little)


def decode_text(raw: bytes, wide: bool, little: bool = True) -> str:
    """Wire characters as text, up to the first NUL; never fails (bad UTF-16 is replaced)."""
    return raw.decode(_CODECS[wide, little], errors="replace").partition("\0")[0]


def scalar(fmt: str, little: bool) -> Scalar:
    """The reader of one integer ([C706] 14.2.2: aligned to its size, relative to the stub) in one
    byte order, with its `struct` format compiled once: the stub decoders read millions of them.
    `take(reader, what)`, `what` the violation code of a short stub; it is also the compiled reader
    of an integer type (`analyzer.dcerpc.ndr_types`), called `take(reader, queue)`: then the default."""
    unpack = struct.Struct(("<" if little else ">") + fmt).unpack_from
    size = struct.calcsize(fmt)

    def take(r: NdrReader, what: Any = "short_stub") -> int:
        data = r.data
        off = r.off
        off += -off % size
        if off + size > len(data):
            r.off = off
            what = what if isinstance(what, str) else "short_stub"  # a compiled reader passes its queue
            raise Malformed(what, f"stub ends at {len(data)}, need {size} bytes at {off}")
        r.off = off + size
        value: int = unpack(data, off)[0]
        return value

    return take


SCALARS: dict[tuple[str, bool], Scalar] = {(f, le): scalar(f, le) for f in "BHIiQ" for le in (True, False)}
_CODECS = {(True, True): "utf-16-le", (True, False): "utf-16-be", (False, True): "latin-1", (False, False): "latin-1"}
