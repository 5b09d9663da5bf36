"""Declarative NDR types: an operation's parameters written as data and read with `NdrReader`.

[C706] 14 lays out a stub as each parameter in turn; within a parameter, the fixed ("scalar") part
of every constructed type first, then the data its embedded pointers point to, in the order the
pointers appeared, each pointee's own pointees right after it ([C706] 14.3.12.1 "deferral",
the order MIDL and Samba's pidl produce). A pointer's reader therefore only reads the referent id,
leaves a placeholder in its container's slot and queues its pointee; a parameter's reader drains the
queue after its scalars, each pointee filling its slot. A top-level [unique] pointer
parameter is the same thing: referent id, then its pointee. A top-level [ref] pointer has no wire
form: declare its pointee directly. Values come out as plain Python (int, str, list, dict, None),
ready for JSON.

Alignment: a constructed type aligns to its largest member ([C706] 14.2.2); NDR64 widens pointers,
counts and enums ([MS-RPCE] 2.2.5.3). Unions are non-encapsulated: discriminant, then the arm.

Types are declared once and read millions of times, so each compiles, the first time a stub meets
it, into closures per byte order and NDR version (`NdrType.reader`, `store`, `param`) with its
alignment, `struct` formats, members and arms resolved; the reads are `NdrReader`'s bounded ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from analyzer.dcerpc.ndr import SCALARS, NdrReader, decode_text
from analyzer.dcerpc.wire import Malformed

# The deferred pointees of a parameter, in wire order: (how to read and store one, where, key).
Queue = list[tuple[Callable[..., None], Any, Any]]
# A compiled reader: consumes a type's scalar part and queues its pointees; returns its value.
Reader = Callable[[NdrReader, Queue], Any]
# A compiled pointer (or pointee) reader: reads into `into[key]` (a dict, a list or a box).
Store = Callable[[NdrReader, Queue, Any, Any], None]
# A whole top-level parameter: its scalars, then everything it points to.
Param = Callable[[NdrReader], Any]


def counter(little: bool, ndr64: bool) -> Callable[..., int]:
    """Counts and referent ids: u32 in NDR, u64 in NDR64 ([MS-RPCE] 2.2.5.3)."""
    return SCALARS["Q" if ndr64 else "I", little]


class NdrType:
    """One NDR type. Declared once, read per call by readers compiled for each byte order and
    NDR version (`reader`, `store`, `param`): the type tree, alignments and `struct` formats are
    resolved when a stub first meets the type, not at every call."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, bool, bool], Any] = {}

    def align(self, ndr64: bool) -> int:
        return 1

    def pointers(self) -> bool:
        """Whether a value of this type may hold declared pointers (pointees queued and read after
        its scalars, into the value's own slots)."""
        return False

    def compile(self, little: bool, ndr64: bool) -> Reader:
        """Build the reader of this type's value (its pointees queued)."""
        raise NotImplementedError

    def compile_store(self, little: bool, ndr64: bool) -> Store:
        read = self.reader(little, ndr64)

        def store(r: NdrReader, q: Queue, into: Any, key: Any) -> None:
            into[key] = read(r, q)

        return store

    def _cached(self, kind: str, little: bool, ndr64: bool, make: Callable[[bool, bool], Any]) -> Any:
        fn = self._compiled.get((kind, little, ndr64))
        if fn is None:
            fn = self._compiled[kind, little, ndr64] = make(little, ndr64)
        return fn

    def reader(self, little: bool, ndr64: bool) -> Reader:
        r: Reader = self._cached("read", little, ndr64, self.compile)
        return r

    def store(self, little: bool, ndr64: bool) -> Store:
        """Read a value into `into[key]`; a pointer leaves a placeholder there and queues its pointee."""
        s: Store = self._cached("store", little, ndr64, self.compile_store)
        return s

    def param(self, little: bool, ndr64: bool) -> Param:
        p: Param = self._cached("param", little, ndr64, self._compile_param)
        return p

    def _compile_param(self, little: bool, ndr64: bool) -> Param:
        if not self.pointers():  # no slot to fill in: the value as read
            read = self.reader(little, ndr64)

            def value(r: NdrReader) -> Any:
                q: Queue = []
                v = read(r, q)
                if q:  # a `Custom` reader may still have queued something
                    drain(r, q)
                return unbox(v) if r.boxed else v

            return value
        store = self.store(little, ndr64)

        def param(r: NdrReader) -> Any:
            q: Queue = []
            holder: list[Any] = [None]
            store(r, q, holder, 0)
            if q:
                drain(r, q)
            return unbox(holder[0]) if r.boxed else holder[0]

        return param


