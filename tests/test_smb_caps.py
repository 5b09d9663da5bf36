"""Caps on SMB state (analyzer.limits.Limits): pipes per session and per connection, unanswered requests,
related CREATEs whose data waits for their answer."""

from __future__ import annotations

import struct

from scapy.layers.smb2 import (
    SMB2_Create_Request,
    SMB2_Create_Response,
    SMB2_Read_Request,
    SMB2_Read_Response,
    SMB2_Write_Request,
)

from analyzer.limits import Limits
from analyzer.smb import SmbConnection
from tests.smb_build import (
    BIND,
    BIND_ACK,
    PIPE_A,
    PIPE_B,
    PREVIOUS,
    RELATED,
    Recorder,
    compound,
    file_id,
    hdr,
    key2,
    run,
    smb2_open,
    smb2_setup,
    smb2_write,
    tcp,
)


def test_smb2_pipe_cap() -> None:
    stream = smb2_setup() + smb2_open(3, "a", (1, 1)) + smb2_open(4, "b", (2, 2)) + smb2_open(5, "c", (3, 3))
    rec, _ = run(stream + smb2_write(6, (3, 3), BIND), limits=Limits(max_smb_pipes=2))
    assert [e[2] for e in rec.of("open")] == ["\\PIPE\\a", "\\PIPE\\b"]
    assert ("violation", "cap_smb_pipes") in rec.events
    assert rec.of("data") == []


def test_unanswered_requests_are_capped() -> None:
    """Each request past the cap evicts the oldest and is one hit (the violation log counts them)."""
    MAX_PENDING = 300
    read = bytearray(tcp(hdr(0) / SMB2_Read_Request(FileId=file_id(PIPE_A), Length=4280)))
    rec = Recorder()
    conn = SmbConnection(rec, Limits(max_smb_pending=MAX_PENDING))
    for from_client, data in smb2_setup() + smb2_open(3, "srvsvc", PIPE_A):
        conn.data(from_client, data, 1, 0)
    for mid in range(10, 10 + MAX_PENDING + 50):
        struct.pack_into("<Q", read, 4 + 24, mid)
        conn.data(True, bytes(read), 2, 0)
    answer = tcp(hdr(10 + MAX_PENDING + 49, resp=True) / SMB2_Read_Response(Data=BIND_ACK))
    conn.data(False, answer, 3, 0)
    assert rec.of("violation") == [("violation", "cap_smb_pending")] * 50
    assert rec.of("data") == [("data", key2(PIPE_A), False, BIND_ACK)]


def test_open_pipes_cap_closes_the_oldest() -> None:
    """Past `max_smb_open_pipes` the oldest open pipe is closed (the consumer hears it) to make room."""
    stream = smb2_setup() + smb2_open(3, "a", (1, 1)) + smb2_open(4, "b", (2, 2)) + smb2_open(5, "c", (3, 3))
    rec, _ = run(stream + smb2_write(6, (3, 3), BIND), limits=Limits(max_smb_open_pipes=2))
    a, b, c = key2((1, 1)), key2((2, 2)), key2((3, 3))
    assert rec.events[1:] == [
        ("open", a, "\\PIPE\\a", "\\\\srv\\IPC$"),
        ("open", b, "\\PIPE\\b", "\\\\srv\\IPC$"),
        ("violation", "cap_smb_open_pipes"),
        ("close", a),
        ("open", c, "\\PIPE\\c", "\\\\srv\\IPC$"),
        ("data", c, True, BIND),
    ]


def related_create_write(mid: int, name: str) -> bytes:
    """CREATE + a related WRITE in one compound: the WRITE's data waits for the CREATE's answer."""
    return compound(
        hdr(mid) / SMB2_Create_Request(Name=name),
        hdr(mid + 1, flags=RELATED) / SMB2_Write_Request(FileId=file_id(PREVIOUS), Data=BIND),
    )


def test_held_creates_cap_drops_the_oldest_held_data() -> None:
    """Past `max_smb_held_creates` CREATEs awaiting their answer, the oldest one's held data goes."""
    stream = [
        *smb2_setup(),
        (True, related_create_write(3, "lsarpc")),
        (True, related_create_write(5, "samr")),
        (False, tcp(hdr(3, resp=True) / SMB2_Create_Response(FileId=file_id(PIPE_A)))),
        (False, tcp(hdr(5, resp=True) / SMB2_Create_Response(FileId=file_id(PIPE_B)))),
    ]
    rec, _ = run(stream, limits=Limits(max_smb_held_creates=1))
    assert rec.events[1:] == [
        ("violation", "cap_smb_held_creates"),
        ("open", key2(PIPE_A), "\\PIPE\\lsarpc", "\\\\srv\\IPC$"),
        ("open", key2(PIPE_B), "\\PIPE\\samr", "\\\\srv\\IPC$"),
        ("data", key2(PIPE_B), True, BIND),
    ]
    whole, _ = run(stream)  # without the cap both wait and both are delivered
    assert [e[1] for e in whole.of("data")] == [key2(PIPE_A), key2(PIPE_B)]
