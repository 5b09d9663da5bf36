"""Smaller families: BackupKey ([MS-BKRP] 3.1.4.1), DFS namespace management ([MS-DFSNM] 3.1.4)
and the file-server VSS agent ([MS-FSRVP] 3.1.4), the last two used for authentication coercion
(DFSCoerce, ShadowCoerce) with a UNC path to the attacker."""

from __future__ import annotations

from analyzer.dcerpc.ndr_dtyp import UNICODE_STRING, ustring_text
from analyzer.dcerpc.ndr_types import ASTR, BYTES, GUID, I32, U8, U16, U32, WSTR, Array, Ptr, Struct, Union
from analyzer.stubs.registry import HRESULT, RPC_STATUS, Values, family

BKRP = family("3dde7c30-165d-11d1-ab8f-00805f14db40", "BackupKey")
DFSNM = family("4fc742e0-4a10-11cf-8273-00aa004ae673", "netdfs")
FSRVP = family("a8e0653c-2744-4389-a61d-7373df8b2292", "FileServerVssAgent")

# BackuprKey actions ([MS-BKRP] 3.1.4.1)
ACTIONS = {
    "7f752b10-178e-11d1-ab8f-00805f14db40": "BACKUPKEY_BACKUP_GUID",
    "47270c64-2fc7-499b-ac5b-0e37cdce899a": "BACKUPKEY_RESTORE_GUID",
    "7fe94d50-178e-11d1-ab8f-00805f14db40": "BACKUPKEY_RESTORE_GUID_WIN2K",
    "018ff48a-eaba-40c6-8f6d-72370240e967": "BACKUPKEY_RETRIEVE_BACKUP_KEY_GUID",
}


def _action(v: Values) -> None:
    guid = v.get("action_agent")
    if isinstance(guid, str):
        v["action"] = ACTIONS.get(guid, guid)
    data = v.pop("data_in", None)
    if isinstance(data, str):
        v["data_in_bytes"] = len(data) // 2


def _unc(v: Values) -> None:
    server, share = v.get("server_name"), v.get("root_share") or v.get("share_name")
    if isinstance(server, str) and isinstance(share, str):
        v["path"] = f"\\\\{server.lstrip(chr(92))}\\{share}"


BKRP.op(
    0,
    "BackuprKey",
    [("action_agent", GUID), ("data_in", BYTES), ("data_in_size", U32), ("param", U32)],
    show=("action", "data_in_bytes"),
    derive=_action,
)
DFSNM.op(
    1,
    "NetrDfsAdd",
    [("path", WSTR), ("server_name", WSTR), ("share_name", Ptr(WSTR)), ("comment", Ptr(WSTR)), ("flags", U32)],
    show=("path", "server_name", "share_name"),
)
DFSNM.op(
    2,
    "NetrDfsRemove",
    [("path", WSTR), ("server_name", Ptr(WSTR)), ("share_name", Ptr(WSTR))],
    show=("path", "server_name", "share_name"),
)
DFSNM.op(
    12,
    "NetrDfsAddStdRoot",
    [("server_name", WSTR), ("root_share", WSTR), ("comment", WSTR), ("flags", U32)],
    show=("path",),
    derive=_unc,
)
DFSNM.op(
    13,
    "NetrDfsRemoveStdRoot",
    [("server_name", WSTR), ("root_share", WSTR), ("flags", U32)],
    show=("path",),
    derive=_unc,
)
FSRVP.op(8, "IsPathSupported", [("share_path", WSTR)], show=("share_path",))
FSRVP.op(9, "IsPathShadowCopied", [("share_path", WSTR)], show=("share_path",))


def _root_target(v: Values) -> None:
    """path: the UNC a coercion would make the server contact (the target, else the namespace)."""
    v["path"] = v.get("target_path") or v.get("dfs_path")


DFSNM.op(
    23,
    "NetrDfsAddRootTarget",
    [
        ("dfs_path", Ptr(WSTR)),
        ("target_path", Ptr(WSTR)),
        ("major_version", U32),
        ("comment", Ptr(WSTR)),
        ("new_namespace", U8),
        ("flags", U32),
    ],
    show=("path", "dfs_path"),
    derive=_root_target,
)
DFSNM.op(
    24,
    "NetrDfsRemoveRootTarget",
    [("dfs_path", Ptr(WSTR)), ("target_path", Ptr(WSTR)), ("flags", U32)],
    show=("path", "dfs_path"),
    derive=_root_target,
)

# Certificate enrolment ([MS-ICPR] 3.2.4.1.1): the CA and the request attributes (template, SAN).
ICPR = family("91ae6020-9e3c-11cf-8d7c-00aa00c091be", "ICertPassage")
CERTTRANSBLOB = Struct(("size", U32), ("data", Ptr(BYTES)))


def _cert(v: Values) -> None:
    attribs = v.pop("attributes", None)
    data = attribs.get("data") if isinstance(attribs, dict) else None
    if isinstance(data, str):
        v["attributes"] = bytes.fromhex(data).decode("utf-16-le", errors="replace").split("\0", 1)[0]
    req = v.pop("request", None)
    if isinstance(req, dict) and isinstance(req.get("size"), int):
        v["request_bytes"] = req["size"]


ICPR.op(
    0,
    "CertServerRequest",
    [
        ("flags", U32),
        ("authority", Ptr(WSTR)),
        ("request_id", U32),
        ("attributes", CERTTRANSBLOB),
        ("request", CERTTRANSBLOB),
    ],
    show=("authority", "attributes", "request_id"),
    derive=_cert,
)

