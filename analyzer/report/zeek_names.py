"""Zeek's vocabulary for DCE/RPC, and the calls table seen the way Zeek's dce_rpc.log sees it.

Zeek names interfaces and operations with its own tables (`DCE_RPC::uuid_endpoint_map` and
`DCE_RPC::operations`, scripts/base/protocols/dce-rpc/consts.zeek): `svcctl`/`CreateServiceW` where the
specification says `RCreateServiceW`, `drsuapi`/`DRSGetNCChanges` where it says `IDL_DRSGetNCChanges`,
and `unknown-<uuid>` / `unknown-<opnum>` for what it does not know. Detection content written against
Zeek logs (Sigma's zeek rules, BZAR) matches on those strings, so every Zeek-shaped output uses them.
The registry keeps them: an interface's name from the `suricata` source (Suricata's copy of Zeek's
table) and an operation's `common_name`.

`zeek_calls` applies Zeek's logging rule (scripts/base/protocols/dce-rpc/main.zeek) to our calls table,
for the log writer and for anything else that wants the Zeek view (the Sigma `zeek`/`dce_rpc`
logsource): a call becomes a dce_rpc.log row only when a response answered it, its interface is known
from a bind or alter_context of its conversation (Zeek keeps no other source of the context's UUID),
it travelled on a transport Zeek's DCE/RPC analyzer parses (ncacn_ip_tcp and SMB pipes, not UDP or
RPC over HTTP), and its operation is not one of Zeek's default `ignored_operations`. `named_pipe` is
what Zeek writes there: the secondary address of the conversation's latest bind_ack (a pipe name such
as `\\PIPE\\lsass`, or a port number), not the SMB file name.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from analyzer import registry
from analyzer.model import NCACN_IP_TCP, NCACN_NP

# Columns of Zeek's dce_rpc.log, in order, with their Zeek types (DCE_RPC::Info).
DCE_RPC_FIELDS: tuple[tuple[str, str], ...] = (
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("rtt", "interval"),
    ("named_pipe", "string"),
    ("endpoint", "string"),
    ("operation", "string"),
)

# DCE_RPC::ignored_operations, Zeek's default: noisy operations it does not log.
IGNORED_OPERATIONS: dict[str, frozenset[str]] = {
    "winreg": frozenset(
        {
            "BaseRegCloseKey",
            "BaseRegGetVersion",
            "BaseRegOpenKey",
            "BaseRegQueryValue",
            "BaseRegDeleteKeyEx",
            "OpenLocalMachine",
            "BaseRegEnumKey",
            "OpenClassesRoot",
        }
    ),
    "spoolss": frozenset({"RpcSplOpenPrinter", "RpcClosePrinter"}),
    "wkssvc": frozenset({"NetrWkstaGetInfo"}),
}

ZEEK_TRANSPORTS = frozenset({NCACN_IP_TCP, NCACN_NP})

# Why a call is not a dce_rpc.log row (the `zeek_skipped` column of dce_rpc_ext.log).
SKIP_UNANSWERED = "unanswered"
SKIP_FAULT = "fault"
SKIP_NO_BIND = "no_bind"
SKIP_TRANSPORT = "transport"
SKIP_IGNORED = "ignored_operation"


@lru_cache(maxsize=1)
def _endpoint_table() -> dict[str, str]:
    """uuid -> Zeek's endpoint name: the registry's name where Zeek's vocabulary won, else the Zeek
    name another source overrode (kept in conflicts.tsv)."""
    out: dict[str, str] = {}
    rows = (registry.DATA_DIR / "interfaces.tsv").read_text(encoding="utf-8").split("\n")[1:]
    for line in rows:
        cells = line.split("\t")
        if len(cells) >= 10 and not cells[1] and cells[9] == "suricata":
            out[cells[0]] = cells[3]
    for line in (registry.DATA_DIR / "conflicts.tsv").read_text(encoding="utf-8").split("\n"):
        cells = line.split("\t")
        if len(cells) >= 9 and cells[0] == "name" and cells[8] == "suricata" and not cells[2]:
            out.setdefault(cells[1], cells[7])
    return out


def endpoint_name(uuid: object) -> str | None:
    """Zeek's `endpoint` for an interface UUID: its name, or `unknown-<uuid>`; None without a UUID."""
    if uuid is None or uuid is pd.NA:
        return None
    u = str(uuid).lower()
    return _endpoint_table().get(u, f"unknown-{u}")


@lru_cache(maxsize=65536)
def operation_name(uuid: str, opnum: int) -> str:
    """Zeek's `operation` for (uuid, opnum): its name, or `unknown-<opnum>`."""
    info = registry.operation_info(uuid, None, opnum)
    if info is not None and info.common_name and "suricata" in info.sources:
        return info.common_name
    return f"unknown-{opnum}"