class _Box:
    """A full pointer's referent ([C706] 14.3.12.3), shared by every pointer with its referent
    id, filled in when the deferred data is read; `unbox` replaces it by its value."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Any = None

    def __setitem__(self, _key: Any, value: Any) -> None:
        self.value = value


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
    """Read the queued pointees in order, each one's own pointees right after it ([C706] 14.3.12.1)."""
    for store, into, key in q:
        r.enter()
        sub: Queue = []
        store(r, sub, into, key)
        if sub:
            drain(r, sub)
        r.leave()


def read_param(r: NdrReader, t: NdrType) -> Any:
    """One top-level parameter: its scalars, then everything it points to."""
    return t.param(r.little, r.ndr64)(r)


def _slot(t: NdrType, little: bool, ndr64: bool) -> tuple[Reader | None, Store | None]:
    """How a container reads one member: by value, or (a pointer) stored in place, so the
    pointee fills the container's own slot when it is read and no box is left to undo."""
    if isinstance(t, Ptr):
        return None, t.store(little, ndr64)
    return t.reader(little, ndr64), None


def _skip(fn: Callable[..., Any]) -> Reader:
    """A reader that calls `fn(r)` (the reader's own method) and ignores the queue."""

    def read(r: NdrReader, q: Queue) -> Any:
        return fn(r)

    return read


class Integer(NdrType):
    """An integer type: its compiled reader is an `analyzer.dcerpc.ndr.scalar`, which reads a
    top-level parameter as it is (no queue, nothing to drain)."""

    def _compile_param(self, little: bool, ndr64: bool) -> Param:
        return cast(Param, self.reader(little, ndr64))  # a scalar: (reader) alone reads it


class Int(Integer):
    """A fixed-size integer: u8, u16, u32, i32, u64 (hyper)."""

    def __init__(self, size: int, signed: bool = False) -> None:
        super().__init__()
        self.size = size
        self.signed = signed

    def align(self, ndr64: bool) -> int:
        return self.size

    def compile(self, little: bool, ndr64: bool) -> Reader:
        fmt = {1: "B", 2: "H", 8: "Q"}.get(self.size, "i" if self.signed else "I")
        return SCALARS[fmt, little]  # takes (reader, queue) as well as (reader)


class Enum(Integer):
    """A C enum: 16 bits in NDR 2.0, 32 in NDR64."""

    def align(self, ndr64: bool) -> int:
        return 4 if ndr64 else 2

    def compile(self, little: bool, ndr64: bool) -> Reader:
        return SCALARS["I" if ndr64 else "H", little]


class Guid(NdrType):
    """GUID / UUID ([MS-DTYP] 2.3.4): text."""

    def align(self, ndr64: bool) -> int:
        return 4

    def compile(self, little: bool, ndr64: bool) -> Reader:
        return _skip(NdrReader.uuid)


class Handle(NdrType):
    """A context handle ([C706] ndr_context_handle, 20 bytes): hex text, as a key for tracking."""

    def align(self, ndr64: bool) -> int:
        return 4

    def compile(self, little: bool, ndr64: bool) -> Reader:
        def read(r: NdrReader, q: Queue) -> Any:
            return r.context_handle().hex()

        return read


class Bytes(NdrType):
    """A fixed array of bytes (e.g. NETLOGON_CREDENTIAL, 8 bytes): hex text."""

    def __init__(self, n: int, align: int = 1) -> None:
        super().__init__()
        self.n = n
        self._align = align

    def align(self, ndr64: bool) -> int:
        return self._align

    def compile(self, little: bool, ndr64: bool) -> Reader:
        n, align = self.n, self._align

        def read(r: NdrReader, q: Queue) -> Any:
            r.off += -r.off % align
            return r.raw(n).hex()

        return read