# The DCOM enrolment interface ([MS-WCCE] 3.2.1.4.2.1): the same CA, attributes and request size.
WCCE = family("d99e6e70-fc88-11d0-b498-00a0c90312f3", "ICertRequestD", HRESULT, orpc=True)
WCCE.op(
    3,
    "Request",
    [
        ("flags", U32),
        ("authority", Ptr(WSTR)),
        ("request_id", U32),
        ("attributes", Ptr(WSTR)),
        ("request", CERTTRANSBLOB),
    ],
    show=("authority", "attributes", "request_id"),
    derive=lambda v: v.update(request_bytes=(v.pop("request", None) or {}).get("size")),
)

# Shutdown ([MS-RSP] 3.2.4.1-3, 3.3.4.1): who asks a host to go down, with what message.
INIT_SHUTDOWN = family("894de0c0-0d55-11d3-a322-00c04fa321a1", "InitShutdown")
WINDOWS_SHUTDOWN = family("d95afe70-a6d5-4259-822e-2c84da1ddb0d", "WindowsShutdown")
_SHUTDOWN = [
    ("server_name", Ptr(U16)),
    ("message", Ptr(UNICODE_STRING)),
    ("timeout", U32),
    ("force_apps_closed", U8),
    ("reboot_after_shutdown", U8),
]


def _message(v: Values) -> None:
    for k in ("message", "client_hint"):
        if k in v:
            v[k] = ustring_text(v[k])


INIT_SHUTDOWN.op(
    0, "BaseInitiateShutdown", _SHUTDOWN, show=("message", "timeout", "reboot_after_shutdown"), derive=_message
)
INIT_SHUTDOWN.op(
    2, "BaseInitiateShutdownEx", [*_SHUTDOWN, ("reason", U32)], show=("message", "timeout", "reason"), derive=_message
)
WINDOWS_SHUTDOWN.op(
    0,
    "WsdrInitiateShutdown",
    [
        ("message", Ptr(UNICODE_STRING)),
        ("grace_period", U32),
        ("shutdown_flags", U32),
        ("reason", U32),
        ("client_hint", Ptr(UNICODE_STRING)),
    ],
    show=("message", "grace_period", "reason", "client_hint"),
    derive=_message,
)

# DNS server management ([MS-DNSP] 3.1.4.1, 3.1.4.6): ServerLevelPluginDll loads a DLL into dns.exe.
DNSSERVER = family("50abc2a4-574d-40b3-9d66-ee4fd5fba076", "DnsServer")
DNS_DATA = Union(U32, {0: None, 1: U32, 2: Ptr(ASTR), 3: Ptr(WSTR)})  # DNSSRV_RPC_UNION, by DNS_RPC_TYPEID
_DNS = [("zone", Ptr(ASTR)), ("context", U32), ("operation", Ptr(ASTR)), ("type_id", U32), ("data", DNS_DATA)]


def _dns(v: Values) -> None:
    d = v.pop("data", None)
    if isinstance(d, dict) and "value" in d:
        v["data"] = d["value"]


DNSSERVER.op(
    0, "R_DnssrvOperation", [("server_name", Ptr(WSTR)), *_DNS], show=("zone", "operation", "data"), derive=_dns
)
DNSSERVER.op(
    5,
    "R_DnssrvOperation2",
    [("client_version", U32), ("setting_flags", U32), ("server_name", Ptr(WSTR)), *_DNS],
    show=("zone", "operation", "data"),
    derive=_dns,
)

# Group key distribution ([MS-GKDI] 3.1.4.1): root key and key ids asked for (gMSA / DPAPI-NG keys).
GKDI = family("b9785960-524f-11df-8b6d-83dcded72085", "ISDKey", HRESULT)
GKDI.op(
    0,
    "GetKey",
    [
        ("target_sd_size", U32),
        ("target_sd", BYTES),
        ("root_key_id", Ptr(GUID)),
        ("l0_key_id", I32),
        ("l1_key_id", I32),
        ("l2_key_id", I32),
    ],
    show=("root_key_id", "l0_key_id", "l1_key_id", "l2_key_id"),
    derive=lambda v: v.pop("target_sd", None),
)

# The management interface every RPC server exposes ([C706] Appendix Q, rpc_mgmt_*): inq_if_ids
# lists the interfaces a server offers (interface enumeration); the status is its last [out].
MGMT = family("afa8bd80-7d8a-11c9-bef4-08002b102989", "mgmt", RPC_STATUS)
IF_ID = Struct(("uuid", GUID), ("vers_major", U16), ("vers_minor", U16))


def _if_ids(v: Values) -> None:
    vec = v.pop("if_id_vector", None)
    ids = vec.get("if_id") if isinstance(vec, dict) else None
    if isinstance(ids, list):
        v["interfaces"] = [f"{i['uuid']} v{i['vers_major']}.{i['vers_minor']}" for i in ids if isinstance(i, dict)]
        v["count"] = len(v["interfaces"])


MGMT.op(
    0,
    "inq_if_ids",
    [],
    [("if_id_vector", Ptr(Struct(("count", U32), ("if_id", Array(Ptr(IF_ID))))))],
    show=("count", "interfaces"),
    derive=_if_ids,
)
MGMT.op(
    4,
    "inq_princ_name",
    [("authn_proto", U32), ("princ_name_size", U32)],
    [("princ_name", ASTR)],
    show=("authn_proto", "princ_name"),
)
