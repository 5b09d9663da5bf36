"""smb2_pipes.pcap: DCE/RPC over three SMB2 named pipes (samples/README.md)."""

from __future__ import annotations

from ..wire.assoc import Assoc
from ..wire.capture import Capture, save_pcap
from ..wire.dcerpc import CtxItem
from ..wire.ids import NDR, btfn, zero_uuid
from ..wire.ndr import Ndr
from ..wire.smb2 import SMB2_FLAGS_RELATED, SMB2_READ, SMB2_WRITE, Smb2Conn, Smb2Pipe, smb2_file_id, smb2_header
from ..wire.stubs import handle_status, scmr_handle_call, scmr_open_scmanager
from ..wire.tcp import TcpFlow


def lsa_open_policy2(le: bool = True) -> bytes:
    """[MS-LSAD] 3.1.4.4.1 LsarOpenPolicy2 in: SystemName, LSAPR_OBJECT_ATTRIBUTES (with a security quality of
    service), DesiredAccess."""
    n = Ndr(le).ptr().wstr("\\\\SRV01").align(4)
    n.u32(24).ptr(null=True).ptr(null=True).u32(0).ptr(null=True).ptr()
    n.u32(12).u16(2).u8(1).u8(0)
    return n.align(4).u32(0x02000000).bytes()


def samr_connect5(le: bool = True) -> bytes:
    """[MS-SAMR] 3.1.5.1.1 SamrConnect5 in: ServerName, DesiredAccess, InVersion 1, SAMPR_REVISION_INFO_V1."""
    return Ndr(le).ptr().wstr("\\\\SRV01").align(4).u32(0x02000000).u32(1).u32(1).u32(3).u32(0).bytes()


def samr_connect5_resp(handle: str, le: bool = True) -> bytes:
    return Ndr(le).u32(1).u32(1).u32(3).u32(0).handle(handle).u32(0).bytes()


def compounded_open_scmanager(c: Smb2Conn, svc: Assoc, fid: bytes) -> str:
    """ROpenSCManagerW as a WRITE + READ compound (the READ related, FileId all ones: [MS-SMB2] 3.2.4.1.4),
    answered in one compound; returns the SCM handle."""
    req, resp, h = scmr_open_scmanager()
    rq = svc.request_pdus(2, 0, 15, req)[0]
    rs = svc.response_pdus(2, 0, resp)[0]
    mid = c.mid
    c.mid += 2
    ff = b"\xff" * 16
    rqf = c.compound(
        "c",
        [
            smb2_header(SMB2_WRITE, mid, session=c.session, tree=c.tree) + c.write_req(fid, rq),
            smb2_header(SMB2_READ, mid + 1, session=c.session, tree=c.tree, flags=SMB2_FLAGS_RELATED) + c.read_req(ff),
        ],
        "SMB2 WRITE+READ compound request (request call_id=2 opnum=15)",
    )
    rsf = c.compound(
        "s",
        [
            smb2_header(SMB2_WRITE, mid, resp=True, session=c.session, tree=c.tree) + c.write_resp(len(rq)),
            smb2_header(SMB2_READ, mid + 1, resp=True, session=c.session, tree=c.tree, flags=SMB2_FLAGS_RELATED)
            + c.read_resp(rs),
        ],
        "SMB2 WRITE+READ compound response (response call_id=2)",
    )
    svc.record_request(
        rqf,
        2,
        0,
        15,
        stub_len=len(req),
        resp_frame=rsf,
        resp_stub_len=len(resp),
        operation="ROpenSCManagerW",
        smb_compound=True,
    )
    return h


def make_smb2_pipes() -> None:
    cap = Capture(
        "smb2_pipes.pcap",
        "DCE/RPC over SMB2 named pipes on TCP 445: NTLMSSP session for CORP\\bob, IPC$, three pipes "
        "(lsarpc, samr, svcctl) open at once, binds and calls through WRITE/READ and through IOCTL "
        "FSCTL_PIPE_TRANSCEIVE, an async STATUS_PENDING READ, a compounded WRITE+READ, CLOSE.",
        seed=7,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49770, srv, 445)
    f.handshake()
    c = Smb2Conn(cap, f)
    c.negotiate(cap.rng)
    c.session_setup(cap.rng, "bob", "CORP", "WS01")
    c.tree_connect("\\\\SRV01\\IPC$")
    fid_lsa = smb2_file_id(0x0000000000000011, 0x00000000DEAD0011)
    fid_sam = smb2_file_id(0x0000000000000012, 0x00000000DEAD0012)
    fid_svc = smb2_file_id(0x0000000000000013, 0x00000000DEAD0013)
    c.create("lsarpc", fid_lsa)
    c.create("samr", fid_sam)
    c.create("svcctl", fid_svc)
    lsa_p, sam_p, svc_p = (
        Smb2Pipe(c, fid_lsa, "lsarpc"),
        Smb2Pipe(c, fid_sam, "samr", "ioctl"),
        Smb2Pipe(c, fid_svc, "svcctl"),
    )
    lsa, sam, svc = (
        Assoc(cap, lsa_p, assoc_group=0x7A01),
        Assoc(cap, sam_p, assoc_group=0x7A02),
        Assoc(cap, svc_p, assoc_group=0x7A03),
    )
    # lsarpc: bind through WRITE + READ
    lsa.bind(
        1,
        [CtxItem(0, "lsarpc", [NDR]), CtxItem(1, "lsarpc", [btfn(0x03)], result=3, reason=3)],
        sec_addr="\\PIPE\\lsass",
        max_frag=4280,
    )
    # samr: bind through IOCTL
    sam.bind(1, [CtxItem(0, "samr", [NDR])], sec_addr="\\PIPE\\lsass", max_frag=4280)
    lsa_p.mode = "ioctl"
    hl = "11aa22bb-33cc-44dd-955e-66ff77008811"
    hs = "22bb33cc-44dd-45ee-966f-770088119922"
    lsa.call(2, 0, 44, lsa_open_policy2(), handle_status(hl), name="LsarOpenPolicy2")
    sam.call(2, 0, 64, samr_connect5(), samr_connect5_resp(hs), name="SamrConnect5")
    # svcctl: bind through WRITE, the READ pends (interim STATUS_PENDING, then the async final response)
    svc_p.pending_async = True
    svc.bind(1, [CtxItem(0, "svcctl", [NDR])], sec_addr="\\PIPE\\ntsvcs", max_frag=4280)
    # svcctl: ROpenSCManagerW as a compounded WRITE + READ (related operations), answered in one compound
    h = compounded_open_scmanager(c, svc, fid_svc)
    svc_p.mode = "ioctl"
    lsa.call(3, 0, 0, Ndr().handle(hl).bytes(), handle_status(zero_uuid()), name="LsarClose")
    sam.call(3, 0, 1, Ndr().handle(hs).bytes(), handle_status(zero_uuid()), name="SamrCloseHandle")
    svc.call(3, 0, 0, scmr_handle_call(h), handle_status(zero_uuid()), name="RCloseServiceHandle")
    for fid in (fid_lsa, fid_sam, fid_svc):
        c.close(fid)
    f.close()
    save_pcap(cap)
