"""svcctl ([MS-SCMR] 3.1.4): the service control manager, the vehicle of PsExec and smbexec.

Service handles are named: ROpenServiceW / RCreateServiceW record the service name of the handle
they return, so RStartServiceW, RDeleteService, RChangeServiceConfigW and RControlService rows
say which service they acted on.
"""

from __future__ import annotations

from typing import Any

from analyzer.dcerpc.ndr_types import ASTR, BYTES, HANDLE, U32, WSTR, Array, NdrType, Ptr
from analyzer.stubs.registry import Values, family

F = family("367abb81-9844-35f1-ad32-98f038001003", "svcctl")

# [MS-SCMR] 2.2.15 (dwStartType) and 2.2.47 (dwServiceType bits)
START_TYPES = {
    0: "SERVICE_BOOT_START",
    1: "SERVICE_SYSTEM_START",
    2: "SERVICE_AUTO_START",
    3: "SERVICE_DEMAND_START",
    4: "SERVICE_DISABLED",
    0xFFFFFFFF: "SERVICE_NO_CHANGE",
}
SERVICE_TYPES = {
    0x1: "SERVICE_KERNEL_DRIVER",
    0x2: "SERVICE_FILE_SYSTEM_DRIVER",
    0x10: "SERVICE_WIN32_OWN_PROCESS",
    0x20: "SERVICE_WIN32_SHARE_PROCESS",
    0x100: "SERVICE_INTERACTIVE_PROCESS",
}


def _named(v: Values) -> None:
    """Start and service types by name."""
    st = v.get("start_type")
    if isinstance(st, int):
        v["start_type"] = START_TYPES.get(st, f"0x{st:x}")
    t = v.get("service_type")
    if isinstance(t, int):
        if t == 0xFFFFFFFF:
            v["service_type"] = "SERVICE_NO_CHANGE"
        else:
            v["service_type"] = "|".join(n for bit, n in SERVICE_TYPES.items() if t & bit) or f"0x{t:x}"
    for k in ("password", "dependencies"):
        v.pop(k, None)  # the password is encrypted; neither is decisive


def _service(v: Values, _parent: str | None) -> Any:
    return v.get("service_name")


def _create(s: NdrType) -> list[tuple[str, NdrType]]:
    """RCreateServiceW / A / WOW64W (3.1.4.12, 3.1.4.33, 3.1.4.43): same layout, wide or ANSI."""
    return [
        ("_handle", HANDLE),
        ("service_name", s),
        ("display_name", Ptr(s)),
        ("desired_access", U32),
        ("service_type", U32),
        ("start_type", U32),
        ("error_control", U32),
        ("binary_path", s),
        ("load_order_group", Ptr(s)),
        ("tag_id", Ptr(U32)),
        ("dependencies", Ptr(BYTES)),
        ("depend_size", U32),
        ("service_start_name", Ptr(s)),
        ("password", Ptr(BYTES)),
        ("pw_size", U32),
    ]


def _change(s: NdrType) -> list[tuple[str, NdrType]]:
    """RChangeServiceConfigW / A (3.1.4.11, 3.1.4.22)."""
    return [
        ("_handle", HANDLE),
        ("service_type", U32),
        ("start_type", U32),
        ("error_control", U32),
        ("binary_path", Ptr(s)),
        ("load_order_group", Ptr(s)),
        ("tag_id", Ptr(U32)),
        ("dependencies", Ptr(BYTES)),
        ("depend_size", U32),
        ("service_start_name", Ptr(s)),
        ("password", Ptr(BYTES)),
        ("pw_size", U32),
        ("display_name", Ptr(s)),
    ]


_CREATE_SHOW = ("service_name", "display_name", "binary_path", "start_type", "service_type", "service_start_name")
_CHANGE_SHOW = ("service_name", "binary_path", "start_type", "service_type", "service_start_name")
_OUT_HANDLE = [("_handle", HANDLE)]
_HANDLE_ONLY = [("_handle", HANDLE)]

