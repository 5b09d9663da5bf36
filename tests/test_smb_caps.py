"""Caps on SMB state (analyzer.limits.Limits): open pipes and unanswered requests."""

from __future__ import annotations

import struct

from scapy.layers.smb2 import (
    SMB2_Read_Request,
    SMB2_Read_Response,
)

from analyzer.limits import Limits
from analyzer.smb import SmbConnection
from tests.smb_build import (
    BIND,
    BIND_ACK,
    PIPE_A,
    Recorder,
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
