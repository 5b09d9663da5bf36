"""Stub decoders on stubs built by impacket, an independent NDR encoder of the same IDL.

Each test fills impacket's NDRCALL for an operation (request, and response where the decoder
reads one), takes its bytes and checks that the registry reads back what impacket was told.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from analyzer import stubs
from analyzer.dcerpc.decoding import Stubs
from analyzer.stubs.registry import StubState

impacket = pytest.importorskip("impacket")

from impacket.dcerpc.v5 import (  # noqa: E402
    atsvc,
    bkrp,
    drsuapi,
    even,
    even6,
    lsad,
    lsat,
    nrpc,
    par,
    rprn,
    rrp,
    samr,
    scmr,
    srvs,
    tsch,
    wkst,
)
from impacket.dcerpc.v5 import epm as iepm  # noqa: E402
from impacket.dcerpc.v5.dcom import oaut, wmi  # noqa: E402
from impacket.dcerpc.v5.dcomrt import (  # noqa: E402
    ACTIVATION_BLOB,
    CLSID,
    DWORD,
    IID,
    OBJREF_CUSTOM,
    ORPCTHIS,
    CLSID_ActivationPropertiesIn,
    CLSID_InstantiationInfo,
    IID_IActivationPropertiesIn,
    InstantiationInfoData,
    RemoteCreateInstance,
)
from impacket.dcerpc.v5.dtypes import NULL  # noqa: E402
from impacket.dcerpc.v5.ndr import NDRCALL  # noqa: E402
from impacket.dcerpc.v5.rpcrt import DCERPCException  # noqa: E402, F401
from impacket.uuid import string_to_bin, uuidtup_to_bin  # noqa: E402

SVCCTL = "367abb81-9844-35f1-ad32-98f038001003"
NETLOGON = "12345678-1234-abcd-ef00-01234567cffb"
SAMR = "12345778-1234-abcd-ef00-0123456789ac"
LSARPC = "12345778-1234-abcd-ef00-0123456789ab"
WINREG = "338cd001-2244-31f1-aaaa-900038001003"
SRVSVC = "4b324fc8-1670-01d3-1278-5a47bf6ee188"
WKSSVC = "6bffd098-a112-3610-9833-46c3f87e345a"
SPOOLSS = "12345678-1234-abcd-ef00-0123456789ab"
PAR = "76f03f96-cdfd-44fc-a22c-64950a001209"
EFS = "c681d488-d850-11d0-8c52-00c04fd90f7e"
EFS2 = "df1941c5-fe89-4e79-bf10-463657acf44d"
ATSVC = "1ff70682-0a51-30e8-076d-740be8cee98b"
TSCH = "86d35949-83c9-4044-b424-db363231fd0c"
DRSUAPI = "e3514235-4b06-11d1-ab04-00c04fc2dcd2"
EVENTLOG = "82273fdc-e32a-18c3-3f78-827929dc23ea"
EVEN6 = "f6beaff7-1e19-4fbb-9f8f-b89e2018337c"
BKRP = "3dde7c30-165d-11d1-ab8f-00805f14db40"
ACTIVATOR = "000001a0-0000-0000-c000-000000000046"
IDISPATCH = "00020400-0000-0000-c000-000000000046"
WBEM_LOGIN = "f309ad18-d86a-11d0-a075-00c04fb68820"
WBEM = "9556dc99-828c-11cf-a37e-00aa003240c7"
EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"

HANDLE = b"\x00\x00\x00\x00" + bytes(range(1, 17))
HANDLE2 = b"\x00\x00\x00\x00" + bytes(range(101, 117))


def decode(
    uuid: str, req: NDRCALL | None, resp: NDRCALL | None = None, state: StubState | None = None, rc: int = 0
) -> tuple[dict[str, Any], stubs.Decoded]:
    """Decode impacket's request (and response + a return code) the way a finished call is."""
    opnum = req.opnum if req is not None else resp.opnum  # type: ignore[union-attr]
    resp_bytes = None
    if resp is not None:
        # impacket's responses end with their ErrorCode field; the others get the return value appended.
        if "ErrorCode" in resp.fields:
            resp["ErrorCode"] = rc
            resp_bytes = resp.getData()
        else:
            resp_bytes = resp.getData() + rc.to_bytes(4, "little")
    kept = Stubs(
        ndr64=False,
        request=req.getData() if req is not None else None,
        request_little=True,
        response=resp_bytes,
        response_little=True,
        response_tail=resp_bytes[-4:] if resp_bytes else None,
    )
    out = stubs.decode(uuid, opnum, kept, state or StubState())
    assert out is not None
    assert not out.violations, out.violations
    return json.loads(out.arguments_json or "{}"), out


def response_of(cls: type[NDRCALL], opnum: int) -> NDRCALL:
    r = cls()
    r.opnum = opnum
    return r


def ulongs(values: list[int]) -> list[Any]:
    from impacket.dcerpc.v5.dtypes import ULONG

    out = []
    for v in values:
        u = ULONG()
        u["Data"] = v
        out.append(u)
    return out


def hkey(h: bytes, cls: Any = None) -> Any:
    """A context handle for the impacket types that are plain structures (RPC_HKEY, handle_t)."""
    k = (cls or rrp.RPC_HKEY)()
    k["context_handle_attributes"] = int.from_bytes(h[:4], "little")
    k["context_handle_uuid"] = h[4:]
    return k


def orpcthis() -> ORPCTHIS:
    o = ORPCTHIS()
    o["cid"] = b"\x11" * 16
    o["extensions"] = NULL
    o["flags"] = 0
    return o


# -- svcctl --------------------------------------------------------------------------------------


def test_svcctl_create_start_delete_name_their_service() -> None:
    state = StubState()
    req = scmr.RCreateServiceW()
    req["hSCManager"] = HANDLE
    req["lpServiceName"] = "BTOBTO\x00"
    req["lpDisplayName"] = "BTOBTO\x00"
    req["dwDesiredAccess"] = 0xF01FF
    req["dwServiceType"] = scmr.SERVICE_WIN32_OWN_PROCESS
    req["dwStartType"] = scmr.SERVICE_DEMAND_START
    req["dwErrorControl"] = scmr.SERVICE_ERROR_IGNORE
    req["lpBinaryPathName"] = "%COMSPEC% /Q /c echo whoami ^> \\\\127.0.0.1\\C$\\__output\x00"
    req["lpLoadOrderGroup"] = NULL
    req["lpdwTagId"] = NULL
    req["lpDependencies"] = NULL
    req["dwDependSize"] = 0
    req["lpServiceStartName"] = NULL
    req["lpPassword"] = NULL
    req["dwPwSize"] = 0
    resp = response_of(scmr.RCreateServiceWResponse, 12)
    resp["lpdwTagId"] = NULL
    resp["lpServiceHandle"] = HANDLE2
    values, out = decode(SVCCTL, req, resp, state)
    assert values["service_name"] == "BTOBTO"
    assert values["binary_path"].startswith("%COMSPEC% /Q /c echo whoami")
    assert values["start_type"] == "SERVICE_DEMAND_START"
    assert values["service_type"] == "SERVICE_WIN32_OWN_PROCESS"
    assert (out.return_code, out.return_kind) == (0, "win32")
    assert out.arguments is not None and out.arguments.startswith("service_name=BTOBTO; display_name=BTOBTO")

    start = scmr.RStartServiceW()
    start["hService"] = HANDLE2
    start["argc"] = 0
    start["argv"] = NULL
    assert decode(SVCCTL, start, state=state)[0]["service_name"] == "BTOBTO"
    delete = scmr.RDeleteService()
    delete["hService"] = HANDLE2
    assert decode(SVCCTL, delete, state=state)[0]["service_name"] == "BTOBTO"
    other = scmr.RDeleteService()
    other["hService"] = HANDLE
    assert "service_name" not in decode(SVCCTL, other, state=state)[0]


def test_svcctl_open_service_then_change_config() -> None:
    state = StubState()
    req = scmr.ROpenServiceW()
    req["hSCManager"] = HANDLE
    req["lpServiceName"] = "TermService\x00"
    req["dwDesiredAccess"] = 0xF01FF
    resp = response_of(scmr.ROpenServiceWResponse, 16)
    resp["lpServiceHandle"] = HANDLE2
    assert decode(SVCCTL, req, resp, state)[0]["service_name"] == "TermService"
    ch = scmr.RChangeServiceConfigW()
    ch["hService"] = HANDLE2
    ch["dwServiceType"] = scmr.SERVICE_NO_CHANGE
    ch["dwStartType"] = scmr.SERVICE_DEMAND_START
    ch["dwErrorControl"] = scmr.SERVICE_NO_CHANGE
    ch["lpBinaryPathName"] = "C:\\Windows\\Temp\\evil.exe\x00"
    ch["lpLoadOrderGroup"] = NULL
    ch["lpdwTagId"] = NULL
    ch["lpDependencies"] = NULL
    ch["dwDependSize"] = 0
    ch["lpServiceStartName"] = NULL
    ch["lpPassword"] = NULL
    ch["dwPwSize"] = 0
    ch["lpDisplayName"] = NULL
    values, _ = decode(SVCCTL, ch, state=state)
    assert values["binary_path"] == "C:\\Windows\\Temp\\evil.exe"
    assert values["start_type"] == "SERVICE_DEMAND_START"
    assert values["service_name"] == "TermService"


