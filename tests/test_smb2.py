"""SMB2 named pipes ([MS-SMB2] 3.3): CREATE/WRITE/READ/CLOSE, compounds, async answers, several pipes, IOCTL."""

from __future__ import annotations

from scapy.layers.smb2 import (
    SMB2_Create_Request,
    SMB2_Error_Response,
    SMB2_IOCTL_Request,
    SMB2_IOCTL_Response,
    SMB2_Read_Request,
    SMB2_Read_Response,
    SMB2_Write_Request,
)

from analyzer.ntlm import NtlmIdentity
from tests.smb_build import (
    BIND,
    BIND_ACK,
    FSCTL_PIPE_TRANSCEIVE,
    PIPE_A,
    PIPE_B,
    PREVIOUS,
    RELATED,
    REQUEST,
    SID,
    STATUS_BUFFER_OVERFLOW,
    STATUS_PIPE_EMPTY,
    async_stream,
    compound,
    compound_stream,
    file_id,
    hdr,
    key2,
    run,
    smb2_open,
    smb2_pipe_session,
    smb2_setup,
    tcp,
)


def test_smb2_pipe_open_write_read_close() -> None:
    rec, conn = run(smb2_pipe_session())
    k = key2(PIPE_A)
    assert rec.of("identity") == [("identity", 2, SID, NtlmIdentity("alice", "CORP", "WS01"))]
    assert rec.of("open") == [("open", k, "\\PIPE\\srvsvc", "\\\\srv\\IPC$")]
    assert rec.of("data") == [("data", k, True, BIND), ("data", k, False, BIND_ACK)]
    assert rec.of("close") == [("close", k)]
    assert not rec.of("violation")
    assert conn.pipes_opened == 1 and conn.pipe_bytes == len(BIND) + len(BIND_ACK)


def test_smb2_events_in_capture_order() -> None:
    rec, _ = run(smb2_pipe_session())
    kinds = [e[0] for e in rec.events]
    assert kinds == ["identity", "open", "data", "data", "close"]


def test_smb2_compound_create_write_read() -> None:
    rec, _ = run(compound_stream())
    k = key2(PIPE_B)
    assert rec.events[1:] == [
        ("open", k, "\\PIPE\\lsarpc", "\\\\srv\\IPC$"),
        ("data", k, True, BIND),
        ("data", k, False, BIND_ACK),
    ]


def test_smb2_compound_responses_in_separate_messages_and_failed_create() -> None:
    request = compound(
        hdr(3) / SMB2_Create_Request(Name="nosuchpipe"),
        hdr(4, flags=RELATED) / SMB2_Write_Request(FileId=file_id(PREVIOUS), Data=BIND),
    )
    not_found = 0xC0000034
    rec, _ = run(
        [
            *smb2_setup(),
            (True, request),
            (False, tcp(hdr(3, resp=True, status=not_found, Command=5) / SMB2_Error_Response())),
            (False, tcp(hdr(4, resp=True, status=not_found, Command=9) / SMB2_Error_Response())),
        ]
    )
    assert rec.of("open") == [] and rec.of("data") == []


def test_smb2_async_interim_then_final() -> None:
    rec, _ = run(async_stream())
    k = key2(PIPE_A)
    assert rec.of("data") == [("data", k, True, BIND), ("data", k, False, BIND_ACK)]


def test_smb2_reads_matched_by_message_id_with_several_pipes() -> None:
    stream = [
        *smb2_setup(),
        *smb2_open(3, "srvsvc", PIPE_A),
        *smb2_open(4, "samr", PIPE_B),
        (True, tcp(hdr(10, CreditCharge=4) / SMB2_Read_Request(FileId=file_id(PIPE_A), Length=65536))),
        (True, tcp(hdr(14) / SMB2_Read_Request(FileId=file_id(PIPE_B), Length=4280))),
        (False, tcp(hdr(14, resp=True) / SMB2_Read_Response(Data=b"for B " + BIND_ACK))),
        (False, tcp(hdr(10, resp=True) / SMB2_Read_Response(Data=b"for A " + BIND_ACK))),
    ]
    rec, _ = run(stream)
    assert [e[1:] for e in rec.of("open")] == [
        (key2(PIPE_A), "\\PIPE\\srvsvc", "\\\\srv\\IPC$"),
        (key2(PIPE_B), "\\PIPE\\samr", "\\\\srv\\IPC$"),
    ]
    assert rec.of("data") == [
        ("data", key2(PIPE_B), False, b"for B " + BIND_ACK),
        ("data", key2(PIPE_A), False, b"for A " + BIND_ACK),
    ]


def test_smb2_buffer_overflow_delivers_and_errors_do_not() -> None:
    stream = [
        *smb2_setup(),
        *smb2_open(3, "srvsvc", PIPE_A),
        (True, tcp(hdr(4) / SMB2_Read_Request(FileId=file_id(PIPE_A), Length=16))),
        (False, tcp(hdr(4, resp=True, status=STATUS_BUFFER_OVERFLOW) / SMB2_Read_Response(Data=BIND_ACK[:16]))),
        (True, tcp(hdr(5) / SMB2_Read_Request(FileId=file_id(PIPE_A), Length=4280))),
        (False, tcp(hdr(5, resp=True, status=STATUS_PIPE_EMPTY, Command=8) / SMB2_Error_Response())),
        (True, tcp(hdr(6) / SMB2_Read_Request(FileId=file_id(PIPE_A), Length=4280))),
        (False, tcp(hdr(6, resp=True) / SMB2_Read_Response(Data=BIND_ACK[16:]))),
    ]
    rec, _ = run(stream)
    k = key2(PIPE_A)
    assert rec.of("data") == [("data", k, False, BIND_ACK[:16]), ("data", k, False, BIND_ACK[16:])]


def test_smb2_ioctl_transceive() -> None:
    ioctl = SMB2_IOCTL_Request(
        CtlCode=FSCTL_PIPE_TRANSCEIVE, FileId=file_id(PIPE_A), Input=REQUEST, MaxOutputResponse=4280
    )
    answer = SMB2_IOCTL_Response(CtlCode=FSCTL_PIPE_TRANSCEIVE, FileId=file_id(PIPE_A), Output=BIND_ACK)
    overflow = SMB2_IOCTL_Response(CtlCode=FSCTL_PIPE_TRANSCEIVE, FileId=file_id(PIPE_A), Output=b"partial")
    stream = [
        *smb2_setup(),
        *smb2_open(3, "lsarpc", PIPE_A),
        (True, tcp(hdr(4) / ioctl)),
        (False, tcp(hdr(4, resp=True) / answer)),
        (True, tcp(hdr(5) / ioctl)),
        (False, tcp(hdr(5, resp=True, status=STATUS_BUFFER_OVERFLOW) / overflow)),
    ]
    rec, _ = run(stream)
    k = key2(PIPE_A)
    assert rec.of("data") == [
        ("data", k, True, REQUEST),
        ("data", k, False, BIND_ACK),
        ("data", k, True, REQUEST),
        ("data", k, False, b"partial"),
    ]
