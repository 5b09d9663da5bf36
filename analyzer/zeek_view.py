"""Zeek-compatible views of the calls table, in memory: the field mapping between our columns and Zeek's
`dce_rpc.log` / `smb_files.log`, and the RPC Firewall event-3 fields (../shared/detection/sigma_zeek.md).

One small module so that every consumer (Sigma evaluation here; the Zeek log writer) names things the
same way. Names: `endpoint` is the registry's interface name (Zeek's `uuid_endpoint_map` vocabulary,
`unknown-<uuid>` when unknown), `operation` is the registry's common (Zeek) name of the operation
(`CreateServiceW`, `DRSGetNCChanges`, `NetrJobAdd`), `unknown-<opnum>` when it has none.

Unlike Zeek's log, which has a line only for answered calls, these views have a row for every call,
faulted and unanswered ones included: a refused attempt is still an attempt.
"""

from __future__ import annotations

import pandas as pd

from analyzer import registry

# Zeek dce_rpc.log columns, in order (sigma_zeek.md section D)
DCE_RPC_FIELDS = (
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "rtt",
    "named_pipe",
    "endpoint",
    "operation",
)
# Field names Sigma rules use for Zeek logs that are not Zeek's own (Sigma's zeek field mapping)
SIGMA_ZEEK_ALIASES = {"src_ip": "id.orig_h", "src_port": "id.orig_p", "dst_ip": "id.resp_h", "dst_port": "id.resp_p"}
PIPE_COLUMN = "pipe_name"  # the pipe column of the tables: findings and Sigma read it from here only


def zeek_endpoint(uuid: object, name: object) -> str:
    if isinstance(name, str) and not name.startswith("unknown-"):
        return name
    return f"unknown-{uuid}" if isinstance(uuid, str) else "unknown-"


def zeek_operation(uuid: object, version: object, opnum: object) -> str:
    """Zeek's name of an operation: the registry's common name, else unknown-<opnum>."""
    if isinstance(uuid, str) and isinstance(opnum, int):
        major = int(str(version).split(".")[0]) if isinstance(version, str) and version else None
        op = registry.operation_info(uuid, major, opnum)
        if op is not None and op.common_name:
            return op.common_name
        if op is not None and op.names:
            return op.names[0]
    return f"unknown-{opnum}"


def _epoch(ts: pd.Series) -> pd.Series:
    out: pd.Series = ts.astype("int64") / 1e9 if not ts.empty else pd.Series([], dtype="float64")
    return out.round(6)


def dce_rpc(calls: pd.DataFrame) -> pd.DataFrame:
    """One row per call with Zeek's dce_rpc.log fields (named_pipe: the pipe, else the server port, as
    Zeek's sec_addr holds for TCP)."""
    names: dict[tuple[object, object, object], str] = {}
    ops = []
    for key in zip(
        calls["interface_uuid"].tolist(), calls["interface_version"].tolist(), calls["opnum"].tolist(), strict=True
    ):
        if key not in names:
            u, v, n = key
            names[key] = zeek_operation(u, v, int(n) if n is not None and n is not pd.NA else None)
        ops.append(names[key])
    port = calls["server_port"].astype("Int64").astype("string")
    view: pd.DataFrame = pd.DataFrame(
        {
            "ts": _epoch(calls["ts"]),
            "uid": calls["uid"] if "uid" in calls.columns else pd.Series(pd.NA, index=calls.index, dtype="string"),
            "id.orig_h": calls["client_ip"],
            "id.orig_p": calls["client_port"],
            "id.resp_h": calls["server_ip"],
            "id.resp_p": calls["server_port"],
            "rtt": calls["rtt_s"],
            "named_pipe": calls[PIPE_COLUMN].fillna(port),
            "endpoint": [
                zeek_endpoint(u, n)
                for u, n in zip(calls["interface_uuid"].tolist(), calls["interface_name"].tolist(), strict=True)
            ],
            "operation": pd.Series(ops, index=calls.index, dtype="string"),
        },
        index=calls.index,
    )
    return view


def smb_files(connections: pd.DataFrame) -> pd.DataFrame:
    """One row per named-pipe conversation with Zeek smb_files.log's `path` (the IPC$ tree of the server,
    where every pipe lives) and `name` (the pipe's name without \\PIPE\\). Other SMB files are not RPC and
    are not in our tables."""
    np = connections[connections[PIPE_COLUMN].notna()]
    name = np[PIPE_COLUMN].astype("string").str.replace(r"^\\+pipe\\+", "", case=False, regex=True)
    view: pd.DataFrame = pd.DataFrame(
        {
            "ts": _epoch(np["first_ts"]),
            "id.orig_h": np["client_ip"],
            "id.orig_p": np["client_port"],
            "id.resp_h": np["server_ip"],
            "id.resp_p": np["server_port"],
            "path": "\\\\" + np["server_ip"].astype("string") + "\\IPC$",
            "name": name,
        },
        index=np.index,
    )
    return view


def rpc_firewall(calls: pd.DataFrame) -> pd.DataFrame:
    """One RPC Firewall event 3 (RPCFW log) per call, with the fields its Sigma rules use."""
    protocol = calls["transport"]
    view: pd.DataFrame = pd.DataFrame(
        {
            "EventLog": "RPCFW",
            "EventID": 3,
            "InterfaceUuid": calls["interface_uuid"],
            "OpNum": calls["opnum"],
            "Protocol": protocol,
            "Endpoint": calls[PIPE_COLUMN].fillna(calls["server_port"].astype("Int64").astype("string")),
            "ClientNetworkAddress": calls["client_ip"],
            "ClientPort": calls["client_port"],
            "ServerNetworkAddress": calls["server_ip"],
            "ServerPort": calls["server_port"],
            "AuthenticationLevel": calls["auth_level"],
            "AuthenticationService": calls["auth_type"],
        },
        index=calls.index,
    )
    return view