# -- netlogon ------------------------------------------------------------------------------------


def test_netlogon_zerologon_shapes() -> None:
    ch = nrpc.NetrServerReqChallenge()
    ch["PrimaryName"] = "\\\\DC01\x00"
    ch["ComputerName"] = "DC01\x00"
    ch["ClientChallenge"] = b"\x00" * 8
    resp = response_of(nrpc.NetrServerReqChallengeResponse, 4)
    resp["ServerChallenge"] = b"\x01" * 8
    values, out = decode(NETLOGON, ch, resp)
    assert values["computer_name"] == "DC01" and values["client_challenge_zero"] is True
    assert out.return_kind == "ntstatus"

    auth = nrpc.NetrServerAuthenticate3()
    auth["PrimaryName"] = "\\\\DC01\x00"
    auth["AccountName"] = "DC01$\x00"
    auth["SecureChannelType"] = nrpc.NETLOGON_SECURE_CHANNEL_TYPE.ServerSecureChannel
    auth["ComputerName"] = "DC01\x00"
    auth["ClientCredential"] = b"\x00" * 8
    auth["NegotiateFlags"] = 0x212FFFFF
    resp = response_of(nrpc.NetrServerAuthenticate3Response, 26)
    resp["ServerCredential"] = b"\x00" * 8
    resp["NegotiateFlags"] = 0x212FFFFF
    resp["AccountRid"] = 1000
    values, out = decode(NETLOGON, auth, resp, rc=0xC0000022)
    assert values["account_name"] == "DC01$"
    assert values["secure_channel_type"] == "ServerSecureChannel"
    assert values["client_credential_zero"] is True
    assert values["negotiate_flags"] == "0x212fffff"
    assert values["account_rid"] == 1000
    assert out.return_code == 0xC0000022

    ps = nrpc.NetrServerPasswordSet2()
    ps["PrimaryName"] = "\\\\DC01\x00"
    ps["AccountName"] = "DC01$\x00"
    ps["SecureChannelType"] = nrpc.NETLOGON_SECURE_CHANNEL_TYPE.ServerSecureChannel
    ps["ComputerName"] = "DC01\x00"
    ps["Authenticator"]["Credential"] = b"\x00" * 8
    ps["Authenticator"]["Timestamp"] = 0
    ps["ClearNewPassword"] = b"\x00" * 516
    values, _ = decode(NETLOGON, ps)
    assert values["password_zero"] is True and values["account_name"] == "DC01$"


# -- samr / lsarpc -------------------------------------------------------------------------------


def test_samr_lookup_names_and_enumeration() -> None:
    req = samr.SamrLookupNamesInDomain()
    req["DomainHandle"] = HANDLE
    req["Count"] = 2
    for name in ("Domain Admins", "krbtgt"):
        entry = samr.RPC_UNICODE_STRING()
        entry["Data"] = name
        req["Names"].append(entry)
    resp = response_of(samr.SamrLookupNamesInDomainResponse, 17)
    resp["RelativeIds"]["Count"] = 2
    resp["RelativeIds"]["Element"] = ulongs([512, 502])
    resp["Use"]["Count"] = 2
    resp["Use"]["Element"] = ulongs([2, 1])
    values, _ = decode(SAMR, req, resp)
    assert values["names"] == ["Domain Admins", "krbtgt"]
    assert values["rids"] == [512, 502] and values["count"] == 2

    enum = samr.SamrEnumerateUsersInDomain()
    enum["DomainHandle"] = HANDLE
    enum["EnumerationContext"] = 0
    enum["UserAccountControl"] = 0
    enum["PreferedMaximumLength"] = 0xFFFF
    resp = response_of(samr.SamrEnumerateUsersInDomainResponse, 13)
    resp["EnumerationContext"] = 0
    resp["Buffer"]["EntriesRead"] = 2
    for rid, name in ((500, "Administrator"), (501, "Guest")):
        e = samr.SAMPR_RID_ENUMERATION()
        e["RelativeId"] = rid
        e["Name"] = name
        resp["Buffer"]["Buffer"].append(e)
    resp["CountReturned"] = 2
    values, _ = decode(SAMR, enum, resp)
    assert values["names"] == ["Administrator", "Guest"] and values["rids"] == [500, 501]


def test_samr_create_user_and_open_domain_names_handles() -> None:
    state = StubState()
    od = samr.SamrOpenDomain()
    od["ServerHandle"] = HANDLE
    od["DesiredAccess"] = 0x305
    od["DomainId"].fromCanonical("S-1-5-21-1-2-3")
    resp = response_of(samr.SamrOpenDomainResponse, 7)
    resp["DomainHandle"] = HANDLE2
    assert decode(SAMR, od, resp, state)[0]["domain_sid"] == "S-1-5-21-1-2-3"
    cu = samr.SamrCreateUser2InDomain()
    cu["DomainHandle"] = HANDLE2
    cu["Name"] = "backdoor"
    cu["AccountType"] = samr.USER_NORMAL_ACCOUNT
    cu["DesiredAccess"] = 0xF07FF
    values, _ = decode(SAMR, cu, state=state)
    assert values["user_name"] == "backdoor" and values["domain"] == "S-1-5-21-1-2-3"


def test_lsarpc_lookup_sids_and_secrets() -> None:
    req = lsat.LsarLookupSids2()
    req["PolicyHandle"] = HANDLE
    for sid in ("S-1-5-21-1-2-3-500", "S-1-5-32-544"):
        info = lsat.LSAPR_SID_INFORMATION()
        info["Sid"].fromCanonical(sid)
        req["SidEnumBuffer"]["SidInfo"].append(info)
    req["SidEnumBuffer"]["Entries"] = 2
    req["TranslatedNames"]["Names"] = NULL
    req["LookupLevel"] = lsat.LSAP_LOOKUP_LEVEL.LsapLookupWksta
    req["LookupOptions"] = 0
    req["ClientRevision"] = 1
    resp = response_of(lsat.LsarLookupSids2Response, 57)
    dom = lsad.LSAPR_TRUST_INFORMATION()
    dom["Name"] = "CORP"
    dom["Sid"].fromCanonical("S-1-5-21-1-2-3")
    resp["ReferencedDomains"]["Entries"] = 1
    resp["ReferencedDomains"]["Domains"].append(dom)
    resp["ReferencedDomains"]["MaxEntries"] = 32
    for name, index in (("Administrator", 0), ("Administrators", 0)):
        n = lsat.LSAPR_TRANSLATED_NAME_EX()
        n["Use"] = 1
        n["Name"] = name
        n["DomainIndex"] = index
        n["Flags"] = 0
        resp["TranslatedNames"]["Names"].append(n)
    resp["TranslatedNames"]["Entries"] = 2
    resp["MappedCount"] = 2
    values, out = decode(LSARPC, req, resp, rc=0x107)
    assert values["sids"] == ["S-1-5-21-1-2-3-500", "S-1-5-32-544"] and values["count"] == 2
    assert values["names"] == ["CORP\\Administrator", "CORP\\Administrators"]
    assert out.return_code == 0x107  # STATUS_SOME_NOT_MAPPED

    state = StubState()
    op = lsad.LsarOpenSecret()
    op["PolicyHandle"] = HANDLE
    op["SecretName"] = "$MACHINE.ACC"
    op["DesiredAccess"] = 3
    resp = response_of(lsad.LsarOpenSecretResponse, 28)
    resp["SecretHandle"] = HANDLE2
    assert decode(LSARPC, op, resp, state)[0]["key_name"] == "$MACHINE.ACC"
    rp = lsad.LsarRetrievePrivateData()
    rp["PolicyHandle"] = HANDLE
    rp["KeyName"] = "G$BCKUPKEY_PREFERRED"
    rp["EncryptedData"] = NULL
    assert decode(LSARPC, rp)[0]["key_name"] == "G$BCKUPKEY_PREFERRED"


# -- winreg --------------------------------------------------------------------------------------


