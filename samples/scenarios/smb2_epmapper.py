"""smb2_epmapper.pcap: the endpoint mapper over an SMB2 pipe (samples/README.md)."""

from __future__ import annotations

from ..wire.assoc import Assoc
from ..wire.capture import Capture, save_pcap
from ..wire.dcerpc import CtxItem
from ..wire.epm import Tower, ept_map_request, ept_map_response, record_towers
from ..wire.ids import NDR
from ..wire.smb2 import Smb2Conn, Smb2Pipe, smb2_file_id
from ..wire.stubs import TSCH_HIGHEST
from ..wire.tcp import TcpFlow
from .sessions import simple_session


def make_smb2_epmapper() -> None:
    cap = Capture(
        "smb2_epmapper.pcap",
        "The endpoint mapper reached over SMB2, on the \\PIPE\\epmapper named pipe of IPC$ ([MS-RPCE] "
        "2.1.1.2): ept_map for the Task Scheduler answered with an ncacn_ip_tcp tower (port 49670, host "
        "0.0.0.0) and an ncacn_np tower (\\PIPE\\atsvc); then the client binds the Task Scheduler on 49670.",
        seed=9,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49790, srv, 445)
    f.handshake()
    c = Smb2Conn(cap, f)
    c.negotiate(cap.rng)
    c.session_setup(cap.rng, "carol", "CORP", "WS01")
    c.tree_connect("\\\\SRV01\\IPC$")
    fid = smb2_file_id(0x0000000000000031, 0x00000000EE0F0031)
    c.create("epmapper", fid)
    pipe = Smb2Pipe(c, fid, "epmapper")
    a = Assoc(cap, pipe, assoc_group=0x7B01)
    a.bind(1, [CtxItem(0, "epmapper", [NDR])], sec_addr="\\PIPE\\epmapper", max_frag=4280)
    towers = [
        Tower("atsvc_tsch", "ncacn_ip_tcp", port=49670, ip="0.0.0.0"),
        Tower("atsvc_tsch", "ncacn_np", pipe="\\PIPE\\atsvc", netbios="\\\\SRV01"),
    ]
    rf, pf = a.call(2, 0, 3, ept_map_request(True, "atsvc_tsch"), ept_map_response(True, towers), name="ept_map")
    assert pf is not None
    record_towers(cap, pipe, pf, rf, 2, 3, towers)
    c.close(fid)
    f.close()
    cap.wait(2)
    op, req, resp, name = TSCH_HIGHEST
    simple_session(cap, TcpFlow(cap, ws, 49791, srv, 49670), "atsvc_tsch", op, req, resp, name, 0x7B02)
    save_pcap(cap)
