"""The well-known types of [MS-DTYP] the stub decoders share (RPC_SID, RPC_UNICODE_STRING), and
__int3264 ([MS-RPCE] 2.2.5.3.4.1), written with the declarative types of `analyzer.dcerpc.ndr_types`."""

from __future__ import annotations

from typing import Any

from analyzer.dcerpc.ndr import NdrReader
from analyzer.dcerpc.ndr_types import U16, Custom, Integer, Ptr, Queue, Reader, Struct, counter


def _sid(r: NdrReader, q: Queue) -> str:
    """RPC_SID ([MS-DTYP] 2.4.2.3): a conformant structure, shown as S-1-5-21-... text."""
    _count = r.count("short_sid")
    revision = r.u8("short_sid")
    n = r.u8("short_sid")
    authority = int.from_bytes(r.raw(6, "short_sid"), "big")
    r.budget(n, 4, "bad_sid")
    subs = [r.u32("short_sid") for _ in range(n)]
    return "-".join(["S", str(revision), str(authority), *map(str, subs)])


def _unicode_string_buffer(r: NdrReader, q: Queue) -> str:
    """The [size_is(MaximumLength/2), length_is(Length/2)] WCHAR buffer of RPC_UNICODE_STRING."""
    _max = r.count("short_string")
    return r.varying_string(True)


SID = Custom(_sid, 4)
# RPC_UNICODE_STRING ([MS-DTYP] 2.3.10): Length, MaximumLength, pointer to the characters.
UNICODE_STRING = Struct(("length", U16), ("maximum_length", U16), ("buffer", Ptr(Custom(_unicode_string_buffer))))


def ustring_text(v: Any) -> Any:
    """The text of a decoded RPC_UNICODE_STRING (a dict), else the value itself."""
    if isinstance(v, dict) and "buffer" in v:
        return v["buffer"]
    return v


class _IntPtr(Integer):
    """__int3264 (DWORD_PTR, ULONG_PTR): 32 bits in NDR 2.0, 64 in NDR64 ([MS-RPCE] 2.2.5.3.4.1)."""

    def align(self, ndr64: bool) -> int:
        return 8 if ndr64 else 4

    def compile(self, little: bool, ndr64: bool) -> Reader:
        return counter(little, ndr64)  # takes (reader, queue) as well as (reader)


INT_PTR = _IntPtr()
