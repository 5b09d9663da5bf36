"""The SMB parser on bad input: garbage, gaps, bad lengths, and every stream of the corpus cut at random
points (same events) and mutated (never raises).
"""

from __future__ import annotations

import functools
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.smb2 import (
    SMB2_Close_Request,
    SMB2_Create_Request,
    SMB2_Tree_Connect_Request,
    SMB2_Tree_Connect_Response,
    SMB2_Write_Request,
)

from analyzer.limits import Limits
from analyzer.smb import SmbConnection
from tests.smb_build import (
    BIND,
    PIPE_A,
    REQUEST,
    TID_DISK,
    Recorder,
    Stream,
    async_stream,
    compound,
    compound_stream,
    concat,
    file_id,
    hdr,
    key2,
    netbios_stream,
    run,
    sealed_stream,
    secondary_stream,
    smb1_chain_stream,
    smb1_pipe_session,
    smb2_open,
    smb2_pipe_session,
    smb2_setup,
    smb2_write,
    tcp,
)


def test_memoryview_and_bytearray_input() -> None:
    whole, _ = run(smb2_pipe_session())
    rec = Recorder()
    conn = SmbConnection(rec, Limits())
    for i, (from_client, data) in enumerate(smb2_pipe_session()):
        conn.data(from_client, memoryview(data) if i % 2 else bytearray(data), i + 1, (i + 1) * 1000)
    assert rec.events == whole.events


def test_garbage_before_and_between_messages_resynchronises() -> None:
    stream = smb2_pipe_session()
    noisy: Stream = [(True, b"\x13\x37garbage" * 3)]
    for from_client, data in stream:
        noisy.append((from_client, data))
        if from_client:
            noisy.append((True, b"\x00\x00\x00\x05\x00SMBjunk"))  # a framed non-SMB message
    rec, conn = run(noisy)
    clean, _ = run(stream)
    assert [e for e in rec.events if e[0] != "violation"] == clean.events
    assert {e[1] for e in rec.of("violation")} <= {"smb_bad_header", "smb_resync"}
    assert conn.skipped_bytes > 0


def test_gap_inside_a_skipped_message_costs_nothing() -> None:
    chunk = bytes(40000)
    write = tcp(hdr(7, tid=TID_DISK) / SMB2_Write_Request(FileId=file_id((40, 40)), Data=chunk))
    rec = Recorder()
    conn = SmbConnection(rec, Limits())
    for from_client, data in [
        *smb2_setup(),
        (True, tcp(hdr(3, tid=0) / SMB2_Tree_Connect_Request(Path="\\\\srv\\d$"))),
        (False, tcp(hdr(3, resp=True, tid=TID_DISK) / SMB2_Tree_Connect_Response(ShareType=1))),
        *smb2_open(4, "srvsvc", PIPE_A),
    ]:
        conn.data(from_client, data, 1, 0)
    conn.data(True, write[:1000], 2, 0)
    conn.gap(True, 20000, 3, 0)
    conn.data(True, write[21000:], 4, 0)
    for from_client, data in smb2_write(8, PIPE_A, BIND):
        conn.data(from_client, data, 5, 0)
    assert rec.of("data") == [("data", key2(PIPE_A), True, BIND)]
    assert not rec.of("violation") and conn.gap_bytes == 20000


def test_gap_across_messages_resynchronises() -> None:
    rec = Recorder()
    conn = SmbConnection(rec, Limits())
    setup = smb2_setup() + smb2_open(3, "srvsvc", PIPE_A)
    for from_client, data in setup:
        conn.data(from_client, data, 1, 0)
    w1 = smb2_write(4, PIPE_A, BIND)[0][1]
    w2 = smb2_write(5, PIPE_A, REQUEST)[0][1]
    conn.data(True, w1[:30], 2, 0)
    conn.gap(True, len(w1) - 30 + 10, 3, 0)  # the rest of w1 and the start of w2
    conn.data(True, w2[10:], 4, 0)
    conn.data(True, w2, 5, 0)
    assert rec.of("data") == [("data", key2(PIPE_A), True, REQUEST)]
    assert ("violation", "smb_gap") in rec.events


