"""ip_fragments.pcap: IPv4 fragments out of order (samples/README.md)."""

from __future__ import annotations

from ..wire.assoc import Assoc, SecCtx, TcpChannel
from ..wire.capture import Capture, save_pcap
from ..wire.dcerpc import AUTH_NTLMSSP, LEVEL_CONNECT, PTYPE, Auth, CtxItem
from ..wire.ids import NDR, NDR64, btfn
from ..wire.ntlm import ntlm_authenticate, ntlm_challenge, ntlm_negotiate
from ..wire.stubs import scmr_open_scmanager
from ..wire.tcp import TcpFlow


def make_ip_fragments() -> None:
    cap = Capture(
        "ip_fragments.pcap",
        "A bind carried in an IPv4 datagram cut into three fragments that arrive "
        "out of order (last, first, middle), and a response in two in-order fragments.",
        seed=65,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49757, srv, 49667)
    f.handshake()
    ch = TcpChannel(f)
    a = Assoc(cap, ch, assoc_group=0x6501)
    items = [
        CtxItem(0, "svcctl", [NDR]),
        CtxItem(1, "svcctl", [NDR64], result=2, reason=2),
        CtxItem(2, "svcctl", [btfn(0x03)], result=3, reason=3),
    ]
    auth = Auth(AUTH_NTLMSSP, LEVEL_CONNECT, 0, ntlm_negotiate())
    bind = a.bind_pdu(1, items, auth=auth)
    frs = f.send_ip_fragments("c", bind, 96, [2, 0, 1], desc="bind call_id=1")
    af = f.send(
        "s",
        a.ack_pdu(1, items, sec_addr="49667", auth=Auth(AUTH_NTLMSSP, LEVEL_CONNECT, 0, ntlm_challenge(cap.rng))),
        "bind_ack call_id=1",
    )
    a.record_bind(
        max(frs), PTYPE["bind"], 1, items, af, PTYPE["bind_ack"], AUTH_NTLMSSP, sec_addr="49667", ip_fragment_frames=frs
    )
    carol = SecCtx(LEVEL_CONNECT, "carol", "CORP", "WS01")
    a3 = a.pdu(
        PTYPE["auth3"],
        1,
        b"\0\0\0\0",
        auth=Auth(AUTH_NTLMSSP, LEVEL_CONNECT, 0, ntlm_authenticate(cap.rng, "carol", "CORP", "WS01")),
    )
    a.record_ntlm(f.send("c", a3, "auth3 call_id=1"), "auth3", carol)
    a.sec[0] = carol
    req, resp, _h = scmr_open_scmanager()
    rq = f.send("c", a.request_pdus(2, 0, 15, req)[0], "request call_id=2 opnum=15")
    resp_pdu = a.response_pdus(2, 0, resp + cap.rng.randbytes(0))[0]
    frs2 = f.send_ip_fragments("s", resp_pdu, 48, [0, 1], desc="response call_id=2")
    a.record_request(
        rq,
        2,
        0,
        15,
        stub_len=len(req),
        resp_frame=frs2[-1],
        resp_stub_len=len(resp),
        sec=carol,
        operation="ROpenSCManagerW",
        response_ip_fragment_frames=frs2,
    )
    f.close()
    save_pcap(cap)
