"""Activity views: the timeline (RPC activity per minute, host pair and interface) and the matrix
(client x server x interface: who negotiated which service with whom, where and how often)."""

from __future__ import annotations

import pandas as pd

from analyzer.report.columns import INT, STR, TIME
from analyzer.report.lists import joined, joined_columns
from analyzer.report.source import Source
from analyzer.report.views.shape import REJECTED, fill_keys, identity, shape, sorted_view, unfill_keys

TIMELINE: dict[str, str] = {
    "minute": TIME,
    "client_ip": STR,
    "server_ip": STR,
    "interface_uuid": STR,
    "interface_name": STR,
    "binds": INT,
    "calls": INT,
    "faults": INT,
    "request_bytes": INT,
    "response_bytes": INT,
    "operations": STR,
}


MATRIX: dict[str, str] = {
    "client_ip": STR,
    "server_ip": STR,
    "interface_uuid": STR,
    "interface_name": STR,
    "transports": STR,
    "endpoints": STR,
    "connections": INT,
    "binds": INT,
    "accepted": INT,
    "rejected": INT,
    "calls": INT,
    "faults": INT,
    "operations": STR,
    "auth_levels": STR,
    "users": STR,
    "first_seen": TIME,
    "last_seen": TIME,
    "attack": STR,
}


def _activity(binds: pd.DataFrame, calls: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Binds and calls in one long frame with per-row counters, keyed by `keys` (filled)."""
    rejected = binds["ack_result"].isin(REJECTED)
    b = pd.DataFrame(
        {
            **{k: binds[k] for k in keys if k in binds},
            "bind": 1,
            "accepted": (binds["ack_result"] == "acceptance").astype(int),
            "rejected": rejected.astype(int),
            "call": 0,
            "fault": 0,
            "request_bytes": 0,
            "response_bytes": 0,
            "operation": pd.Series(pd.NA, index=binds.index, dtype="string"),
            "attack": pd.Series(pd.NA, index=binds.index, dtype="string"),
            "identity": pd.Series(pd.NA, index=binds.index, dtype="string"),
            "transport": binds["transport"],
            "where": binds["pipe_name"].fillna(binds["server_port"].astype("string")),
            "conn": binds["capture"] + "#" + binds["stream"].astype("string"),
            "auth_level": binds["auth_level"],
            "ts": binds["ts"],
        }
    )
    c = pd.DataFrame(
        {
            **{k: calls[k] for k in keys if k in calls},
            "bind": 0,
            "accepted": 0,
            "rejected": 0,
            "call": 1,
            "fault": calls["fault_code"].notna().astype(int),
            "request_bytes": calls["request_bytes"].fillna(0),
            "response_bytes": calls["response_bytes"].fillna(0),
            "operation": calls["operation"],
            "attack": calls["attack"] if "attack" in calls else pd.Series(pd.NA, index=calls.index, dtype="string"),
            "identity": identity(calls),
            "transport": calls["transport"],
            "where": calls["pipe_name"].fillna(calls["server_port"].astype("string")),
            "conn": calls["capture"] + "#" + calls["stream"].astype("string"),
            "auth_level": calls["auth_level"],
            "ts": calls["ts"],
        }
    )
    long = pd.concat([df for df in (b, c) if not df.empty], ignore_index=True)
    return fill_keys(long, [k for k in keys if k != "minute"])


def timeline(source: Source) -> pd.DataFrame:
    """RPC activity per minute, per client -> server pair and interface.

    Answers "what happened when": which host used which service on which other host in each minute,
    with the operations called, for incident notes. Every bind context item and every call lands in
    exactly one row, so the counts add up to the binds and calls tables.
    """
    binds, calls = source.frame("binds"), source.frame("calls")
    if binds.empty and calls.empty:
        return shape(pd.DataFrame(), TIMELINE)
    keys = ["minute", "client_ip", "server_ip", "interface_uuid", "interface_name"]
    long = _activity(
        binds.assign(minute=binds["ts"].dt.floor("min")), calls.assign(minute=calls["ts"].dt.floor("min")), keys
    )
    g = long.groupby(keys, sort=False)
    out = g.agg(
        binds=("bind", "sum"),
        calls=("call", "sum"),
        faults=("fault", "sum"),
        request_bytes=("request_bytes", "sum"),
        response_bytes=("response_bytes", "sum"),
    )
    out["operations"] = joined(long, keys, "operation")
    out = unfill_keys(out.reset_index(), keys)
    return shape(sorted_view(out, ["minute", "client_ip", "server_ip", "interface_name", "interface_uuid"]), TIMELINE)


def matrix(source: Source) -> pd.DataFrame:
    """Client x server x interface: who negotiated which RPC service with whom.

    One row per (client, server, interface) with where (ports or pipes, transports), how often
    (connections, context items bound, accepted and rejected, calls and faults, operations) and with
    what identity (auth levels, DOMAIN\\user). Rejected items count too: an attempt is an answer.
    """
    binds, calls = source.frame("binds"), source.frame("calls")
    if binds.empty and calls.empty:
        return shape(pd.DataFrame(), MATRIX)
    keys = ["client_ip", "server_ip", "interface_uuid", "interface_name"]
    long = _activity(binds, calls, keys)
    g = long.groupby(keys, sort=False)
    out = g.agg(
        binds=("bind", "sum"),
        accepted=("accepted", "sum"),
        rejected=("rejected", "sum"),
        calls=("call", "sum"),
        faults=("fault", "sum"),
        connections=("conn", "nunique"),
        first_seen=("ts", "min"),
        last_seen=("ts", "max"),
    )
    out = out.join(
        joined_columns(
            long,
            keys,
            {
                "transports": "transport",
                "endpoints": "where",
                "operations": "operation",
                "auth_levels": "auth_level",
                "users": "identity",
                "attack": "attack",
            },
        )
    )
    out = unfill_keys(out.reset_index(), keys)
    return shape(sorted_view(out, ["server_ip", "client_ip", "interface_name", "interface_uuid"]), MATRIX)
