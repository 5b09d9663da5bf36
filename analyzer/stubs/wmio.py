"""The WMI object encoding ([MS-WMIO] 2.2): the class name and property values of an instance.

ExecMethod's in-parameters and PutInstance's object travel as an OBJREF_CUSTOM whose object data
is an EncodingUnit: signature 0x12345678, length, ObjectBlock. An instance's ObjectBlock holds its
class (ClassPart: header, derivation list, qualifiers, property lookup table, default values, class
heap) and then its own values (NdTable and ValueTable, qualifiers, instance heap). Strings are
HeapRefs to EncodedStrings (a flag byte: 0 for 8-bit, 1 for UTF-16, then the NUL-ended text).
Only scalar values are read (strings, integers, booleans); arrays and embedded objects are left out.
Everything is little-endian ([MS-WMIO] 2.2: "all integers are little-endian").
"""

from __future__ import annotations

import struct
from typing import Any

from analyzer.dcerpc.wire import Malformed

_SIGNATURE = 0x12345678
_MEOW = 0x574F454D
_CIM_CLASS = 0x01
_DECORATION = 0x04
_ARRAY = 0x2000
_INHERITED = 0x4000
_MAX_PROPERTIES = 1024
_MAX_TEXT = 1 << 15
# CIM types ([MS-WMIO] 2.2.82) -> (struct format of the ValueTable entry, is it a heap reference)
_SCALARS: dict[int, tuple[str, bool]] = {
    16: ("<b", False),  # sint8
    17: ("<B", False),  # uint8
    2: ("<h", False),  # sint16
    18: ("<H", False),  # uint16
    3: ("<i", False),  # sint32
    19: ("<I", False),  # uint32
    20: ("<q", False),  # sint64
    21: ("<Q", False),  # uint64
    11: ("<H", False),  # boolean
    103: ("<H", False),  # char16
    8: ("<I", True),  # string
    101: ("<I", True),  # datetime
    102: ("<I", True),  # reference
}


class _Cursor:
    __slots__ = ("data", "off")

    def __init__(self, data: bytes, off: int = 0) -> None:
        self.data = data
        self.off = off

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.off < 0 or self.off + size > len(self.data):
            raise Malformed("short_wmio", f"need {size} bytes at {self.off} of {len(self.data)}")
        value: int = struct.unpack_from(fmt, self.data, self.off)[0]
        self.off += size
        return value

    def raw(self, n: int) -> bytes:
        if n < 0 or self.off + n > len(self.data):
            raise Malformed("short_wmio", f"need {n} bytes at {self.off} of {len(self.data)}")
        out = self.data[self.off : self.off + n]
        self.off += n
        return out

    def skip_sized(self) -> None:
        """A structure that starts with its own length (a u32 counting itself)."""
        n = self.take("<I")
        self.raw(n - 4)

    def encoded_string(self) -> str:
        """EncodedString ([MS-WMIO] 2.2.78): flag, then 8-bit or UTF-16 text up to its NUL;
        the cursor moves past the NUL (to the end when there is none)."""
        flag = self.take("<B")
        end = len(self.data)
        if flag == 0:
            stop = self.data.find(b"\0", self.off, min(end, self.off + _MAX_TEXT))
            stop = stop if stop >= 0 else end
            text = self.data[self.off : stop].decode("latin-1")
            self.off = stop + 1
        else:
            i = self.off
            limit = min(end - 1, self.off + 2 * _MAX_TEXT)
            while i < limit and self.data[i : i + 2] != b"\0\0":
                i += 2
            text = self.data[self.off : i].decode("utf-16-le", errors="replace")
            self.off = i + 2
        return text


def _heap(c: _Cursor) -> bytes:
    n = c.take("<I") & 0x7FFFFFFF
    return c.raw(n)


def _string_at(heap: bytes, ref: int) -> str | None:
    if ref & 0x80000000:
        return None  # a dictionary reference ([MS-WMIO] 2.2.22): a well-known qualifier name
    if ref >= len(heap):
        raise Malformed("bad_wmio_heap_ref", f"heap reference {ref} beyond {len(heap)} bytes")
    return _Cursor(heap, ref).encoded_string()


def instance_values(objref: bytes) -> dict[str, Any] | None:
    """{"class": name, "values": {property: value}} of the instance in an IWbemClassObject
    OBJREF_CUSTOM; None when the object is a class or the blob is no such OBJREF."""
    c = _Cursor(objref)
    if c.take("<I") != _MEOW or c.take("<I") != 4:
        return None
    c.raw(32)  # iid, clsid (CLSID_WbemClassObject)
    c.take("<I")  # cbExtension
    c.take("<I")  # size
    if c.take("<I") != _SIGNATURE:
        return None
    c.take("<I")  # ObjectEncodingLength
    flags = c.take("<B")
    if flags & _DECORATION:  # Decoration: server name, namespace name ([MS-WMIO] 2.2.7)
        c.encoded_string()
        c.encoded_string()
    if flags & _CIM_CLASS:
        return None
    return _instance(c)


def _instance(c: _Cursor) -> dict[str, Any]:
    start = c.off
    class_length = c.take("<I")
    c.take("<B")
    class_name_ref = c.take("<I")
    ndvt_length = c.take("<I")
    c.skip_sized()  # DerivationList
    c.skip_sized()  # ClassQualifierSet
    count = c.take("<I")
    if count > _MAX_PROPERTIES:
        raise Malformed("bad_wmio_properties", f"{count} properties")
    lookups = [(c.take("<I"), c.take("<I")) for _ in range(count)]
    c.raw(ndvt_length)  # the class's default values
    class_heap = _heap(c)
    c.off = start + class_length  # the ClassPart ends where its header says
    c.take("<I")  # instance EncodingLength
    c.take("<B")  # InstanceFlags
    c.take("<I")  # InstanceClassName
    ndvt = c.raw(ndvt_length)
    c.skip_sized()  # InstanceQualifierSet's QualifierSet
    if c.take("<B") == 2:  # InstancePropQualifierSet: one qualifier set per property follows
        for _ in range(count):
            c.skip_sized()
    heap = _heap(c)
    values: dict[str, Any] = {}
    nd_size = (count - 1) // 4 + 1 if count else 0
    nd_table, table = ndvt[:nd_size], ndvt[nd_size:]
    for name_ref, info_ref in lookups:
        name = _string_at(class_heap, name_ref)
        info = _Cursor(class_heap, info_ref)
        cim_type = info.take("<I") & ~_INHERITED
        order = info.take("<H")
        offset = info.take("<I")
        if name is None or cim_type & _ARRAY or cim_type not in _SCALARS or order >= 4 * len(nd_table):
            continue
        if nd_table[order // 4] >> (2 * (order % 4)) & 1:
            continue  # NdTable: the value is null (or the class default) ([MS-WMIO] 2.2.26)
        fmt, is_ref = _SCALARS[cim_type]
        v = _Cursor(table, offset).take(fmt)
        if is_ref:
            values[name] = _string_at(heap, v)
        else:
            values[name] = bool(v) if cim_type == 11 else v
    return {"class": _string_at(class_heap, class_name_ref), "values": values}