def test_winreg_key_paths_through_handles() -> None:
    state = StubState()
    hklm = rrp.OpenLocalMachine()
    hklm["ServerName"] = NULL
    hklm["samDesired"] = rrp.MAXIMUM_ALLOWED
    resp = response_of(rrp.OpenLocalMachineResponse, 2)
    resp["phKey"] = hkey(HANDLE)
    decode(WINREG, hklm, resp, state)
    ok = rrp.BaseRegOpenKey()
    ok["hKey"] = hkey(HANDLE)
    ok["lpSubKey"] = "SYSTEM\x00"
    ok["dwOptions"] = 0
    ok["samDesired"] = rrp.MAXIMUM_ALLOWED
    resp = response_of(rrp.BaseRegOpenKeyResponse, 15)
    resp["phkResult"] = hkey(HANDLE2)
    assert decode(WINREG, ok, resp, state)[0]["key_path"] == "HKLM\\SYSTEM"
    save = rrp.BaseRegSaveKey()
    save["hKey"] = hkey(HANDLE2)
    save["lpFile"] = "C:\\Windows\\Temp\\sys.save\x00"
    save["pSecurityAttributes"] = NULL
    values, _ = decode(WINREG, save, state=state)
    assert values["key_path"] == "HKLM\\SYSTEM" and values["file_name"] == "C:\\Windows\\Temp\\sys.save"
    sv = rrp.BaseRegSetValue()
    sv["hKey"] = hkey(HANDLE2)
    sv["lpValueName"] = "Debugger\x00"
    sv["dwType"] = rrp.REG_SZ
    data = "cmd.exe\x00".encode("utf-16-le")
    sv["lpData"] = list(data)
    sv["cbData"] = len(data)
    values, _ = decode(WINREG, sv, state=state)
    assert (values["value_name"], values["value_type"], values["data"]) == ("Debugger", "REG_SZ", "cmd.exe")


# -- srvsvc / wkssvc -----------------------------------------------------------------------------


def test_srvsvc_share_enum_and_get_info() -> None:
    req = srvs.NetrShareEnum()
    req["ServerName"] = "\\\\DC01\x00"
    req["InfoStruct"]["Level"] = 1
    req["InfoStruct"]["ShareInfo"]["tag"] = 1
    req["InfoStruct"]["ShareInfo"]["Level1"] = NULL
    req["PreferedMaximumLength"] = 0xFFFFFFFF
    req["ResumeHandle"] = NULL
    resp = response_of(srvs.NetrShareEnumResponse, 15)
    resp["InfoStruct"]["Level"] = 1
    resp["InfoStruct"]["ShareInfo"]["tag"] = 1
    resp["InfoStruct"]["ShareInfo"]["Level1"]["EntriesRead"] = 2
    for name in ("ADMIN$", "C$"):
        e = srvs.SHARE_INFO_1()
        e["shi1_netname"] = name + "\x00"
        e["shi1_type"] = 0
        e["shi1_remark"] = "x\x00"
        resp["InfoStruct"]["ShareInfo"]["Level1"]["Buffer"].append(e)
    resp["TotalEntries"] = 2
    resp["ResumeHandle"] = NULL
    values, _ = decode(SRVSVC, req, resp)
    assert values["level"] == 1 and values["server_name"] == "\\\\DC01"
    assert values["share_names"] == ["ADMIN$", "C$"]

    gi = srvs.NetrShareGetInfo()
    gi["ServerName"] = NULL
    gi["NetName"] = "SYSVOL\x00"
    gi["Level"] = 502
    values, _ = decode(SRVSVC, gi)
    assert (values["share_name"], values["level"]) == ("SYSVOL", 502)


def test_srvsvc_session_enum_level_10() -> None:
    req = srvs.NetrSessionEnum()
    req["ServerName"] = NULL
    req["ClientName"] = NULL
    req["UserName"] = NULL
    req["InfoStruct"]["Level"] = 10
    req["InfoStruct"]["SessionInfo"]["tag"] = 10
    req["InfoStruct"]["SessionInfo"]["Level10"]["Buffer"] = NULL
    req["PreferedMaximumLength"] = 0xFFFFFFFF
    req["ResumeHandle"] = NULL
    values, _ = decode(SRVSVC, req)
    assert values["level"] == 10


def test_wkssvc_user_enum() -> None:
    req = wkst.NetrWkstaUserEnum()
    req["ServerName"] = "\\\\WS01\x00"
    req["UserInfo"]["Level"] = 1
    req["UserInfo"]["WkstaUserInfo"]["tag"] = 1
    req["UserInfo"]["WkstaUserInfo"]["Level1"]["Buffer"] = NULL
    req["PreferredMaximumLength"] = 0xFFFFFFFF
    req["ResumeHandle"] = NULL
    values, _ = decode(WKSSVC, req)
    assert values["level"] == 1 and values["server_name"] == "\\\\WS01"


# -- spoolss / par / efsrpc ----------------------------------------------------------------------


def _driver_container(req: NDRCALL) -> None:
    req["pDriverContainer"]["Level"] = 2
    req["pDriverContainer"]["DriverInfo"]["tag"] = 2
    info = req["pDriverContainer"]["DriverInfo"]["Level2"]
    info["cVersion"] = 3
    info["pName"] = "1234\x00"
    info["pEnvironment"] = "Windows x64\x00"
    info["pDriverPath"] = "C:\\Windows\\System32\\DriverStore\\UNIDRV.DLL\x00"
    info["pDataFile"] = "\\\\10.0.0.105\\smb\\evil.dll\x00"
    info["pConfigFile"] = "C:\\Windows\\System32\\kernelbase.dll\x00"


def test_spoolss_printnightmare_driver_paths() -> None:
    req = rprn.RpcAddPrinterDriverEx()
    req["pName"] = NULL
    _driver_container(req)
    req["dwFileCopyFlags"] = 0x8014
    values, _ = decode(SPOOLSS, req)
    assert values["data_file"] == "\\\\10.0.0.105\\smb\\evil.dll"
    assert values["environment"] == "Windows x64" and values["level"] == 2
    assert values["flags"] == "0x00008014"
    areq = par.RpcAsyncAddPrinterDriver()
    areq["pName"] = NULL
    _driver_container(areq)
    areq["dwFileCopyFlags"] = 0x10
    assert decode(PAR, areq)[0]["driver_path"].endswith("UNIDRV.DLL")


def test_spoolss_printer_bug_local_machine() -> None:
    state = StubState()
    op = rprn.RpcOpenPrinterEx()
    op["pPrinterName"] = "\\\\DC01\x00"
    op["pDatatype"] = NULL
    op["pDevModeContainer"]["pDevMode"] = NULL
    op["AccessRequired"] = 0x20002
    op["pClientInfo"]["Level"] = 1
    op["pClientInfo"]["ClientInfo"]["tag"] = 1
    op["pClientInfo"]["ClientInfo"]["pClientInfo1"]["dwSize"] = 28
    op["pClientInfo"]["ClientInfo"]["pClientInfo1"]["pMachineName"] = NULL
    op["pClientInfo"]["ClientInfo"]["pClientInfo1"]["pUserName"] = NULL
    resp = response_of(rprn.RpcOpenPrinterExResponse, 69)
    resp["pHandle"] = HANDLE2
    assert decode(SPOOLSS, op, resp, state)[0]["printer_name"] == "\\\\DC01"
    req = rprn.RpcRemoteFindFirstPrinterChangeNotificationEx()
    req["hPrinter"] = HANDLE2
    req["fdwFlags"] = rprn.PRINTER_CHANGE_ADD_JOB
    req["pszLocalMachine"] = "\\\\10.0.0.66\x00"
    req["pOptions"] = NULL
    values, _ = decode(SPOOLSS, req, state=state)
    assert values["local_machine"] == "\\\\10.0.0.66" and values["printer_name"] == "\\\\DC01"


@pytest.mark.parametrize("uuid", [EFS, EFS2])
def test_efsrpc_file_names_on_both_interfaces(uuid: str) -> None:
    from impacket.dcerpc.v5.dtypes import ULONG, WSTR
    from impacket.dcerpc.v5.ndr import NDRCALL as _N

    class EfsRpcOpenFileRaw(_N):  # [MS-EFSR] 3.1.4.2.1 (impacket ships no EFSR module)
        opnum = 0
        structure = (("FileName", WSTR), ("Flags", ULONG))

    class EfsRpcEncryptFileSrv(_N):
        opnum = 4
        structure = (("FileName", WSTR),)

    req = EfsRpcOpenFileRaw()
    req["FileName"] = "\\\\10.0.0.66\\test\\Settings.ini\x00"
    req["Flags"] = 0
    assert decode(uuid, req)[0]["file_name"] == "\\\\10.0.0.66\\test\\Settings.ini"
    enc = EfsRpcEncryptFileSrv()
    enc["FileName"] = "\\\\10.0.0.66@80/x\\a\x00"
    assert decode(uuid, enc)[0]["file_name"] == "\\\\10.0.0.66@80/x\\a"


# -- tasks ---------------------------------------------------------------------------------------


def test_atsvc_job_add_command() -> None:
    req = atsvc.NetrJobAdd()
    req["ServerName"] = NULL
    req["pAtInfo"]["JobTime"] = 0
    req["pAtInfo"]["DaysOfMonth"] = 0
    req["pAtInfo"]["DaysOfWeek"] = 0
    req["pAtInfo"]["Flags"] = 0
    req["pAtInfo"]["Command"] = "c:\\mimikatz.exe\x00"
    values, _ = decode(ATSVC, req)
    assert values["command"] == "c:\\mimikatz.exe"


