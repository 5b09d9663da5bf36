"""EFSRPC ([MS-EFSR] 3.1.4): PetitPotam coerces a server into authenticating to the UNC path it
is given as a file name. Both interfaces (c681d488... on \\pipe\\lsarpc, \\pipe\\efsrpc and others;
df1941c5... on \\pipe\\efsrpc) have the same operations."""

from __future__ import annotations

from analyzer.dcerpc.ndr_types import BYTES, HANDLE, U32, WSTR, NdrType, Ptr, Struct
from analyzer.stubs.registry import family

_FILE: list[tuple[str, NdrType]] = [("file_name", WSTR)]
_BLOB = Ptr(Struct(("size", U32), ("data", Ptr(BYTES))))  # EFS_RPC_BLOB 2.2.18
_OPS: list[tuple[int, str, list[tuple[str, NdrType]]]] = [
    (0, "EfsRpcOpenFileRaw", [("file_name", WSTR), ("flags", U32)]),
    (4, "EfsRpcEncryptFileSrv", _FILE),
    (5, "EfsRpcDecryptFileSrv", [("file_name", WSTR), ("open_flag", U32)]),
    (6, "EfsRpcQueryUsersOnFile", _FILE),
    (7, "EfsRpcQueryRecoveryAgents", _FILE),
    (8, "EfsRpcRemoveUsersFromFile", _FILE),
    (9, "EfsRpcAddUsersToFile", _FILE),
    (12, "EfsRpcFileKeyInfo", _FILE),
    (13, "EfsRpcDuplicateEncryptionInfoFile", [("file_name", WSTR), ("destination_file_name", WSTR)]),
    (15, "EfsRpcAddUsersToFileEx", [("flags", U32), ("reserved", _BLOB), ("file_name", WSTR)]),
    (16, "EfsRpcFileKeyInfoEx", [("flags", U32), ("reserved", _BLOB), ("file_name", WSTR)]),
    (18, "EfsRpcGetEncryptedFileMetadata", _FILE),
    (19, "EfsRpcSetEncryptedFileMetadata", _FILE),
    (21, "EfsRpcEncryptFileExSrv", _FILE),
]

for _uuid, _name in (
    ("c681d488-d850-11d0-8c52-00c04fd90f7e", "efsrpc"),
    ("df1941c5-fe89-4e79-bf10-463657acf44d", "efsrpc2"),
):
    _f = family(_uuid, _name)
    for _opnum, _op, _params in _OPS:
        _resp = [("_handle", HANDLE)] if _opnum == 0 else None
        _opens = (lambda v, _p: v.get("file_name")) if _opnum == 0 else None
        _f.op(_opnum, _op, _params, _resp, show=("file_name", "destination_file_name"), opens=_opens)
    # The raw-file calls on the context the open returned (3.1.4.2.2-4): named by that file.
    for _opnum, _op in ((1, "EfsRpcReadFileRaw"), (2, "EfsRpcWriteFileRaw"), (3, "EfsRpcCloseRaw")):
        _f.op(_opnum, _op, [("_handle", HANDLE)], show=("file_name",), names="file_name")
