"""DCOM ([MS-DCOM]): the ORPC headers, activation (the CLSID asked for), IDispatch names, WMI.

Every DCOM request starts with ORPCTHIS and every response with ORPCTHAT ([MS-DCOM] 2.2.13, in `orpc.py`);
`registry.decode` reads them first for the families declared `orpc=True`. Activation
(IRemoteSCMActivator, [MS-DCOM] 3.1.2.5.2.3) carries the CLSID inside an OBJREF_CUSTOM holding
an ActivationPropertiesIn blob ([MS-DCOM] 2.2.22): a serialized CustomHeader listing the property
structures and their sizes, then the properties; InstantiationInfoData's first field is the CLSID.
WMI ([MS-WMI] 3.1.4) passes namespaces, classes, methods and queries as BSTRs ([MS-OAUT] 2.2.23:
a unique pointer to a FLAGGED_WORD_BLOB).
"""

from __future__ import annotations

from analyzer.dcerpc.ndr import NdrReader, decode_text
from analyzer.dcerpc.ndr_types import (
    BYTES,
    GUID,
    I32,
    U8,
    U16,
    U32,
    U64,
    WSTR,
    Array,
    Custom,
    NdrType,
    Ptr,
    Queue,
    Struct,
    Union,
)
from analyzer.dcerpc.wire import Malformed
from analyzer.stubs import wmio
from analyzer.stubs.registry import HRESULT, Values, family

MINTERFACE_POINTER = Struct(("size", U32), ("data", BYTES))  # [MS-DCOM] 2.2.14: an OBJREF as bytes


def _bstr(r: NdrReader, q: Queue) -> str:
    """FLAGGED_WORD_BLOB ([MS-OAUT] 2.2.23.1): conformance, cBytes, clSize, clSize UTF-16 units."""
    _max = r.count("short_bstr")
    _bytes = r.u32("short_bstr")
    n = r.u32("short_bstr")
    r.budget(n, 2, "bad_bstr")
    return decode_text(r.raw(2 * n, "short_bstr"), True, r.little)


BSTR = Ptr(Custom(_bstr, 4))

# wireVARIANT ([MS-OAUT] 2.2.29.2): the arms for the scalar and string types; any other type stops
# the decoding of the call's arguments (a violation), nothing is guessed.
_VARIANT_ARMS: dict[int, NdrType | None] = {
    0: None,  # VT_EMPTY
    1: None,  # VT_NULL
    2: U16,  # VT_I2
    3: I32,  # VT_I4
    4: U32,  # VT_R4 (raw bits)
    5: U64,  # VT_R8 (raw bits)
    7: U64,  # VT_DATE (raw bits)
    8: BSTR,  # VT_BSTR
    10: U32,  # VT_ERROR
    11: U16,  # VT_BOOL
    16: U8,  # VT_I1
    17: U8,  # VT_UI1
    18: U16,  # VT_UI2
    19: U32,  # VT_UI4
    20: U64,  # VT_I8
    21: U64,  # VT_UI8
    22: I32,  # VT_INT
    23: U32,  # VT_UINT
}
VARIANT = Struct(
    ("size", U32),
    ("reserved", U32),
    ("vt", U16),
    ("reserved1", U16),
    ("reserved2", U16),
    ("reserved3", U16),
    ("value", Union(U32, _VARIANT_ARMS)),
)
DISPPARAMS = Struct(  # [MS-OAUT] 2.2.33
    ("args", Ptr(Array(Ptr(VARIANT)))),
    ("named_args", Ptr(Array(I32))),
    ("arg_count", U32),
    ("named_count", U32),
)
_DISPATCH_FLAGS = {1: "method", 2: "propertyget", 4: "propertyput", 8: "propertyputref"}


def _invoke(v: Values) -> None:
    """The arguments of IDispatch::Invoke, in declaration order (the wire has them reversed)."""
    params = v.pop("disp_params", None)
    args = params.get("args") if isinstance(params, dict) else None
    if isinstance(args, list):
        out = []
        for a in reversed(args):
            arm = a.get("value") if isinstance(a, dict) else None
            out.append(arm.get("value") if isinstance(arm, dict) else None)
        v["args"] = out
    f = v.get("flags")
    if isinstance(f, int):
        v["flags"] = "|".join(n for bit, n in _DISPATCH_FLAGS.items() if f & bit) or str(f)
    recall, obj = v.get("_recall"), v.get("_object")
    if callable(recall) and isinstance(obj, str):
        name = recall(f"{obj}|dispid|{v.get('dispid')}")
        if name is not None:
            v["member"] = name  # the name GetIDsOfNames gave this DISPID on the same object