def test_truncated_chain_and_bad_lengths_are_violations() -> None:
    good = compound(hdr(3) / SMB2_Create_Request(Name="srvsvc"), hdr(4) / SMB2_Close_Request())
    body = bytearray(good[4:])
    struct.pack_into("<I", body, 20, 0x10000)  # NextCommand far beyond the message
    bad_write = bytearray(bytes(hdr(5) / SMB2_Write_Request(FileId=file_id(PIPE_A), Data=BIND)))
    struct.pack_into("<I", bad_write, 64 + 4, 1 << 20)  # Length beyond the message
    stream = [
        *smb2_setup(),
        *smb2_open(2, "srvsvc", PIPE_A),
        (True, struct.pack(">I", len(body)) + bytes(body)),
        (True, struct.pack(">I", len(bad_write)) + bytes(bad_write)),
        *smb2_write(6, PIPE_A, BIND),
    ]
    rec, _ = run(stream)
    assert ("violation", "smb_bad_length") in rec.events
    assert rec.of("data") == [("data", key2(PIPE_A), True, BIND)]


CORPUS = (
    smb2_pipe_session,
    smb1_pipe_session,
    sealed_stream,
    compound_stream,
    async_stream,
    smb1_chain_stream,
    secondary_stream,
    netbios_stream,
)


@functools.cache
def corpus(which: int) -> Stream:
    return CORPUS[which]()


pick = st.integers(0, len(CORPUS) - 1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=pick, cuts=st.lists(st.integers(1, 999), max_size=6))
def test_split_points_do_not_change_events(which: int, cuts: list[int]) -> None:
    """Every message cut at the same relative points gives the same events as whole messages."""
    stream = corpus(which)
    whole, _ = run(stream)
    split, _ = run(stream, cuts=cuts)
    assert whole.events and split.events == whole.events


@settings(max_examples=100, deadline=None)
@given(which=pick, data=st.data())
def test_messages_cut_anywhere(which: int, data: st.DataObject) -> None:
    """Every message cut into pieces of random sizes gives the same events as whole messages."""
    stream = corpus(which)
    whole, _ = run(stream)
    rec = Recorder()
    conn = SmbConnection(rec, Limits())
    for frame, (from_client, msg) in enumerate(stream, 1):
        pos = 0
        while pos < len(msg):
            step = data.draw(st.integers(1, max(1, len(msg) - pos)))
            conn.data(from_client, msg[pos : pos + step], frame, frame * 1000)
            pos += step
    conn.close()
    assert rec.events == whole.events


@settings(max_examples=100, deadline=None)
@given(which=pick, size=st.integers(1, 97))
def test_directions_in_fixed_size_chunks(which: int, size: int) -> None:
    """Each direction's bytes as one stream in fixed-size chunks, so chunks straddle messages."""
    stream = corpus(which)
    client, server = concat(stream)
    rec = Recorder()
    conn = SmbConnection(rec, Limits())
    for i in range(0, len(client), size):
        conn.data(True, client[i : i + size], 1, 1)
    for i in range(0, len(server), size):
        conn.data(False, server[i : i + size], 1, 1)
    conn.close()
    # Requests first, then answers: what needs an answer still comes out, in the same amounts.
    whole = Recorder()
    one = SmbConnection(whole, Limits())
    one.data(True, client, 1, 1)
    one.data(False, server, 1, 1)
    one.close()
    assert rec.events == whole.events


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.tuples(st.booleans(), st.binary(max_size=300), st.integers(0, 50)), max_size=12),
    netbios=st.booleans(),
)
def test_arbitrary_bytes_never_raise(chunks: list[tuple[bool, bytes, int]], netbios: bool) -> None:
    conn = SmbConnection(Recorder(), Limits(), netbios=netbios)
    for i, (from_client, data, gap) in enumerate(chunks):
        conn.data(from_client, data, i, i)
        if gap % 7 == 0:
            conn.gap(from_client, gap, i, i)
    conn.close()


@settings(max_examples=300, deadline=None)
@given(
    which=pick,
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_mutated_streams_never_raise(which: int, flips: list[tuple[int, int]]) -> None:
    """Valid traffic with bytes overwritten (lengths, offsets, counts, magic): no exception escapes."""
    stream = corpus(which)
    client, server = (bytearray(b) for b in concat(stream))
    for pos, value in flips:
        target = client if pos % 2 else server
        if target:
            target[pos % len(target)] = value
    conn = SmbConnection(Recorder(), Limits())
    conn.data(True, bytes(client), 1, 1)
    conn.data(False, bytes(server), 2, 2)
    conn.close()