def test_tsch_register_run_delete() -> None:
    xml = "<?xml version='1.0'?><Task>" + "x" * 5000 + "</Task>"
    req = tsch.SchRpcRegisterTask()
    req["path"] = "\\nZfRUBts\x00"
    req["xml"] = xml + "\x00"
    req["flags"] = tsch.TASK_CREATE
    req["sddl"] = NULL
    req["logonType"] = tsch.TASK_LOGON_NONE
    req["cCreds"] = 0
    req["pCreds"] = NULL
    values, out = decode(TSCH, req)
    assert values["task_path"] == "\\nZfRUBts"
    assert values["task_xml"].startswith("<?xml") and values["task_xml"].endswith("chars]")  # truncated, marked
    assert out.arguments is not None and "...[+" in out.arguments
    run = tsch.SchRpcRun()
    run["path"] = "\\nZfRUBts\x00"
    run["cArgs"] = 0
    run["pArgs"] = NULL
    run["flags"] = 0
    run["sessionId"] = 0
    run["user"] = NULL
    assert decode(TSCH, run)[0]["task_path"] == "\\nZfRUBts"
    d = tsch.SchRpcDelete()
    d["path"] = "\\nZfRUBts\x00"
    d["flags"] = 0
    values, out = decode(TSCH, d, response_of(tsch.SchRpcDeleteResponse, 13), rc=0x80070002)
    assert values["task_path"] == "\\nZfRUBts"
    assert (out.return_code, out.return_kind) == (0x80070002, "hresult")


# -- drsuapi -------------------------------------------------------------------------------------


def _dsname(dn: str) -> drsuapi.DSNAME:
    n = drsuapi.DSNAME()
    n["SidLen"] = 0
    n["Guid"] = b"\x00" * 16
    n["Sid"] = ""
    n["NameLen"] = len(dn)
    n["StringName"] = dn + "\x00"
    n["structLen"] = len(n.getData())
    return n


def test_drsuapi_bind_and_dcsync_request() -> None:
    bind = drsuapi.DRSBind()
    bind["puuidClientDsa"] = drsuapi.NTDSAPI_CLIENT_GUID
    ext = drsuapi.DRS_EXTENSIONS_INT()
    ext["cb"] = len(ext) - 4
    ext["dwFlags"] = 0x04000000
    ext["SiteObjGuid"] = b"\x00" * 16
    ext["Pid"] = 0
    ext["dwReplEpoch"] = 0
    ext["dwFlagsExt"] = 0
    ext["ConfigObjGUID"] = b"\x00" * 16
    ext["dwExtCaps"] = 0xFFFFFFFF
    bind["pextClient"]["cb"] = len(ext.getData())
    bind["pextClient"]["rgb"] = list(ext.getData())
    values, _ = decode(DRSUAPI, bind)
    assert values["client_dsa_guid"] == "e24d201a-4fd6-11d1-a3da-0000f875ae0d"

    for version in (8, 10):
        req = drsuapi.DRSGetNCChanges()
        req["hDrs"] = HANDLE
        req["dwInVersion"] = version
        req["pmsgIn"]["tag"] = version
        body = req["pmsgIn"][f"V{version}"]
        body["uuidDsaObjDest"] = string_to_bin("11111111-2222-3333-4444-555555555555")
        body["uuidInvocIdSrc"] = b"\x00" * 16
        body["pNC"] = _dsname("CN=krbtgt,CN=Users,DC=corp,DC=local")
        body["usnvecFrom"]["usnHighObjUpdate"] = 0
        body["usnvecFrom"]["usnHighPropUpdate"] = 0
        body["pUpToDateVecDest"] = NULL
        body["ulFlags"] = drsuapi.DRS_INIT_SYNC | drsuapi.DRS_WRIT_REP
        body["cMaxObjects"] = 1
        body["cMaxBytes"] = 0
        body["ulExtendedOp"] = drsuapi.EXOP_REPL_OBJ
        body["pPartialAttrSet"] = NULL
        body["pPartialAttrSetEx1"] = NULL
        body["PrefixTableDest"]["PrefixCount"] = 0
        body["PrefixTableDest"]["pPrefixEntry"] = NULL
        if version == 10:
            body["ulMoreFlags"] = 0
        values, _ = decode(DRSUAPI, req)
        assert values["naming_context"] == "CN=krbtgt,CN=Users,DC=corp,DC=local"
        assert values["exop"] == "EXOP_REPL_OBJ"
        assert values["destination_dsa"] == "11111111-2222-3333-4444-555555555555"


# -- event logs, BackupKey -----------------------------------------------------------------------


def test_eventlog_open_then_clear() -> None:
    state = StubState()
    op = even.ElfrOpenELW()
    op["UNCServerName"] = NULL
    op["ModuleName"] = "Security"
    op["RegModuleName"] = ""
    op["MajorVersion"] = 1
    op["MinorVersion"] = 1
    resp = response_of(even.ElfrOpenELWResponse, 7)
    resp["LogHandle"] = HANDLE2
    assert decode(EVENTLOG, op, resp, state)[0]["channel"] == "Security"
    clear = even.ElfrClearELFW()
    clear["LogHandle"] = HANDLE2
    clear["BackupFileName"] = NULL
    values, out = decode(EVENTLOG, clear, state=state)
    assert values["channel"] == "Security" and values["backup_file"] is None
    assert out.arguments == "channel=Security"


def test_even6_clear_log_channel() -> None:
    from impacket.dcerpc.v5.dtypes import DWORD as _DWORD
    from impacket.dcerpc.v5.dtypes import LPWSTR, WSTR

    class EvtRpcClearLog(NDRCALL):
        """[MS-EVEN6] 3.1.4.16: backupPath is [unique] (impacket's even6 declares it a plain WSTR)."""

        opnum = 6
        structure = (
            ("Handle", even6.CONTEXT_HANDLE_OPERATION_CONTROL),
            ("ChannelPath", WSTR),
            ("BackupPath", LPWSTR),
            ("Flags", _DWORD),
        )

    req = EvtRpcClearLog()
    req["Handle"] = hkey(HANDLE, even6.CONTEXT_HANDLE_OPERATION_CONTROL)
    req["ChannelPath"] = "Microsoft-Windows-Sysmon/Operational\x00"
    req["BackupPath"] = NULL
    req["Flags"] = 0
    assert decode(EVEN6, req)[0]["channel"] == "Microsoft-Windows-Sysmon/Operational"


def test_backupkey_action() -> None:
    req = bkrp.BackuprKey()
    req["pguidActionAgent"] = bkrp.BACKUPKEY_RETRIEVE_BACKUP_KEY_GUID
    req["pDataIn"] = b"\x00" * 4
    req["cbDataIn"] = 4
    req["dwParam"] = 0
    values, _ = decode(BKRP, req)
    assert values["action"] == "BACKUPKEY_RETRIEVE_BACKUP_KEY_GUID" and values["data_in_bytes"] == 4


# -- DCOM / WMI ----------------------------------------------------------------------------------


def test_dcom_activation_clsid() -> None:
    mmc = "49b2791a-b1ae-4c90-9b8e-e860ba07f889"
    blob = ACTIVATION_BLOB()
    blob["CustomHeader"]["destCtx"] = 2
    blob["CustomHeader"]["pdwReserved"] = NULL
    clsid = CLSID()
    clsid["Data"] = CLSID_InstantiationInfo
    blob["CustomHeader"]["pclsid"].append(clsid)
    info = InstantiationInfoData()
    info["classId"] = string_to_bin(mmc)
    info["cIID"] = 1
    iid = IID()
    iid["Data"] = string_to_bin("00020400-0000-0000-c000-000000000046")
    info["pIID"].append(iid)
    marshaled = info.getData() + info.getDataReferents()
    size = DWORD()
    size["Data"] = len(marshaled) + (-len(marshaled) % 8)
    blob["CustomHeader"]["pSizes"].append(size)
    info["thisSize"] = size["Data"]
    blob["Property"] = marshaled + b"\xfa" * (-len(marshaled) % 8)
    objref = OBJREF_CUSTOM()
    objref["iid"] = IID_IActivationPropertiesIn[:-4]
    objref["clsid"] = CLSID_ActivationPropertiesIn
    objref["pObjectData"] = blob.getData()
    objref["ObjectReferenceSize"] = len(objref["pObjectData"]) + 8
    req = RemoteCreateInstance()
    req["ORPCthis"] = orpcthis()
    req["pUnkOuter"] = NULL
    req["pActProperties"]["ulCntData"] = len(objref.getData())
    req["pActProperties"]["abData"] = list(objref.getData())
    values, _ = decode(ACTIVATOR, req)
    assert values["clsid"] == mmc and values["clsid_name"] == "MMC20.Application"


