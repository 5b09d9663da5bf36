"""The NDR reader and its declarative types ([C706] 14), and the never-raise property of every
declared stub decoder on arbitrary bytes."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import stubs
from analyzer.dcerpc.decoding import Stubs
from analyzer.dcerpc.ndr import NdrReader
from analyzer.dcerpc.ndr_dtyp import SID, UNICODE_STRING
from analyzer.dcerpc.ndr_types import GUID, U16, U32, WSTR, Array, Ptr, Struct, Union, read_param
from analyzer.dcerpc.wire import Malformed
from analyzer.stubs.registry import StubState, safe_text


def wstr(text: str) -> bytes:
    """A conformant varying string as MIDL writes it: max, offset, actual, UTF-16 with its NUL, padded."""
    chars = text.encode("utf-16-le") + b"\0\0"
    n = len(chars) // 2
    out = struct.pack("<III", n, 0, n) + chars
    return out + b"\0" * (-len(out) % 4)


def test_alignment_is_relative_to_the_stub() -> None:
    r = NdrReader(b"\x01\xff\xff\xff\x02\x00\x00\x00")
    assert r.u8() == 1 and r.u32() == 2 and r.off == 8


def test_big_endian_integers_and_uuid() -> None:
    r = NdrReader(bytes.fromhex("00000102") + bytes(range(16)), little=False)
    assert r.u32() == 0x102
    assert r.uuid() == "00010203-0405-0607-0809-0a0b0c0d0e0f"


def test_string_stops_at_nul_and_claims_its_bytes() -> None:
    r = NdrReader(wstr("SDfL") + b"\x07\0\0\0")
    assert r.string() == "SDfL" and r.u32() == 7


def test_counts_beyond_the_stub_are_refused_before_reading() -> None:
    bad = struct.pack("<III", 0x7FFFFFFF, 0, 0x7FFFFFFF) + b"ab"
    with pytest.raises(Malformed):
        NdrReader(bad).string()
    with pytest.raises(Malformed):
        read_param(NdrReader(struct.pack("<I", 1_000_000) + bytes(16)), Array(U32))


def test_element_budget_bounds_total_work() -> None:
    data = struct.pack("<I", 10) + bytes(40)
    r = NdrReader(data, max_elements=5)
    with pytest.raises(Malformed):
        read_param(r, Array(U32))


def test_embedded_pointers_are_deferred_after_the_structure() -> None:
    """[C706] 14.3.12.1: the referents follow the structure's fixed part, in pointer order."""
    t = Struct(("a", Ptr(WSTR)), ("n", U32), ("b", Ptr(WSTR)))
    data = struct.pack("<III", 0x20000, 5, 0x20004) + wstr("first") + wstr("second")
    assert read_param(NdrReader(data), t) == {"a": "first", "n": 5, "b": "second"}


def test_null_unique_pointer_and_full_pointer_reuse() -> None:
    t = Struct(("a", Ptr(U32, full=True)), ("b", Ptr(U32, full=True)), ("c", Ptr(U32)))
    data = struct.pack("<IIII", 0x20000, 0x20000, 0, 42)
    assert read_param(NdrReader(data), t) == {"a": 42, "b": 42, "c": None}


def test_pointer_chains_are_bounded_in_depth() -> None:
    t: Ptr = Ptr(U32)
    for _ in range(40):
        t = Ptr(t)
    data = struct.pack("<I", 0x20000) * 60
    with pytest.raises(Malformed, match="cap_ndr_depth"):
        read_param(NdrReader(data), t)


def test_union_by_discriminant_and_unknown_arm() -> None:
    u = Union(U32, {1: U16, 2: U32})
    assert read_param(NdrReader(struct.pack("<IHxx", 1, 7)), u) == {"level": 1, "value": 7}
    assert read_param(NdrReader(struct.pack("<II", 2, 9)), u) == {"level": 2, "value": 9}
    with pytest.raises(Malformed, match="unknown_union_arm"):
        read_param(NdrReader(struct.pack("<II", 3, 9)), u)


def test_conformant_structure_hoists_its_count() -> None:
    """[C706] 14.3.7.1: a structure ending in a conformant array carries the count in front."""
    t = Struct(("n", U32), ("items", Array(U16)))
    data = struct.pack("<IIHH", 2, 2, 5, 6)
    assert read_param(NdrReader(data), t) == {"n": 2, "items": [5, 6]}


def test_rpc_sid_and_unicode_string() -> None:
    sid = struct.pack("<IBB", 4, 1, 4) + (5).to_bytes(6, "big") + struct.pack("<IIII", 21, 1, 2, 500)
    assert read_param(NdrReader(sid), SID) == "S-1-5-21-1-2-500"
    us = struct.pack("<HHI", 8, 8, 0x20000) + struct.pack("<III", 4, 0, 4) + "krbt".encode("utf-16-le")
    assert read_param(NdrReader(us), UNICODE_STRING)["buffer"] == "krbt"


