"""multifrag_calls.pcap: calls in several DCE/RPC fragments, both byte orders (samples/README.md)."""

from __future__ import annotations

from ..wire.assoc import Assoc, TcpChannel
from ..wire.capture import Capture, save_pcap
from ..wire.dcerpc import CtxItem
from ..wire.epm import EptEntry, Tower, ept_lookup_request, ept_lookup_response, record_towers
from ..wire.ids import EPT_S_NOT_REGISTERED, NDR, NDR64, zero_uuid
from ..wire.ndr import Ndr
from ..wire.stubs import TSCH_HIGHEST
from ..wire.tcp import TcpFlow

TASK_XML = r"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Author>CORP\alice</Author>
    <Description>Collects the nightly software inventory and uploads it to the share.</Description>
    <URI>\Inventory\NightlyCollect</URI>
  </RegistrationInfo>
  <Triggers>
    <CalendarTrigger>
      <StartBoundary>2024-03-01T23:30:00</StartBoundary>
      <Enabled>true</Enabled>
      <ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay>
    </CalendarTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>S-1-5-18</UserId>
      <RunLevel>HighestAvailable</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>true</RunOnlyIfNetworkAvailable>
    <IdleSettings><StopOnIdleEnd>false</StopOnIdleEnd><RestartOnIdle>false</RestartOnIdle></IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <ExecutionTimeLimit>PT1H</ExecutionTimeLimit>
    <Priority>7</Priority>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe</Command>
      <Arguments>-NoProfile -File \\SRV01\inventory$\collect.ps1 -OutDir \\SRV01\inventory$</Arguments>
    </Exec>
  </Actions>
</Task>
""".replace("\n", "\r\n")
TASK_PATH = "\\Inventory\\NightlyCollect"


def tsch_register_task(xml: str) -> bytes:
    """[MS-TSCH] 3.2.5.4.2 SchRpcRegisterTask in: [unique, string] path, [string] xml, flags
    (TASK_CREATE_OR_UPDATE), [unique] sddl NULL, logonType, cCreds 0, [unique] pCreds NULL."""
    return (
        Ndr()
        .ptr()
        .wstr(TASK_PATH)
        .align(4)
        .wstr(xml)
        .align(4)
        .u32(6)
        .ptr(null=True)
        .u32(0)
        .u32(0)
        .ptr(null=True)
        .bytes()
    )


def tsch_register_task_resp() -> bytes:
    """out: [string] pActualPath, [unique] pErrorInfo NULL, HRESULT."""
    return Ndr().ptr().wstr(TASK_PATH).align(4).ptr(null=True).u32(0).bytes()


def tsch_retrieve_task() -> bytes:
    """[MS-TSCH] 3.2.5.4.3 SchRpcRetrieveTask in: [string] path, [string] languages, pulNumLanguages."""
    return Ndr().wstr(TASK_PATH).align(4).wstr("").align(4).u32(0).bytes()


def tsch_retrieve_task_resp(xml: str) -> bytes:
    return Ndr().ptr().wstr(xml).align(4).u32(0).bytes()


def make_multifrag_calls() -> None:
    cap = Capture(
        "multifrag_calls.pcap",
        "Calls whose request or response is split into several DCE/RPC fragments (PFC_FIRST_FRAG/"
        "PFC_LAST_FRAG, alloc_hint): a Task Scheduler task registered and read back (little-endian), and "
        "a big-endian endpoint-mapper association whose ept_lookup answer spans two fragments.",
        seed=4,
    )
    ws, ws2, srv, dc = cap.h["ws01"], cap.h["ws02"], cap.h["srv01"], cap.h["dc01"]
    # --- little-endian Task Scheduler on a dynamic port: fragments of at most 1424 bytes, one per segment
    f = TcpFlow(cap, ws, 49730, srv, 49670)
    f.handshake()
    a = Assoc(cap, TcpChannel(f), assoc_group=0x0000D5A1)
    a.bind(
        1,
        [CtxItem(0, "atsvc_tsch", [NDR]), CtxItem(1, "atsvc_tsch", [NDR64], result=2, reason=2)],
        sec_addr="49670",
        max_frag=1432,
    )
    op, req, resp, name = TSCH_HIGHEST
    a.call(2, 0, op, req, resp, name=name)
    a.call(3, 0, 1, tsch_register_task(TASK_XML), tsch_register_task_resp(), frag=1400, name="SchRpcRegisterTask")
    a.call(4, 0, 2, tsch_retrieve_task(), tsch_retrieve_task_resp(TASK_XML), resp_frag=1400, name="SchRpcRetrieveTask")
    a.call(5, 0, 13, Ndr().wstr(TASK_PATH).align(4).u32(0).bytes(), Ndr().u32(0).bytes(), name="SchRpcDelete")
    f.close()
    # --- big-endian (drep 0x00) EPM association; MSS 536, so a 624-byte fragment takes two segments
    cap.wait(5)
    f = TcpFlow(cap, ws2, 49731, dc, 135, mss=536)
    f.handshake()
    ch = TcpChannel(f)
    a = Assoc(cap, ch, le=False, assoc_group=0x0000D5A2)
    a.bind(1, [CtxItem(0, "epmapper", [NDR])], sec_addr="135", max_frag=1432)
    entries = [
        EptEntry(
            zero_uuid(), Tower("drsuapi", "ncacn_ip_tcp", port=49668, ip="10.0.0.5"), "MS NT Directory DRS Interface"
        ),
        EptEntry(zero_uuid(), Tower("netlogon", "ncacn_ip_tcp", port=49671, ip="10.0.0.5"), ""),
        EptEntry(zero_uuid(), Tower("lsarpc", "ncacn_ip_tcp", port=49667, ip="0.0.0.0"), ""),
        EptEntry(zero_uuid(), Tower("samr", "ncacn_np", pipe="\\PIPE\\lsass", netbios="\\\\DC01"), ""),
        EptEntry(zero_uuid(), Tower("netlogon", "ncadg_ip_udp", port=49673, ip="10.0.0.5"), ""),
        EptEntry(zero_uuid(), Tower("frs2", "ncacn_ip_tcp", port=49672, ip="10.0.0.5"), "Frs2 Service"),
    ]
    hnd = "0badcafe-0000-4000-8000-00000000beef"
    resp = ept_lookup_response(False, hnd, entries, 8)
    rf, pf = a.call(2, 0, 2, ept_lookup_request(False, zero_uuid(), 8), resp, resp_frag=600, name="ept_lookup")
    record_towers(cap, ch, pf, rf, 2, 2, [e.tower for e in entries], entries)
    a.call(
        3,
        0,
        2,
        ept_lookup_request(False, hnd, 8),
        ept_lookup_response(False, zero_uuid(), [], 8, status=EPT_S_NOT_REGISTERED),
        name="ept_lookup (end)",
    )
    f.close()
    save_pcap(cap)
