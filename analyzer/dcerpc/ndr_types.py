"""Declarative NDR types: an operation's parameters written as data and read with `NdrReader`.

[C706] 14 lays out a stub as each parameter in turn; within a parameter, the fixed ("scalar") part
of every constructed type first, then the data its embedded pointers point to, in the order the
pointers appeared, each pointee's own pointees right after it ([C706] 14.3.12.1 "deferral",
the order MIDL and Samba's pidl produce). `Ptr.read` therefore only reads the referent id and queues
a thunk; `read_param` drains the queue after the parameter's scalars. A top-level [unique] pointer
parameter is the same thing: referent id, then its pointee. A top-level [ref] pointer has no wire
form: declare its pointee directly. Values come out as plain Python (int, str, list, dict, None),
ready for JSON.

Alignment: a constructed type aligns to its largest member ([C706] 14.2.2); NDR64 widens pointers,
counts and enums ([MS-RPCE] 2.2.5.3). Unions are non-encapsulated: discriminant, then the arm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from analyzer.dcerpc.ndr import NdrReader
from analyzer.dcerpc.wire import Malformed

Queue = list[Callable[[], None]]


class NdrType:
    """One NDR type. `read` consumes its scalar part and queues its pointees on `q`."""

    def align(self, ndr64: bool) -> int:
        return 1

    def read(self, r: NdrReader, q: Queue) -> Any:
        raise NotImplementedError


class _Box:
    """A pointer's referent, filled in when the deferred data is read."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Any = None


def unbox(v: Any) -> Any:
    """Replace the filled boxes by their values (iteratively bounded by the reader's limits)."""
    if isinstance(v, _Box):
        return unbox(v.value)
    if isinstance(v, dict):
        return {k: unbox(x) for k, x in v.items()}
    if isinstance(v, list):
        return [unbox(x) for x in v]
    return v


def drain(r: NdrReader, q: Queue) -> None:
    """Read the queued pointees in order (each thunk reads its own pointees before returning)."""
    for thunk in q:
        thunk()
    q.clear()


def read_param(r: NdrReader, t: NdrType) -> Any:
    """One top-level parameter: its scalars, then everything it points to."""
    q: Queue = []
    v = t.read(r, q)
    drain(r, q)
    return unbox(v)


class Int(NdrType):
    """A fixed-size integer: u8, u16, u32, i32, u64 (hyper)."""

    def __init__(self, size: int, signed: bool = False) -> None:
        self.size = size
        self.signed = signed

    def align(self, ndr64: bool) -> int:
        return self.size

    def read(self, r: NdrReader, q: Queue) -> Any:
        if self.size == 1:
            return r.u8()
        if self.size == 2:
            return r.u16()
        if self.size == 8:
            return r.u64()
        return r.i32() if self.signed else r.u32()


class Enum(NdrType):
    """A C enum: 16 bits in NDR 2.0, 32 in NDR64."""

    def align(self, ndr64: bool) -> int:
        return 4 if ndr64 else 2

    def read(self, r: NdrReader, q: Queue) -> Any:
        return r.enum()


class Guid(NdrType):
    """GUID / UUID ([MS-DTYP] 2.3.4): text."""

    def align(self, ndr64: bool) -> int:
        return 4

    def read(self, r: NdrReader, q: Queue) -> Any:
        return r.uuid()


class Handle(NdrType):
    """A context handle ([C706] ndr_context_handle, 20 bytes): hex text, as a key for tracking."""

    def align(self, ndr64: bool) -> int:
        return 4

    def read(self, r: NdrReader, q: Queue) -> Any:
        return r.context_handle().hex()


class Bytes(NdrType):
    """A fixed array of bytes (e.g. NETLOGON_CREDENTIAL, 8 bytes): hex text."""

    def __init__(self, n: int, align: int = 1) -> None:
        self.n = n
        self._align = align

    def align(self, ndr64: bool) -> int:
        return self._align

    def read(self, r: NdrReader, q: Queue) -> Any:
        r.align(self._align)
        return r.raw(self.n).hex()


class String(NdrType):
    """A conformant varying string ([string] wchar_t* or char* pointee)."""

    def __init__(self, wide: bool = True) -> None:
        self.wide = wide

    def align(self, ndr64: bool) -> int:
        return 8 if ndr64 else 4

    def read(self, r: NdrReader, q: Queue) -> Any:
        return r.string(self.wide)


class Ptr(NdrType):
    """An embedded unique or full pointer (or [ref] inside a structure): referent id, pointee
    deferred. A full pointer whose referent id was seen before points at the same data and the
    data is not repeated ([C706] 14.3.12.3)."""

    def __init__(self, target: NdrType, full: bool = False) -> None:
        self.target = target
        self.full = full

    def align(self, ndr64: bool) -> int:
        return 8 if ndr64 else 4

    def read(self, r: NdrReader, q: Queue) -> Any:
        ref = r.pointer()
        if ref == 0:
            return None
        if self.full and ref in r.full_refs:
            return r.full_refs[ref]
        box = _Box()
        if self.full:
            r.full_refs[ref] = box
        target = self.target

        def pointee() -> None:
            r.enter()
            sub: Queue = []
            box.value = target.read(r, sub)
            drain(r, sub)
            r.leave()

        q.append(pointee)
        return box


