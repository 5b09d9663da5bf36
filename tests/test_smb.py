"""SMB layer: named pipes out of SMB1/SMB2/SMB3 connections (analyzer.smb).

Traffic is built with scapy's own SMB2, SMB and NetBIOS layers where scapy has the message and
builds it right (every SMB2 command, the transform headers, SMB1 SESSION_SETUP_ANDX, NetBIOS
session packets), and with struct from [MS-CIFS] where it has not: NT_CREATE_ANDX, WRITE_ANDX,
READ_ANDX, CLOSE, core READ/WRITE, TREE_CONNECT_ANDX and TRANSACTION (scapy pads OEM paths and
miscounts a transaction's WordCount and SetupCount) and AndX chains. Both are encoders independent
of the decoder under test; the struct ones were checked against tshark 4.0. Every stream is also
fed cut at random points and must give the same events; arbitrary and mutated bytes must never
raise. The last tests run the parser over the real captures in ../shared/captures and compare the
binds framed from the pipe data with the tshark truth.
"""

from __future__ import annotations

import csv
import functools
import ipaddress
import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.limits import Limits
from analyzer.ntlm import NtlmIdentity
from analyzer.smb import PipeKey, SmbConnection, canonical_pipe_name

scapy_smb2 = pytest.importorskip("scapy.layers.smb2")
from scapy.layers.netbios import NBTSession  # noqa: E402
from scapy.layers.ntlm import NTLM_AUTHENTICATE_V2, NTLMv2_RESPONSE  # noqa: E402
from scapy.layers.smb import (  # noqa: E402
    SMB_Header,
    SMBSession_Setup_AndX_Request_Extended_Security,
)
from scapy.layers.smb2 import (  # noqa: E402
    SMB2_FILEID,
    DirectTCP,
    SMB2_Close_Request,
    SMB2_Close_Response,
    SMB2_Compression_Transform_Header,
    SMB2_Create_Request,
    SMB2_Create_Response,
    SMB2_Error_Response,
    SMB2_Header,
    SMB2_IOCTL_Request,
    SMB2_IOCTL_Response,
    SMB2_Negotiate_Protocol_Request,
    SMB2_Read_Request,
    SMB2_Read_Response,
    SMB2_Session_Setup_Request,
    SMB2_Transform_Header,
    SMB2_Tree_Connect_Request,
    SMB2_Tree_Connect_Response,
    SMB2_Write_Request,
    SMB2_Write_Response,
)
from scapy.layers.spnego import SPNEGO_negToken, SPNEGO_negTokenResp, SPNEGO_Token  # noqa: E402
from scapy.packet import Packet, Raw  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CAPTURES = SHARED / "captures"

# A DCE/RPC bind (srvsvc) and bind_ack, as a pipe carries them.
BIND = bytes.fromhex(
    "05000b03100000004800000001000000b810b810000000000100000000000100"
    "c84f324b7016d30112785a47bf6ee18803000000045d888aeb1cc9119fe80800"
    "2b10486002000000"
)
BIND_ACK = bytes.fromhex(
    "05000c03100000004400000001000000b810b81012340000"
    "0d005c504950455c73727673766300000100000000000000"
    "045d888aeb1cc9119fe808002b10486002000000"
)
REQUEST = bytes.fromhex("05000003100000002000000002000000080000000000010001020304")

SID = 0x0000_1234_0000_0001
TID_IPC = 1
TID_DISK = 5
PIPE_A = (0x11, 0x21)
PIPE_B = (0x12, 0x22)
FSCTL_PIPE_TRANSCEIVE = 0x0011C017
STATUS_PENDING = 0x00000103
STATUS_BUFFER_OVERFLOW = 0x80000005
STATUS_PIPE_EMPTY = 0xC00000D9


# -- recording events ---------------------------------------------------------------------------


@dataclass
class Recorder:
    """SmbEvents that keeps every call as a tuple (frames and timestamps included)."""

    events: list[tuple[Any, ...]] = field(default_factory=list)

    def pipe_open(self, key: PipeKey, name: str, tree: str | None, frame: int, ts: int) -> None:
        self.events.append(("open", key, name, tree))

    def pipe_data(self, key: PipeKey, from_client: bool, data: bytes, frame: int, ts: int) -> None:
        self.events.append(("data", key, from_client, data))

    def pipe_close(self, key: PipeKey, frame: int, ts: int) -> None:
        self.events.append(("close", key))

    def session_identity(self, dialect: int, session_id: int, identity: NtlmIdentity, frame: int) -> None:
        self.events.append(("identity", dialect, session_id, identity))

    def encrypted(self, session_id: int, frame: int, ts: int) -> None:
        self.events.append(("encrypted", session_id))

    def violation(self, frame: int, what: str, detail: str) -> None:
        self.events.append(("violation", what))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == kind]


Stream = list[tuple[bool, bytes]]  # (from_client, bytes of one or more whole messages)


