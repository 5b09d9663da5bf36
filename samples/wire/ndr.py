"""NDR 1.0 stub writer ([C706] 14)."""

from __future__ import annotations

import struct

from .ids import uuid_bytes


class Ndr:
    """NDR 1.0 stub writer ([C706] 14.2-14.3): primitives aligned to their size, in the drep byte order."""

    def __init__(self, le: bool = True, ref: int = 0x00020000, ref_step: int = 4) -> None:
        self.e = "<" if le else ">"
        self.le = le
        self.b = bytearray()
        self.ref, self.ref_step = ref, ref_step

    def align(self, n: int) -> Ndr:
        self.b += b"\0" * ((-len(self.b)) % n)
        return self

    def u8(self, v: int) -> Ndr:
        self.b += struct.pack("B", v)
        return self

    def u16(self, v: int) -> Ndr:
        self.align(2).b += struct.pack(self.e + "H", v)
        return self

    def u32(self, v: int) -> Ndr:
        self.align(4).b += struct.pack(self.e + "I", v)
        return self

    def u64(self, v: int) -> Ndr:
        self.align(8).b += struct.pack(self.e + "Q", v)
        return self

    def raw(self, data: bytes) -> Ndr:
        self.b += data
        return self

    def uuid(self, u: str) -> Ndr:
        self.align(4).b += uuid_bytes(u, self.le)
        return self

    def ptr(self, null: bool = False) -> Ndr:
        """A unique/full pointer's referent id (a Windows client numbers them 0x00020000, 0x00020004, ...;
        a Windows server numbers the full pointers of a response 1, 2, 3, ...)."""
        if null:
            return self.u32(0)
        self.u32(self.ref)
        self.ref += self.ref_step
        return self

    def handle(self, u: str, attr: int = 0) -> Ndr:
        """A context handle ([C706] Appendix N, ndr_context_handle): attributes u32 + uuid."""
        return self.u32(attr).uuid(u)

    def wstr(self, s: str) -> Ndr:
        """A conformant varying UTF-16 string with its terminating NUL ([string] wchar_t *)."""
        n = len(s) + 1
        self.u32(n).u32(0).u32(n)
        self.b += (s + "\0").encode("utf-16-le" if self.le else "utf-16-be")
        return self

    def cstr(self, s: str) -> Ndr:
        n = len(s) + 1
        self.u32(n).u32(0).u32(n)
        self.b += s.encode("ascii") + b"\0"
        return self

    def bytes(self) -> bytes:
        return bytes(self.b)
