"""Scheduled tasks: atsvc NetrJobAdd ([MS-TSCH] 3.2.5.2) and ITaskSchedulerService
([MS-TSCH] 3.2.5.4), the vehicle of atexec and schtasks /S."""

from __future__ import annotations

import re

from analyzer.dcerpc.ndr_dtyp import INT_PTR
from analyzer.dcerpc.ndr_types import GUID, U8, U32, WSTR, Array, Ptr, Struct
from analyzer.stubs.registry import HRESULT, Values, family

ATSVC = family("1ff70682-0a51-30e8-076d-740be8cee98b", "atsvc")
TSCH = family("86d35949-83c9-4044-b424-db363231fd0c", "ITaskSchedulerService", HRESULT)

AT_INFO = Struct(  # 2.3.4
    ("job_time", INT_PTR),
    ("days_of_month", U32),
    ("days_of_week", U8),
    ("flags", U8),
    ("command", Ptr(WSTR)),
)
_S = Ptr(WSTR)


def _job(v: Values) -> None:
    info = v.pop("at_info", None)
    if isinstance(info, dict):
        v.update(info)


ATSVC.op(
    0,
    "NetrJobAdd",
    [("server_name", _S), ("at_info", AT_INFO)],
    [("job_id", U32)],
    show=("command", "job_id"),
    derive=_job,
)
ATSVC.op(
    1, "NetrJobDel", [("server_name", _S), ("min_job_id", U32), ("max_job_id", U32)], show=("min_job_id", "max_job_id")
)
ATSVC.op(3, "NetrJobGetInfo", [("server_name", _S), ("job_id", U32)], show=("job_id",))

# Task XML elements an analyst reads first ([MS-TSCH] 2.5: Exec/Command, Exec/Arguments,
# Principal/UserId, Settings/Hidden). A bounded pattern over the (already capped) text: no XML
# parser runs on wire data, so no entity expansion.
_TASK_FIELDS = {
    "command": re.compile(r"<Command>([^<]{0,4096})</Command>"),
    "command_arguments": re.compile(r"<Arguments>([^<]{0,4096})</Arguments>"),
    "run_as": re.compile(r"<UserId>([^<]{0,512})</UserId>"),
    "hidden": re.compile(r"<Hidden>([^<]{0,16})</Hidden>"),
}
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'", "&amp;": "&"}


def _unescape(text: str) -> str:
    return re.sub(r"&(lt|gt|quot|apos|amp);", lambda m: _ENTITIES[m.group(0)], text)


def _task_xml(v: Values) -> None:
    xml = v.get("task_xml")
    if not isinstance(xml, str):
        return
    for key, pattern in _TASK_FIELDS.items():
        m = pattern.search(xml)
        if m:
            v[key] = _unescape(m.group(1).strip())


TSCH.op(0, "SchRpcHighestVersion", [], [("version", U32)], show=("version",))
TSCH.op(
    1,
    "SchRpcRegisterTask",
    [("task_path", _S), ("task_xml", WSTR), ("flags", U32), ("sddl", _S), ("logon_type", U32)],
    [("actual_path", _S)],
    show=("task_path", "command", "command_arguments", "run_as", "hidden", "logon_type", "task_xml"),
    derive=_task_xml,
)
TSCH.op(2, "SchRpcRetrieveTask", [("task_path", WSTR)], show=("task_path",))
TSCH.op(6, "SchRpcEnumFolders", [("task_path", WSTR), ("flags", U32)], show=("task_path",))
TSCH.op(7, "SchRpcEnumTasks", [("task_path", WSTR), ("flags", U32)], show=("task_path",))
TSCH.op(9, "SchRpcGetInstanceInfo", [("guid", GUID)], show=("guid",))
TSCH.op(
    12,
    "SchRpcRun",
    [
        ("task_path", WSTR),
        ("argc", U32),
        ("argv", Ptr(Array(Ptr(WSTR)))),
        ("flags", U32),
        ("session_id", U32),
        ("user", _S),
    ],
    [("guid", GUID)],
    show=("task_path", "argv", "user"),
)
TSCH.op(13, "SchRpcDelete", [("task_path", WSTR), ("flags", U32)], show=("task_path",))
TSCH.op(14, "SchRpcRename", [("task_path", WSTR), ("new_name", WSTR)], show=("task_path", "new_name"))
TSCH.op(16, "SchRpcGetLastRunInfo", [("task_path", WSTR)], show=("task_path",))
TSCH.op(17, "SchRpcGetTaskInfo", [("task_path", WSTR)], show=("task_path",))
TSCH.op(19, "SchRpcEnableTask", [("task_path", WSTR), ("enabled", U32)], show=("task_path", "enabled"))
TSCH.op(18, "SchRpcGetNumberOfMissedRuns", [("task_path", WSTR)], show=("task_path",))

ATSVC.op(2, "NetrJobEnum", [("server_name", _S)], show=("server_name",))
TSCH.op(3, "SchRpcCreateFolder", [("task_path", WSTR), ("sddl", _S), ("flags", U32)], show=("task_path", "sddl"))
TSCH.op(4, "SchRpcSetSecurity", [("task_path", WSTR), ("sddl", WSTR), ("flags", U32)], show=("task_path", "sddl"))
TSCH.op(10, "SchRpcStopInstance", [("guid", GUID), ("flags", U32)], show=("guid",))
TSCH.op(11, "SchRpcStop", [("task_path", _S), ("flags", U32)], show=("task_path",))
TSCH.op(15, "SchRpcScheduledRuntimes", [("task_path", WSTR)], show=("task_path",))

# SASec ([MS-TSCH] 3.2.5.3): the account a legacy .job task runs as.
SASEC = family("378e52b0-c0a9-11cf-822d-00aa0051e40f", "SASec", HRESULT)
SASEC.op(
    0,
    "SASetAccountInformation",
    [("server_name", _S), ("job_name", WSTR), ("account", WSTR), ("password", _S), ("job_flags", U32)],
    show=("job_name", "account"),
    derive=lambda v: v.pop("password", None),
)
SASEC.op(
    1,
    "SASetNSAccountInformation",
    [("server_name", _S), ("account", _S), ("password", _S)],
    show=("account",),
    derive=lambda v: v.pop("password", None),
)
SASEC.op(2, "SAGetNSAccountInformation", [("server_name", _S)], show=("server_name",))
SASEC.op(3, "SAGetAccountInformation", [("server_name", _S), ("job_name", WSTR)], show=("job_name",))