def run(
    stream: Stream, *, cuts: Sequence[int] = (), netbios: bool = False, limits: Limits | None = None
) -> tuple[Recorder, SmbConnection]:
    """Feed a stream; each message is cut at the given relative positions (fractions of 1000)."""
    rec = Recorder()
    conn = SmbConnection(rec, limits or Limits(), netbios=netbios)
    for frame, (from_client, data) in enumerate(stream, 1):
        points = sorted({c * len(data) // 1000 for c in cuts} | {0, len(data)})
        for a, b in itertools.pairwise(points):
            conn.data(from_client, data[a:b], frame, frame * 1000)
    conn.close()
    return rec, conn


# -- SMB2 building (scapy) ----------------------------------------------------------------------


def file_id(pair: tuple[int, int]) -> Any:
    return SMB2_FILEID(Persistent=pair[0], Volatile=pair[1])


def key2(pair: tuple[int, int], sid: int = SID) -> PipeKey:
    return (2, sid, struct.pack("<QQ", *pair))


def hdr(
    mid: int, *, resp: bool = False, tid: int = TID_IPC, sid: int = SID, status: int = 0, flags: int = 0, **kw: Any
) -> Any:
    return SMB2_Header(MID=mid, TID=tid, SessionId=sid, Status=status, Flags=flags | (1 if resp else 0), **kw)


def async_hdr(mid: int, *, status: int = 0, sid: int = SID, **kw: Any) -> Any:
    return SMB2_Header(MID=mid, SessionId=sid, Status=status, Flags=0x3, AsyncId=0x77, **kw)


def tcp(*pkts: Packet) -> bytes:
    """Each SMB2 message in its own direct-TCP frame ([MS-SMB2] 2.1)."""
    return b"".join(bytes(DirectTCP() / p) for p in pkts)


def compound(*pkts: Packet) -> bytes:
    """One direct-TCP message chaining the commands by NextCommand, each 8-byte aligned."""
    body = b""
    for i, p in enumerate(pkts):
        raw = bytes(p)
        if i < len(pkts) - 1:
            size = (len(raw) + 7) // 8 * 8
            p = p.copy()
            p.NextCommand = size
            raw = bytes(p).ljust(size, b"\0")
        body += raw
    return bytes(DirectTCP() / Raw(body))


def ntlm_auth(user: str = "alice", domain: str = "CORP", ws: str = "WS01") -> Any:
    auth = NTLM_AUTHENTICATE_V2(
        UserName=user,
        DomainName=domain,
        Workstation=ws,
        NegotiateFlags="NEGOTIATE_UNICODE+NEGOTIATE_NTLM",
        NtChallengeResponse=NTLMv2_RESPONSE(),
        LmChallengeResponse=b"",
    )
    return SPNEGO_negToken(token=SPNEGO_negTokenResp(responseToken=SPNEGO_Token(value=auth)))


def smb2_setup(sid: int = SID) -> Stream:
    """NEGOTIATE, SESSION_SETUP with an NTLMSSP AUTHENTICATE, TREE_CONNECT to IPC$ (TreeId 1)."""
    return [
        (True, tcp(hdr(0, sid=0, tid=0) / SMB2_Negotiate_Protocol_Request(Dialects=[0x0202, 0x0210]))),
        (True, tcp(hdr(1, sid=sid, tid=0) / SMB2_Session_Setup_Request(SecurityBlob=ntlm_auth()))),
        (True, tcp(hdr(2, sid=sid, tid=0) / SMB2_Tree_Connect_Request(Path="\\\\srv\\IPC$"))),
        (False, tcp(hdr(2, resp=True, sid=sid, tid=TID_IPC) / SMB2_Tree_Connect_Response(ShareType=2))),
    ]


def smb2_open(mid: int, name: str, pair: tuple[int, int], tid: int = TID_IPC, sid: int = SID) -> Stream:
    return [
        (True, tcp(hdr(mid, tid=tid, sid=sid) / SMB2_Create_Request(Name=name))),
        (False, tcp(hdr(mid, resp=True, tid=tid, sid=sid) / SMB2_Create_Response(FileId=file_id(pair)))),
    ]


def smb2_write(mid: int, pair: tuple[int, int], data: bytes, tid: int = TID_IPC, sid: int = SID) -> Stream:
    return [
        (True, tcp(hdr(mid, tid=tid, sid=sid) / SMB2_Write_Request(FileId=file_id(pair), Data=data))),
        (False, tcp(hdr(mid, resp=True, tid=tid, sid=sid) / SMB2_Write_Response(Count=len(data)))),
    ]


def smb2_read(mid: int, pair: tuple[int, int], data: bytes, tid: int = TID_IPC, sid: int = SID) -> Stream:
    return [
        (True, tcp(hdr(mid, tid=tid, sid=sid) / SMB2_Read_Request(FileId=file_id(pair), Length=4280))),
        (False, tcp(hdr(mid, resp=True, tid=tid, sid=sid) / SMB2_Read_Response(Data=data))),
    ]


def smb2_close(mid: int, pair: tuple[int, int], tid: int = TID_IPC) -> Stream:
    return [
        (True, tcp(hdr(mid, tid=tid) / SMB2_Close_Request(FileId=file_id(pair)))),
        (False, tcp(hdr(mid, resp=True, tid=tid) / SMB2_Close_Response())),
    ]


def smb2_pipe_session() -> Stream:
    return (
        smb2_setup()
        + smb2_open(3, "srvsvc", PIPE_A)
        + smb2_write(4, PIPE_A, BIND)
        + smb2_read(5, PIPE_A, BIND_ACK)
        + smb2_close(6, PIPE_A)
    )


# -- SMB1 building (struct, [MS-CIFS] 2.2.4) -----------------------------------------------------

UID = 0x0800
TID1 = 0x0001
FLAGS2_UNICODE = 0xC807  # Unicode, NT status, extended security, signatures, EAs, long names
FLAGS2_OEM = 0x4001  # NT status, long names


def smb1_header(
    cmd: int,
    mid: int,
    *,
    resp: bool = False,
    uid: int = UID,
    tid: int = TID1,
    flags2: int = FLAGS2_UNICODE,
    status: int = 0,
) -> bytes:
    return b"\xffSMB" + struct.pack(
        "<BIBHH8sHHHHH", cmd, status, 0x98 if resp else 0x18, flags2, 0, b"", 0, tid, 0xFEFF, uid, mid
    )


def block(words: bytes, data: bytes) -> bytes:
    assert len(words) % 2 == 0
    return bytes([len(words) // 2]) + words + struct.pack("<H", len(data)) + data


def nbt(*messages: bytes) -> bytes:
    """Each SMB1 message in a direct-TCP / session-message frame, built by scapy."""
    return b"".join(bytes(NBTSession() / Raw(m)) for m in messages)


def u16(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\0\0"


def nt_create_request(mid: int, name: str, *, unicode: bool = True, tid: int = TID1) -> bytes:
    h = smb1_header(0xA2, mid, tid=tid, flags2=FLAGS2_UNICODE if unicode else FLAGS2_OEM)
    raw = u16(name) if unicode else name.encode() + b"\0"
    words = struct.pack("<BBHBHIIIQIIIIIB", 0xFF, 0, 0, 0, len(raw), 0x16, 0, 0x2019F, 0, 0, 3, 1, 0, 2, 0)
    # Unicode names start 2-byte aligned from the header: 32 + 1 + 48 + 2 = 83, so one pad byte.
    return h + block(words, (b"\0" if unicode else b"") + raw)


def nt_create_response(mid: int, fid: int, *, resource_type: int = 2, tid: int = TID1) -> bytes:
    words = struct.pack("<BBHBHIQQQQIQQHHB", 0xFF, 0, 0, 0, fid, 1, 0, 0, 0, 0, 0x80, 4096, 0, resource_type, 0x5FF, 0)
    return smb1_header(0xA2, mid, resp=True, tid=tid) + block(words, b"")


def write_andx(mid: int, fid: int, data: bytes, *, mode: int = 0x0008, tid: int = TID1) -> bytes:
    h = smb1_header(0x2F, mid, tid=tid)
    offset = 32 + 1 + 28 + 2 + 1  # header, WordCount, 14 words, ByteCount, a pad byte
    words = struct.pack("<BBHHIIHHHHHI", 0xFF, 0, 0, fid, 0, 0xFFFFFFFF, mode, len(data), 0, len(data), offset, 0)
    return h + block(words, b"\xee" + data)


def write_andx_response(mid: int, count: int, tid: int = TID1) -> bytes:
    words = struct.pack("<BBHHHHH", 0xFF, 0, 0, count, 0xFFFF, 0, 0)
    return smb1_header(0x2F, mid, resp=True, tid=tid) + block(words, b"")


def read_andx(mid: int, fid: int, tid: int = TID1) -> bytes:
    words = struct.pack("<BBHHIHHIHI", 0xFF, 0, 0, fid, 0, 4280, 4280, 0, 4280, 0)
    return smb1_header(0x2E, mid, tid=tid) + block(words, b"")


def read_andx_response(mid: int, data: bytes, *, status: int = 0, tid: int = TID1) -> bytes:
    offset = 32 + 1 + 24 + 2 + 1
    words = struct.pack("<BBHHHHHHH8s", 0xFF, 0, 0, 0xFFFF, 0, 0, len(data), offset, 0, b"")
    return smb1_header(0x2E, mid, resp=True, tid=tid, status=status) + block(words, b"\0" + data)


def close1(mid: int, fid: int) -> bytes:
    return smb1_header(0x04, mid) + block(struct.pack("<HI", fid, 0xFFFFFFFF), b"")


def close1_response(mid: int) -> bytes:
    return smb1_header(0x04, mid, resp=True) + block(b"", b"")


def tree_connect1(mid: int, path: str, *, unicode: bool = True) -> bytes:
    """TREE_CONNECT_ANDX request ([MS-CIFS] 2.2.4.55.1): no password, the path (Unicode ones 2-byte
    aligned: 32 + 1 + 8 + 2 = 43, so one pad byte), the service "?????" in OEM. (scapy's
    SMBTree_Connect_AndX pads OEM paths too and never writes them in Unicode, so this is struct.)"""
    words = struct.pack("<BBHHH", 0xFF, 0, 0, 0, 0)
    raw = b"\0" + u16(path) if unicode else path.encode() + b"\0"
    return smb1_header(0x75, mid, tid=0, flags2=FLAGS2_UNICODE if unicode else FLAGS2_OEM) + block(
        words, raw + b"?????\0"
    )


def tree_connect1_response(mid: int, tid: int, service: str = "IPC") -> bytes:
    words = struct.pack("<BBHH", 0xFF, 0, 0, 1)
    return smb1_header(0x75, mid, resp=True, tid=tid, flags2=FLAGS2_OEM) + block(words, service.encode() + b"\0")


def smb1_session_setup() -> Stream:
    """SESSION_SETUP_ANDX with extended security, by scapy: an SPNEGO-wrapped NTLMSSP AUTHENTICATE."""
    req = SMB_Header(Command=0x73, Flags2="UNICODE+NT_STATUS+EXTENDED_SECURITY", UID=UID, MID=1) / (
        SMBSession_Setup_AndX_Request_Extended_Security(SecurityBlob=ntlm_auth("bob", "DOM", "PC7"))
    )
    resp = smb1_header(0x73, 1, resp=True, tid=0) + block(struct.pack("<BBHHH", 0xFF, 0, 0, 0, 0), b"")
    return [(True, nbt(bytes(req))), (False, nbt(resp))]


def smb1_pipe_session() -> Stream:
    return [
        *smb1_session_setup(),
        (True, nbt(tree_connect1(2, "\\\\SRV\\IPC$"))),
        (False, nbt(tree_connect1_response(2, TID1))),
        (True, nbt(nt_create_request(3, "\\srvsvc"))),
        (False, nbt(nt_create_response(3, 0x4000))),
        (True, nbt(write_andx(4, 0x4000, BIND))),
        (False, nbt(write_andx_response(4, len(BIND)))),
        (True, nbt(read_andx(5, 0x4000))),
        (False, nbt(read_andx_response(5, BIND_ACK))),
        (True, nbt(transact_nmpipe(6, 0x4000, REQUEST))),
        (False, nbt(transact_nmpipe_response(6, b"\x05\x00\x02\x03" + bytes(20)))),
        (True, nbt(close1(7, 0x4000))),
        (False, nbt(close1_response(7))),
    ]


def transact_nmpipe(mid: int, fid: int, data: bytes, *, total: int | None = None) -> bytes:
    """TRANSACTION TransactNmPipe ([MS-CIFS] 2.2.4.33.1, 2.2.5.6): Setup 0x0026 and the FID, name
    \\PIPE\\, data 4-byte aligned. (scapy's SMBTransaction_Request miscounts WordCount and
    SetupCount, so this is struct.)"""
    name = b"\\PIPE\\\0"
    off = (32 + 1 + 32 + 2 + len(name) + 3) // 4 * 4
    words = struct.pack(
        "<HHHHBBHIHHHHHBBHH", 0, total or len(data), 0, 4280, 0, 0, 0, 0, 0, 0, off, len(data), off, 2, 0, 0x26, fid
    )
    pad = bytes(off - (32 + 1 + 32 + 2 + len(name)))
    return smb1_header(0x25, mid, flags2=FLAGS2_OEM) + block(words, name + pad + data)


def transact_secondary(mid: int, data: bytes, total: int, displacement: int) -> bytes:
    off = 32 + 1 + 16 + 2 + 1
    words = struct.pack("<HHHHHHHH", 0, total, 0, off, 0, len(data), off, displacement)
    return smb1_header(0x26, mid, flags2=FLAGS2_OEM) + block(words, b"\0" + data)


def transact_nmpipe_response(mid: int, data: bytes) -> bytes:
    off = 32 + 1 + 20 + 2 + 1
    words = struct.pack("<HHHHHHHHHBB", 0, len(data), 0, 0, off, 0, len(data), off, 0, 0, 0)
    return smb1_header(0x25, mid, resp=True, flags2=FLAGS2_OEM) + block(words, b"\0" + data)


# -- SMB2 tests ---------------------------------------------------------------------------------


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


RELATED = 0x4  # SMB2_FLAGS_RELATED_OPERATIONS
PREVIOUS = (0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)  # the FileId of the previous command of a compound


def compound_stream() -> Stream:
    """CREATE + WRITE + READ in one compound, the last two related (FileId all ones), and the answers
    compounded the same way."""
    request = compound(
        hdr(3) / SMB2_Create_Request(Name="lsarpc"),
        hdr(4, flags=RELATED) / SMB2_Write_Request(FileId=file_id(PREVIOUS), Data=BIND),
        hdr(5, flags=RELATED) / SMB2_Read_Request(FileId=file_id(PREVIOUS), Length=1024),
    )
    response = compound(
        hdr(3, resp=True) / SMB2_Create_Response(FileId=file_id(PIPE_B)),
        hdr(4, resp=True, flags=RELATED) / SMB2_Write_Response(Count=len(BIND)),
        hdr(5, resp=True, flags=RELATED) / SMB2_Read_Response(Data=BIND_ACK),
    )
    return [*smb2_setup(), (True, request), (False, response)]


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


def async_stream() -> Stream:
    """A pipe READ answered first by an interim STATUS_PENDING, then (after a WRITE) by the data."""
    return [
        *smb2_setup(),
        *smb2_open(3, "srvsvc", PIPE_A),
        (True, tcp(hdr(4) / SMB2_Read_Request(FileId=file_id(PIPE_A), Length=4280))),
        (False, tcp(async_hdr(4, status=STATUS_PENDING, Command=8) / SMB2_Error_Response())),
        *smb2_write(5, PIPE_A, BIND),
        (False, tcp(async_hdr(4, Command=8) / SMB2_Read_Response(Data=BIND_ACK))),
    ]


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


def test_smb2_capture_started_late() -> None:
    """No TREE_CONNECT seen: a well-known name is a pipe, an unfamiliar one becomes one when its data
    is DCE/RPC or it is used with FSCTL_PIPE_TRANSCEIVE, a file whose data is not stays ignored, and a
    transceive on a handle whose CREATE was never seen is delivered without a name."""
    ioctl = SMB2_IOCTL_Request(CtlCode=FSCTL_PIPE_TRANSCEIVE, FileId=file_id((7, 7)), Input=REQUEST)
    stream = [
        *smb2_open(3, "lsarpc", PIPE_A, tid=9),
        *smb2_open(4, "RpcProxyPipe", PIPE_B, tid=9),
        *smb2_open(5, "notes.txt", (3, 3), tid=9),
        *smb2_write(6, (3, 3), b"just some text in a text file"),
        *smb2_write(7, PIPE_B, BIND, tid=9),
        *smb2_write(8, (3, 3), BIND, tid=9),
        (True, tcp(hdr(9, tid=9) / ioctl)),
    ]
    rec, _ = run(stream)
    assert [e[1:] for e in rec.of("open")] == [
        (key2(PIPE_A), "\\PIPE\\lsarpc", None),
        (key2(PIPE_B), "\\PIPE\\RpcProxyPipe", None),
    ]
    assert rec.of("data") == [("data", key2(PIPE_B), True, BIND), ("data", key2((7, 7)), True, REQUEST)]


def test_smb2_multichannel_keys_join_connections() -> None:
    """The CREATE on one connection, the WRITE on a second, the READ on a third: same key."""
    rec_a, _ = run(smb2_setup() + smb2_open(3, "srvsvc", PIPE_A))
    rec_b, _ = run(smb2_write(9, PIPE_A, BIND, tid=TID_IPC))
    rec_c, _ = run(smb2_read(31, PIPE_A, BIND_ACK, tid=TID_IPC))
    k = key2(PIPE_A)
    assert rec_a.of("open") == [("open", k, "\\PIPE\\srvsvc", "\\\\srv\\IPC$")]
    assert rec_b.of("data") == [("data", k, True, BIND)]
    assert rec_c.of("data") == [("data", k, False, BIND_ACK)]


def test_smb2_disk_share_file_copy_is_not_buffered() -> None:
    """1 MiB written and read back on a disk share, with a pipe busy on the same connection."""
    chunk = bytes(range(256)) * 256  # 64 KiB, starts like nothing in particular
    stream = [
        *smb2_setup(),
        (True, tcp(hdr(3, tid=0) / SMB2_Tree_Connect_Request(Path="\\\\srv\\data"))),
        (False, tcp(hdr(3, resp=True, tid=TID_DISK) / SMB2_Tree_Connect_Response(ShareType=1))),
        *smb2_open(4, "big.bin", (40, 40), tid=TID_DISK),
        *smb2_open(5, "srvsvc", PIPE_A),
    ]
    mid = 6
    for i in range(16):
        stream += smb2_write(mid, (40, 40), BIND + chunk, tid=TID_DISK)
        stream += smb2_read(mid + 1, (40, 40), chunk, tid=TID_DISK)
        mid += 2
        if i == 8:
            stream += smb2_write(mid, PIPE_A, BIND)
            mid += 1
    rec, conn = run(stream)
    assert rec.of("data") == [("data", key2(PIPE_A), True, BIND)]
    assert conn.bulk_bytes >= 2 * 16 * len(chunk)
    assert conn.peak_buffered < 1024
    # and the same when every message arrives in pieces
    rec2, conn2 = run(stream, cuts=(1, 5, 100, 333, 998))
    assert rec2.events == rec.events and conn2.peak_buffered < 1024


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


def test_encrypted_transform_reported_once_per_session() -> None:
    def sealed(sid: int) -> bytes:
        return bytes(DirectTCP() / SMB2_Transform_Header(SessionId=sid, OriginalMessageSize=100) / Raw(bytes(100)))

    rec, conn = run([*smb2_setup(), (True, sealed(SID)), (False, sealed(SID)), (True, sealed(SID + 1))])
    assert rec.of("encrypted") == [("encrypted", SID), ("encrypted", SID + 1)]
    assert conn.encrypted_messages == 3 and not rec.of("violation")


def test_compression_transform_is_a_violation() -> None:
    packed = bytes(DirectTCP() / SMB2_Compression_Transform_Header(OriginalCompressedSegmentSize=50) / Raw(bytes(40)))
    rec, conn = run([(True, packed), (True, packed), *smb2_setup()])
    assert rec.of("violation") == [("violation", "smb_compressed")]
    assert conn.compressed_messages == 2 and len(rec.of("identity")) == 1


# -- SMB1 tests ---------------------------------------------------------------------------------


def key1(fid: int, uid: int = UID) -> PipeKey:
    return (1, uid, struct.pack("<H", fid))


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


def andx_chain(header: bytes, *blocks: tuple[int, bytes]) -> bytes:
    """(command, parameter block) pairs after one header; each block's AndXCommand and AndXOffset
    are set to point at the next one ([MS-CIFS] 2.2.3.4). The header names the first command."""
    out = bytearray(header)
    starts = []
    for _command, b in blocks:
        starts.append(len(out))
        out += b
    for i, at in enumerate(starts[:-1]):
        struct.pack_into("<BBH", out, at + 1, blocks[i + 1][0], 0, starts[i + 1])
    return bytes(out)


def session_setup_tree_connect(mid: int, account: str, domain: str, path: str) -> bytes:
    """SESSION_SETUP_ANDX (NT LM 0.12 without extended security: the account in clear, OEM) chained
    with TREE_CONNECT_ANDX, Uid 0: the server assigns it in the response."""
    setup_words = struct.pack("<BBHHHHIHHII", 0xFF, 0, 0, 4356, 50, 0, 0, 0, 0, 0, 0x5C)
    setup = block(setup_words, f"{account}\0{domain}\0Unix\0Samba\0".encode())
    tc = block(struct.pack("<BBHHH", 0xFF, 0, 0, 0, 1), b"\0" + path.encode() + b"\0?????\0")
    return andx_chain(smb1_header(0x73, mid, uid=0, tid=0, flags2=FLAGS2_OEM), (0x73, setup), (0x75, tc))


def session_setup_tree_connect_response(mid: int, uid: int, tid: int) -> bytes:
    setup = block(struct.pack("<BBHH", 0xFF, 0, 0, 0), b"Unix\0Samba\0WORKGRP\0")
    tc = block(struct.pack("<BBHH", 0xFF, 0, 0, 1), b"IPC\0")
    header = smb1_header(0x73, mid, resp=True, uid=uid, tid=tid, flags2=FLAGS2_OEM)
    return andx_chain(header, (0x73, setup), (0x75, tc))


CHAIN_UID = 0x77


def smb1_chain_stream() -> Stream:
    """SESSION_SETUP_ANDX + TREE_CONNECT_ANDX in one message (OEM strings), then an OEM-named
    NT_CREATE_ANDX of \\PIPE\\lsarpc on the new tree and a WRITE_ANDX."""
    create = bytearray(nt_create_request(2, "\\PIPE\\lsarpc", unicode=False, tid=3))
    struct.pack_into("<H", create, 28, CHAIN_UID)
    write = bytearray(write_andx(3, 0x4001, BIND, tid=3))
    struct.pack_into("<H", write, 28, CHAIN_UID)
    return [
        (True, nbt(session_setup_tree_connect(1, "carol", "WORKGRP", "\\\\SRV\\IPC$"))),
        (False, nbt(session_setup_tree_connect_response(1, CHAIN_UID, 3))),
        (True, nbt(bytes(create))),
        (False, nbt(nt_create_response(2, 0x4001, resource_type=0, tid=3))),
        (True, nbt(bytes(write))),
    ]


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


def secondary_stream() -> Stream:
    """A TransactNmPipe whose data does not fit: the rest follows in TRANSACTION_SECONDARY."""
    return [
        (True, nbt(tree_connect1(2, "\\\\SRV\\IPC$"))),
        (False, nbt(tree_connect1_response(2, TID1))),
        (True, nbt(transact_nmpipe(6, 0x4005, BIND[:30], total=len(BIND)))),
        (False, nbt(smb1_header(0x25, 6, resp=True, flags2=FLAGS2_OEM) + block(b"", b""))),  # interim
        (True, nbt(transact_secondary(6, BIND[30:], len(BIND), 30))),
        (False, nbt(transact_nmpipe_response(6, BIND_ACK))),
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


def netbios_stream() -> Stream:
    """RFC 1002 session request and positive response, a keep-alive, then SMB1 session messages."""
    called = b"\x20" + b"CKFDENECFDEFFCFGEFFCCACACACACACA" + b"\x00"
    session_request = bytes(NBTSession(TYPE=0x81) / Raw(called + called))
    positive = bytes(NBTSession(TYPE=0x82))
    keepalive = bytes(NBTSession(TYPE=0x85))
    return [(True, session_request), (False, positive), (True, keepalive), *smb1_pipe_session()]


def test_netbios_139_session_request() -> None:
    rec, _ = run(netbios_stream(), netbios=True)
    plain, _ = run(smb1_pipe_session(), netbios=True)
    assert rec.events == plain.events
    assert len(rec.of("data")) == 4 and not rec.of("violation")


def test_memoryview_and_bytearray_input() -> None:
    whole, _ = run(smb2_pipe_session())
    rec = Recorder()
    conn = SmbConnection(rec, Limits())
    for i, (from_client, data) in enumerate(smb2_pipe_session()):
        conn.data(from_client, memoryview(data) if i % 2 else bytearray(data), i + 1, (i + 1) * 1000)
    assert rec.events == whole.events


# -- robustness ---------------------------------------------------------------------------------


def concat(stream: Stream) -> tuple[bytes, bytes]:
    return b"".join(d for c, d in stream if c), b"".join(d for c, d in stream if not c)


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


def sealed_stream() -> Stream:
    sealed = bytes(DirectTCP() / SMB2_Transform_Header(SessionId=SID) / Raw(bytes(64)))
    return [*smb2_setup(), (True, sealed), *smb2_open(3, "lsarpc", PIPE_B), *smb2_read(4, PIPE_B, BIND_ACK)]


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


def test_canonical_pipe_names() -> None:
    assert canonical_pipe_name("lsarpc") == "\\PIPE\\lsarpc"
    assert canonical_pipe_name("\\lsarpc") == "\\PIPE\\lsarpc"
    assert canonical_pipe_name("\\PIPE\\lsarpc\x00") == "\\PIPE\\lsarpc"
    assert canonical_pipe_name("\\pipe\\atsvc") == "\\PIPE\\atsvc"


# -- real captures ------------------------------------------------------------------------------


@dataclass
class _CaptureRun:
    names: dict[PipeKey, str] = field(default_factory=dict)
    binds: set[tuple[int, str, int, str, int, int, int, str]] = field(default_factory=set)
    bind_pipes: dict[tuple[int, str, int, str, int, int, int, str], str | None] = field(default_factory=dict)
    pipe_names: set[tuple[str, int, str, int, str]] = field(default_factory=set)
    violations: list[tuple[int, str, str]] = field(default_factory=list)
    streams: dict[tuple[PipeKey, bool, Any], Any] = field(default_factory=dict)
    conn: tuple[str, int, str, int] = ("", 0, "", 0)


class _CaptureEvents:
    """Frames DCE/RPC from pipe data per (key, direction), as the pipeline will."""

    def __init__(self, out: _CaptureRun) -> None:
        self.out = out

    def pipe_open(self, key: PipeKey, name: str, tree: str | None, frame: int, ts: int) -> None:
        self.out.names[key] = name
        c = self.out.conn
        self.out.pipe_names.add((c[0], c[1], c[2], c[3], name.lower()))

    def pipe_data(self, key: PipeKey, from_client: bool, data: bytes, frame: int, ts: int) -> None:
        from analyzer.dcerpc.pdu import Bind
        from analyzer.dcerpc.stream import CoStream

        out = self.out
        # SMB2 keys name a pipe across the channels of a session; SMB1 ones only within a connection.
        sk = (key, from_client, out.conn if key[0] == 1 else None)
        stream = out.streams.get(sk)
        if stream is None:

            def on_pdu(pdu: Any, done: int, ts: int, first: int) -> None:
                if from_client and isinstance(pdu, Bind):
                    conn = out.conn  # the connection whose data completed the PDU
                    for c in pdu.contexts:
                        k = (done, conn[0], conn[1], conn[2], conn[3], pdu.header.call_id, c.ctx_id, c.abstract.uuid)
                        out.binds.add(k)
                        out.bind_pipes[k] = out.names.get(key)

            stream = out.streams[sk] = CoStream(on_pdu, lambda f, w, d: None, Limits())
        stream.data(data, frame, ts)

    def pipe_close(self, key: PipeKey, frame: int, ts: int) -> None:
        pass

    def session_identity(self, dialect: int, session_id: int, identity: NtlmIdentity, frame: int) -> None:
        pass

    def encrypted(self, session_id: int, frame: int, ts: int) -> None:
        pass

    def violation(self, frame: int, what: str, detail: str) -> None:
        self.out.violations.append((frame, what, detail))


class _Sink:
    def __init__(
        self, out: _CaptureRun, smb: SmbConnection, from_client: bool, conn: tuple[str, int, str, int]
    ) -> None:
        self.out, self.smb, self.from_client, self.conn = out, smb, from_client, conn

    def data(self, data: bytes, frame: int, ts: int) -> None:
        self.out.conn = self.conn
        self.smb.data(self.from_client, data, frame, ts)

    def gap(self, missing: int, frame: int, ts: int) -> None:
        self.out.conn = self.conn
        self.smb.gap(self.from_client, missing, frame, ts)


def analyse_capture(path: Path) -> tuple[_CaptureRun, list[SmbConnection]]:
    """Every 445/139 connection of a capture through TcpHalf and SmbConnection."""
    from analyzer.capture import PacketDecoder, Selector, open_capture
    from analyzer.capture.decode import ACK, FIN, PROTO_TCP, SYN
    from analyzer.capture.ipfrag import Defragmenter
    from analyzer.tcp import TcpHalf

    out = _CaptureRun()
    events = _CaptureEvents(out)
    limits = Limits()
    selector = Selector()
    selector.tcp_ports.update({445, 139})
    decoder = PacketDecoder(selector, Defragmenter(limits))
    flows: dict[tuple[bytes, int, bytes, int], tuple[SmbConnection, TcpHalf, TcpHalf]] = {}
    frame = 0
    reader = open_capture(str(path))
    try:
        for ts, link, buf, start, end in reader:
            frame += 1
            pkt = decoder.decode(link, buf, start, end, frame, ts)
            if pkt is None or pkt.proto != PROTO_TCP:
                continue
            if pkt.dport in (445, 139):
                fk, from_client = (pkt.src, pkt.sport, pkt.dst, pkt.dport), True
            elif pkt.sport in (445, 139):
                fk, from_client = (pkt.dst, pkt.dport, pkt.src, pkt.sport), False
            else:
                continue
            flow = flows.get(fk)
            if flow is None:
                smb = SmbConnection(events, limits, netbios=fk[3] == 139)
                desc = (str(ipaddress.ip_address(fk[0])), fk[1], str(ipaddress.ip_address(fk[2])), fk[3])
                flow = flows[fk] = (
                    smb,
                    TcpHalf(_Sink(out, smb, True, desc), limits),
                    TcpHalf(_Sink(out, smb, False, desc), limits),
                )
            smb, c2s, s2c = flow
            half, other = (c2s, s2c) if from_client else (s2c, c2s)
            seq = pkt.seq
            if pkt.flags & SYN:
                half.syn(seq)
                seq = (seq + 1) & 0xFFFFFFFF
            if pkt.flags & ACK:
                other.peer_ack(pkt.ack, frame, ts)
            if pkt.payload or pkt.flags & FIN:
                half.segment(seq, pkt.payload, bool(pkt.flags & FIN), frame, ts)
    finally:
        reader.close()
    for smb, c2s, s2c in flows.values():
        c2s.flush(frame, 0)
        s2c.flush(frame, 0)
        smb.close()
    return out, [f[0] for f in flows.values()]


def _truth_captures() -> list[tuple[Path, list[dict[str, str]]]]:
    truth = CAPTURES / "truth"
    out = []
    for f in sorted(truth.glob("*.binds.csv")):
        with f.open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["transport"] in ("smb", "smb2")]
        if not rows:
            continue
        name = f.name[: -len(".binds.csv")]
        path = CAPTURES / name.replace("__", "/")
        if not path.exists():  # a directory whose name contains "__"
            path = next(
                p
                for p in CAPTURES.rglob("*")
                if p.is_file() and p.relative_to(CAPTURES).as_posix().replace("/", "__") == name
            )
        out.append((path, rows))
    return out


def _bind_key(r: dict[str, str]) -> tuple[int, str, int, str, int, int, int, str]:
    return (
        int(r["frame"]),
        r["src_ip"],
        int(r["src_port"]),
        r["dst_ip"],
        int(r["dst_port"]),
        int(r["call_id"]),
        int(r["ctx_id"]),
        r["if_uuid"],
    )


needs_shared = pytest.mark.skipif(
    not (CAPTURES / "truth").is_dir(), reason="../shared/captures (reference captures with tshark truth) is not present"
)


# The pipe a bind_ack names is the server process's endpoint, which hosts several pipes.
_ENDPOINT_OF_PIPE = {
    "\\pipe\\samr": "\\pipe\\lsass",
    "\\pipe\\lsarpc": "\\pipe\\lsass",
    "\\pipe\\netlogon": "\\pipe\\lsass",
    "\\pipe\\protected_storage": "\\pipe\\lsass",
    "\\pipe\\svcctl": "\\pipe\\ntsvcs",
}


@pytest.mark.shared
@needs_shared
def test_real_captures_binds_over_smb_match_truth() -> None:
    """Every smb/smb2 bind row of the truth (frame, addresses, call_id, ctx_id, interface) is framed
    from our pipe_data, no other bind is, and the pipe we opened for it agrees with the endpoint the
    bind_ack names (\\PIPE\\name, or the process that serves it)."""
    found = total = extra = named = agree = 0
    missing: list[str] = []
    disagree: list[str] = []
    for path, rows in _truth_captures():
        out, conns = analyse_capture(path)
        want = {_bind_key(r) for r in rows}
        total += len(want)
        found += len(want & out.binds)
        extra += len(out.binds - want)
        missing += [f"{path.name}: {k}" for k in sorted(want - out.binds)]
        for r in rows:
            pipe = out.bind_pipes.get(_bind_key(r))
            endpoint = r["ack_sec_addr"].lower()
            if pipe is None or not endpoint:
                continue
            named += 1
            if endpoint in (pipe.lower(), _ENDPOINT_OF_PIPE.get(pipe.lower())):
                agree += 1
            else:
                disagree.append(f"{path.name} frame {r['frame']}: opened {pipe}, bind_ack says {endpoint}")
        assert all(c.peak_buffered < 96 * 1024 for c in conns)
    print(f"\nSMB truth bind rows framed from pipe data: {found}/{total}, extra {extra}")
    print(f"pipe names agreeing with the endpoint its bind_ack names: {agree}/{named}")
    assert not missing, missing[:20]
    assert extra == 0
    assert not disagree, disagree[:20]


@pytest.mark.shared
@needs_shared
@pytest.mark.parametrize(
    "rel",
    [
        "Pcaps/psexec_cmd.pcap",
        "Pcaps/impacket_psexec.pcap",
        "suricata-verify/tests/smb2-07/20171220_smb_psexec_add_user.pcap",
        "snort3_demo/tests/inspectors/dce_smb/ip0-tcp10-smb1-dce10.pcap",
        "PCAP-ATTACK/Lateral_Movement/LM_psexec_smb_dcerpc_epm_svcctl.pcapng",
    ],
)
def test_real_capture_pipes(rel: str) -> None:
    """The captures the issue names: they parse without violations and open the pipes tshark sees."""
    path = CAPTURES / rel
    if not path.exists():
        pytest.skip(f"{rel} is not in ../shared/captures")
    out, _ = analyse_capture(path)
    assert not [v for v in out.violations if v[1] not in ("smb_gap", "smb_resync", "smb_truncated")]
    if "smb1-dce10" in rel:
        assert {n[4] for n in out.pipe_names} and out.binds
    if "psexec_add_user" in rel or "impacket_psexec" in rel:
        assert "\\pipe\\svcctl" in {n[4] for n in out.pipe_names}
