"""winreg ([MS-RRP] 3.1.5): remote registry. Key handles are named by their full path
(HKLM\\SYSTEM\\...), so values, saves and sets say which key they touched."""

from __future__ import annotations

from typing import Any

from analyzer.dcerpc.ndr_dtyp import UNICODE_STRING, ustring_text
from analyzer.dcerpc.ndr_types import BYTES, HANDLE, U8, U16, U32, Ptr, Struct
from analyzer.stubs.registry import Values, family

F = family("338cd001-2244-31f1-aaaa-900038001003", "winreg")

_H = ("_handle", HANDLE)
SECURITY_ATTRIBUTES = Struct(  # RPC_SECURITY_ATTRIBUTES 2.2.7
    ("length", U32),
    ("security_descriptor", Struct(("in_length", U32), ("out_length", U32), ("data", Ptr(BYTES)))),
    ("inherit", U32),
)
# REG_* value types ([MS-RRP] 2.2.5)
VALUE_TYPES = {
    0: "REG_NONE",
    1: "REG_SZ",
    2: "REG_EXPAND_SZ",
    3: "REG_BINARY",
    4: "REG_DWORD",
    7: "REG_MULTI_SZ",
    11: "REG_QWORD",
}


def _hive(name: str) -> Any:
    def opens(_v: Values, _parent: str | None) -> str:
        return name

    return opens


def _sub(v: Values, parent: str | None) -> Any:
    sub = v.get("sub_key")
    if not isinstance(sub, str):
        return parent
    return f"{parent}\\{sub}" if parent else sub


def _texts(v: Values) -> None:
    for k in ("sub_key", "value_name", "file_name", "class_name"):
        if k in v:
            v[k] = ustring_text(v[k])
    v.pop("security_attributes", None)
    t = v.get("value_type")
    if isinstance(t, int):
        v["value_type"] = VALUE_TYPES.get(t, str(t))
    data = v.get("data")
    if isinstance(data, str) and v.get("value_type") in ("REG_SZ", "REG_EXPAND_SZ"):
        v["data"] = bytes.fromhex(data).decode("utf-16-le", errors="replace").rstrip("\0")


def _path(v: Values) -> None:
    """key_path: the handle's path, and the sub key below it when the call names one."""
    _texts(v)
    parent = v.pop("key", None)
    sub = v.get("sub_key")
    if parent is not None or sub is not None:
        v["key_path"] = _sub(v, parent) if sub is not None else parent


_OPEN_HIVE = [("server_name", Ptr(U16)), ("desired_access", U32)]
for _opnum, _name, _hive_name in (
    (0, "OpenClassesRoot", "HKCR"),
    (1, "OpenCurrentUser", "HKCU"),
    (2, "OpenLocalMachine", "HKLM"),
    (3, "OpenPerformanceData", "HKPD"),
    (4, "OpenUsers", "HKU"),
    (27, "OpenCurrentConfig", "HKCC"),
    (32, "OpenPerformanceText", "HKPT"),
    (33, "OpenPerformanceNlsText", "HKPN"),
):
    F.op(_opnum, _name, _OPEN_HIVE, [_H], show=("desired_access",), opens=_hive(_hive_name))

