"""Stub decoders on real stubs: values checked against tshark's own dissection of the same frames.

Each case names a capture under ../shared/captures, the frame of the request (the `frame` column:
the request's last fragment), and values read from `tshark -r CAPTURE -V -Y frame.number==N` of
that request and its response (noted per case). Where tshark has no dissector for the operation
(it prints "Stub data"), the expected values were read from the stub with impacket's own decoder
of that operation, an independent implementation; such cases say "impacket".
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from analyzer import registry
from analyzer.model import CallRecord
from analyzer.records import Records
from tests.conftest import CAPTURES, needs_shared, run

pytestmark = needs_shared


@cache
def _records(capture: str) -> Records:
    return run([CAPTURES / capture])


def _call(capture: str, frame: int) -> CallRecord:
    calls = [c for c in _records(capture).calls if c.frame == frame]
    assert len(calls) == 1, f"{capture}: {len(calls)} calls at frame {frame}"
    return calls[0]


def _status(c: CallRecord) -> str | None:
    if c.return_status is None:
        return None
    return registry.status_name(c.return_status, c.return_kind if c.return_kind != "rpc" else None)


PSEXEC = "Pcaps/impacket_psexec.pcap"
ZEROLOGON = "zerologon/testing/Traces/CVE-2020-1472_exploit_win2016.pcap"
POSTZL = "PCAP-ATTACK/CredAccess/Remote_Pwd_Reset_RPC_Admin_Mimikatz_PostZeroLogon.pcapng"
EVTCRASH = "PCAP-ATTACK/Evasion/DE_byt3bl33d3r_remote_eventservice_crash.pcapng"
WMI = "PCAP-ATTACK/Lateral_Movement/LM_WMI_ProcessCallCreate.pcapng"

# (capture, request frame, operation, expected argument values, expected return status, where from)
CASES: list[tuple[str, int, str, dict[str, Any], str | None]] = [
    # tshark 178: Service Name SDfL, Display Name SDfL, Service Type 0x10, Start Type SERVICE_AUTO_START,
    # Binary Path Name %systemroot%\HtCOoeYd.exe; 182: Return code Success.
    (
        PSEXEC,
        178,
        "RCreateServiceW",
        {
            "service_name": "SDfL",
            "display_name": "SDfL",
            "binary_path": "%systemroot%\\HtCOoeYd.exe",
            "start_type": "SERVICE_AUTO_START",
            "service_type": "SERVICE_WIN32_OWN_PROCESS",
        },
        "ERROR_SUCCESS",
    ),
    # 184's handle 7b958c60... is the one CreateServiceW returned in 182 (tshark 182: Policy Handle).
    (PSEXEC, 184, "RStartServiceW", {"service_name": "SDfL"}, "ERROR_SUCCESS"),
    # 174: OpenServiceW SDfL before it existed: tshark 176 Return code ERROR_SERVICE_DOES_NOT_EXIST.
    (PSEXEC, 174, "ROpenServiceW", {"service_name": "SDfL"}, "ERROR_SERVICE_DOES_NOT_EXIST"),
    (PSEXEC, 1332, "RDeleteService", {"service_name": "SDfL"}, "ERROR_SUCCESS"),
    # tshark 125: Level 1, share names ADMIN$, C$, IPC$, Users; WERR_OK.
    (PSEXEC, 122, "NetrShareEnum", {"level": 1, "share_names": ["ADMIN$", "C$", "IPC$", "Users"]}, "ERROR_SUCCESS"),
    # tshark 8065: Acct Name BAS-AD-02$, Sec Chan Type SEC_CHAN_BDC (6), Computer Name BAS-AD-02,
    # Client Credential 0000000000000000, Negotiation options 0x212fffff; 8066: Account RID 1106,
    # STATUS_SUCCESS (the one ZeroLogon attempt that worked).
    (
        ZEROLOGON,
        8065,
        "NetrServerAuthenticate3",
        {
            "account_name": "BAS-AD-02$",
            "computer_name": "BAS-AD-02",
            "secure_channel_type": "ServerSecureChannel",
            "client_credential": "0000000000000000",
            "client_credential_zero": True,
            "negotiate_flags": "0x212fffff",
            "account_rid": 1106,
            "server_credential": "460caa058eed0d45",
        },
        "STATUS_SUCCESS",
    ),
    # tshark 20: FileName \\192.168.56.104\share\1.txt (PetitPotam-style coercion).
    (
        "Malcolm-Test-Artifacts/pcap/plugins/cve-2022-26809/cve-2022-26809-4.pcap",
        20,
        "EfsRpcDecryptFileSrv",
        {"file_name": "\\\\192.168.56.104\\share\\1.txt", "open_flag": 0},
        None,
    ),
    # tshark 574: FileName \\192.168.0.15\test\Settings.ini, Flags 0.
    (
        "PetitPotam/testing/Traces/PatchedDCUnauthenticatedTry.pcapng",
        574,
        "EfsRpcOpenFileRaw",
        {"file_name": "\\\\192.168.0.15\\test\\Settings.ini", "flags": 0},
        None,
    ),
    # tshark 67: RFFPCNEX flags 65280, Server \\ADMINASST, Printer local 400, handle opened in 60 by
    # OpenPrinterEx(\\e205000n5\Tech-Office).
    (
        "pcaps/PracticalPacketAnalysis/ppa-capture-files/printerproblem.pcap",
        67,
        "RpcRemoteFindFirstPrinterChangeNotificationEx",
        {
            "local_machine": "\\\\ADMINASST",
            "flags": "0x0000ff00",
            "printer_local": 400,
            "printer_name": "\\\\e205000n5\\Tech-Office",
        },
        None,
    ),
    # tshark 1767: OpenKey below the OpenHKLM handle of 1766, Keyname
    # System\CurrentControlSet\Control\Server Applications.
    (
        "suricata-verify/tests/filestore-filecontainer-smb/filecontainer-smb.pcap",
        1767,
        "BaseRegOpenKey",
        {"key_path": "HKLM\\System\\CurrentControlSet\\Control\\Server Applications"},
        "ERROR_SUCCESS",
    ),
    # tshark 30: LookupNames on the domain handle OpenDomain(S-1-5-21-308926384-506822093-3341789130),
    # Num Names 1, 01566S-WIN16-IR$; 31: RID 35103, STATUS_SUCCESS.
    (
        POSTZL,
        30,
        "SamrLookupNamesInDomain",
        {
            "domain": "S-1-5-21-308926384-506822093-3341789130",
            "count": 1,
            "names": ["01566S-WIN16-IR$"],
            "rids": [35103],
        },
        "STATUS_SUCCESS",
    ),
    # tshark 36: SetUserInfo2 on the handle OpenUser (32, RID 35103) returned in 33, Level
    # UserInternal5InformationNew (26); the RID is the one LookupNames (30/31) gave 01566S-WIN16-IR$.
    (POSTZL, 36, "SamrSetInformationUser2", {"user": "01566S-WIN16-IR$ (rid 35103)", "level": 26}, "STATUS_SUCCESS"),
    # tshark 57: lsa_OpenSecret, Name $MACHINE.ACC.
    (POSTZL, 57, "LsarOpenSecret", {"key_name": "$MACHINE.ACC"}, "STATUS_SUCCESS"),
    # tshark 83: lsa_LookupSids2, Num Sids 1, S-1-5-21-308926384-506822093-3341789130-107103;
    # 84: domain 3B, name backdoor (Sid Index 0), STATUS_SUCCESS.
    (
        "PCAP-ATTACK/Discovery/Discovery_PsLoggedOn_remotelocalusers_enum_winreg_lsarpc_dcerpc_smb.pcapng",
        83,
        "LsarLookupSids2",
        {"count": 1, "sids": ["S-1-5-21-308926384-506822093-3341789130-107103"], "names": ["3B\\backdoor"]},
        "STATUS_SUCCESS",
    ),
    # tshark 38: EnumDomainUsers on the handle opened for the PICKLESWORTH domain; 41: seven names.
    (
        "Pcaps/samrdump.pcap",
        38,
        "SamrEnumerateUsersInDomain",
        {"names": ["Administrator", "Guest", "krbtgt", "choppydog", "chewbacca", "babcock", "felipe"], "count": 7},
        "STATUS_SUCCESS",
    ),
    # tshark 115: NetShareEnumAll, Server Unc \\SNICKLEFRITZ, Level 0.
    ("Pcaps/netshareenum.pcap", 115, "NetrShareEnum", {"server_name": "\\\\SNICKLEFRITZ", "level": 0}, "ERROR_SUCCESS"),
    # tshark 55: StartDocPrinter on OpenPrinterEx(\\e205000n5\Tech-Office) (opened in 52), level 1,
    # Document name "Microsoft Word - Document1", Output file "Ne04:", Datatype "NT EMF 1.008".
    (
        "pcaps/PracticalPacketAnalysis/ppa-capture-files/printerproblem.pcap",
        55,
        "RpcStartDocPrinter",
        {
            "printer_name": "\\\\e205000n5\\Tech-Office",
            "document_name": "Microsoft Word - Document1",
            "output_file": "Ne04:",
            "datatype": "NT EMF 1.008",
        },
        None,
    ),
    # tshark 45: GetAliasMembership on OpenDomain(S-1-5-32) (opened in 34), SIDs ...-1104 and ...-513.
    (
        "prot-od-netcaps/MS-ADOD-captureALL/MS-ADOD_Example2_4_WS2019v2004_X64_Win10v2004_X64_Domain_ChangeAUserAccount_sPassword.pcapng",
        45,
        "SamrGetAliasMembership",
        {
            "domain": "S-1-5-32",
            "sids": ["S-1-5-21-361976698-2572086670-4285166481-1104", "S-1-5-21-361976698-2572086670-4285166481-513"],
        },
        None,
    ),
    # tshark 4646 (stub data only): handle 50ac5612..., InfoLevel 0; that handle is what
    # OpenServiceW(TermService) of 4644 returned in 4645 (svcctl.hnd).
    (
        "suricata-verify/tests/filestore-filecontainer-smb/filecontainer-smb.pcap",
        4646,
        "RQueryServiceStatusEx",
        {"service_name": "TermService", "info_level": 0},
        "ERROR_SUCCESS",
    ),
    # NDR64 (bind_ack 6 accepts only the 64-bit context). tshark 7: Authn Proto 9; 9: Principal
    # name node3$@W2K12DOM.BER.REDHAT.COM, Status 0.
    (
        "suricata-verify/tests/dcerpc/dcerpc-dce-iface-02/input.pcap",
        7,
        "inq_princ_name",
        {"authn_proto": 9, "princ_name_size": 256, "princ_name": "node3$@W2K12DOM.BER.REDHAT.COM"},
        "ERROR_SUCCESS",
    ),
    # tshark 93: NetShareGetInfo, Server Unc phxlabbal821, Share Name lustre, Level 1.
    (
        "Malcolm-Test-Artifacts/pcap/protocols/KRB5.pcap",
        93,
        "NetrShareGetInfo",
        {"server_name": "phxlabbal821", "share_name": "lustre", "level": 1},
        None,
    ),
    # tshark 15: OpenEventLogW Module Security, MajorVersion 1, MinorVersion 1.
    (EVTCRASH, 15, "ElfrOpenELW", {"channel": "Security", "major_version": 1, "minor_version": 1}, "STATUS_SUCCESS"),
    # tshark 19: ClearEventLogW on the handle opened in 18 (OpenEventLogW Security), NULL
    # Backupfilename; never answered: the service crashed.
    (EVTCRASH, 19, "ElfrClearELFW", {"channel": "Security", "backup_file": None}, None),
    # tshark 96: GetIDsOfNames, Name "ExecuteShellCommand", Names 1 (impacket dcomexec, MMC20).
    ("Pcaps/mmcexec.pcap", 96, "GetIDsOfNames", {"names": ["ExecuteShellCommand"], "count": 1}, "S_OK"),
    # tshark 107: Invoke DispID 0x36, Flags Method, four VT_BSTR arguments listed last-first;
    # the member name: 96 GetIDsOfNames("ExecuteShellCommand") on the same Object UUID
    # 00005406-0390-0394-b2d6-b39c0e509fbb, answered (97) with DispID 0x36.
    # "7", "/Q /c cd \ 1> \\127.0.0.1\ADMIN$\__1506613937.95 2>&1", "C:\", "c:\windows\system32\cmd.exe".
    (
        "Pcaps/mmcexec.pcap",
        107,
        "Invoke",
        {
            "member": "ExecuteShellCommand",
            "dispid": 0x36,
            "flags": "method",
            "args": [
                "c:\\windows\\system32\\cmd.exe",
                "C:\\",
                "/Q /c cd \\ 1> \\\\127.0.0.1\\ADMIN$\\__1506613937.95 2>&1",
                "7",
            ],
        },
        "S_OK",
    ),
    # tshark 24: RemoteCreateInstance, InstantiatedObjectClsId 8bc3f05e-d86b-11d0-a075-00c04fb68820.
    (
        WMI,
        24,
        "RemoteCreateInstance",
        {"clsid": "8bc3f05e-d86b-11d0-a075-00c04fb68820", "clsid_name": "WbemLevel1Login"},
        "S_OK",
    ),
]


@pytest.mark.parametrize(("capture", "frame", "operation", "expected", "status"), CASES)
def test_decoded_like_tshark(
    capture: str, frame: int, operation: str, expected: dict[str, Any], status: str | None
) -> None:
    c = _call(capture, frame)
    assert registry.operation_name(c.interface_uuid or "", c.if_major, c.opnum) == operation
    assert c.arguments_json is not None and not c.encrypted
    values = json.loads(c.arguments_json)
    for k, v in expected.items():
        assert values.get(k) == v, (k, values.get(k))
    if status is not None:
        assert _status(c) == status


def test_ndr64_share_enum() -> None:
    """A Windows 10 client that negotiated NDR64 for srvsvc (frame 113 request, 116 response). tshark
    4.0 misreads this NDR64 response (it shows Ctr0 with Count 131072, a referent id read as a
    count); the expected names are read from the stub bytes by hand: level 1, union discriminant
    at offset 8, three SHARE_INFO_1 of 24 bytes, then UTF-16 "ADMIN$" at 144, "C$" at 240 and
    "IPC$" at 336 (8-byte counts before each)."""
    c = _call("arkime/tests/pcap/wireshark-smb-on-windows10.pcap", 113)
    values = json.loads(c.arguments_json or "{}")
    assert (values["level"], values["share_names"]) == (1, ["ADMIN$", "C$", "IPC$"])
    assert _status(c) == "ERROR_SUCCESS"


def test_task_registration_of_atexec() -> None:
    """SchRpcRegisterTask (frame 38; tshark has no ITaskSchedulerService dissector): impacket's
    tsch.SchRpcRegisterTask reads from the same stub path \\nZfRUBts and an XML of 1,455 characters (its NUL included)
    with Command cmd.exe, Arguments "/C command ipconfig &gt; %windir%\\Temp\\nZfRUBts.tmp 2&gt;&amp;1",
    UserId S-1-5-18, Hidden true; 43 answers S_OK."""
    c = _call("Pcaps/atexec_.pcap", 38)
    values = json.loads(c.arguments_json or "{}")
    assert values["task_path"] == "\\nZfRUBts" and len(values["task_xml"]) == 1454
    assert (values["command"], values["run_as"], values["hidden"]) == ("cmd.exe", "S-1-5-18", "true")
    assert values["command_arguments"] == "/C command ipconfig > %windir%\\Temp\\nZfRUBts.tmp 2>&1"
    assert _status(c) == "S_OK"


def test_ndr64_job_add() -> None:
    """NetrJobAdd over NDR64 (the bind_ack of frame 8 accepts only the 64-bit NDR context). tshark 9:
    Servername \\\\admin-pc, Job Time 47100000, Command c:\\mimikatz.exe; 11: Job Id 2. tshark shows
    Flags 0x00, but the stub's byte 69 (DaysOfWeek at 68, Flags at 69 after the 8-byte JobTime at
    56 and DaysOfMonth at 64) is 0x10, JOB_NONINTERACTIVE: we follow the bytes."""
    c = _call("suricata-verify/tests/dcerpc/dcerpc-3109/input.pcap", 9)
    values = json.loads(c.arguments_json or "{}")
    assert (values["server_name"], values["job_time"], values["command"]) == (
        "\\\\admin-pc",
        47100000,
        "c:\\mimikatz.exe",
    )
    assert (values["flags"], values["job_id"]) == (0x10, 2)
    assert _status(c) == "ERROR_SUCCESS"


def test_zerologon_burst_return_codes() -> None:
    """Every NetrServerAuthenticate3 of the ZeroLogon run has its NTSTATUS: all refused but one
    (tshark: dcerpc.opnum==26 responses, netlogon.rc; 285 STATUS_ACCESS_DENIED, 1 STATUS_SUCCESS)."""
    auths = [c for c in _records(ZEROLOGON).calls if c.opnum == 26 and c.return_status is not None]
    names = [_status(c) for c in auths]
    assert names.count("STATUS_ACCESS_DENIED") == 285
    assert names.count("STATUS_SUCCESS") == 1
    assert all(json.loads(c.arguments_json or "{}").get("client_credential_zero") for c in auths)


def test_wmi_login_and_method() -> None:
    """NTLMLogin's namespace and ExecMethod's class, method and in-parameters. tshark decodes
    neither; the expected values are what impacket reads from the same stub (frame 23's stub data
    through IWbemServices_ExecMethod, its pInParams OBJREF_CUSTOM through ENCODING_UNIT /
    INSTANCE_TYPE.getValues): CommandLine of 314 characters, sha256 prefix 9bfa0a568541b378,
    CurrentDirectory C:\\."""
    import hashlib

    login = _call(WMI, 45)
    assert json.loads(login.arguments_json or "{}")["namespace"] == "\\\\172.16.66.36\\ROOT\\CIMV2"
    c = _call("Pcaps/Wmiexec-Regout-Whoami.pcap", 23)
    values = json.loads(c.arguments_json or "{}")
    assert (values["class_name"], values["method"]) == ("Win32_Process", "Create")
    line = values["command_line"]
    assert line.startswith("cmd.exe /Q /c powershell.exe -Enc JABQAHIAbwBn") and len(line) == 314
    assert hashlib.sha256(line.encode()).hexdigest()[:16] == "9bfa0a568541b378"
    assert values["parameters"]["CurrentDirectory"] == "C:\\"


def test_no_decoder_errors_on_any_capture() -> None:
    """The decoders never fail on a shared capture (a failure would be a `stub_decoder_error`)."""
    recs = run([CAPTURES])
    assert not [v for v in recs.violations if v.what == "stub_decoder_error"]
    assert sum(1 for c in recs.calls if c.arguments is not None) > 4000


def test_return_status_of_an_operation_not_decoded() -> None:
    """IRemUnknown2::RemRelease has no argument decoder, only its declared HRESULT (tshark 20, the
    answer to 19: HResult S_OK); RemQueryInterface (tshark 13: Refs 5, IID
    b196b28f-bab4-101a-b69c-00aa00341d07; 14: HResult E_NOINTERFACE) is decoded."""
    release = _call("Pcaps/dcompayload-poshc2.pcap", 19)
    assert release.arguments is None and _status(release) == "S_OK"
    query = _call("Pcaps/dcompayload-poshc2.pcap", 13)
    values = json.loads(query.arguments_json or "{}")
    assert (values["refs"], values["iids"]) == (5, ["b196b28f-bab4-101a-b69c-00aa00341d07"])
    assert query.return_status == 0x80004002 and _status(query) == "E_NOINTERFACE"


def test_sealed_calls_are_not_decoded() -> None:
    """Packet privacy: nothing is read from the stub, not even the return code."""
    recs = _records("Pcaps/psexec_cmd.pcap")
    sealed = [c for c in recs.calls if c.encrypted]
    assert sealed and all(c.arguments is None and c.return_status is None for c in sealed)
