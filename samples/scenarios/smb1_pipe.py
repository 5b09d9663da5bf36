"""smb1_pipe.pcap: SMB1 pipe carriers (samples/README.md)."""

from __future__ import annotations

from ..wire.assoc import Assoc
from ..wire.capture import Capture, save_pcap
from ..wire.dcerpc import CtxItem
from ..wire.ids import NDR
from ..wire.ndr import Ndr
from ..wire.smb1 import Smb1Conn, Smb1Pipe
from ..wire.tcp import TcpFlow


def srvs_share_enum(le: bool = True) -> bytes:
    """[MS-SRVS] 3.1.4.8 NetrShareEnum in: ServerName, SHARE_ENUM_STRUCT (level 1, empty container),
    PreferedMaximumLength, ResumeHandle."""
    return (
        Ndr(le)
        .ptr()
        .wstr("\\\\SRV01")
        .align(4)
        .u32(1)
        .u32(1)
        .ptr()
        .u32(0)
        .ptr(null=True)
        .u32(0xFFFFFFFF)
        .ptr()
        .u32(0)
        .bytes()
    )


def srvs_share_enum_resp(le: bool = True) -> bytes:
    shares = [
        ("ADMIN$", 0x80000000, "Remote Admin"),
        ("C$", 0x80000000, "Default share"),
        ("IPC$", 0x80000003, "Remote IPC"),
    ]
    n = Ndr(le, ref=0x00020000).u32(1).u32(1).ptr().u32(len(shares)).ptr().u32(len(shares))
    for _name, typ, _remark in shares:
        n.ptr().u32(typ).ptr()
    for name, _typ, remark in shares:
        n.wstr(name).align(4).wstr(remark).align(4)
    return n.u32(len(shares)).ptr().u32(0).u32(0).bytes()


def srvs_server_get_info(le: bool = True) -> bytes:
    """[MS-SRVS] 3.1.4.17 NetrServerGetInfo in: ServerName, Level 101."""
    return Ndr(le).ptr().wstr("\\\\SRV01").align(4).u32(101).bytes()


def srvs_server_get_info_resp(le: bool = True) -> bytes:
    n = Ndr(le, ref=0x00020000).u32(101).ptr().u32(500).ptr().u32(10).u32(0).u32(0x00009003).ptr()
    return n.wstr("SRV01").align(4).wstr("").align(4).u32(0).bytes()


def make_smb1_pipe() -> None:
    cap = Capture(
        "smb1_pipe.pcap",
        "DCE/RPC over an SMB1 named pipe: NT_CREATE_ANDX of \\srvsvc, a bind and a call inside TRANSACTION "
        "TransactNmPipe, then a call through WRITE_ANDX with a chained READ_ANDX.",
        seed=71,
    )
    ws, srv = cap.h["ws02"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49775, srv, 445)
    f.handshake()
    c = Smb1Conn(cap, f)
    c.negotiate(cap.rng)
    c.session_setup(cap.rng, "dave", "CORP", "WS02")
    c.tree_connect("\\\\SRV01\\IPC$")
    fid = 0x4000
    c.nt_create("\\srvsvc", fid)
    pipe = Smb1Pipe(c, fid, "\\srvsvc")
    a = Assoc(cap, pipe, assoc_group=0x7B01)
    a.bind(1, [CtxItem(0, "srvsvc", [NDR])], sec_addr="\\PIPE\\srvsvc", max_frag=4280)
    a.call(2, 0, 15, srvs_share_enum(), srvs_share_enum_resp(), name="NetrShareEnum")
    pipe.mode = "andx"
    a.call(3, 0, 21, srvs_server_get_info(), srvs_server_get_info_resp(), name="NetrServerGetInfo")
    c.close(fid)
    f.close()
    save_pcap(cap)