class String(NdrType):
    """A conformant varying string ([string] wchar_t* or char* pointee, [C706] 14.3.4.2)."""

    def __init__(self, wide: bool = True) -> None:
        super().__init__()
        self.wide = wide

    def align(self, ndr64: bool) -> int:
        return 8 if ndr64 else 4

    def compile(self, little: bool, ndr64: bool) -> Reader:
        count, wide = counter(little, ndr64), self.wide
        size = 2 if wide else 1

        def read(r: NdrReader, q: Queue) -> Any:  # NdrReader.string, its steps inlined
            count(r, "short_string")  # maximum count
            count(r, "short_string")  # offset: the characters before it are absent
            actual = count(r, "short_string")
            r.budget(actual, size, "short_string")
            if actual > r.max_string_chars:
                raise Malformed("cap_ndr_string_chars", f"string of {actual} characters")
            return decode_text(r.raw(actual * size, "short_string"), wide, little)

        return read


class Ptr(NdrType):
    """An embedded unique or full pointer (or [ref] inside a structure): referent id, pointee
    deferred. A full pointer whose referent id was seen before points at the same data and the
    data is not repeated ([C706] 14.3.12.3)."""

    def __init__(self, target: NdrType, full: bool = False) -> None:
        super().__init__()
        self.target = target
        self.full = full

    def align(self, ndr64: bool) -> int:
        return 8 if ndr64 else 4

    def pointers(self) -> bool:
        return True

    def compile(self, little: bool, ndr64: bool) -> Reader:
        """By value (only where no container holds the pointer): a box, unboxed at the end."""
        store = self.store(little, ndr64)

        def read(r: NdrReader, q: Queue) -> Any:
            box = _Box()
            store(r, q, box, None)
            r.boxed = True
            return box

        return read

    def compile_store(self, little: bool, ndr64: bool) -> Store:
        pointer, target = counter(little, ndr64), self.target.store(little, ndr64)
        if self.full:
            return self._full(pointer, target)

        def store(r: NdrReader, q: Queue, into: Any, key: Any) -> None:
            into[key] = None  # the slot keeps its place; a non-null pointee fills it when read
            if pointer(r):
                q.append((target, into, key))

        return store

    @staticmethod
    def _full(pointer: Callable[..., int], target: Store) -> Store:
        def store(r: NdrReader, q: Queue, into: Any, key: Any) -> None:
            ref = pointer(r)
            if ref == 0:
                into[key] = None
                return
            box = r.full_refs.get(ref)
            if box is None:
                box = r.full_refs[ref] = _Box()
                q.append((target, box, None))
            into[key] = box
            r.boxed = True

        return store


class Struct(NdrType):
    """A structure: fields in order, aligned to its largest member. A last field that is a
    conformant array has its maximum count hoisted in front of the structure ([C706] 14.3.7.1)."""

    def __init__(self, *fields: tuple[str, NdrType]) -> None:
        super().__init__()
        self.fields = fields
        last = fields[-1][1] if fields else None
        self.conformant = isinstance(last, Array) and last.conformant

    def align(self, ndr64: bool) -> int:
        a = max((t.align(ndr64) for _n, t in self.fields), default=1)
        return max(a, 8 if ndr64 else 4) if self.conformant else a

    def pointers(self) -> bool:
        return any(t.pointers() for _n, t in self.fields)

    def compile(self, little: bool, ndr64: bool) -> Reader:
        align, count = self.align(ndr64), counter(little, ndr64)
        fixed = self.fields[:-1] if self.conformant else self.fields
        members = tuple((name, *_slot(t, little, ndr64)) for name, t in fixed)
        last_name, last = self.fields[-1] if self.conformant else ("", None)
        elements = last.compile_elements(little, ndr64) if isinstance(last, Array) else None

        def read(r: NdrReader, q: Queue) -> Any:
            hoisted = count(r) if elements is not None else 0
            r.off += -r.off % align
            out: dict[str, Any] = {}
            for name, value, store in members:
                if store is None:
                    out[name] = value(r, q)  # type: ignore[misc]  # one of the two is set
                else:
                    store(r, q, out, name)
            if elements is not None:
                out[last_name] = elements(r, q, hoisted)
            if ndr64:
                r.off += -r.off % align  # NDR64 pads a structure to its alignment ([MS-RPCE] 2.2.5.3.4.1)
            return out

        return read