# CLSIDs an analyst recognises (../shared/detection/techniques.tsv, from MSRPC-to-ATTACK and impacket).
CLSID_NAMES = {
    "49b2791a-b1ae-4c90-9b8e-e860ba07f889": "MMC20.Application",
    "9ba05972-f6a8-11cf-a442-00a0c90a8f39": "ShellWindows",
    "c08afd90-f2a1-11d1-8455-00a0c91f3880": "ShellBrowserWindow",
    "8bc3f05e-d86b-11d0-a075-00c04fb68820": "WbemLevel1Login",
    "00024500-0000-0000-c000-000000000046": "Excel.Application",
    "0006f03a-0000-0000-c000-000000000046": "Outlook.Application",
    "0002df01-0000-0000-c000-000000000046": "InternetExplorer.Application",
}
_INSTANTIATION_INFO = "000001ab-0000-0000-c000-000000000046"  # [MS-DCOM] 2.2.22.2.1
_OBJREF_CUSTOM = 4
_MEOW = 0x574F454D


def activation_clsid(objref: bytes) -> str | None:
    """The CLSID in an ActivationPropertiesIn OBJREF_CUSTOM ([MS-DCOM] 2.2.18.6, 2.2.22);
    None when the blob is not one."""
    r = NdrReader(objref, True)
    if r.u32() != _MEOW or r.u32() != _OBJREF_CUSTOM:
        return None
    r.uuid()  # iid
    r.uuid()  # clsid of the unmarshaler (CLSID_ActivationPropertiesIn)
    r.u32()  # cbExtension
    r.u32()  # size
    r.u32()  # ActivationPropertiesBlob.dwSize
    r.u32()  # dwReserved
    header = r.off
    serialization = r.raw(16)  # type serialization header ([MS-RPCE] 2.2.6)
    if serialization[:2] != b"\x01\x10":
        return None  # not version 1, little-endian: not read rather than misread
    r.u32()  # totalSize
    header_size = r.u32()
    r.u32()  # dwReserved
    r.u32()  # destCtx
    count = r.u32()
    r.uuid()  # classInfoClsid
    r.pointer()
    r.pointer()
    r.pointer()
    r.budget(count, 16, "bad_activation_properties")
    _max = r.u32()
    clsids = [r.uuid() for _ in range(count)]
    _max = r.u32()
    sizes = [r.u32() for _ in range(count)]
    off = header + header_size
    for clsid, size in zip(clsids, sizes, strict=True):
        if clsid == _INSTANTIATION_INFO:
            r.off = off + 16  # its own serialization header
            return r.uuid()
        off += size
    return None


def _clsid(v: Values) -> None:
    """Name the CLSID of an activation request."""
    props = v.get("act_properties")
    if isinstance(props, dict) and isinstance(props.get("data"), str):
        try:
            clsid = activation_clsid(bytes.fromhex(props["data"]))
        except Malformed:
            clsid = None
        if clsid is not None:
            v["clsid"] = clsid
    if isinstance(v.get("clsid"), str):
        v["clsid_name"] = CLSID_NAMES.get(v["clsid"])
    v.pop("act_properties", None)  # the blob itself is the clsid and a few flags
    v.pop("unk_outer", None)


# IRemoteSCMActivator / ISystemActivator ([MS-DCOM] 3.1.2.5.2.3).
ACTIVATOR = family("000001a0-0000-0000-c000-000000000046", "IRemoteSCMActivator", HRESULT, orpc=True)
_ACT_IN = [("unk_outer", Ptr(MINTERFACE_POINTER)), ("act_properties", Ptr(MINTERFACE_POINTER))]
ACTIVATOR.op(
    3,
    "RemoteGetClassObject",
    [("act_properties", Ptr(MINTERFACE_POINTER))],
    show=("clsid", "clsid_name"),
    derive=_clsid,
)
ACTIVATOR.op(4, "RemoteCreateInstance", _ACT_IN, show=("clsid", "clsid_name"), derive=_clsid)

# IActivation RemoteActivation ([MS-DCOM] 3.1.2.5.1.1): the CLSID is a parameter.
IACTIVATION = family("4d9f4ab8-7d1c-11cf-861e-0020af6e7c57", "IActivation", HRESULT, orpc=True)
IACTIVATION.op(
    0,
    "RemoteActivation",
    [("clsid", GUID), ("object_name", Ptr(WSTR))],
    show=("clsid", "clsid_name", "object_name"),
    derive=_clsid,
)

# IDispatch ([MS-OAUT] 3.1.4): GetIDsOfNames names the methods a later Invoke calls.
IDISPATCH = family("00020400-0000-0000-c000-000000000046", "IDispatch", HRESULT, orpc=True)


