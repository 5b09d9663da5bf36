"""epm_lookup_dump.pcap: an rpcdump-style ept_lookup loop (samples/README.md)."""

from __future__ import annotations

from ..wire.assoc import Assoc, TcpChannel
from ..wire.capture import Capture, save_pcap
from ..wire.dcerpc import CtxItem
from ..wire.epm import EptEntry, Tower, ept_lookup_request, ept_lookup_response, record_towers
from ..wire.ids import EPT_S_NOT_REGISTERED, NDR, zero_uuid
from ..wire.tcp import TcpFlow


def dc_endpoints() -> list[list[EptEntry]]:
    """The domain controller's endpoint map as three ept_lookup answers of at most 4 entries (max_ents 4)."""
    return [
        [
            EptEntry(zero_uuid(), Tower("atsvc_tsch", "ncacn_ip_tcp", port=49670, ip="10.0.0.5"), ""),
            EptEntry(zero_uuid(), Tower("msgsvc", "ncadg_ip_udp", port=49672, ip="10.0.0.5"), "Messenger Service"),
            EptEntry(zero_uuid(), Tower("samr", "ncacn_np", pipe="\\PIPE\\lsass", netbios="\\\\DC01"), ""),
            EptEntry(
                zero_uuid(),
                Tower("IRemoteWinspool", "ncalrpc", lrpc="LRPC-5f6b7e2a9c8d1e0f3a"),
                "Spooler function endpoint",
            ),
        ],
        [
            EptEntry(zero_uuid(), Tower("epmapper", "ncacn_http", port=593, ip="10.0.0.5"), ""),
            EptEntry(
                zero_uuid(), Tower("drsuapi", "ncacn_ip_tcp", port=49668, ip="0.0.0.0"), "MS NT Directory DRS Interface"
            ),
            EptEntry(zero_uuid(), Tower("netlogon", "ncacn_np", pipe="\\pipe\\lsass", netbios="\\\\DC01"), ""),
            EptEntry(
                "897e2e5f-93f3-4376-9c9c-fd2277495c27",
                Tower("frs2", "ncacn_ip_tcp", port=49671, ip="10.0.0.5"),
                "Frs2 Service",
            ),
        ],
        [
            EptEntry(
                zero_uuid(), Tower("drsuapi", "ncacn_http", port=49669, ip="10.0.0.5"), "MS NT Directory DRS Interface"
            ),
            EptEntry(zero_uuid(), Tower("netlogon", "ncadg_ip_udp", port=49673, ip="10.0.0.5"), ""),
        ],
    ]


def make_epm_lookup_dump() -> None:
    cap = Capture(
        "epm_lookup_dump.pcap",
        "An rpcdump-style ept_lookup loop against a domain controller's endpoint mapper: towers for "
        "every protocol family, annotations, entry handles, EPT_S_NOT_REGISTERED at the end.",
        seed=2,
    )
    ws, dc = cap.h["ws02"], cap.h["dc01"]
    f = TcpFlow(cap, ws, 49713, dc, 135)
    f.handshake()
    ch = TcpChannel(f)
    a = Assoc(cap, ch, assoc_group=0x00005D10)
    a.bind(1, [CtxItem(0, "epmapper", [NDR])], sec_addr="135")
    batches = dc_endpoints()
    handle = zero_uuid()
    call_id = 2
    for i, batch in enumerate(batches):
        new_handle = f"4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c{i:02x}"
        rf, pf = a.call(
            call_id,
            0,
            2,
            ept_lookup_request(True, handle, 4),
            ept_lookup_response(True, new_handle, batch, 4),
            name="ept_lookup",
        )
        record_towers(cap, ch, pf, rf, call_id, 2, [e.tower for e in batch], batch)
        handle, call_id = new_handle, call_id + 1
    a.call(
        call_id,
        0,
        2,
        ept_lookup_request(True, handle, 4),
        ept_lookup_response(True, zero_uuid(), [], 4, status=EPT_S_NOT_REGISTERED),
        name="ept_lookup (end)",
    )
    cap.man["requests"][-1]["epm_status"] = EPT_S_NOT_REGISTERED
    cap.man.note(
        "truth.py numbers ept_lookup towers in tshark's JSON order, which groups entries with identical "
        "labels (all entries with an empty annotation come first): its tower_index is not the wire order "
        "for opnum 2; check_samples.py compares tower_index for ept_map only."
    )
    cap.man.note(
        "tshark shows only towers carrying a TCP/UDP/HTTP port in the truth file; the ncacn_np and ncalrpc "
        "towers (floors 0x0f/0x11 and 0x0c/0x10) are in the manifest but not checked by tshark "
        "(tshark 4.0 says 'RightHandSide not decoded yet' for the ncalrpc floor 3)."
    )
    f.close()
    save_pcap(cap)