def test_idispatch_names() -> None:
    req = oaut.IDispatch_GetIDsOfNames()
    req["ORPCthis"] = orpcthis()
    req["riid"] = string_to_bin("00000000-0000-0000-0000-000000000000")
    for name in ("Document",):
        n = oaut.LPOLESTR()
        n["Data"] = name + "\x00"
        req["rgszNames"].append(n)
    req["cNames"] = 1
    req["lcid"] = 0
    assert decode(IDISPATCH, req)[0]["names"] == ["Document"]


def test_wmi_login_query_method() -> None:
    login = wmi.IWbemLevel1Login_NTLMLogin()
    login["ORPCthis"] = orpcthis()
    login["wszNetworkResource"] = "//./root/cimv2\x00"
    login["wszPreferredLocale"] = NULL
    login["lFlags"] = 0
    login["pCtx"] = NULL
    assert decode(WBEM_LOGIN, login)[0]["namespace"] == "//./root/cimv2"
    q = wmi.IWbemServices_ExecQuery()
    q["ORPCthis"] = orpcthis()
    q["strQueryLanguage"]["asData"] = "WQL"
    q["strQuery"]["asData"] = "SELECT * FROM Win32_Process"
    q["lFlags"] = 0
    q["pCtx"] = NULL
    assert decode(WBEM, q)[0]["query"] == "SELECT * FROM Win32_Process"
    m = wmi.IWbemServices_ExecMethod()
    m["ORPCthis"] = orpcthis()
    m["strObjectPath"]["asData"] = "Win32_Process"
    m["strMethodName"]["asData"] = "Create"
    m["lFlags"] = 0
    m["pCtx"] = NULL
    m["pInParams"] = NULL
    m["ppOutParams"] = NULL
    values, _ = decode(WBEM, m)
    assert (values["class_name"], values["method"]) == ("Win32_Process", "Create")


# -- endpoint mapper -----------------------------------------------------------------------------


def test_epm_lookup_request() -> None:
    req = iepm.ept_lookup()
    req["inquiry_type"] = iepm.RPC_C_EP_ALL_ELTS
    req["object"] = NULL
    req["Ifid"] = NULL
    req["vers_option"] = iepm.RPC_C_VERS_ALL
    req["max_ents"] = 499
    values, out = decode(EPM, req)
    assert (values["inquiry"], values["max_ents"]) == ("rpc_c_ep_all_elts", 499)
    assert out.return_code is None  # ept_lookup's status is read by its own parser, not the tail


def test_ndr64_is_not_guessed_from_ndr20() -> None:
    """An NDR 2.0 stub read as NDR64 fails loudly (a violation), never silently misreads."""
    req = scmr.ROpenServiceW()
    req["hSCManager"] = HANDLE
    req["lpServiceName"] = "x\x00"
    req["dwDesiredAccess"] = 1
    kept = Stubs(True, req.getData(), True, None, True, None)
    out = stubs.decode(SVCCTL, 16, kept, StubState())
    assert out is not None and out.violations and out.violations[0][1].startswith("stub_")


def test_uuidtup_helper_available() -> None:
    assert uuidtup_to_bin((SVCCTL, "2.0"))[:16] == string_to_bin(SVCCTL)


def test_idispatch_invoke_arguments() -> None:
    """Invoke with BSTR arguments as impacket's dcomexec sends ExecuteShellCommand (last first)."""
    params = oaut.DISPPARAMS(None, False)
    params["rgdispidNamedArgs"] = NULL
    params["cArgs"] = 3
    params["cNamedArgs"] = 0
    for text in ("7", "/c whoami", "cmd.exe"):
        arg = oaut.VARIANT(None, False)
        arg["clSize"] = 5
        arg["vt"] = oaut.VARENUM.VT_BSTR
        arg["_varUnion"]["tag"] = oaut.VARENUM.VT_BSTR
        arg["_varUnion"]["bstrVal"]["asData"] = text
        params["rgvarg"].append(arg)
    req = oaut.IDispatch_Invoke()
    req["ORPCthis"] = orpcthis()
    req["dispIdMember"] = 54
    req["riid"] = b"\x00" * 16
    req["lcid"] = 0x409
    req["dwFlags"] = oaut.DISPATCH_METHOD
    req["pDispParams"] = params
    req["cVarRef"] = 0
    req["rgVarRefIdx"] = []
    req["rgVarRef"] = []
    state = StubState()
    names = oaut.IDispatch_GetIDsOfNames()
    names["ORPCthis"] = orpcthis()
    names["riid"] = b"\x00" * 16
    n = oaut.LPOLESTR()
    n["Data"] = "ExecuteShellCommand\x00"
    names["rgszNames"].append(n)
    names["cNames"] = 1
    names["lcid"] = 0
    answer = response_of(oaut.IDispatch_GetIDsOfNamesResponse, 5)
    answer["ORPCthat"]["flags"] = 0
    answer["ORPCthat"]["extensions"] = NULL
    answer["rgDispId"].append(54)
    ipid, other = "00005406-0390-0394-b2d6-b39c0e509fbb", "00005406-0390-0394-b2d6-000000000000"
    kept = Stubs(False, names.getData(), True, answer.getData() + bytes(4), True, bytes(4), ipid)
    assert stubs.decode(IDISPATCH, 5, kept, state, strict=True) is not None
    for obj, member in ((ipid, "ExecuteShellCommand"), (other, None)):
        out = stubs.decode(IDISPATCH, 6, Stubs(False, req.getData(), True, None, True, None, obj), state, strict=True)
        assert out is not None and not out.violations
        values = json.loads(out.arguments_json or "{}")
        assert values.get("member") == member  # named on the object that taught it only
        assert values["dispid"] == 54 and values["flags"] == "method"
        assert values["args"] == ["cmd.exe", "/c whoami", "7"]


def test_ndr64_stubs_from_impacket() -> None:
    """impacket's NDR64 encoding (8-byte pointers and counts, 8-aligned structures)."""
    req = scmr.ROpenServiceW(isNDR64=True)
    req["hSCManager"] = HANDLE
    req["lpServiceName"] = "Spooler\x00"
    req["dwDesiredAccess"] = 0x10
    kept = Stubs(True, req.getData(), True, None, True, None)
    out = stubs.decode(SVCCTL, 16, kept, StubState(), strict=True)
    assert out is not None and not out.violations
    assert json.loads(out.arguments_json or "{}")["service_name"] == "Spooler"
    auth = nrpc.NetrServerAuthenticate3(isNDR64=True)
    auth["PrimaryName"] = "\\\\DC01\x00"
    auth["AccountName"] = "DC01$\x00"
    auth["SecureChannelType"] = nrpc.NETLOGON_SECURE_CHANNEL_TYPE.ServerSecureChannel
    auth["ComputerName"] = "DC01\x00"
    auth["ClientCredential"] = b"\x00" * 8
    auth["NegotiateFlags"] = 0x212FFFFF
    kept = Stubs(True, auth.getData(), True, None, True, None)
    out = stubs.decode(NETLOGON, 26, kept, StubState(), strict=True)
    assert out is not None and not out.violations
    values = json.loads(out.arguments_json or "{}")
    assert (values["account_name"], values["computer_name"], values["negotiate_flags"]) == (
        "DC01$",
        "DC01",
        "0x212fffff",
    )


# -- the second batch: enumeration, persistence and remote-control operations --------------------


def test_netlogon_sam_logon_with_flags_identity() -> None:
    req = nrpc.NetrLogonSamLogonWithFlags()
    req["LogonServer"] = "\\\\DC01\x00"
    req["ComputerName"] = "WS01\x00"
    req["Authenticator"] = NULL
    req["ReturnAuthenticator"] = NULL
    req["LogonLevel"] = nrpc.NETLOGON_LOGON_INFO_CLASS.NetlogonNetworkTransitiveInformation
    req["LogonInformation"]["tag"] = nrpc.NETLOGON_LOGON_INFO_CLASS.NetlogonNetworkTransitiveInformation
    info = req["LogonInformation"]["LogonNetworkTransitive"]
    info["Identity"]["LogonDomainName"] = "CORP"
    info["Identity"]["ParameterControl"] = 0
    info["Identity"]["UserName"] = "alice"
    info["Identity"]["Workstation"] = "WS07"
    info["LmChallenge"] = b"\x11" * 8
    info["NtChallengeResponse"] = b"\x22" * 24
    info["LmChallengeResponse"] = b""
    req["ValidationLevel"] = nrpc.NETLOGON_VALIDATION_INFO_CLASS.NetlogonValidationSamInfo4
    req["ExtraFlags"] = 0
    values, _ = decode(NETLOGON, req)
    assert (values["logon_level"], values["logon_domain"], values["user_name"], values["workstation"]) == (
        "NetworkTransitive",
        "CORP",
        "alice",
        "WS07",
    )


