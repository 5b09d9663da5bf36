"""Event logs: eventlog ([MS-EVEN] 3.1.4) and even6 ([MS-EVEN6] 3.1.4). Clearing a log is
anti-forensics (T1070.001); the log handle is named by the log it opened."""

from __future__ import annotations

from typing import Any

from analyzer.dcerpc.ndr_dtyp import UNICODE_STRING, ustring_text
from analyzer.dcerpc.ndr_types import HANDLE, U8, U16, U32, WSTR, Array, Ptr, Struct
from analyzer.stubs.registry import NTSTATUS, Values, family

F = family("82273fdc-e32a-18c3-3f78-827929dc23ea", "eventlog", NTSTATUS)
EVEN6 = family("f6beaff7-1e19-4fbb-9f8f-b89e2018337c", "even6")

_H = ("_handle", HANDLE)


def _texts(v: Values) -> None:
    for k in ("channel", "backup_file", "module_name", "reg_module_name"):
        if k in v:
            v[k] = ustring_text(v[k])
    if "module_name" in v and "channel" not in v:
        v["channel"] = v.pop("module_name")


def _channel(v: Values, _parent: str | None) -> Any:
    return ustring_text(v.get("module_name") or v.get("backup_file"))


F.op(
    0,
    "ElfrClearELFW",
    [_H, ("backup_file", Ptr(UNICODE_STRING))],
    show=("channel", "backup_file"),
    names="channel",
    derive=_texts,
)
F.op(
    1,
    "ElfrBackupELFW",
    [_H, ("backup_file", UNICODE_STRING)],
    show=("channel", "backup_file"),
    names="channel",
    derive=_texts,
)
F.op(2, "ElfrCloseEL", [_H], show=("channel",), names="channel")
F.op(
    7,
    "ElfrOpenELW",
    [
        ("unc_server_name", Ptr(U16)),
        ("module_name", UNICODE_STRING),
        ("reg_module_name", UNICODE_STRING),
        ("major_version", U32),
        ("minor_version", U32),
    ],
    [_H],
    show=("channel",),
    opens=_channel,
    derive=_texts,
)
F.op(
    9,
    "ElfrOpenBELW",
    [("unc_server_name", Ptr(U16)), ("backup_file", UNICODE_STRING), ("major_version", U32), ("minor_version", U32)],
    [_H],
    show=("backup_file",),
    opens=_channel,
    derive=_texts,
)
EVEN6.op(
    6,
    "EvtRpcClearLog",
    [_H, ("channel", WSTR), ("backup_file", Ptr(WSTR)), ("flags", U32)],
    show=("channel", "backup_file"),
)
EVEN6.op(
    7,
    "EvtRpcExportLog",
    [_H, ("channel", Ptr(WSTR)), ("query", WSTR), ("backup_file", WSTR), ("flags", U32)],
    show=("channel", "query", "backup_file"),
)

ANSI_STRING = Struct(("length", U16), ("maximum_length", U16), ("buffer", Ptr(Array(U8, varying=True))))


def _ansi_backup(v: Values) -> None:
    b = v.get("backup_file")
    if isinstance(b, dict) and isinstance(b.get("buffer"), str):
        v["backup_file"] = bytes.fromhex(b["buffer"]).split(b"\0", 1)[0].decode("latin-1")


F.op(
    12,
    "ElfrClearELFA",
    [_H, ("backup_file", Ptr(ANSI_STRING))],
    show=("channel", "backup_file"),
    names="channel",
    derive=_ansi_backup,
)
F.op(
    10,
    "ElfrReadELW",
    [_H, ("read_flags", U32), ("record_offset", U32), ("bytes_to_read", U32)],
    show=("channel", "read_flags"),
    names="channel",
)
EVEN6.op(5, "EvtRpcRegisterLogQuery", [("path", Ptr(WSTR)), ("query", WSTR), ("flags", U32)], show=("path", "query"))