_KEY_SHOW = ("key_path", "value_name", "file_name")
F.op(5, "BaseRegCloseKey", [_H], show=("key_path",), names="key", derive=_path)
F.op(
    6,
    "BaseRegCreateKey",
    [_H, ("sub_key", UNICODE_STRING), ("class_name", UNICODE_STRING), ("options", U32), ("desired_access", U32)],
    [_H],
    show=("key_path",),
    names="key",
    derive=_path,
    opens=lambda v, p: _sub({"sub_key": ustring_text(v.get("sub_key"))}, p),
)
F.op(7, "BaseRegDeleteKey", [_H, ("sub_key", UNICODE_STRING)], show=("key_path",), names="key", derive=_path)
F.op(8, "BaseRegDeleteValue", [_H, ("value_name", UNICODE_STRING)], show=_KEY_SHOW, names="key", derive=_path)
F.op(9, "BaseRegEnumKey", [_H, ("index", U32)], show=("key_path", "index"), names="key", derive=_path)
F.op(10, "BaseRegEnumValue", [_H, ("index", U32)], show=("key_path", "index"), names="key", derive=_path)
F.op(
    15,
    "BaseRegOpenKey",
    [_H, ("sub_key", UNICODE_STRING), ("options", U32), ("desired_access", U32)],
    [_H],
    show=("key_path",),
    names="key",
    derive=_path,
    opens=lambda v, p: _sub({"sub_key": ustring_text(v.get("sub_key"))}, p),
)
F.op(16, "BaseRegQueryInfoKey", [_H], show=("key_path",), names="key", derive=_path)
F.op(17, "BaseRegQueryValue", [_H, ("value_name", UNICODE_STRING)], show=_KEY_SHOW, names="key", derive=_path)
F.op(
    20,
    "BaseRegSaveKey",
    [_H, ("file_name", UNICODE_STRING), ("security_attributes", Ptr(SECURITY_ATTRIBUTES))],
    show=_KEY_SHOW,
    names="key",
    derive=_path,
)
F.op(
    22,
    "BaseRegSetValue",
    [_H, ("value_name", UNICODE_STRING), ("value_type", U32), ("data", BYTES), ("data_size", U32)],
    show=(*_KEY_SHOW, "value_type", "data"),
    names="key",
    derive=_path,
)
F.op(26, "BaseRegGetVersion", [_H], show=("key_path",), names="key", derive=_path)
F.op(
    31,
    "BaseRegSaveKeyEx",
    [_H, ("file_name", UNICODE_STRING), ("security_attributes", Ptr(SECURITY_ATTRIBUTES)), ("flags", U32)],
    show=_KEY_SHOW,
    names="key",
    derive=_path,
)

# Hive files and shutdown ([MS-RRP] 3.1.5.13, .18, .19, .23, .24, .30, .35)
F.op(
    13,
    "BaseRegLoadKey",
    [_H, ("sub_key", UNICODE_STRING), ("file_name", UNICODE_STRING)],
    show=_KEY_SHOW,
    names="key",
    derive=_path,
)


def _replace(v: Values) -> None:
    _path(v)
    v["old_file_name"] = ustring_text(v.get("old_file_name"))


F.op(
    18,
    "BaseRegReplaceKey",
    [_H, ("sub_key", UNICODE_STRING), ("file_name", UNICODE_STRING), ("old_file_name", UNICODE_STRING)],
    show=(*_KEY_SHOW, "old_file_name"),
    names="key",
    derive=_replace,
)
F.op(
    19,
    "BaseRegRestoreKey",
    [_H, ("file_name", UNICODE_STRING), ("flags", U32)],
    show=_KEY_SHOW,
    names="key",
    derive=_path,
)
F.op(
    21,
    "BaseRegSetKeySecurity",
    [_H, ("security_information", U32)],
    show=("key_path", "security_information"),
    names="key",
    derive=_path,
)
F.op(23, "BaseRegUnLoadKey", [_H, ("sub_key", UNICODE_STRING)], show=("key_path",), names="key", derive=_path)
F.op(
    35,
    "BaseRegDeleteKeyEx",
    [_H, ("sub_key", UNICODE_STRING), ("access_mask", U32)],
    show=("key_path",),
    names="key",
    derive=_path,
)
_SHUTDOWN = [
    ("server_name", Ptr(U16)),
    ("message", Ptr(UNICODE_STRING)),
    ("timeout", U32),
    ("force_apps_closed", U8),
    ("reboot_after_shutdown", U8),
]


def _shutdown(v: Values) -> None:
    v["message"] = ustring_text(v.get("message"))


F.op(
    24, "BaseInitiateSystemShutdown", _SHUTDOWN, show=("message", "timeout", "reboot_after_shutdown"), derive=_shutdown
)
F.op(
    30,
    "BaseInitiateSystemShutdownEx",
    [*_SHUTDOWN, ("reason", U32)],
    show=("message", "timeout", "reboot_after_shutdown", "reason"),
    derive=_shutdown,
)