def test_srvsvc_share_add_and_path_canonicalize() -> None:
    add = srvs.NetrShareAdd()
    add["ServerName"] = NULL
    add["Level"] = 2
    add["InfoStruct"]["tag"] = 2
    info = add["InfoStruct"]["ShareInfo2"]
    info["shi2_netname"] = "loot$\x00"
    info["shi2_type"] = 0
    info["shi2_remark"] = NULL
    info["shi2_permissions"] = 0
    info["shi2_max_uses"] = 0xFFFFFFFF
    info["shi2_current_uses"] = 0
    info["shi2_path"] = "C:\\\x00"
    info["shi2_passwd"] = NULL
    add["ParmErr"] = NULL
    values, _ = decode(SRVSVC, add)
    assert (values["share_name"], values["path"], values["level"]) == ("loot$", "C:\\", 2)
    pc = srvs.NetprPathCanonicalize()
    pc["ServerName"] = NULL
    pc["PathName"] = "\\..\\..\\AAAA\x00"
    pc["OutbufLen"] = 1000
    pc["Prefix"] = "\\\x00"
    pc["PathType"] = 1
    pc["Flags"] = 0
    values, _ = decode(SRVSVC, pc)
    assert values["path_name"] == "\\..\\..\\AAAA" and values["prefix"] == "\\"


def test_winreg_hive_load_and_shutdown() -> None:
    state = StubState()
    hklm = rrp.OpenLocalMachine()
    hklm["ServerName"] = NULL
    hklm["samDesired"] = rrp.MAXIMUM_ALLOWED
    resp = response_of(rrp.OpenLocalMachineResponse, 2)
    resp["phKey"] = hkey(HANDLE)
    decode(WINREG, hklm, resp, state)
    load = rrp.BaseRegLoadKey()
    load["hKey"] = hkey(HANDLE)
    load["lpSubKey"] = "EVIL\x00"
    load["lpFile"] = "C:\\Users\\Public\\evil.hiv\x00"
    values, _ = decode(WINREG, load, state=state)
    assert (values["key_path"], values["file_name"]) == ("HKLM\\EVIL", "C:\\Users\\Public\\evil.hiv")
    from impacket.dcerpc.v5.dtypes import BOOLEAN, PRPC_UNICODE_STRING, ULONG

    class BaseInitiateSystemShutdown(NDRCALL):  # [MS-RRP] 3.1.5.24 (impacket ships none)
        opnum = 24
        structure = (
            ("ServerName", rrp.PREGISTRY_SERVER_NAME),
            ("lpMessage", PRPC_UNICODE_STRING),
            ("dwTimeout", ULONG),
            ("bForceAppsClosed", BOOLEAN),
            ("bRebootAfterShutdown", BOOLEAN),
        )

    sd = BaseInitiateSystemShutdown()
    sd["ServerName"] = NULL
    sd["lpMessage"] = "maintenance"
    sd["dwTimeout"] = 30
    sd["bForceAppsClosed"] = 1
    sd["bRebootAfterShutdown"] = 1
    values, _ = decode(WINREG, sd)
    assert (values["message"], values["timeout"], values["reboot_after_shutdown"]) == ("maintenance", 30, 1)


def test_svcctl_enumeration() -> None:
    req = scmr.REnumServicesStatusW()
    req["hSCManager"] = HANDLE
    req["dwServiceType"] = scmr.SERVICE_WIN32_OWN_PROCESS | scmr.SERVICE_WIN32_SHARE_PROCESS
    req["dwServiceState"] = scmr.SERVICE_STATE_ALL
    req["cbBufSize"] = 0
    req["lpResumeIndex"] = NULL
    assert decode(SVCCTL, req)[0]["service_state"] == "SERVICE_STATE_ALL"


def test_samr_display_and_lsa_rights() -> None:
    req = samr.SamrQueryDisplayInformation()
    req["DomainHandle"] = HANDLE
    req["DisplayInformationClass"] = samr.DOMAIN_DISPLAY_INFORMATION.DomainDisplayUser
    req["Index"] = 0
    req["EntryCount"] = 100
    req["PreferredMaximumLength"] = 0xFFFF
    values, _ = decode(SAMR, req)
    assert (values["display_class"], values["entry_count"]) == (1, 100)
    r = lsad.LsarEnumerateAccountsWithUserRight()
    r["PolicyHandle"] = HANDLE
    r["UserRight"] = "SeDebugPrivilege"
    assert decode(LSARPC, r)[0]["user_right"] == "SeDebugPrivilege"


def test_event_log_read_and_query() -> None:
    state = StubState()
    op = even.ElfrOpenELW()
    op["UNCServerName"] = NULL
    op["ModuleName"] = "System"
    op["RegModuleName"] = ""
    op["MajorVersion"] = 1
    op["MinorVersion"] = 1
    resp = response_of(even.ElfrOpenELWResponse, 7)
    resp["LogHandle"] = HANDLE2
    decode(EVENTLOG, op, resp, state)
    rd = even.ElfrReadELW()
    rd["LogHandle"] = HANDLE2
    rd["ReadFlags"] = 5
    rd["RecordOffset"] = 0
    rd["NumberOfBytesToRead"] = 0x10000
    values, _ = decode(EVENTLOG, rd, state=state)
    assert (values["channel"], values["read_flags"]) == ("System", 5)
    q = even6.EvtRpcRegisterLogQuery()
    q["Path"] = "Security\x00"
    q["Query"] = "*[System[EventID=4624]]\x00"
    q["Flags"] = 1
    values, _ = decode(EVEN6, q)
    assert (values["path"], values["query"]) == ("Security", "*[System[EventID=4624]]")


def test_tsch_folder_and_sasec_account() -> None:
    from impacket.dcerpc.v5 import sasec

    f = tsch.SchRpcCreateFolder()
    f["path"] = "\\Microsoft\\Evil\x00"
    f["sddl"] = NULL
    f["flags"] = 0
    assert decode(TSCH, f)[0]["task_path"] == "\\Microsoft\\Evil"
    sa = sasec.SASetAccountInformation()
    sa["Handle"] = NULL
    sa["pwszJobName"] = "At1.job\x00"
    sa["pwszAccount"] = "CORP\\svc\x00"
    sa["pwszPassword"] = "secret\x00"
    sa["dwJobFlags"] = 0
    values, out = decode("378e52b0-c0a9-11cf-822d-00aa0051e40f", sa)
    assert (values["job_name"], values["account"]) == ("At1.job", "CORP\\svc")
    assert "password" not in values and "secret" not in (out.arguments_json or "")


def test_icpr_cert_request_attributes() -> None:
    from impacket.dcerpc.v5 import icpr

    req = icpr.CertServerRequest()
    req["dwFlags"] = 0
    req["pwszAuthority"] = "corp-CA\x00"
    req["pdwRequestId"] = 0
    attribs = "CertificateTemplate:User\nSAN:upn=administrator@corp.local\x00".encode("utf-16-le")
    req["pctbAttribs"]["cb"] = len(attribs)
    req["pctbAttribs"]["pb"] = attribs
    req["pctbRequest"]["cb"] = 3
    req["pctbRequest"]["pb"] = b"\x30\x82\x01"
    values, _ = decode("91ae6020-9e3c-11cf-8d7c-00aa00c091be", req)
    assert values["authority"] == "corp-CA"
    assert values["attributes"] == "CertificateTemplate:User\nSAN:upn=administrator@corp.local"
    assert values["request_bytes"] == 3