F.op(0, "RCloseServiceHandle", _HANDLE_ONLY, show=("service_name",), names="service_name")
F.op(
    1,
    "RControlService",
    [("_handle", HANDLE), ("control", U32)],
    show=("service_name", "control"),
    names="service_name",
)
F.op(2, "RDeleteService", _HANDLE_ONLY, show=("service_name",), names="service_name")
F.op(6, "RQueryServiceStatus", _HANDLE_ONLY, show=("service_name",), names="service_name")
F.op(11, "RChangeServiceConfigW", _change(WSTR), show=_CHANGE_SHOW, derive=_named, names="service_name")
F.op(
    12,
    "RCreateServiceW",
    _create(WSTR),
    [("tag_id", Ptr(U32)), ("_handle", HANDLE)],
    show=_CREATE_SHOW,
    derive=_named,
    opens=_service,
)
F.op(
    15,
    "ROpenSCManagerW",
    [("machine_name", Ptr(WSTR)), ("database_name", Ptr(WSTR)), ("desired_access", U32)],
    show=("machine_name", "desired_access"),
)
F.op(
    16,
    "ROpenServiceW",
    [("_handle", HANDLE), ("service_name", WSTR), ("desired_access", U32)],
    _OUT_HANDLE,
    show=("service_name",),
    opens=_service,
)
F.op(17, "RQueryServiceConfigW", [("_handle", HANDLE), ("buf_size", U32)], show=("service_name",), names="service_name")
F.op(
    19,
    "RStartServiceW",
    [("_handle", HANDLE), ("argc", U32), ("argv", Ptr(Array(Ptr(WSTR))))],
    show=("service_name", "argv"),
    names="service_name",
)
F.op(23, "RChangeServiceConfigA", _change(ASTR), show=_CHANGE_SHOW, derive=_named, names="service_name")
F.op(
    24,
    "RCreateServiceA",
    _create(ASTR),
    [("tag_id", Ptr(U32)), ("_handle", HANDLE)],
    show=_CREATE_SHOW,
    derive=_named,
    opens=_service,
)
F.op(
    27,
    "ROpenSCManagerA",
    [("machine_name", Ptr(ASTR)), ("database_name", Ptr(ASTR)), ("desired_access", U32)],
    show=("machine_name", "desired_access"),
)
F.op(
    28,
    "ROpenServiceA",
    [("_handle", HANDLE), ("service_name", ASTR), ("desired_access", U32)],
    _OUT_HANDLE,
    show=("service_name",),
    opens=_service,
)
F.op(
    31,
    "RStartServiceA",
    [("_handle", HANDLE), ("argc", U32), ("argv", Ptr(Array(Ptr(ASTR))))],
    show=("service_name", "argv"),
    names="service_name",
)
F.op(
    39,
    "RQueryServiceConfig2W",
    [("_handle", HANDLE), ("info_level", U32)],
    show=("service_name", "info_level"),
    names="service_name",
)
F.op(
    45,
    "RCreateServiceWOW64W",
    _create(WSTR),
    [("tag_id", Ptr(U32)), ("_handle", HANDLE)],
    show=_CREATE_SHOW,
    derive=_named,
    opens=_service,
)
F.op(
    44,
    "RCreateServiceWOW64A",
    _create(ASTR),
    [("tag_id", Ptr(U32)), ("_handle", HANDLE)],
    show=_CREATE_SHOW,
    derive=_named,
    opens=_service,
)

# Discovery and hijack preparation ([MS-SCMR] 3.1.4.14, 3.1.4.38, 3.1.4.37, 3.1.4.6)
_STATE = {1: "SERVICE_ACTIVE", 2: "SERVICE_INACTIVE", 3: "SERVICE_STATE_ALL"}


def _state(v: Values) -> None:
    st = v.get("service_state")
    if isinstance(st, int):
        v["service_state"] = _STATE.get(st, str(st))


F.op(
    14,
    "REnumServicesStatusW",
    [("_handle", HANDLE), ("service_type", U32), ("service_state", U32)],
    show=("service_state",),
    derive=_state,
)
F.op(
    42,
    "REnumServicesStatusExW",
    [("_handle", HANDLE), ("info_level", U32), ("service_type", U32), ("service_state", U32)],
    show=("service_state",),
    derive=_state,
)
F.op(
    37,
    "RChangeServiceConfig2W",
    [("_handle", HANDLE), ("info_level", U32)],
    show=("service_name", "info_level"),
    names="service_name",
)
F.op(
    5,
    "RSetServiceObjectSecurity",
    [("_handle", HANDLE), ("security_information", U32)],
    show=("service_name", "security_information"),
    names="service_name",
)
F.op(
    40,
    "RQueryServiceStatusEx",
    [("_handle", HANDLE), ("info_level", U32)],
    show=("service_name", "info_level"),
    names="service_name",
)