def test_ndr64_widens_pointers_and_counts() -> None:
    data = struct.pack("<Q", 0x20000) + struct.pack("<QQQ", 3, 0, 3) + "ab\0".encode("utf-16-le")
    assert read_param(NdrReader(data, ndr64=True), Ptr(WSTR)) == "ab"
    assert read_param(NdrReader(bytes(range(16)), ndr64=True), GUID).startswith("03020100")


def test_safe_text_escapes_terminal_and_formula_characters() -> None:
    assert safe_text("\x1b[31mred", 100) == "\\x1b[31mred"
    assert safe_text("=cmd|' /C calc'!A0", 100).startswith("'=")
    assert safe_text("a\u202eb", 100) == "a\\u202eb"
    assert safe_text("x" * 50, 10) == "x" * 10 + "...[+40 chars]"


_OPS = sorted(stubs.OPERATIONS)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    op=st.sampled_from(_OPS),
    req=st.binary(max_size=300),
    resp=st.binary(max_size=300),
    flags=st.integers(0, 7),
)
def test_no_decoder_raises_on_any_bytes(op: tuple[str, int], req: bytes, resp: bytes, flags: int) -> None:
    kept = Stubs(bool(flags & 1), req, not flags & 2, resp, not flags & 4, resp[-4:] or None)
    out = stubs.decode(op[0], op[1], kept, StubState(), strict=True)
    assert out is not None
    for layer, what, _detail in out.violations:
        assert layer in ("stub", "epm") and what.startswith(layer + "_")


@settings(max_examples=300, deadline=None)
@given(cut=st.integers(0, 200), flip=st.integers(0, 200), bit=st.integers(0, 7))
def test_truncated_and_flipped_real_shapes_never_raise(cut: int, flip: int, bit: int) -> None:
    """An RCreateServiceW-shaped stub, truncated and with one bit flipped: a violation at most."""
    stub = bytearray(
        bytes(20)
        + wstr("svc")
        + struct.pack("<II", 0x20000, 0xF01FF)
        + wstr("svc")[: len(wstr("svc"))]
        + struct.pack("<III", 16, 3, 0)
        + wstr("C:\\x.exe")
        + bytes(28)
    )
    if flip < len(stub):
        stub[flip] ^= 1 << bit
    kept = Stubs(False, bytes(stub[: len(stub) - cut]), True, None, True, None)
    assert stubs.decode("367abb81-9844-35f1-ad32-98f038001003", 12, kept, StubState(), strict=True) is not None


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=400))
def test_wmio_reader_only_ever_reports_malformed(body: bytes) -> None:
    """The WMI object reader behind ExecMethod/PutInstance: a valid OBJREF_CUSTOM and EncodingUnit
    header, then arbitrary bytes: a value or `Malformed`, nothing else."""
    from analyzer.stubs import wmio

    head = struct.pack("<II", 0x574F454D, 4) + bytes(32) + struct.pack("<IIII", 0, 0, 0x12345678, len(body))
    with contextlib.suppress(Malformed):
        wmio.instance_values(head + b"\x02" + body)


def test_declared_operations_match_the_name_registry() -> None:
    """Every decoder's (interface, opnum) is the operation the name registry knows by that name
    (spec, Zeek or implementation spelling): a wrong opnum in a declaration fails here."""
    from analyzer import registry

    def same(a: str, b: str) -> bool:
        a, b = a.lower().removeprefix("idl_"), b.lower().removeprefix("idl_")
        return a in b or b in a or a.lstrip("r") in b or b.lstrip("r") in a

    wrong = []
    for (uuid, opnum), op in sorted(stubs.OPERATIONS.items()):
        names = registry.operation_names(uuid, None, opnum)
        if names and not any(same(op.name, n) for n in names):
            wrong.append((registry.interface_name(uuid), opnum, op.name, names))
    assert not wrong


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_safe_text_never_lets_control_or_bidi_characters_through(text: str) -> None:
    out = safe_text(text, 100)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0x202A <= ord(c) <= 0x202E for c in out)
    assert out[:1] not in ("=", "+", "-", "@")


_JSONABLE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(values=st.dictionaries(st.text(max_size=8), _JSONABLE, max_size=6))
def test_arguments_json_is_what_json_dumps_writes(values: dict[str, object]) -> None:
    """The encoder made once (analyzer.stubs.registry._json_encoder) writes json.dumps' bytes."""
    import json

    from analyzer.stubs.registry import _capped, json_text

    assert json_text(values) == json.dumps(_capped(values), ensure_ascii=True, separators=(",", ":"))