def test_hand_built_dfsnm_fsrvp_dns_shutdown() -> None:
    """Operations impacket ships no module for, written with its NDR primitives from the IDL."""
    from impacket.dcerpc.v5.dtypes import DWORD as _DWORD
    from impacket.dcerpc.v5.dtypes import LPSTR, LPWSTR, ULONG, WSTR
    from impacket.dcerpc.v5.ndr import NDRUNION

    class NetrDfsAddStdRoot(NDRCALL):  # [MS-DFSNM] 3.1.4.4.1
        opnum = 12
        structure = (("ServerName", WSTR), ("RootShare", WSTR), ("Comment", WSTR), ("ApiFlags", _DWORD))

    class IsPathSupported(NDRCALL):  # [MS-FSRVP] 3.1.4.7
        opnum = 8
        structure = (("ShareName", WSTR),)

    class DnssrvRpcUnion(NDRUNION):
        commonHdr = (("tag", _DWORD),)
        union: ClassVar[dict[int, tuple[str, Any]]] = {3: ("Lpwstr", LPWSTR)}

    class R_DnssrvOperation(NDRCALL):  # [MS-DNSP] 3.1.4.1
        opnum = 0
        structure = (
            ("pwszServerName", LPWSTR),
            ("pszZone", LPSTR),
            ("dwContext", _DWORD),
            ("pszOperation", LPSTR),
            ("dwTypeId", _DWORD),
            ("pData", DnssrvRpcUnion),
        )

    class WsdrInitiateShutdown(NDRCALL):  # [MS-RSP] 3.3.4.1
        opnum = 0
        structure = (
            ("lpMessage", samr.PRPC_UNICODE_STRING),
            ("dwGracePeriod", ULONG),
            ("dwShudownFlags", ULONG),
            ("dwReason", ULONG),
            ("lpClientHint", samr.PRPC_UNICODE_STRING),
        )

    root = NetrDfsAddStdRoot()
    root["ServerName"] = "10.0.0.66\x00"
    root["RootShare"] = "x\x00"
    root["Comment"] = "\x00"
    root["ApiFlags"] = 0
    assert decode("4fc742e0-4a10-11cf-8273-00aa004ae673", root)[0]["path"] == "\\\\10.0.0.66\\x"
    sp = IsPathSupported()
    sp["ShareName"] = "\\\\10.0.0.66\\share\x00"
    assert decode("a8e0653c-2744-4389-a61d-7373df8b2292", sp)[0]["share_path"] == "\\\\10.0.0.66\\share"
    dns = R_DnssrvOperation()
    dns["pwszServerName"] = NULL
    dns["pszZone"] = NULL
    dns["dwContext"] = 0
    dns["pszOperation"] = "ServerLevelPluginDll\x00"
    dns["dwTypeId"] = 3
    dns["pData"]["tag"] = 3
    dns["pData"]["Lpwstr"] = "\\\\10.0.0.66\\share\\evil.dll\x00"
    values, _ = decode("50abc2a4-574d-40b3-9d66-ee4fd5fba076", dns)
    assert (values["operation"], values["data"]) == ("ServerLevelPluginDll", "\\\\10.0.0.66\\share\\evil.dll")
    sd = WsdrInitiateShutdown()
    sd["lpMessage"] = "bye"
    sd["dwGracePeriod"] = 0
    sd["dwShudownFlags"] = 0
    sd["dwReason"] = 0x80000000
    sd["lpClientHint"] = NULL
    values, _ = decode("d95afe70-a6d5-4259-822e-2c84da1ddb0d", sd)
    assert (values["message"], values["reason"]) == ("bye", 0x80000000)


def test_drsuapi_dc_info_and_replica_add() -> None:
    req = drsuapi.DRSDomainControllerInfo()
    req["hDrs"] = HANDLE
    req["dwInVersion"] = 1
    req["pmsgIn"]["tag"] = 1
    req["pmsgIn"]["V1"]["Domain"] = "corp.local\x00"
    req["pmsgIn"]["V1"]["InfoLevel"] = 2
    values, _ = decode(DRSUAPI, req)
    assert (values["domain"], values["info_level"]) == ("corp.local", 2)

    from impacket.dcerpc.v5.dtypes import DWORD as _DWORD
    from impacket.dcerpc.v5.dtypes import LPSTR
    from impacket.dcerpc.v5.ndr import NDRSTRUCT, NDRUNION, NDRUniFixedArray

    class REPLTIMES(NDRUniFixedArray):
        def getDataLen(self, data: bytes, offset: int = 0) -> int:
            return 84

    class DRS_MSG_REPADD_V1(NDRSTRUCT):  # [MS-DRSR] 4.1.19.1.1
        structure = (("pNC", drsuapi.PDSNAME), ("pszDsaSrc", LPSTR), ("rtSchedule", REPLTIMES), ("ulOptions", _DWORD))

    class DRS_MSG_REPADD(NDRUNION):
        commonHdr = (("tag", _DWORD),)
        union: ClassVar[dict[int, tuple[str, Any]]] = {1: ("V1", DRS_MSG_REPADD_V1)}

    class DRSReplicaAdd(NDRCALL):  # [MS-DRSR] 4.1.19 (impacket ships none)
        opnum = 5
        structure = (("hDrs", drsuapi.DRS_HANDLE), ("dwVersion", _DWORD), ("pmsgAdd", DRS_MSG_REPADD))

    add = DRSReplicaAdd()
    add["hDrs"] = HANDLE
    add["dwVersion"] = 1
    add["pmsgAdd"]["tag"] = 1
    add["pmsgAdd"]["V1"]["pNC"] = _dsname("DC=corp,DC=local")
    add["pmsgAdd"]["V1"]["pszDsaSrc"] = "rogue.corp.local\x00"
    add["pmsgAdd"]["V1"]["rtSchedule"] = b"\x00" * 84
    add["pmsgAdd"]["V1"]["ulOptions"] = 0
    values, _ = decode(DRSUAPI, add)
    assert (values["naming_context"], values["source_dsa_address"]) == ("DC=corp,DC=local", "rogue.corp.local")


def test_rem_query_interface_iids() -> None:
    from impacket.dcerpc.v5 import dcomrt

    req = dcomrt.RemQueryInterface()
    req["ORPCthis"] = orpcthis()
    req["ripid"] = b"\x42" * 16
    req["cRefs"] = 5
    req["cIids"] = 1
    iid = dcomrt.IID()
    iid["Data"] = string_to_bin("00020400-0000-0000-c000-000000000046")
    req["iids"].append(iid)
    values, _ = decode("00000143-0000-0000-c000-000000000046", req)
    assert (values["refs"], values["iids"]) == (5, ["00020400-0000-0000-c000-000000000046"])


def test_alias_membership_and_service_status_ex() -> None:
    req = samr.SamrGetAliasMembership()
    req["DomainHandle"] = HANDLE
    for sid in ("S-1-5-21-1-2-3-1104", "S-1-5-21-1-2-3-513"):
        e = samr.PSAMPR_SID_INFORMATION()
        e["SidPointer"].fromCanonical(sid)
        req["SidArray"]["Sids"].append(e)
    req["SidArray"]["Count"] = 2
    values, _ = decode(SAMR, req)
    assert values["sids"] == ["S-1-5-21-1-2-3-1104", "S-1-5-21-1-2-3-513"] and values["count"] == 2
    state = StubState()
    op = scmr.ROpenServiceW()
    op["hSCManager"] = HANDLE
    op["lpServiceName"] = "TermService\x00"
    op["dwDesiredAccess"] = 4
    resp = response_of(scmr.ROpenServiceWResponse, 16)
    resp["lpServiceHandle"] = HANDLE2
    decode(SVCCTL, op, resp, state)
    q = scmr.RQueryServiceStatusEx()
    q["hService"] = HANDLE2
    q["InfoLevel"] = 0
    q["cbBufSize"] = 36
    assert decode(SVCCTL, q, state=state)[0]["service_name"] == "TermService"


def test_spoolss_start_doc_printer_output_file() -> None:
    from impacket.dcerpc.v5.dtypes import DWORD as _DWORD
    from impacket.dcerpc.v5.dtypes import LPWSTR
    from impacket.dcerpc.v5.ndr import NDRPOINTER, NDRSTRUCT, NDRUNION

    class DOC_INFO_1(NDRSTRUCT):  # [MS-RPRN] 2.2.1.7.1 (impacket ships no RpcStartDocPrinter)
        structure = (("pDocName", LPWSTR), ("pOutputFile", LPWSTR), ("pDatatype", LPWSTR))

    class PDOC_INFO_1(NDRPOINTER):
        referent = (("Data", DOC_INFO_1),)

    class DocInfo(NDRUNION):
        commonHdr = (("tag", _DWORD),)
        union: ClassVar[dict[int, tuple[str, Any]]] = {1: ("pDocInfo1", PDOC_INFO_1)}

    class DOC_INFO_CONTAINER(NDRSTRUCT):
        structure = (("Level", _DWORD), ("DocInfo", DocInfo))

    class RpcStartDocPrinter(NDRCALL):
        opnum = 17
        structure = (("hPrinter", rprn.PRINTER_HANDLE), ("pDocInfoContainer", DOC_INFO_CONTAINER))

    req = RpcStartDocPrinter()
    req["hPrinter"] = HANDLE
    req["pDocInfoContainer"]["Level"] = 1
    req["pDocInfoContainer"]["DocInfo"]["tag"] = 1
    info = req["pDocInfoContainer"]["DocInfo"]["pDocInfo1"]
    info["pDocName"] = "x\x00"
    info["pOutputFile"] = "C:\\Windows\\System32\\evil.dll\x00"
    info["pDatatype"] = "RAW\x00"
    values, _ = decode(SPOOLSS, req)
    assert (values["output_file"], values["datatype"]) == ("C:\\Windows\\System32\\evil.dll", "RAW")


def test_mgmt_inq_if_ids() -> None:
    from impacket.dcerpc.v5 import mgmt

    resp = response_of(mgmt.inq_if_idsResponse, 0)
    for u, major in ((SVCCTL, 2), (EPM, 3)):
        i = iepm.PRPC_IF_ID()
        i["Uuid"] = string_to_bin(u)
        i["VersMajor"] = major
        i["VersMinor"] = 0
        resp["if_id_vector"]["if_id"].append(i)
    resp["if_id_vector"]["count"] = 2
    values, out = decode("afa8bd80-7d8a-11c9-bef4-08002b102989", mgmt.inq_if_ids(), resp)
    assert values["interfaces"] == [f"{SVCCTL} v2.0", f"{EPM} v3.0"] and values["count"] == 2
    assert out.return_kind == "rpc"


