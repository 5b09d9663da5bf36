"""Encoders and helpers the SMB layer tests share (tests/test_smb*.py): recording SmbEvents, feeding a
stream to an SmbConnection, SMB2 messages built with scapy, SMB1 and TRANSACTION messages built with struct,
NetBIOS session packets, and the streams the robustness properties run over.

Traffic is built with scapy's own SMB2, SMB and NetBIOS layers where scapy has the message and
builds it right (every SMB2 command, the transform headers, SMB1 SESSION_SETUP_ANDX, NetBIOS
session packets), and with struct from [MS-CIFS] where it has not: NT_CREATE_ANDX, WRITE_ANDX,
READ_ANDX, CLOSE, core READ/WRITE, TREE_CONNECT_ANDX and TRANSACTION (scapy pads OEM paths and
miscounts a transaction's WordCount and SetupCount) and AndX chains; the parameter/data blocks, Unicode
strings and NetBIOS names come from the samples' encoders (samples/wire). All are encoders independent
of the decoder under test; the struct ones were checked against tshark 4.0.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from analyzer.limits import Limits
from analyzer.ntlm import NtlmIdentity
from analyzer.smb import PipeKey, SmbConnection
from samples.wire.netbios import netbios_name
from samples.wire.smb1 import smb1_block, uni

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
    SMB2_Create_Request,
    SMB2_Create_Response,
    SMB2_Error_Response,
    SMB2_Header,
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


def nbt(*messages: bytes) -> bytes:
    """Each SMB1 message in a direct-TCP / session-message frame, built by scapy."""
    return b"".join(bytes(NBTSession() / Raw(m)) for m in messages)


def nt_create_request(mid: int, name: str, *, unicode: bool = True, tid: int = TID1) -> bytes:
    h = smb1_header(0xA2, mid, tid=tid, flags2=FLAGS2_UNICODE if unicode else FLAGS2_OEM)
    raw = uni(name) if unicode else name.encode() + b"\0"
    words = struct.pack("<BBHBHIIIQIIIIIB", 0xFF, 0, 0, 0, len(raw), 0x16, 0, 0x2019F, 0, 0, 3, 1, 0, 2, 0)
    # Unicode names start 2-byte aligned from the header: 32 + 1 + 48 + 2 = 83, so one pad byte.
    return h + smb1_block(words, (b"\0" if unicode else b"") + raw)


def nt_create_response(mid: int, fid: int, *, resource_type: int = 2, tid: int = TID1) -> bytes:
    words = struct.pack("<BBHBHIQQQQIQQHHB", 0xFF, 0, 0, 0, fid, 1, 0, 0, 0, 0, 0x80, 4096, 0, resource_type, 0x5FF, 0)
    return smb1_header(0xA2, mid, resp=True, tid=tid) + smb1_block(words, b"")


def write_andx(mid: int, fid: int, data: bytes, *, mode: int = 0x0008, tid: int = TID1) -> bytes:
    h = smb1_header(0x2F, mid, tid=tid)
    offset = 32 + 1 + 28 + 2 + 1  # header, WordCount, 14 words, ByteCount, a pad byte
    words = struct.pack("<BBHHIIHHHHHI", 0xFF, 0, 0, fid, 0, 0xFFFFFFFF, mode, len(data), 0, len(data), offset, 0)
    return h + smb1_block(words, b"\xee" + data)


def write_andx_response(mid: int, count: int, tid: int = TID1) -> bytes:
    words = struct.pack("<BBHHHHH", 0xFF, 0, 0, count, 0xFFFF, 0, 0)
    return smb1_header(0x2F, mid, resp=True, tid=tid) + smb1_block(words, b"")


def read_andx(mid: int, fid: int, tid: int = TID1) -> bytes:
    words = struct.pack("<BBHHIHHIHI", 0xFF, 0, 0, fid, 0, 4280, 4280, 0, 4280, 0)
    return smb1_header(0x2E, mid, tid=tid) + smb1_block(words, b"")


def read_andx_response(mid: int, data: bytes, *, status: int = 0, tid: int = TID1) -> bytes:
    offset = 32 + 1 + 24 + 2 + 1
    words = struct.pack("<BBHHHHHHH8s", 0xFF, 0, 0, 0xFFFF, 0, 0, len(data), offset, 0, b"")
    return smb1_header(0x2E, mid, resp=True, tid=tid, status=status) + smb1_block(words, b"\0" + data)


def close1(mid: int, fid: int) -> bytes:
    return smb1_header(0x04, mid) + smb1_block(struct.pack("<HI", fid, 0xFFFFFFFF), b"")


def close1_response(mid: int) -> bytes:
    return smb1_header(0x04, mid, resp=True) + smb1_block(b"", b"")


def tree_connect1(mid: int, path: str, *, unicode: bool = True) -> bytes:
    """TREE_CONNECT_ANDX request ([MS-CIFS] 2.2.4.55.1): no password, the path (Unicode ones 2-byte
    aligned: 32 + 1 + 8 + 2 = 43, so one pad byte), the service "?????" in OEM. (scapy's
    SMBTree_Connect_AndX pads OEM paths too and never writes them in Unicode, so this is struct.)"""
    words = struct.pack("<BBHHH", 0xFF, 0, 0, 0, 0)
    raw = b"\0" + uni(path) if unicode else path.encode() + b"\0"
    return smb1_header(0x75, mid, tid=0, flags2=FLAGS2_UNICODE if unicode else FLAGS2_OEM) + smb1_block(
        words, raw + b"?????\0"
    )


def tree_connect1_response(mid: int, tid: int, service: str = "IPC") -> bytes:
    words = struct.pack("<BBHH", 0xFF, 0, 0, 1)
    return smb1_header(0x75, mid, resp=True, tid=tid, flags2=FLAGS2_OEM) + smb1_block(words, service.encode() + b"\0")


def smb1_session_setup() -> Stream:
    """SESSION_SETUP_ANDX with extended security, by scapy: an SPNEGO-wrapped NTLMSSP AUTHENTICATE."""
    req = SMB_Header(Command=0x73, Flags2="UNICODE+NT_STATUS+EXTENDED_SECURITY", UID=UID, MID=1) / (
        SMBSession_Setup_AndX_Request_Extended_Security(SecurityBlob=ntlm_auth("bob", "DOM", "PC7"))
    )
    resp = smb1_header(0x73, 1, resp=True, tid=0) + smb1_block(struct.pack("<BBHHH", 0xFF, 0, 0, 0, 0), b"")
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
    return smb1_header(0x25, mid, flags2=FLAGS2_OEM) + smb1_block(words, name + pad + data)


def transact_secondary(mid: int, data: bytes, total: int, displacement: int) -> bytes:
    off = 32 + 1 + 16 + 2 + 1
    words = struct.pack("<HHHHHHHH", 0, total, 0, off, 0, len(data), off, displacement)
    return smb1_header(0x26, mid, flags2=FLAGS2_OEM) + smb1_block(words, b"\0" + data)


def transact_nmpipe_response(mid: int, data: bytes) -> bytes:
    off = 32 + 1 + 20 + 2 + 1
    words = struct.pack("<HHHHHHHHHBB", 0, len(data), 0, 0, off, 0, len(data), off, 0, 0, 0)
    return smb1_header(0x25, mid, resp=True, flags2=FLAGS2_OEM) + smb1_block(words, b"\0" + data)


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


def key1(fid: int, uid: int = UID) -> PipeKey:
    return (1, uid, struct.pack("<H", fid))


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
    setup = smb1_block(setup_words, f"{account}\0{domain}\0Unix\0Samba\0".encode())
    tc = smb1_block(struct.pack("<BBHHH", 0xFF, 0, 0, 0, 1), b"\0" + path.encode() + b"\0?????\0")
    return andx_chain(smb1_header(0x73, mid, uid=0, tid=0, flags2=FLAGS2_OEM), (0x73, setup), (0x75, tc))


def session_setup_tree_connect_response(mid: int, uid: int, tid: int) -> bytes:
    setup = smb1_block(struct.pack("<BBHH", 0xFF, 0, 0, 0), b"Unix\0Samba\0WORKGRP\0")
    tc = smb1_block(struct.pack("<BBHH", 0xFF, 0, 0, 1), b"IPC\0")
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


def secondary_stream() -> Stream:
    """A TransactNmPipe whose data does not fit: the rest follows in TRANSACTION_SECONDARY."""
    return [
        (True, nbt(tree_connect1(2, "\\\\SRV\\IPC$"))),
        (False, nbt(tree_connect1_response(2, TID1))),
        (True, nbt(transact_nmpipe(6, 0x4005, BIND[:30], total=len(BIND)))),
        (False, nbt(smb1_header(0x25, 6, resp=True, flags2=FLAGS2_OEM) + smb1_block(b"", b""))),  # interim
        (True, nbt(transact_secondary(6, BIND[30:], len(BIND), 30))),
        (False, nbt(transact_nmpipe_response(6, BIND_ACK))),
    ]


def netbios_stream() -> Stream:
    """RFC 1002 session request and positive response, a keep-alive, then SMB1 session messages."""
    called = netbios_name("*SMBSERVER", 0x20)  # first-level encoded: CKFDENECFDEFFCFGEFFCCACACACACACA
    session_request = bytes(NBTSession(TYPE=0x81) / Raw(called + called))
    positive = bytes(NBTSession(TYPE=0x82))
    keepalive = bytes(NBTSession(TYPE=0x85))
    return [(True, session_request), (False, positive), (True, keepalive), *smb1_pipe_session()]


def concat(stream: Stream) -> tuple[bytes, bytes]:
    return b"".join(d for c, d in stream if c), b"".join(d for c, d in stream if not c)


def sealed_stream() -> Stream:
    sealed = bytes(DirectTCP() / SMB2_Transform_Header(SessionId=SID) / Raw(bytes(64)))
    return [*smb2_setup(), (True, sealed), *smb2_open(3, "lsarpc", PIPE_B), *smb2_read(4, PIPE_B, BIND_ACK)]