class Array(NdrType):
    """An array of `element`: conformant (maximum count on the wire), varying (offset and actual
    count), both (conformant varying), or fixed (`fixed` elements, nothing on the wire)."""

    def __init__(self, element: NdrType, conformant: bool = True, varying: bool = False, fixed: int = 0) -> None:
        super().__init__()
        self.element = element
        self.conformant = conformant and not fixed
        self.varying = varying
        self.fixed = fixed
        self.octets = element is U8  # an array of bytes comes out as hex text

    def align(self, ndr64: bool) -> int:
        a = self.element.align(ndr64)
        return max(a, 8 if ndr64 else 4) if self.conformant or self.varying else a

    def pointers(self) -> bool:
        return self.element.pointers()

    def compile(self, little: bool, ndr64: bool) -> Reader:
        elements, fixed = self.compile_elements(little, ndr64), self.fixed
        if not self.conformant:
            return lambda r, q: elements(r, q, fixed)
        count = counter(little, ndr64)
        return lambda r, q: elements(r, q, count(r, "short_array"))

    def compile_elements(self, little: bool, ndr64: bool) -> Callable[[NdrReader, Queue, int], Any]:
        """The elements once their maximum count `n` is known (read here, or hoisted by a structure)."""
        varying, octets, align = self.varying, self.octets, self.element.align(ndr64)
        value, store = _slot(self.element, little, ndr64)

        def elements(r: NdrReader, q: Queue, n: int) -> Any:
            if varying:
                n = r.varying(1, "short_array")
            if octets:
                return r.raw(n, "short_array").hex()
            r.budget(n, 1, "bad_array_count")
            r.off += -r.off % align
            if store is None:
                return [value(r, q) for _ in range(n)]  # type: ignore[misc]  # one of the two is set
            out: list[Any] = [None] * n  # budgeted: n fits in the stub
            for i in range(n):
                store(r, q, out, i)
            return out

        return elements


class Union(NdrType):
    """A non-encapsulated union: its discriminant (`switch`, an integer type), then the arm,
    aligned to that arm's type.
    The value is {"level": discriminant, **arm fields} when the arm is a structure, else
    {"level": d, "value": v}. An arm that is not declared stops the decoding (a `Malformed`)."""

    def __init__(self, switch: NdrType, arms: dict[int, NdrType | None], default: NdrType | None = None) -> None:
        super().__init__()
        self.switch = switch
        self.arms = arms
        self.default = default

    def align(self, ndr64: bool) -> int:
        return max(self.switch.align(ndr64), self._arm_align(ndr64))

    def _arm_align(self, ndr64: bool) -> int:
        return max([1, *(t.align(ndr64) for t in self.arms.values() if t is not None)])

    def pointers(self) -> bool:
        return any(t.pointers() for t in (*self.arms.values(), self.default) if t is not None)

    def compile(self, little: bool, ndr64: bool) -> Reader:
        def arm(t: NdrType | None) -> tuple[int, Reader | None, Store | None] | None:
            return None if t is None else (t.align(ndr64), *_slot(t, little, ndr64))

        switch, align = self.switch.reader(little, ndr64), self.align(True)
        arms = {level: arm(t) for level, t in self.arms.items()}
        default = arm(self.default)

        def read(r: NdrReader, q: Queue) -> Any:
            if ndr64:  # NDR64 aligns the union as a whole, discriminant included ([MS-RPCE] 2.2.5.3.4.3)
                r.off += -r.off % align
            level = switch(r, q)
            if level in arms:
                chosen = arms[level]
            elif default is not None:
                chosen = default
            else:
                raise Malformed("unknown_union_arm", f"no arm for discriminant {level}")
            if chosen is None:
                return {"level": level}
            a, value, store = chosen
            r.off += -r.off % a  # the chosen arm's own alignment (what MIDL sends, e.g. wireVARIANT)
            if store is None:
                return {"level": level, "value": value(r, q)}  # type: ignore[misc]  # one of the two is set
            out = {"level": level}
            store(r, q, out, "value")
            return out

        return read


class Custom(NdrType):
    """A type read by a function (for wire forms that are not plain NDR, e.g. RPC_SID text)."""

    def __init__(self, fn: Callable[[NdrReader, Queue], Any], align: int = 4) -> None:
        super().__init__()
        self.fn = fn
        self._align = align

    def align(self, ndr64: bool) -> int:
        return self._align

    def compile(self, little: bool, ndr64: bool) -> Reader:
        return self.fn


U8 = Int(1)
U16 = Int(2)
U32 = Int(4)
I32 = Int(4, signed=True)
U64 = Int(8)
GUID = Guid()
HANDLE = Handle()
WSTR = String(True)
ASTR = String(False)
BYTES = Array(U8)  # [size_is(n)] byte[]: hex text