# impacket's module for each family's interface uuid (where it ships one).
_IMPACKET_MODULES = {
    SVCCTL: ("scmr",),
    NETLOGON: ("nrpc",),
    SAMR: ("samr",),
    LSARPC: ("lsad", "lsat"),
    WINREG: ("rrp",),
    SRVSVC: ("srvs",),
    WKSSVC: ("wkst",),
    SPOOLSS: ("rprn",),
    PAR: ("par",),
    ATSVC: ("atsvc",),
    TSCH: ("tsch",),
    DRSUAPI: ("drsuapi",),
    EVENTLOG: ("even",),
    EVEN6: ("even6",),
    BKRP: ("bkrp",),
    "378e52b0-c0a9-11cf-822d-00aa0051e40f": ("sasec",),
    "91ae6020-9e3c-11cf-8d7c-00aa00c091be": ("icpr",),
    "afa8bd80-7d8a-11c9-bef4-08002b102989": ("mgmt",),
    EPM: ("epm",),
}
# impacket's all-default request is not a valid stub for these: a union whose discriminant 0 is no
# arm of it, or a fixed-size field (credential, SID, tower) impacket leaves empty. Each is decoded
# with real values in a test above.
_DEFAULT_NOT_VALID = {
    "RpcAddPrinterDriverEx",
    "RpcAsyncAddPrinterDriver",
    "NetrShareAdd",
    "IDL_DRSGetNCChanges",
    "IDL_DRSDomainControllerInfo",
    "NetrServerReqChallenge",
    "SamrOpenDomain",
    "ept_map",
}


def test_every_declaration_reads_impackets_default_request() -> None:
    """For every declared operation impacket has a request class for, its all-default request
    (null pointers, zero counts, empty strings) decodes without a violation: a declaration whose
    parameter list disagrees with impacket's layout fails here."""
    import importlib
    import inspect

    checked, failed = 0, {}
    for (uuid, opnum), op in sorted(stubs.OPERATIONS.items()):
        cls = None
        for name in _IMPACKET_MODULES.get(uuid, ()):
            mod = importlib.import_module("impacket.dcerpc.v5." + name)
            for cname, c in vars(mod).items():
                if (
                    inspect.isclass(c)
                    and issubclass(c, NDRCALL)
                    and getattr(c, "opnum", None) == opnum
                    and not cname.endswith("Response")
                    and c.__module__ == mod.__name__
                ):
                    cls = c
                    break
            if cls is not None:
                break
        if cls is None or op.request is None:
            continue
        try:
            data = cls().getData()
        except Exception:  # impacket cannot encode some defaults: nothing to compare
            continue
        out = stubs.decode(uuid, opnum, Stubs(False, data, True, None, True, None), StubState(), strict=True)
        checked += 1
        if out is not None and out.violations:
            failed[op.name] = out.violations
    assert checked >= 100
    assert set(failed) == _DEFAULT_NOT_VALID, failed


def test_wcce_request_over_dcom() -> None:
    """ICertRequestD::Request ([MS-WCCE] 3.2.1.4.2.1), written with impacket's NDR primitives."""
    from impacket.dcerpc.v5.dtypes import DWORD as _DWORD
    from impacket.dcerpc.v5.dtypes import LPWSTR
    from impacket.dcerpc.v5.icpr import CERTTRANSBLOB as _BLOB

    class Request(NDRCALL):
        opnum = 3
        structure = (
            ("ORPCthis", ORPCTHIS),
            ("dwFlags", _DWORD),
            ("pwszAuthority", LPWSTR),
            ("pdwRequestId", _DWORD),
            ("pwszAttributes", LPWSTR),
            ("pctbRequest", _BLOB),
        )

    req = Request()
    req["ORPCthis"] = orpcthis()
    req["dwFlags"] = 0
    req["pwszAuthority"] = "corp-CA\x00"
    req["pdwRequestId"] = 0
    req["pwszAttributes"] = "CertificateTemplate:ESC1\x00"
    req["pctbRequest"]["cb"] = 2
    req["pctbRequest"]["pb"] = b"\x30\x00"
    values, _ = decode("d99e6e70-fc88-11d0-b498-00a0c90312f3", req)
    assert (values["authority"], values["attributes"], values["request_bytes"]) == (
        "corp-CA",
        "CertificateTemplate:ESC1",
        2,
    )


def test_dfsnm_add_root_target_path() -> None:
    """NetrDfsAddRootTarget ([MS-DFSNM] 3.1.4.1.9, the DFSCoerce call), from impacket's primitives."""
    from impacket.dcerpc.v5.dtypes import BOOLEAN, LPWSTR, ULONG

    class NetrDfsAddRootTarget(NDRCALL):
        opnum = 23
        structure = (
            ("pDfsPath", LPWSTR),
            ("pTargetPath", LPWSTR),
            ("MajorVersion", ULONG),
            ("pComment", LPWSTR),
            ("NewNamespace", BOOLEAN),
            ("Flags", ULONG),
        )

    req = NetrDfsAddRootTarget()
    req["pDfsPath"] = "\\\\10.0.0.66\\a\x00"
    req["pTargetPath"] = NULL
    req["MajorVersion"] = 0
    req["pComment"] = "x\x00"
    req["NewNamespace"] = 0
    req["Flags"] = 0
    values, out = decode("4fc742e0-4a10-11cf-8273-00aa004ae673", req)
    assert values["path"] == "\\\\10.0.0.66\\a" and values["target_path"] is None
    assert out.arguments == "path=\\\\10.0.0.66\\a; dfs_path=\\\\10.0.0.66\\a"


def test_tsch_task_xml_exec_fields() -> None:
    xml = (
        "<Task><Principals><Principal><UserId>S-1-5-18</UserId></Principal></Principals>"
        "<Settings><Hidden>true</Hidden></Settings><Actions><Exec><Command>cmd.exe</Command>"
        "<Arguments>/C whoami &gt; C:\\o.txt</Arguments></Exec></Actions></Task>"
    )
    req = tsch.SchRpcRegisterTask()
    req["path"] = "\\t\x00"
    req["xml"] = xml + "\x00"
    req["flags"] = tsch.TASK_CREATE
    req["sddl"] = NULL
    req["logonType"] = tsch.TASK_LOGON_NONE
    req["cCreds"] = 0
    req["pCreds"] = NULL
    values, out = decode(TSCH, req)
    assert (values["command"], values["command_arguments"]) == ("cmd.exe", "/C whoami > C:\\o.txt")
    assert (values["run_as"], values["hidden"]) == ("S-1-5-18", "true")
    assert out.arguments is not None and out.arguments.startswith("task_path=\\t; command=cmd.exe; command_arguments=")


def test_srvsvc_session_enum_answer_and_share_502() -> None:
    req = srvs.NetrSessionEnum()
    req["ServerName"] = NULL
    req["ClientName"] = NULL
    req["UserName"] = NULL
    req["InfoStruct"]["Level"] = 10
    req["InfoStruct"]["SessionInfo"]["tag"] = 10
    req["InfoStruct"]["SessionInfo"]["Level10"]["Buffer"] = NULL
    req["PreferedMaximumLength"] = 0xFFFFFFFF
    req["ResumeHandle"] = NULL
    resp = response_of(srvs.NetrSessionEnumResponse, 12)
    resp["InfoStruct"]["Level"] = 10
    resp["InfoStruct"]["SessionInfo"]["tag"] = 10
    resp["InfoStruct"]["SessionInfo"]["Level10"]["EntriesRead"] = 1
    e = srvs.SESSION_INFO_10()
    e["sesi10_cname"] = "\\\\10.0.0.5\x00"
    e["sesi10_username"] = "alice\x00"
    e["sesi10_time"] = 10
    e["sesi10_idle_time"] = 0
    resp["InfoStruct"]["SessionInfo"]["Level10"]["Buffer"].append(e)
    resp["TotalEntries"] = 1
    resp["ResumeHandle"] = NULL
    values, _ = decode(SRVSVC, req, resp)
    assert (values["level"], values["clients"]) == (10, ["\\\\10.0.0.5"])

    enum = srvs.NetrShareEnum()
    enum["ServerName"] = NULL
    enum["InfoStruct"]["Level"] = 502
    enum["InfoStruct"]["ShareInfo"]["tag"] = 502
    enum["InfoStruct"]["ShareInfo"]["Level502"] = NULL
    enum["PreferedMaximumLength"] = 0xFFFFFFFF
    enum["ResumeHandle"] = NULL
    assert decode(SRVSVC, enum)[0]["level"] == 502
