"""Smaller families: BackupKey ([MS-BKRP] 3.1.4.1), DFS namespace management ([MS-DFSNM] 3.1.4)
and the file-server VSS agent ([MS-FSRVP] 3.1.4), the last two used for authentication coercion
(DFSCoerce, ShadowCoerce) with a UNC path to the attacker."""

from __future__ import annotations

from analyzer.dcerpc.ndr_types import BYTES, GUID, U32, WSTR, Ptr
from analyzer.stubs.registry import Values, family

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