def _dispids(v: Values) -> list[tuple[str, str]]:
    """GetIDsOfNames taught: on this object (its IPID), DISPID n is this name."""
    obj, names, ids = v.get("_object"), v.get("names"), v.get("dispids")
    if not isinstance(obj, str) or not isinstance(names, list) or not isinstance(ids, list):
        return []
    return [(f"{obj}|dispid|{d}", n) for n, d in zip(names, ids, strict=False) if isinstance(n, str)]


IDISPATCH.op(
    5,
    "GetIDsOfNames",
    [("riid", GUID), ("names", Array(Ptr(WSTR))), ("count", U32), ("lcid", U32)],
    [("dispids", Array(I32))],
    show=("names",),
    learns=_dispids,
)
IDISPATCH.op(
    6,
    "Invoke",
    [("dispid", I32), ("riid", GUID), ("lcid", U32), ("flags", U32), ("disp_params", DISPPARAMS)],
    show=("member", "dispid", "flags", "args"),
    derive=_invoke,
)


def _wmi_path(v: Values) -> None:
    """class_name from an object path ("Win32_Process" of "Win32_Process.Handle=..."), and the
    properties of an object passed in (ExecMethod's in-parameters, PutInstance's instance)."""
    path = v.get("object_path")
    if isinstance(path, str) and path:
        v["class_name"] = path.split(".", 1)[0].split(":", 1)[-1]
    v.pop("context", None)
    for key in ("in_params", "instance"):
        obj = v.pop(key, None)
        blob = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(blob, str):
            continue
        try:
            decoded = wmio.instance_values(bytes.fromhex(blob))
        except Malformed:
            decoded = None
        if decoded is None:
            continue
        if key == "instance":
            v["class_name"] = decoded["class"]
        values = dict(decoded["values"])
        line = values.pop("CommandLine", None)
        if isinstance(line, str):
            v["command_line"] = line  # Win32_Process.Create's: the decisive argument
        v["parameters" if key == "in_params" else "properties"] = values


# IWbemLevel1Login ([MS-WMI] 3.1.4.1).
WBEM_LOGIN = family("f309ad18-d86a-11d0-a075-00c04fb68820", "IWbemLevel1Login", HRESULT, orpc=True)
WBEM_LOGIN.op(
    6,
    "NTLMLogin",
    [("namespace", Ptr(WSTR)), ("preferred_locale", Ptr(WSTR)), ("flags", I32)],
    show=("namespace",),
)

# IWbemServices ([MS-WMI] 3.1.4.3): the object path, method or query of each call.
WBEM = family("9556dc99-828c-11cf-a37e-00aa003240c7", "IWbemServices", HRESULT, orpc=True)
_PATH = [("object_path", BSTR), ("flags", I32)]
WBEM.op(3, "OpenNamespace", [("namespace", BSTR), ("flags", I32)], show=("namespace",))
WBEM.op(6, "GetObject", _PATH, show=("class_name", "object_path"), derive=_wmi_path)
WBEM.op(7, "GetObjectAsync", _PATH, show=("class_name", "object_path"), derive=_wmi_path)
WBEM.op(10, "DeleteClass", [("class_name", BSTR), ("flags", I32)], show=("class_name",))
WBEM.op(16, "DeleteInstance", _PATH, show=("class_name", "object_path"), derive=_wmi_path)
WBEM.op(12, "CreateClassEnum", [("superclass", BSTR), ("flags", I32)], show=("superclass",))
WBEM.op(18, "CreateInstanceEnum", [("class_name", BSTR), ("flags", I32)], show=("class_name",))
_QUERY: list[tuple[str, NdrType]] = [("query_language", BSTR), ("query", BSTR), ("flags", I32)]
for _opnum, _name in (
    (20, "ExecQuery"),
    (21, "ExecQueryAsync"),
    (22, "ExecNotificationQuery"),
    (23, "ExecNotificationQueryAsync"),
):
    WBEM.op(_opnum, _name, _QUERY, show=("query",))
_METHOD = [
    ("object_path", BSTR),
    ("method", BSTR),
    ("flags", I32),
    ("context", Ptr(MINTERFACE_POINTER)),
    ("in_params", Ptr(MINTERFACE_POINTER)),
]
_METHOD_SHOW = ("class_name", "method", "object_path", "command_line", "parameters")
WBEM.op(24, "ExecMethod", _METHOD, show=_METHOD_SHOW, derive=_wmi_path)
WBEM.op(25, "ExecMethodAsync", _METHOD, show=_METHOD_SHOW, derive=_wmi_path)
_PUT = [("instance", Ptr(MINTERFACE_POINTER)), ("flags", I32)]
WBEM.op(14, "PutInstance", _PUT, show=("class_name", "properties"), derive=_wmi_path)
WBEM.op(15, "PutInstanceAsync", _PUT, show=("class_name", "properties"), derive=_wmi_path)