class Struct(NdrType):
    """A structure: fields in order, aligned to its largest member. A last field that is a
    conformant array has its maximum count hoisted in front of the structure ([C706] 14.3.7.1)."""

    def __init__(self, *fields: tuple[str, NdrType]) -> None:
        self.fields = fields
        last = fields[-1][1] if fields else None
        self.conformant = isinstance(last, Array) and last.conformant

    def align(self, ndr64: bool) -> int:
        a = max((t.align(ndr64) for _n, t in self.fields), default=1)
        return max(a, 8 if ndr64 else 4) if self.conformant else a

    def read(self, r: NdrReader, q: Queue) -> Any:
        hoisted = r.count() if self.conformant else None
        r.align(self.align(r.ndr64))
        out: dict[str, Any] = {}
        for i, (name, t) in enumerate(self.fields):
            if hoisted is not None and i == len(self.fields) - 1:
                assert isinstance(t, Array)
                out[name] = t.elements(r, q, hoisted)
            else:
                out[name] = t.read(r, q)
        if r.ndr64:
            r.align(self.align(True))  # NDR64 pads a structure to its alignment ([MS-RPCE] 2.2.5.3.4.1)
        return out


class Array(NdrType):
    """An array of `element`: conformant (maximum count on the wire), varying (offset and actual
    count), both (conformant varying), or fixed (`fixed` elements, nothing on the wire)."""

    def __init__(self, element: NdrType, conformant: bool = True, varying: bool = False, fixed: int = 0) -> None:
        self.element = element
        self.conformant = conformant and not fixed
        self.varying = varying
        self.fixed = fixed
        self.octets = element is U8  # an array of bytes comes out as hex text

    def align(self, ndr64: bool) -> int:
        a = self.element.align(ndr64)
        return max(a, 8 if ndr64 else 4) if self.conformant or self.varying else a

    def read(self, r: NdrReader, q: Queue) -> Any:
        n = self.fixed
        if self.conformant:
            n = r.count("short_array")
        return self.elements(r, q, n)

    def elements(self, r: NdrReader, q: Queue, n: int) -> Any:
        if self.varying:
            n = r.varying(1, "short_array")
        if self.octets:
            return r.raw(n, "short_array").hex()
        r.budget(n, 1, "bad_array_count")
        r.align(self.element.align(r.ndr64))
        return [self.element.read(r, q) for _ in range(n)]


class Union(NdrType):
    """A non-encapsulated union: its discriminant (`switch`, an integer type), then the arm,
    aligned to that arm's type.
    The value is {"level": discriminant, **arm fields} when the arm is a structure, else
    {"level": d, "value": v}. An arm that is not declared stops the decoding (a `Malformed`)."""

    def __init__(self, switch: NdrType, arms: dict[int, NdrType | None], default: NdrType | None = None) -> None:
        self.switch = switch
        self.arms = arms
        self.default = default

    def align(self, ndr64: bool) -> int:
        return max(self.switch.align(ndr64), self._arm_align(ndr64))

    def _arm_align(self, ndr64: bool) -> int:
        return max([1, *(t.align(ndr64) for t in self.arms.values() if t is not None)])

    def read(self, r: NdrReader, q: Queue) -> Any:
        if r.ndr64:  # NDR64 aligns the union as a whole, discriminant included ([MS-RPCE] 2.2.5.3.4.3)
            r.align(self.align(True))
        level = self.switch.read(r, q)
        if level in self.arms:
            arm = self.arms[level]
        elif self.default is not None:
            arm = self.default
        else:
            raise Malformed("unknown_union_arm", f"no arm for discriminant {level}")
        if arm is None:
            return {"level": level}
        r.align(arm.align(r.ndr64))  # the chosen arm's own alignment (what MIDL sends, e.g. wireVARIANT)
        v = arm.read(r, q)
        return {"level": level, "value": v}


class Custom(NdrType):
    """A type read by a function (for wire forms that are not plain NDR, e.g. RPC_SID text)."""

    def __init__(self, fn: Callable[[NdrReader, Queue], Any], align: int = 4) -> None:
        self.fn = fn
        self._align = align

    def align(self, ndr64: bool) -> int:
        return self._align

    def read(self, r: NdrReader, q: Queue) -> Any:
        return self.fn(r, q)


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


U8 = Int(1)
U16 = Int(2)
U32 = Int(4)
I32 = Int(4, signed=True)
U64 = Int(8)
GUID = Guid()
HANDLE = Handle()
WSTR = String(True)
ASTR = String(False)
SID = Custom(_sid, 4)
# RPC_UNICODE_STRING ([MS-DTYP] 2.3.10): Length, MaximumLength, pointer to the characters.
UNICODE_STRING = Struct(("length", U16), ("maximum_length", U16), ("buffer", Ptr(Custom(_unicode_string_buffer))))


def unique(t: NdrType) -> Ptr:
    """A [unique] pointer: a top-level parameter or an embedded field."""
    return Ptr(t)


def ustring_text(v: Any) -> Any:
    """The text of a decoded RPC_UNICODE_STRING (a dict), else the value itself."""
    if isinstance(v, dict) and "buffer" in v:
        return v["buffer"]
    return v


def read_params(r: NdrReader, params: Sequence[tuple[str, NdrType]], out: dict[str, Any]) -> None:
    """Read parameters in order into `out`; on `Malformed` what was read so far stays in `out`."""
    for name, t in params:
        out[name] = read_param(r, t)


class _IntPtr(NdrType):
    """__int3264 (DWORD_PTR, ULONG_PTR): 32 bits in NDR 2.0, 64 in NDR64 ([MS-RPCE] 2.2.5.3.4.1)."""

    def align(self, ndr64: bool) -> int:
        return 8 if ndr64 else 4

    def read(self, r: NdrReader, q: Queue) -> Any:
        return r.count()


INT_PTR = _IntPtr()
BYTES = Array(U8)  # [size_is(n)] byte[]: hex text
