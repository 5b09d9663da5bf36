"""Zeek-compatible logs of a run: dce_rpc.log exactly as Zeek writes it, and companion logs.

`dce_rpc.log` has Zeek's 10 columns in Zeek's order and nothing else (Malcolm and other pipelines parse
it by position), with the rows Zeek's own script would log (see `analyzer.report.zeek_names`): answered calls
whose interface a bind named, on TCP or SMB pipes, minus Zeek's ignored operations. We write no more
than that there on purpose: a SOC that merges our log with real Zeek output, or runs Zeek-written
rules (Sigma's zeek rules, BZAR) over it, gets the rows and semantics it expects, with no double
counting and no rule firing on a faulted call Zeek would never show. Every other call is still in
`dce_rpc_ext.log`, with `zeek_skipped` saying why dce_rpc.log leaves it out.

Companions, all joined on `uid` (and `ts`) in the same Zeek format:
- `dce_rpc_ext.log`: one line per call, logged by Zeek or not: UUID, opnum, our names, outcome,
  fault, return status, auth, user, decoded arguments, Community ID.
- `dce_rpc_bind.log`: one line per presentation-context item of every bind and alter_context, with
  its answer and the bind_ack secondary address.
- `dce_rpc_conn.log`: one line per DCE/RPC conversation (a TCP connection, an SMB pipe, a UDP pair):
  how it was recognised, duration, bytes, binds, calls, faults, interfaces, how it ended.
- `rpc_findings.log`: the findings table, when the run has one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analyzer.report.zeek_names import DCE_RPC_FIELDS, dce_rpc_view, endpoint_name, zeek_calls
from analyzer.zeek.log import Field, write_log

_ID: tuple[Field, ...] = (("id.orig_h", "addr"), ("id.orig_p", "port"), ("id.resp_h", "addr"), ("id.resp_p", "port"))
_ID_SOURCE = {
    "id.orig_h": "client_ip",
    "id.orig_p": "client_port",
    "id.resp_h": "server_ip",
    "id.resp_p": "server_port",
}

EXT_FIELDS: tuple[Field, ...] = (
    ("ts", "time"),
    ("uid", "string"),
    *_ID,
    ("community_id", "string"),
    ("transport", "string"),
    ("smb_pipe", "string"),
    ("named_pipe", "string"),
    ("call_id", "count"),
    ("ctx_id", "count"),
    ("uuid", "string"),
    ("version", "string"),
    ("endpoint", "string"),
    ("interface", "string"),
    ("opnum", "count"),
    ("operation", "string"),
    ("zeek_operation", "string"),
    ("status", "string"),
    ("fault", "string"),
    ("return_status", "string"),
    ("rtt", "interval"),
    ("request_bytes", "count"),
    ("response_bytes", "count"),
    ("auth_type", "string"),
    ("auth_level", "string"),
    ("user", "string"),
    ("domain", "string"),
    ("arguments", "string"),
    ("zeek_skipped", "string"),
    ("capture", "string"),
    ("frame", "count"),
)

BIND_FIELDS: tuple[Field, ...] = (
    ("ts", "time"),
    ("uid", "string"),
    *_ID,
    ("community_id", "string"),
    ("transport", "string"),
    ("smb_pipe", "string"),
    ("pdu_type", "string"),
    ("call_id", "count"),
    ("ctx_id", "count"),
    ("uuid", "string"),
    ("version", "string"),
    ("endpoint", "string"),
    ("interface", "string"),
    ("transfer_syntax", "string"),
    ("ack_result", "string"),
    ("ack_reason", "string"),
    ("sec_addr", "string"),
    ("auth_type", "string"),
    ("auth_level", "string"),
    ("capture", "string"),
    ("frame", "count"),
)

CONN_FIELDS: tuple[Field, ...] = (
    ("ts", "time"),
    ("uid", "string"),
    *_ID,
    ("community_id", "string"),
    ("proto", "string"),
    ("transport", "string"),
    ("smb_pipe", "string"),
    ("identified_by", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("pdus", "count"),
    ("binds", "count"),
    ("calls", "count"),
    ("faults", "count"),
    ("interfaces", "string"),
    ("end", "string"),
    ("capture", "string"),
)

LOGS = ("dce_rpc", "dce_rpc_ext", "dce_rpc_bind", "dce_rpc_conn", "rpc_findings")


def _ids(df: pd.DataFrame) -> dict[str, Any]:
    return {name: df[src] for name, src in _ID_SOURCE.items()}


def ext_frame(calls: pd.DataFrame, binds: pd.DataFrame) -> pd.DataFrame:
    """dce_rpc_ext.log as a DataFrame (columns named as EXT_FIELDS)."""
    z = zeek_calls(calls, binds)
    arguments = z["arguments"] if "arguments" in z.columns else pd.Series([None] * len(z), index=z.index)
    ext: pd.DataFrame = pd.DataFrame(
        {
            "ts": z["ts"],
            "uid": z["uid"],
            **_ids(z),
            "community_id": z["community_id"],
            "transport": z["transport"],
            "smb_pipe": z["pipe_name"],
            "named_pipe": z["named_pipe"],
            "call_id": z["call_id"],
            "ctx_id": z["ctx_id"],
            "uuid": z["interface_uuid"],
            "version": z["interface_version"],
            "endpoint": z["endpoint"],
            "interface": z["interface_name"],
            "opnum": z["opnum"],
            "operation": z["operation"],
            "zeek_operation": z["zeek_operation"],
            "status": z["status"],
            "fault": z["fault_code"],
            "return_status": z["return_status"],
            "rtt": z["rtt_s"],
            "request_bytes": z["request_bytes"],
            "response_bytes": z["response_bytes"],
            "auth_type": z["auth_type"],
            "auth_level": z["auth_level"],
            "user": z["user"],
            "domain": z["domain"],
            "arguments": arguments,
            "zeek_skipped": z["zeek_skipped"],
            "capture": z["capture"],
            "frame": z["frame"],
        }
    )
    return ext


def bind_frame(binds: pd.DataFrame) -> pd.DataFrame:
    """dce_rpc_bind.log as a DataFrame (columns named as BIND_FIELDS)."""
    df: pd.DataFrame = pd.DataFrame(
        {
            "ts": binds["ts"],
            "uid": binds["uid"],
            **_ids(binds),
            "community_id": binds["community_id"],
            "transport": binds["transport"],
            "smb_pipe": binds["pipe_name"],
            "pdu_type": binds["pdu_type"],
            "call_id": binds["call_id"],
            "ctx_id": binds["ctx_id"],
            "uuid": binds["interface_uuid"],
            "version": binds["interface_version"],
            "endpoint": pd.array([endpoint_name(u) for u in binds["interface_uuid"]], dtype="string"),
            "interface": binds["interface_name"],
            "transfer_syntax": binds["transfer_syntax"],
            "ack_result": binds["ack_result"],
            "ack_reason": binds["ack_reason"],
            "sec_addr": binds["sec_addr"],
            "auth_type": binds["auth_type"],
            "auth_level": binds["auth_level"],
            "capture": binds["capture"],
            "frame": binds["frame"],
        }
    )
    return df


def conn_frame(connections: pd.DataFrame) -> pd.DataFrame:
    """dce_rpc_conn.log: one line per DCE/RPC conversation (columns named as CONN_FIELDS). Several
    pipes of one SMB connection share its uid, each with its own line."""
    c = connections
    df: pd.DataFrame = pd.DataFrame(
        {
            "ts": c["first_ts"],
            "uid": c["uid"],
            **_ids(c),
            "community_id": c["community_id"],
            "proto": c["transport"].map(lambda t: "udp" if t == "ncadg_ip_udp" else "tcp").astype("string"),
            "transport": c["transport"],
            "smb_pipe": c["pipe_name"],
            "identified_by": c["identified_by"],
            "duration": c["duration_s"],
            "orig_bytes": c["client_bytes"],
            "resp_bytes": c["server_bytes"],
            "pdus": c["pdus"],
            "binds": c["binds"],
            "calls": c["calls"],
            "faults": c["faults"],
            "interfaces": c["interfaces"],
            "end": c["end"],
            "capture": c["capture"],
        }
    )
    return df


def _zeek_type(name: str, dtype: Any) -> str:
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "time"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "port" if name.endswith("_port") else "count"
    if pd.api.types.is_float_dtype(dtype):
        return "interval" if name.endswith("_s") else "double"
    return "addr" if name.endswith("_ip") else "string"


def findings_frame(
    findings: pd.DataFrame, calls: pd.DataFrame, binds: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, tuple[Field, ...]]:
    """rpc_findings.log: the findings table's own columns, `ts` (its first_ts) and `uid` first; the
    uid is that of the call (else the bind) at the finding's first frame. The Zeek type of each
    column follows from its dtype."""
    df = findings.copy()
    frames = [calls] if binds is None else [calls, binds]
    key = pd.concat([f[["capture", "frame", "uid"]] for f in frames]).drop_duplicates(["capture", "frame"])
    if {"capture", "first_frame"} <= set(df.columns):
        joined = df.merge(key, how="left", left_on=["capture", "first_frame"], right_on=["capture", "frame"])
        df["uid"] = pd.array(joined["uid"].tolist(), dtype="string")
    else:
        df["uid"] = pd.array([None] * len(df), dtype="string")
    df["ts"] = df["first_ts"] if "first_ts" in df.columns else pd.NaT
    cols = ["ts", "uid", *[c for c in findings.columns if c not in ("ts", "uid")]]
    fields = tuple((c, _zeek_type(c, df[c].dtype) if c != "ts" else "time") for c in cols)
    return df[cols], fields


# What dce_rpc.log reads of a call (`report.zeek_names.dce_rpc_view`), and what a named pipe of a bind.
_VIEW_COLUMNS = [
    "capture",
    "stream",
    "frame",
    "ts",
    "uid",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "transport",
    "rtt_s",
    "response_frame",
    "interface_uuid",
    "interface_source",
    "opnum",
    "status",
]
_ACK_COLUMNS = ["capture", "stream", "ack_frame", "sec_addr"]


def _rows_where(frame: pd.DataFrame, keep: Iterable[bool]) -> pd.DataFrame:
    """The rows of frame where keep (one flag a row) is true. As an array: `frame[[]]`, an empty
    list, is taken for column labels and has no columns, which a capture with a bind and no
    bind_ack met in the joins below (found by fuzz/run.py end_to_end)."""
    kept: pd.DataFrame = frame[np.fromiter(keep, dtype=np.bool_, count=len(frame))]
    return kept


def _acks(source: Any) -> pd.DataFrame:
    """The bind_acks that can name a call's pipe (`zeek_names._named_pipes`): those with a secondary
    address, on conversations that have calls. A flood of binds without calls keeps nothing here."""
    calls = {
        (c, s)
        for chunk in source.chunks("calls", ["capture", "stream"])
        for c, s in zip(chunk["capture"], chunk["stream"], strict=True)
    }
    kept = []
    for chunk in source.chunks("binds", _ACK_COLUMNS):
        with_addr = chunk[chunk["sec_addr"].notna() & chunk["ack_frame"].notna()]
        keys = zip(with_addr["capture"], with_addr["stream"], strict=True)
        kept.append(_rows_where(with_addr, (key in calls for key in keys)))
    acks: pd.DataFrame = pd.concat(kept, ignore_index=True) if kept else source.frame("binds", _ACK_COLUMNS)
    return acks


def _logged_calls(source: Any, acks: pd.DataFrame, all_calls: bool) -> pd.DataFrame:
    """The calls dce_rpc.log shows (only the columns it reads): it sorts them by when they were answered."""
    kept = []
    for chunk in source.chunks("calls", _VIEW_COLUMNS):
        kept.append(chunk if all_calls else chunk[zeek_calls(chunk, acks)["zeek_skipped"].isna().to_numpy()])
    logged: pd.DataFrame = pd.concat(kept, ignore_index=True) if kept else source.frame("calls", _VIEW_COLUMNS)
    return logged


def _first_frames(source: Any, findings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The calls and binds at the findings' first frames (capture, frame, uid): what their uid comes from."""
    if not {"capture", "first_frame"} <= set(findings.columns):
        wanted: set[tuple[Any, Any]] = set()
    else:
        wanted = set(zip(findings["capture"], findings["first_frame"], strict=True))
    out = []
    for table in ("calls", "binds"):
        kept = [
            _rows_where(chunk, (k in wanted for k in zip(chunk["capture"], chunk["frame"], strict=True)))
            for chunk in source.chunks(table, ["capture", "frame", "uid"])
        ]
        out.append(pd.concat(kept, ignore_index=True) if kept else source.frame(table, ["capture", "frame", "uid"]))
    return out[0], out[1]


