"""The decoder's per-packet step in C (analyzer/capture/_packets.c) against its Python twin.

`decode._built` turns a stretch of a batch's candidates into (frame, ts, Packet) for the common
layout with a port in its set, and into the prefilter's row for every other one. The C step and
`decode._built_here` must give the same list, item for item and type for type, whatever the
frames, the candidates and the port tables; and the decoder must select the same packets when the
C step is not built.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.capture import decode, pcap, prefilter
from analyzer.capture.decode import Packet
from tests.test_prefilter import PORTS, _ipv4, _pcap, _selected, _tcp, frame


def _batch(frames: list[bytes], pad: bytes, frame0: int) -> prefilter.Batch:
    buf = pad + b"".join(frames) + bytes(48)
    ends = list(itertools.accumulate((len(f) for f in frames), initial=len(pad)))
    start, end = np.array(ends[:-1], dtype=np.int64), np.array(ends[1:], dtype=np.int64)
    ts = np.arange(len(frames), dtype=np.int64) * 1_000_000_007
    return prefilter.Batch(buf, 1, frame0, start, end, ts)


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(frame(), min_size=1, max_size=30),
    pad=st.binary(max_size=20),
    frame0=st.sampled_from([0, 7, 1 << 40]),
    tcp=st.sets(st.sampled_from(PORTS)),
    udp=st.sets(st.sampled_from(PORTS)),
    picks=st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_the_c_step_builds_what_the_python_step_builds(
    frames: list[bytes], pad: bytes, frame0: int, tcp: set[int], udp: set[int], picks: list[bool]
) -> None:
    if decode.c_build is None:
        pytest.skip("the C step is not built here")
    batch = _batch(frames, pad, frame0)
    f, _base = prefilter.fields(batch, prefilter.table({5, 0x52}), prefilter.table(range(0, 256, 3)))
    at = np.array([i for i in range(len(frames)) if picks[i]], dtype=np.int64)
    tcp_table, udp_table = prefilter.port_table(tcp), prefilter.port_table(udp)
    c = decode._built(batch, f, at, tcp_table, udp_table)
    py = decode._built_here(batch, f, at, tcp_table, udp_table)
    assert c == py
    assert [[type(v) for v in item] for item in c] == [[type(v) for v in item] for item in py]
    assert all(type(item[2]) is Packet for item in c if len(item) == 3)
    # A packet made in C is a Packet in every way the pipeline uses one.
    for item in c:
        if len(item) == 3:
            pkt = item[2]
            assert isinstance(pkt, Packet) and pkt._fields == Packet._fields and len(pkt) == 9
            assert pkt == Packet(*pkt) and pkt.payload == pkt[8]


def test_the_c_step_refuses_what_it_cannot_read() -> None:
    if decode.c_build is None:
        pytest.skip("the C step is not built here")
    batch = _batch([bytes(60)], b"", 0)
    f, _base = prefilter.fields(batch, prefilter.table(()), prefilter.table(()))
    cols = [np.ascontiguousarray(c, dtype=np.int64).data for c in (f.kind, f.sport, f.dport)]
    rest = [np.ascontiguousarray(c, dtype=np.int64).data for c in (f.pay, f.stop, batch.start, batch.end, batch.ts)]
    maybe = np.ascontiguousarray(f.maybe).data
    table = prefilter.port_table(()).data
    outside = np.array([5], dtype=np.int64).data
    with pytest.raises(ValueError, match="outside the batch"):
        decode.c_build(batch.buf, outside, *cols, maybe, *rest, 0, table, table, Packet)
    with pytest.raises(ValueError, match="65,536"):
        decode.c_build(batch.buf, outside, *cols, maybe, *rest, 0, bytes(10), table, Packet)
    with pytest.raises(ValueError, match="tuple type"):
        decode.c_build(batch.buf, outside, *cols, maybe, *rest, 0, table, table, int)


@settings(max_examples=30, deadline=None)
@given(
    frames=st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0, 5]), frame()), max_size=40),
    udp_first=st.booleans(),
)
def test_without_the_c_step_the_decoder_selects_the_same_packets(
    tmp_path_factory: pytest.TempPathFactory, frames: list[tuple[int, int, bytes]], udp_first: bool
) -> None:
    """Ports learned and forgotten between packets (`_selected`), small batches: C or not, in one
    call per stretch or in many, the same."""
    path = tmp_path_factory.mktemp("pb") / "x.pcap"
    path.write_bytes(_pcap(frames, b""))
    saved, built, chunk = pcap._BATCH, decode.c_build, decode._CHUNK
    pcap._BATCH = 300
    try:
        with_c = _selected(path, True, udp_first)
        decode._CHUNK = 2  # stretches cut into many calls, a port learned in any of them
        in_pieces = _selected(path, True, udp_first)
        decode.c_build = None
        without = _selected(path, True, udp_first)
    finally:
        pcap._BATCH, decode.c_build, decode._CHUNK = saved, built, chunk
    assert with_c == without == in_pieces


def test_the_decoder_takes_the_c_step_when_it_is_built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Not a silent fallback: on Ethernet pcap batches the C step is what runs."""
    if decode.c_build is None:
        pytest.skip("the C step is not built here")
    calls: list[int] = []
    real = decode.c_build

    def counting(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(decode, "c_build", counting)
    eth = b"\x00" * 12 + b"\x08\x00"
    path = tmp_path / "x.pcap"
    path.write_bytes(_pcap([(1, 0, eth + _ipv4(6, _tcp(1025, 135, b"")))], b""))
    out, _counted = _selected(path, True, False)
    assert len(out) == 1 and out[0][2].dport == 135 and calls
