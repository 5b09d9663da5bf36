"""netbios139.pcap: SMB over the NetBIOS session service on TCP 139 (samples/README.md)."""

from __future__ import annotations

from ..wire.assoc import Assoc
from ..wire.capture import Capture, save_pcap
from ..wire.dcerpc import CtxItem
from ..wire.ids import NDR
from ..wire.ndr import Ndr
from ..wire.netbios import nbss, netbios_name
from ..wire.smb1 import SMB_COM_NEGOTIATE, smb1_block, smb1_header
from ..wire.smb2 import Smb2Conn, Smb2Pipe, smb2_file_id
from ..wire.tcp import TcpFlow


def wkst_get_info(le: bool = True) -> bytes:
    """[MS-WKST] 3.2.4.1 NetrWkstaGetInfo in: ServerName, Level 100."""
    return Ndr(le).ptr().wstr("\\\\SRV01").align(4).u32(100).bytes()


def wkst_get_info_resp(le: bool = True) -> bytes:
    n = Ndr(le, ref=0x00020000).u32(100).ptr().u32(500).ptr().ptr().u32(10).u32(0)
    return n.wstr("SRV01").align(4).wstr("CORP").align(4).u32(0).bytes()


def make_netbios139() -> None:
    cap = Capture(
        "netbios139.pcap",
        "SMB over the NetBIOS session service on TCP 139: session request/positive response, an SMB1 "
        "multi-protocol NEGOTIATE answered in SMB2, then wkssvc over an SMB2 pipe with IOCTL.",
        seed=72,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49778, srv, 139)
    f.handshake()
    f.send("c", nbss(netbios_name("SRV01", 0x20) + netbios_name("WS01", 0x00), 0x81), "NBSS session request")
    f.send("s", nbss(b"", 0x82), "NBSS positive session response")
    c = Smb2Conn(cap, f)
    dialects = ["NT LM 0.12", "SMB 2.002", "SMB 2.???"]
    f.send(
        "c",
        nbss(
            smb1_header(SMB_COM_NEGOTIATE) + smb1_block(b"", b"".join(b"\x02" + d.encode() + b"\0" for d in dialects))
        ),
        "SMB NEGOTIATE request (multi-protocol)",
    )
    c.negotiate_response(cap.rng, 0, 0x02FF, 0x7, 65536, "dialect 0x02ff (wildcard: continue in SMB2)")
    c.mid = 1
    c.negotiate(cap.rng, dialect=0x0210)
    c.session_setup(cap.rng, "erin", "CORP", "WS01")
    c.tree_connect("\\\\SRV01\\IPC$")
    fid = smb2_file_id(0x0000000000000021, 0x00000000BEEF0021)
    c.create("wkssvc", fid)
    a = Assoc(cap, Smb2Pipe(c, fid, "wkssvc", "ioctl"), assoc_group=0x7C01)
    a.bind(1, [CtxItem(0, "wkssvc", [NDR])], sec_addr="\\PIPE\\wkssvc", max_frag=4280)
    a.call(2, 0, 0, wkst_get_info(), wkst_get_info_resp(), name="NetrWkstaGetInfo")
    c.close(fid)
    f.close()
    save_pcap(cap)
