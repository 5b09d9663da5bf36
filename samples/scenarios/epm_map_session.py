"""epm_map_session.pcap: the canonical flow (samples/README.md)."""

from __future__ import annotations

from ..wire.assoc import Assoc, SecCtx, TcpChannel
from ..wire.capture import Capture, save_pcap
from ..wire.dcerpc import LEVEL_INTEGRITY, LEVEL_PRIVACY, PFC_FIRST, PFC_LAST, PFC_SUPPORT_HEADER_SIGN, PTYPE, CtxItem
from ..wire.epm import Tower, ept_map_request, ept_map_response, record_towers
from ..wire.ids import NCA_S_OP_RNG_ERROR, NDR, NDR64, btfn, zero_uuid
from ..wire.ndr import Ndr
from ..wire.stubs import handle_status, scmr_handle_call, scmr_open_scmanager, scmr_open_service, service_status
from ..wire.tcp import TcpFlow


def endpoint_mapper_on_135(cap: Capture) -> None:
    """EPM bind with NDR, NDR64 and BTFN on TCP 135, ept_map for svcctl and for drsuapi."""
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49701, srv, 135)
    f.handshake()
    ch = TcpChannel(f)
    a = Assoc(cap, ch, assoc_group=0x0000A3F1)
    a.bind(
        1,
        [
            CtxItem(0, "epmapper", [NDR]),
            CtxItem(1, "epmapper", [NDR64], result=2, reason=2),
            CtxItem(2, "epmapper", [btfn(0x03)], result=3, reason=0x0003),
        ],
        sec_addr="135",
        flags=PFC_FIRST | PFC_LAST | PFC_SUPPORT_HEADER_SIGN,
    )
    towers = [
        Tower("svcctl", "ncacn_ip_tcp", port=49667, ip="10.0.0.10"),
        Tower("svcctl", "ncacn_ip_tcp", port=49667, ip="0.0.0.0"),
    ]
    rf, pf = a.call(2, 0, 3, ept_map_request(True, "svcctl"), ept_map_response(True, towers), name="ept_map")
    record_towers(cap, ch, pf, rf, 2, 3, towers)
    towers = [Tower("drsuapi", "ncacn_ip_tcp", port=49668, ip="0.0.0.0")]
    rf, pf = a.call(3, 0, 3, ept_map_request(True, "drsuapi"), ept_map_response(True, towers), name="ept_map")
    record_towers(cap, ch, pf, rf, 3, 3, towers)
    f.close()


def svcctl_on_the_dynamic_port(cap: Capture) -> None:
    """svcctl on the announced port 49667, NTLMSSP at packet integrity, then a second security context
    at packet privacy for one sealed call."""
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    cap.wait(3)
    f = TcpFlow(cap, ws, 49702, srv, 49667)
    f.handshake()
    ch = TcpChannel(f)
    a = Assoc(cap, ch, assoc_group=0x0000A3F2)
    alice = SecCtx(LEVEL_INTEGRITY, "alice", "CORP", "WS01", ctx_id=0)
    a.bind(
        1,
        [CtxItem(0, "svcctl", [NDR]), CtxItem(1, "svcctl", [btfn(0x03)], result=3, reason=0x0003)],
        sec_addr="49667",
        ntlm=alice,
        flags=PFC_FIRST | PFC_LAST | PFC_SUPPORT_HEADER_SIGN,
    )
    req, resp, h = scmr_open_scmanager()
    a.call(2, 0, 15, req, resp, sec=alice, name="ROpenSCManagerW")
    hs = "6a0b1c2d-3e4f-4051-8263-748596a7b8c9"
    a.call(3, 0, 16, scmr_open_service(h, "Spooler"), handle_status(hs), sec=alice, name="ROpenServiceW")
    a.call(4, 0, 6, scmr_handle_call(hs), service_status(), sec=alice, name="RQueryServiceStatus")
    a.call(5, 0, 61, scmr_handle_call(hs), fault=NCA_S_OP_RNG_ERROR, sec=alice, name="opnum out of range")
    sealed = SecCtx(LEVEL_PRIVACY, "alice", "CORP", "WS01", ctx_id=1)
    a.bind(6, [CtxItem(0, "svcctl", [NDR])], ptype=PTYPE["alter_context"], ntlm=sealed)
    a.call(
        7,
        0,
        19,
        scmr_handle_call(hs, Ndr().u32(0).ptr(null=True).bytes()),
        Ndr().u32(0).bytes(),
        sec=sealed,
        name="RStartServiceW (sealed)",
    )
    a.call(8, 0, 0, scmr_handle_call(hs), handle_status(zero_uuid()), sec=alice, name="RCloseServiceHandle")
    a.call(9, 0, 0, scmr_handle_call(h), handle_status(zero_uuid()), sec=alice, name="RCloseServiceHandle")
    f.close()


def make_epm_map_session() -> None:
    cap = Capture(
        "epm_map_session.pcap",
        "The canonical flow: EPM bind with NDR/NDR64/BTFN on TCP 135, ept_map for svcctl and drsuapi, "
        "then an NTLMSSP-authenticated svcctl session on the announced dynamic port 49667.",
        seed=1,
    )
    endpoint_mapper_on_135(cap)
    svcctl_on_the_dynamic_port(cap)
    save_pcap(cap)
