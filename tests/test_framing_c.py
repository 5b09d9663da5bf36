"""The CO framer's header test in C (analyzer/dcerpc/_framing.c) against its Python twin
(`dcerpc.pdu.plausible_co_header`): the same frag_length, or 0, for any bytes at any offset."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.dcerpc import pdu, stream

try:
    from analyzer.dcerpc._framing import plausible_co_header as c_plausible
except ImportError:  # not built here
    c_plausible = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(c_plausible is None, reason="the C framing test is not built here")


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    """Mostly near-plausible headers (every field at and around its limits), then random bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=40))
    vers = draw(st.sampled_from([5, 5, 5, 4, 6]))
    minor = draw(st.sampled_from([0, 1, 2]))
    ptype = draw(st.integers(0, 22))
    d0 = draw(st.sampled_from([0x10, 0x00, 0x11, 0x01, 0x12, 0x20, 0x30]))
    d1 = draw(st.integers(0, 5))
    d23 = draw(st.sampled_from([0, 0, 0, 1, 0x100]))
    little = d0 & 0x10
    frag = draw(st.sampled_from([0, 15, 16, 24, 100, 0xFFFF]))
    auth = draw(st.sampled_from([0, 0, 1, frag - 24 if frag >= 24 else 0, frag]))
    lengths = struct.pack("<HH" if little else ">HH", frag, max(0, min(auth, 0xFFFF)))
    head = bytes([vers, minor, ptype, 3, d0, d1]) + struct.pack("<H", d23) + lengths + b"\x01\x00\x00\x00"
    return head[: draw(st.integers(0, 16))] if draw(st.integers(0, 6)) == 0 else head


@needs_c
@settings(max_examples=2000, deadline=None)
@given(pre=st.binary(max_size=20), head=headers(), post=st.binary(max_size=20), off=st.integers(0, 60))
def test_the_c_header_test_judges_as_the_python_one(pre: bytes, head: bytes, post: bytes, off: int) -> None:
    data = pre + head + post
    for at in (off, len(pre)):
        want = pdu.plausible_co_header(data, at)
        assert c_plausible(data, at) == want
        assert c_plausible(bytearray(data), at) == want  # the framer's buffer
        assert c_plausible(memoryview(data), at) == want  # type: ignore[arg-type]
    assert c_plausible(data) == pdu.plausible_co_header(data)


@needs_c
def test_the_c_header_test_refuses_a_negative_offset_and_no_buffer() -> None:
    with pytest.raises(ValueError):
        c_plausible(b"\x05" * 32, -1)
    with pytest.raises(TypeError):
        c_plausible(12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c_plausible()  # type: ignore[call-arg]


def test_the_framer_uses_the_c_test_when_built() -> None:
    """Not a silent fallback: the stream frames with the compiled test where it was built."""
    expected = pdu.plausible_co_header if c_plausible is None else c_plausible
    assert stream.plausible_co_header is expected
