"""SMB1 named pipes ([MS-CIFS] 2.2.4): WRITE_ANDX/READ_ANDX, TRANSACTION TransactNmPipe and its secondaries,
AndX chains, OEM names.
"""

from __future__ import annotations

import struct

from analyzer.ntlm import NtlmIdentity
from tests.smb_build import (
    BIND,
    BIND_ACK,
    CHAIN_UID,
    REQUEST,
    STATUS_BUFFER_OVERFLOW,
    STATUS_PIPE_EMPTY,
    TID1,
    UID,
    key1,
    nbt,
    nt_create_request,
    nt_create_response,
    read_andx,
    read_andx_response,
    run,
    secondary_stream,
    smb1_chain_stream,
    smb1_pipe_session,
    smb1_session_setup,
    tree_connect1,
    tree_connect1_response,
    write_andx,
)


def test_smb1_pipe_session() -> None:
    rec, _ = run(smb1_pipe_session())
    k = key1(0x4000)
    assert rec.of("identity") == [("identity", 1, UID, NtlmIdentity("bob", "DOM", "PC7"))]
    assert rec.of("open") == [("open", k, "\\PIPE\\srvsvc", "\\\\SRV\\IPC$")]
    assert rec.of("data") == [
        ("data", k, True, BIND),
        ("data", k, False, BIND_ACK),
        ("data", k, True, REQUEST),
        ("data", k, False, b"\x05\x00\x02\x03" + bytes(20)),
    ]
    assert rec.of("close") == [("close", k)]
    assert not rec.of("violation")


def test_smb1_andx_chain_session_setup_and_tree_connect_oem() -> None:
    """The Uid of the identity comes from the response; the chained TREE_CONNECT_ANDX makes the tree
    IPC$, so the file opened on it is a pipe although the server called it a disk file."""
    rec, _ = run(smb1_chain_stream())
    k = key1(0x4001, CHAIN_UID)
    assert rec.events == [
        ("identity", 1, CHAIN_UID, NtlmIdentity("carol", "WORKGRP", None)),
        ("open", k, "\\PIPE\\lsarpc", "\\\\SRV\\IPC$"),
        ("data", k, True, BIND),
    ]


def test_smb1_transaction_with_secondary_requests() -> None:
    rec, _ = run(secondary_stream())
    k = key1(0x4005)
    assert rec.of("data") == [("data", k, True, BIND[:30]), ("data", k, True, BIND[30:]), ("data", k, False, BIND_ACK)]


def test_smb1_oem_create_on_known_tree() -> None:
    stream = [
        (True, nbt(tree_connect1(2, "\\\\SRV\\IPC$", unicode=False))),
        (False, nbt(tree_connect1_response(2, 3))),
        (True, nbt(nt_create_request(3, "\\PIPE\\lsarpc", unicode=False, tid=3))),
        (False, nbt(nt_create_response(3, 0x4001, resource_type=0, tid=3))),
        (True, nbt(write_andx(4, 0x4001, BIND, tid=3))),
    ]
    rec, _ = run(stream)
    k = key1(0x4001)
    assert rec.of("open") == [("open", k, "\\PIPE\\lsarpc", "\\\\SRV\\IPC$")]
    assert rec.of("data") == [("data", k, True, BIND)]


def test_smb1_write_andx_raw_message_start_and_read_more_data() -> None:
    raw = struct.pack("<H", len(BIND)) + BIND  # RAW_MODE | MSG_START: a 2-byte length first
    stream = [
        *smb1_session_setup(),
        (True, nbt(tree_connect1(2, "\\\\SRV\\IPC$"))),
        (False, nbt(tree_connect1_response(2, TID1))),
        (True, nbt(nt_create_request(3, "\\srvsvc"))),
        (False, nbt(nt_create_response(3, 0x4000))),
        (True, nbt(write_andx(4, 0x4000, raw, mode=0x000C))),
        (True, nbt(read_andx(5, 0x4000))),
        (False, nbt(read_andx_response(5, BIND_ACK[:10], status=STATUS_BUFFER_OVERFLOW))),
        (True, nbt(read_andx(6, 0x4000))),
        (False, nbt(read_andx_response(6, b"", status=STATUS_PIPE_EMPTY))),
    ]
    rec, _ = run(stream)
    k = key1(0x4000)
    assert rec.of("data") == [("data", k, True, BIND), ("data", k, False, BIND_ACK[:10])]


def test_smb1_big_pipe_message_split_across_segments() -> None:
    big = BIND[:8] + struct.pack("<H", 60000) + BIND[10:] + bytes(60000 - len(BIND))
    stream = [
        *smb1_session_setup(),
        (True, nbt(tree_connect1(2, "\\\\SRV\\IPC$"))),
        (False, nbt(tree_connect1_response(2, TID1))),
        (True, nbt(nt_create_request(3, "\\samr"))),
        (False, nbt(nt_create_response(3, 0x4002))),
        (True, nbt(write_andx(4, 0x4002, big))),
    ]
    rec, _ = run(stream, cuts=tuple(range(1, 1000, 24)))
    assert rec.of("data") == [("data", key1(0x4002), True, big)]