def _named_pipes(calls: pd.DataFrame, binds: pd.DataFrame) -> pd.Series:
    """Per call: the secondary address of the latest bind_ack of its conversation answered before it
    (Zeek's `named_pipe`, kept per pipe and updated by every bind_ack with a non-empty address)."""
    acks = binds[binds["sec_addr"].notna() & (binds["sec_addr"] != "") & binds["ack_frame"].notna()]
    out: pd.Series = pd.Series(pd.array([None] * len(calls), dtype="string"), index=calls.index)
    if acks.empty or calls.empty:
        return out
    latest: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for cap, stream, frame, addr in acks[["capture", "stream", "ack_frame", "sec_addr"]].itertuples(index=False):
        latest.setdefault((cap, int(stream)), []).append((int(frame), str(addr)))
    for seq in latest.values():
        seq.sort()
    values = []
    for cap, stream, frame in calls[["capture", "stream", "frame"]].itertuples(index=False):
        found = None
        for ack_frame, addr in latest.get((cap, int(stream)), ()):
            if ack_frame > frame:
                break
            found = addr
        values.append(found)
    out[:] = values
    return out


def zeek_calls(calls: pd.DataFrame, binds: pd.DataFrame) -> pd.DataFrame:
    """The calls table with Zeek's view added: `named_pipe`, `endpoint`, `zeek_operation`, and
    `zeek_skipped` (missing for a call Zeek logs, else why it does not: unanswered, fault, no_bind,
    transport, ignored_operation). Rows and order are those of `calls`."""
    out: pd.DataFrame = calls.copy()
    out["named_pipe"] = _named_pipes(calls, binds)
    out["endpoint"] = pd.array([endpoint_name(u) for u in calls["interface_uuid"]], dtype="string")
    ops = [
        None if u is pd.NA or u is None or n is pd.NA else operation_name(str(u), int(n))
        for u, n in zip(calls["interface_uuid"], calls["opnum"], strict=True)
    ]
    out["zeek_operation"] = pd.array(ops, dtype="string")
    skipped: list[str | None] = []
    for status, source, transport, endpoint, op in zip(
        calls["status"], calls["interface_source"], calls["transport"], out["endpoint"], ops, strict=True
    ):
        skipped.append(_skip_reason(status, source, transport, endpoint, op))
    out["zeek_skipped"] = pd.array(skipped, dtype="string")
    return out


def _skip_reason(status: object, source: object, transport: object, endpoint: object, op: str | None) -> str | None:
    if transport not in ZEEK_TRANSPORTS:
        return SKIP_TRANSPORT
    if status is pd.NA or status is None:
        return SKIP_UNANSWERED
    if status != "ok":
        return SKIP_FAULT
    if source != "bind" or endpoint is pd.NA or op is None:
        return SKIP_NO_BIND
    if op in IGNORED_OPERATIONS.get(str(endpoint), ()):
        return SKIP_IGNORED
    return None


def dce_rpc_view(calls: pd.DataFrame, binds: pd.DataFrame, all_calls: bool = False) -> pd.DataFrame:
    """dce_rpc.log as a DataFrame: Zeek's 10 columns (`ts` a UTC time, `rtt` seconds, missing when
    Zeek leaves it unset), one row per call Zeek would log, or per call when `all_calls`, in the
    order Zeek writes them (of the answers)."""
    z = zeek_calls(calls, binds)
    if not all_calls:
        z = z[z["zeek_skipped"].isna()]
    # Zeek writes a row when the response arrives: rows in the order of their answers (an unanswered
    # call, with --all-calls, at its request)
    order = z.assign(_written=z["response_frame"].fillna(z["frame"]))
    z = order.sort_values(["capture", "_written", "frame"], kind="stable").drop(columns="_written")
    rtt = z["rtt_s"].where(z["rtt_s"] > 0)  # Zeek sets rtt only when the two times differ
    view: pd.DataFrame = pd.DataFrame(
        {
            "ts": z["ts"],
            "uid": z["uid"],
            "id.orig_h": z["client_ip"],
            "id.orig_p": z["client_port"],
            "id.resp_h": z["server_ip"],
            "id.resp_p": z["server_port"],
            "rtt": rtt,
            "named_pipe": z["named_pipe"],
            "endpoint": z["endpoint"],
            "operation": z["zeek_operation"],
        }
    )
    view = view.reset_index(drop=True)
    return view


# -- the views Sigma rules are evaluated over (../shared/detection/sigma_zeek.md) --------------------

# Field names Sigma rules use for Zeek logs that are not Zeek's own (Sigma's zeek field mapping)
SIGMA_ZEEK_ALIASES = {"src_ip": "id.orig_h", "src_port": "id.orig_p", "dst_ip": "id.resp_h", "dst_port": "id.resp_p"}
PIPE_COLUMN = "pipe_name"  # the pipe column of the tables: findings and Sigma read it from here only


def _epoch(ts: pd.Series) -> pd.Series:
    out: pd.Series = ts.astype("int64") / 1e9 if not ts.empty else pd.Series([], dtype="float64")
    return out.round(6)


def sigma_dce_rpc(calls: pd.DataFrame) -> pd.DataFrame:
    """One row per call with Zeek's dce_rpc.log fields (named_pipe: the pipe, else the server port, as
    Zeek's sec_addr holds for TCP)."""
    ops = [
        operation_name(u, int(n)) if isinstance(u, str) and n is not None and n is not pd.NA else f"unknown-{n}"
        for u, n in zip(calls["interface_uuid"].tolist(), calls["opnum"].tolist(), strict=True)
    ]
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
            "endpoint": [endpoint_name(u) or "unknown-" for u in calls["interface_uuid"].tolist()],
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