def write_zeek_logs(
    result: Any, out_dir: str | PathLike[str], fmt: str = "zeek", all_calls: bool = False
) -> list[Path]:
    """Write the Zeek-format logs of an AnalysisResult into out_dir; the paths written (a log with no
    rows is not written, as Zeek does). `all_calls` puts every call in dce_rpc.log (not Zeek's rule).
    The tables are read from the result's `source` a chunk at a time; what is held whole is what the
    joins need (bind_acks with a pipe name, the calls dce_rpc.log sorts by their answers)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = result.source
    acks = _acks(source)
    logs: list[tuple[str, Sequence[Field], Any]] = [
        ("dce_rpc", DCE_RPC_FIELDS, [dce_rpc_view(_logged_calls(source, acks, all_calls), acks, True)]),
        ("dce_rpc_ext", EXT_FIELDS, (ext_frame(chunk, acks) for chunk in source.chunks("calls"))),
        ("dce_rpc_bind", BIND_FIELDS, (bind_frame(chunk) for chunk in source.chunks("binds"))),
        ("dce_rpc_conn", CONN_FIELDS, (conn_frame(chunk) for chunk in source.chunks("connections"))),
    ]
    written = [write_log(out, name, fields, frames, fmt) for name, fields, frames in logs]
    findings = getattr(result, "findings", None)
    if isinstance(findings, pd.DataFrame) and not findings.empty:
        frame, fields = findings_frame(findings, *_first_frames(source, findings))
        written.append(write_log(out, "rpc_findings", fields, frame, fmt))
    return [p for p in written if p is not None]
