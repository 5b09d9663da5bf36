"""spoolss ([MS-RPRN] 3.1.4) and IRemoteWinspool ([MS-PAR] 3.1.4): the print spooler.

PrintNightmare (CVE-2021-1675/34527) is RpcAddPrinterDriverEx / RpcAsyncAddPrinterDriver with a
driver or data file on an attacker's share; the printer-bug coercion is
RpcRemoteFindFirstPrinterChangeNotification(Ex) with pszLocalMachine naming the host to call back.
"""

from __future__ import annotations

from analyzer.dcerpc.ndr_types import BYTES, HANDLE, U16, U32, WSTR, Array, Ptr, Struct, Union
from analyzer.stubs.registry import Values, family

F = family("12345678-1234-abcd-ef00-0123456789ab", "spoolss")
PAR = family("76f03f96-cdfd-44fc-a22c-64950a001209", "IRemoteWinspool")

_S = Ptr(WSTR)
DEVMODE_CONTAINER = Struct(("size", U32), ("devmode", Ptr(BYTES)))  # 2.2.1.2.1
DRIVER_INFO_2 = Struct(  # 2.2.1.5.2
    ("version", U32),
    ("driver_name", _S),
    ("environment", _S),
    ("driver_path", _S),
    ("data_file", _S),
    ("config_file", _S),
)
DRIVER_INFO_3 = Struct(  # 2.2.1.5.3
    *DRIVER_INFO_2.fields,
    ("help_file", _S),
    ("monitor_name", _S),
    ("default_data_type", _S),
    ("dependent_files_chars", U32),
    ("dependent_files", Ptr(Array(U16))),
)
DRIVER_CONTAINER = Struct(("level", U32), ("info", Union(U32, {2: Ptr(DRIVER_INFO_2), 3: Ptr(DRIVER_INFO_3)})))
_H = ("_handle", HANDLE)
_DRIVER_SHOW = (
    "server_name",
    "level",
    "driver_name",
    "environment",
    "driver_path",
    "data_file",
    "config_file",
    "flags",
)


def _driver(v: Values) -> None:
    c = v.pop("driver_container", None)
    if isinstance(c, dict):
        v["level"] = c.get("level")
        info = c.get("info")
        d = info.get("value") if isinstance(info, dict) else None
        if isinstance(d, dict):
            d.pop("dependent_files", None)
            v.update(d)
    if isinstance(v.get("flags"), int):
        v["flags"] = f"0x{v['flags']:08x}"


def _flags(v: Values) -> None:
    for k in ("flags", "options"):
        if isinstance(v.get(k), int):
            v[k] = f"0x{v[k]:08x}"


def _printer(v: Values, _parent: str | None) -> object:
    return v.get("printer_name")


F.op(
    1,
    "RpcOpenPrinter",
    [("printer_name", _S), ("datatype", _S), ("devmode_container", DEVMODE_CONTAINER), ("access_required", U32)],
    [_H],
    show=("printer_name", "access_required"),
    opens=_printer,
)
F.op(
    10,
    "RpcEnumPrinterDrivers",
    [("server_name", _S), ("environment", _S), ("level", U32)],
    show=("server_name", "environment", "level"),
)
F.op(29, "RpcClosePrinter", [_H], show=("printer_name",), names="printer_name")
F.op(
    62,
    "RpcRemoteFindFirstPrinterChangeNotification",
    [_H, ("flags", U32), ("options", U32), ("local_machine", _S), ("printer_local", U32)],
    show=("printer_name", "local_machine", "flags"),
    names="printer_name",
    derive=_flags,
)
F.op(
    65,
    "RpcRemoteFindFirstPrinterChangeNotificationEx",
    [_H, ("flags", U32), ("options", U32), ("local_machine", _S), ("printer_local", U32)],
    show=("printer_name", "local_machine", "flags"),
    names="printer_name",
    derive=_flags,
)
F.op(
    69,
    "RpcOpenPrinterEx",
    [("printer_name", _S), ("datatype", _S), ("devmode_container", DEVMODE_CONTAINER), ("access_required", U32)],
    [_H],
    show=("printer_name", "access_required"),
    opens=_printer,
)
F.op(
    89,
    "RpcAddPrinterDriverEx",
    [("server_name", _S), ("driver_container", DRIVER_CONTAINER), ("flags", U32)],
    show=_DRIVER_SHOW,
    derive=_driver,
)
PAR.op(
    39,
    "RpcAsyncAddPrinterDriver",
    [("server_name", _S), ("driver_container", DRIVER_CONTAINER), ("flags", U32)],
    show=_DRIVER_SHOW,
    derive=_driver,
)
PAR.op(
    0,
    "RpcAsyncOpenPrinter",
    [("printer_name", _S), ("datatype", _S), ("devmode_container", DEVMODE_CONTAINER), ("access_required", U32)],
    [_H],
    show=("printer_name", "access_required"),
    opens=_printer,
)

DOC_INFO_1 = Struct(("document_name", _S), ("output_file", _S), ("datatype", _S))  # 2.2.1.7.1
DOC_INFO_CONTAINER = Struct(("level", U32), ("info", Union(U32, {1: Ptr(DOC_INFO_1)})))


def _document(v: Values) -> None:
    c = v.pop("doc_info", None)
    info = c.get("info") if isinstance(c, dict) else None
    d = info.get("value") if isinstance(info, dict) else None
    if isinstance(d, dict):
        v.update(d)


F.op(
    17,
    "RpcStartDocPrinter",
    [_H, ("doc_info", DOC_INFO_CONTAINER)],
    show=("printer_name", "document_name", "output_file"),
    names="printer_name",
    derive=_document,
)
