"""A bounds-checked NDR reader for the few stubs the analyzer decodes ([C706] 14, [MS-RPCE] 2.2.5).

NDR 2.0 (transfer syntax 8a885d04...): 4-byte pointers and conformance/variance counts.
NDR64 (71710533...): 8-byte pointers and counts, 8-byte alignment for them.
Alignment is relative to the start of the stub. Every read checks its bounds and raises
`Malformed`; the caller turns that into a violation.
"""

from __future__ import annotations

import struct

from analyzer.dcerpc.wire import Malformed, uuid_at


class NdrReader:
    __slots__ = ("_e", "data", "ndr64", "off")

    def __init__(self, data: bytes, little: bool = True, ndr64: bool = False, off: int = 0) -> None:
        self.data = data
        self.off = off
        self._e = "<" if little else ">"
        self.ndr64 = ndr64

    @property
    def little(self) -> bool:
        return self._e == "<"

    def align(self, n: int) -> None:
        self.off += -self.off % n

    def _take(self, fmt: str, size: int, what: str) -> int:
        self.align(size)
        if self.off + size > len(self.data):
            raise Malformed(what, f"stub ends at {len(self.data)}, need {size} bytes at {self.off}")
        value: int = struct.unpack_from(self._e + fmt, self.data, self.off)[0]
        self.off += size
        return value

    def u8(self, what: str = "short_stub") -> int:
        return self._take("B", 1, what)

    def u16(self, what: str = "short_stub") -> int:
        return self._take("H", 2, what)

    def u32(self, what: str = "short_stub") -> int:
        return self._take("I", 4, what)

    def u64(self, what: str = "short_stub") -> int:
        return self._take("Q", 8, what)

    def count(self, what: str = "short_stub") -> int:
        """A conformance, offset or actual count: u32 in NDR, u64 in NDR64."""
        return self.u64(what) if self.ndr64 else self.u32(what)

    def pointer(self, what: str = "short_stub") -> int:
        """A referent id (0 is a null pointer)."""
        return self.u64(what) if self.ndr64 else self.u32(what)

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
