"""Views for analysts: the base tables (report.py) regrouped to answer one question each.

Pure functions from DataFrames to DataFrames; nothing here reads records or files. Each view has an
explicit schema in `VIEW_SCHEMAS` (column -> dtype, the vocabulary of report.py), a stable column
order and row order, and comes back empty-but-shaped when there is nothing to show.

- `endpoint_inventory`: per server, what `portqry -e 135` or `rpcdump` would have listed, rebuilt
  passively from endpoint-mapper answers and from the binds and calls actually seen, each entry marked
  `announced-only`, `announced-and-used` or `used-without-announcement`.
- `timeline`: RPC activity per minute, host pair and interface, for incident notes.
- `matrix`: client x server x interface: who negotiated which service with whom, where and how often.
- `data_quality`: per capture and per connection, what the capture did not show (gaps, violations,
  caps hit, calls without a bind, encrypted stubs, unknown interfaces), so a reader knows what the
  other tables cannot say.

`hosts_text` and `inventory_text` render the per-host table and the inventory for a terminal.
"""

from __future__ import annotations

import ipaddress
import textwrap
from collections.abc import Iterable
from functools import cache
from typing import Any

import pandas as pd

from analyzer import registry
from analyzer.limits import CAP_CODES
from analyzer.report import BOOL, FLOAT, INT, STR, TIME, joined, joined_columns
from analyzer.terminal import printable

__all__ = [
    "ANNOUNCED_AND_USED",
    "ANNOUNCED_ONLY",
    "DATA_QUALITY",
    "ENDPOINT_INVENTORY",
    "MATRIX",
    "STATUSES",
    "TIMELINE",
    "USED_WITHOUT_ANNOUNCEMENT",
    "VIEW_SCHEMAS",
    "data_quality",
    "empty_view",
    "endpoint_inventory",
    "hosts_text",
    "inventory_text",
    "matrix",
    "network_endpoints",
    "timeline",
]

ANNOUNCED_ONLY = "announced-only"
ANNOUNCED_AND_USED = "announced-and-used"
USED_WITHOUT_ANNOUNCEMENT = "used-without-announcement"
STATUSES = (ANNOUNCED_ONLY, ANNOUNCED_AND_USED, USED_WITHOUT_ANNOUNCEMENT)

ENDPOINT_INVENTORY: dict[str, str] = {
    "server": STR,
    "interface_uuid": STR,
    "interface_version": STR,
    "interface_name": STR,
    "spec": STR,
    "protocol": STR,
    "endpoint": STR,
    "port": INT,
    "pipe_name": STR,
    "host": STR,
    "string_binding": STR,
    "annotation": STR,
    "object_uuids": STR,
    "status": STR,
    "epm_servers": STR,
    "epm_frames": INT,
    "clients": STR,
    "client_count": INT,
    "binds": INT,
    "calls": INT,
    "first_seen": TIME,
    "last_seen": TIME,
    "first_capture": STR,
    "first_frame": INT,
}

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

DATA_QUALITY: dict[str, str] = {
    "capture": STR,
    "stream": INT,
    "scope": STR,
    "transport": STR,
    "client_ip": STR,
    "client_port": INT,
    "server_ip": STR,
    "server_port": INT,
    "pipe_name": STR,
    "error": STR,
    "truncated": BOOL,
    "end": STR,
    "gaps": INT,
    "violations": INT,
    "violation_kinds": STR,
    "caps_hit": INT,
    "binds_unanswered": INT,
    "calls_without_bind": INT,
    "calls_unanswered": INT,
    "encrypted_calls": INT,
    "unknown_interfaces": INT,
    "summary": STR,
    "midstream": INT,
    "unfollowed": INT,
    "attempts": INT,
    "attempt_targets": STR,
}

VIEW_SCHEMAS: dict[str, dict[str, str]] = {
    "endpoint_inventory": ENDPOINT_INVENTORY,
    "timeline": TIMELINE,
    "matrix": MATRIX,
    "data_quality": DATA_QUALITY,
}

# Group keys may be missing (a call whose interface is unknown, a tower without an endpoint). pandas
# drops or mangles missing keys in some group-by paths, so keys are filled with a value no address,
# UUID or name can take, and restored afterwards.
_NONE = "\x00"
_REJECTED = ("user_rejection", "provider_rejection", "nak")
# How a connection ended when its end was not in the capture (connectionless transports have no end).
_UNSEEN_END = {"idle": "expired idle", "evicted": "evicted by the flow cap", "capture_end": "open at capture end"}
_IP_COLUMNS = {"server", "client_ip", "server_ip", "host"}
_INT_LIKE_FLOATS = (INT, FLOAT)


def empty_view(name: str) -> pd.DataFrame:
    """The view `name` with no rows: its columns, in order, with their dtypes."""
    return _shape(pd.DataFrame(), VIEW_SCHEMAS[name])


def _shape(df: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """Exactly the schema's columns, in order, cast to its dtypes (missing columns become all-missing)."""
    out = df.reindex(columns=list(schema))
    for col, dtype in schema.items():
        s = out[col]
        if dtype == TIME:
            out[col] = pd.to_datetime(s, utc=True).astype(TIME)
        elif dtype in _INT_LIKE_FLOATS and s.dtype == object:
            out[col] = pd.to_numeric(s).astype(dtype)
        else:
            out[col] = s.astype(dtype)
    shaped: pd.DataFrame = out.reset_index(drop=True)
    return shaped


def _fill_keys(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    filled: pd.DataFrame = df.assign(**{k: df[k].astype("string").fillna(_NONE) for k in keys if df[k].dtype != TIME})
    return filled


def _unfill_keys(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    for k in keys:
        if k in df and df[k].dtype != TIME:
            df[k] = df[k].astype("string").mask(df[k] == _NONE)
    return df


def _ip_sort_key(s: pd.Series) -> pd.Series:
    """Addresses in numeric order (10.0.0.5 before 10.0.0.10), IPv4 before IPv6 before names."""
    if s.name not in _IP_COLUMNS:
        return s

    def key(v: object) -> str:
        if not isinstance(v, str):
            return "3"
        try:
            ip = ipaddress.ip_address(v)
        except ValueError:
            return "2" + v
        return f"{ip.version - 4:d}{int(ip):039d}"

    uniques = {v: key(v) for v in s.unique()}
    return s.map(uniques)


def _sorted(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    out: pd.DataFrame = df.sort_values(by, key=_ip_sort_key, kind="stable", na_position="first", ignore_index=True)
    return out


def _is_ip(v: object) -> bool:
    if not isinstance(v, str):
        return False
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


@cache
def _spec(uuid: str) -> str | None:
    info = registry.interface_info(uuid)
    return info.spec if info is not None else None


def _identity(calls: pd.DataFrame) -> pd.Series:
    """DOMAIN\\user when the domain is known, else the user."""
    who: pd.Series = calls["user"].where(calls["domain"].isna(), calls["domain"] + "\\" + calls["user"])
    return who


# -- endpoint inventory ----------------------------------------------------------------------------


def endpoint_inventory(endpoints: pd.DataFrame, binds: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """What each server's endpoint mapper offers and which of it was used: a passive `rpcdump`.

    One row per (server, interface UUID, protocol, endpoint). The server is the address the tower
    points to (the EPM's own address when the tower names none or a NetBIOS name); the endpoint is the
    port, the pipe (compared without regard to case, as SMB does) or the ncalrpc endpoint. An entry is
    "used" when a bind accepted it or a call used it on that server, transport and port or pipe.

    `status` answers "was the service only advertised, advertised and used, or used without anyone
    seeing it advertised" (the last is normal for the endpoint mapper itself and for well-known pipes,
    and worth a look on a dynamic port).
    """
    if endpoints.empty and binds.empty and calls.empty:
        return empty_view("endpoint_inventory")
    ann = endpoints[endpoints["interface_uuid"].notna()]
    ann_server = ann["host"].where(ann["host"].map(_is_ip), ann["epm_server_ip"])
    announced = pd.DataFrame(
        {
            "server": ann_server,
            "host": ann["host"].fillna(ann_server),
            "interface_uuid": ann["interface_uuid"],
            "interface_version": ann["interface_version"],
            "interface_name": ann["interface_name"],
            "protocol": ann["protocol"],
            "endpoint": ann["endpoint"],
            "port": ann["port"],
            "pipe_name": ann["pipe_name"],
            "annotation": ann["annotation"],
            "object_uuid": ann["object_uuid"].mask(ann["object_uuid"] == "00000000-0000-0000-0000-000000000000"),
            "epm_server": ann["epm_server_ip"],
            "epm_frame": ann["capture"] + "#" + ann["frame"].astype("string"),
            "client": pd.Series(pd.NA, index=ann.index, dtype="string"),
            "capture": ann["capture"],
            "frame": ann["frame"],
            "ts": ann["ts"],
            "announced": True,
            "bind": 0,
            "call": 0,
        }
    )
    parts = [announced]
    accepted = binds[binds["ack_result"] == "acceptance"]
    used_calls = calls[calls["interface_uuid"].notna()]
    for df, is_bind in ((accepted, 1), (used_calls, 0)):
        np_ = df["transport"] == "ncacn_np"
        parts.append(
            pd.DataFrame(
                {
                    "server": df["server_ip"],
                    "interface_uuid": df["interface_uuid"],
                    "interface_version": df["interface_version"],
                    "interface_name": df["interface_name"],
                    "protocol": df["transport"],
                    "endpoint": df["pipe_name"].where(np_, df["server_port"].astype("string")),
                    "port": df["server_port"].mask(np_),
                    "pipe_name": df["pipe_name"],
                    "client": df["client_ip"],
                    "capture": df["capture"],
                    "frame": df["frame"],
                    "ts": df["ts"],
                    "announced": False,
                    "bind": is_bind,
                    "call": 1 - is_bind,
                }
            )
        )
    # Every part has a subset of the announcement's columns; empty parts are left out of the concat.
    rows = pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)
    rows = rows.reindex(columns=announced.columns)
    if rows.empty:
        return empty_view("endpoint_inventory")
    # Pipe names are case-insensitive (\PIPE\lsass and \pipe\lsass are one pipe); ports are text here.
    rows["endpoint_key"] = rows["endpoint"].astype("string").where(rows["protocol"] != "ncacn_np")
    rows["endpoint_key"] = rows["endpoint_key"].fillna(rows["endpoint"].astype("string").str.lower())
    keys = ["server", "interface_uuid", "protocol", "endpoint_key"]
    rows = _fill_keys(rows, keys).sort_values(["ts", "capture", "frame"], kind="stable")
    g = rows.groupby(keys, sort=False)
    out = g.agg(
        endpoint=("endpoint", "first"),
        port=("port", "first"),
        pipe_name=("pipe_name", "first"),
        announced=("announced", "any"),
        binds=("bind", "sum"),
        calls=("call", "sum"),
        client_count=("client", "nunique"),
        first_seen=("ts", "min"),
        last_seen=("ts", "max"),
        first_capture=("capture", "first"),
        first_frame=("frame", "first"),
    )
    out["epm_frames"] = g["epm_frame"].nunique()
    texts = joined_columns(
        rows,
        keys,
        {
            "interface_version": "interface_version",
            "interface_name": "interface_name",
            "host": "host",
            "annotation": "annotation",
            "object_uuids": "object_uuid",
            "epm_servers": "epm_server",
            "clients": "client",
        },
    )
    out = out.join(texts)
    out = _unfill_keys(out.reset_index(), keys)
    # The host a tower named (a NetBIOS name, say) wins over the address a client reached.
    out["host"] = out["host"].fillna(out["server"])
    used = (out["binds"] + out["calls"]) > 0
    out["status"] = ANNOUNCED_ONLY
    out.loc[used & out["announced"], "status"] = ANNOUNCED_AND_USED
    out.loc[used & ~out["announced"], "status"] = USED_WITHOUT_ANNOUNCEMENT
    out["spec"] = out["interface_uuid"].map(lambda u: _spec(u) if isinstance(u, str) else None)
    out["string_binding"] = [
        _string_binding(p, h, e) for p, h, e in zip(out["protocol"], out["host"], out["endpoint"], strict=True)
    ]
    return _shape(
        _sorted(out, ["server", "protocol", "port", "endpoint", "interface_name", "interface_uuid"]), ENDPOINT_INVENTORY
    )


def _string_binding(protocol: object, host: object, endpoint: object) -> str | None:
    """What rpcdump prints: protocol:host[endpoint] (ncacn_np hosts with their leading \\\\)."""
    if not isinstance(protocol, str):
        return None
    h = host.split(";")[0] if isinstance(host, str) and protocol != "ncalrpc" else ""
    if protocol == "ncacn_np" and h and not h.startswith("\\\\"):
        h = "\\\\" + h
    e = endpoint if isinstance(endpoint, str) else ""
    return f"{protocol}:{h}[{e}]"


LOCAL_PROTOCOL = "ncalrpc"


def network_endpoints(inventory: pd.DataFrame, include_local: bool = False) -> pd.DataFrame:
    """The inventory without `ncalrpc` entries unless include_local: local (LRPC) endpoints an endpoint
    mapper lists are not reachable from the network, and on an `rpcdump` they are most of the rows
    (302 of 334 on one). What the text and HTML renderings show by default; `--all` shows them."""
    if include_local or inventory.empty:
        return inventory
    kept: pd.DataFrame = inventory[inventory["protocol"].ne(LOCAL_PROTOCOL).fillna(True)].reset_index(drop=True)
    return kept


# -- timeline and matrix ---------------------------------------------------------------------------


def _activity(binds: pd.DataFrame, calls: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Binds and calls in one long frame with per-row counters, keyed by `keys` (filled)."""
    rejected = binds["ack_result"].isin(_REJECTED)
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
            "identity": _identity(calls),
            "transport": calls["transport"],
            "where": calls["pipe_name"].fillna(calls["server_port"].astype("string")),
            "conn": calls["capture"] + "#" + calls["stream"].astype("string"),
            "auth_level": calls["auth_level"],
            "ts": calls["ts"],
        }
    )
    long = pd.concat([df for df in (b, c) if not df.empty], ignore_index=True)
    return _fill_keys(long, [k for k in keys if k != "minute"])


def timeline(binds: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """RPC activity per minute, per client -> server pair and interface.

    Answers "what happened when": which host used which service on which other host in each minute,
    with the operations called, for incident notes. Every bind context item and every call lands in
    exactly one row, so the counts add up to the binds and calls tables.
    """
    if binds.empty and calls.empty:
        return empty_view("timeline")
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
    out = _unfill_keys(out.reset_index(), keys)
    return _shape(_sorted(out, ["minute", "client_ip", "server_ip", "interface_name", "interface_uuid"]), TIMELINE)


def matrix(binds: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """Client x server x interface: who negotiated which RPC service with whom.

    One row per (client, server, interface) with where (ports or pipes, transports), how often
    (connections, context items bound, accepted and rejected, calls and faults, operations) and with
    what identity (auth levels, DOMAIN\\user). Rejected items count too: an attempt is an answer.
    """
    if binds.empty and calls.empty:
        return empty_view("matrix")
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
    out = _unfill_keys(out.reset_index(), keys)
    return _shape(_sorted(out, ["server_ip", "client_ip", "interface_name", "interface_uuid"]), MATRIX)


# -- data quality ----------------------------------------------------------------------------------


def _conn_key(df: pd.DataFrame) -> pd.Series:
    """capture#stream: one text key per connection (stream numbers restart in every capture)."""
    key: pd.Series = df["capture"].astype("string") + "#" + df["stream"].astype("Int64").astype("string")
    return key


def _count_by(key: pd.Series, mask: pd.Series) -> pd.Series:
    counted: pd.Series = key[mask.fillna(False).astype(bool)].value_counts()
    return counted


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _summary(row: dict[str, Any]) -> str:
    parts = []
    if isinstance(row.get("error"), str):
        parts.append(f"unreadable: {row['error']}")
    if row.get("truncated") is True:
        parts.append("file truncated")
    end = row.get("end")
    if isinstance(end, str) and end in _UNSEEN_END and row.get("transport") != "ncadg_ip_udp":
        parts.append(_UNSEEN_END[end])
    for col, word, plural in (
        ("gaps", "TCP gap", None),
        ("caps_hit", "cap hit", "caps hit"),
    ):
        if row[col]:
            parts.append(_plural(row[col], word, plural))
    if row["violations"]:
        parts.append(f"{_plural(row['violations'], 'violation')} ({(row['violation_kinds'] or '').replace(';', ', ')})")
    for col, word, plural in (
        ("binds_unanswered", "bind item unanswered", "bind items unanswered"),
        ("calls_without_bind", "call without its bind", "calls without their bind"),
        ("calls_unanswered", "call unanswered", "calls unanswered"),
        ("encrypted_calls", "encrypted call", None),
        ("unknown_interfaces", "bind or call on an unknown interface", "binds or calls on unknown interfaces"),
    ):
        if row[col]:
            parts.append(_plural(row[col], word, plural))
    parts.extend(_missed(row))
    return "; ".join(parts) if parts else "complete"


def _missed(row: dict[str, Any]) -> list[str]:
    """What issue 9 counts: conversations begun before the capture, flows that looked like DCE/RPC
    but could not be followed, connection attempts that never carried a PDU."""
    parts = []
    if row.get("midstream"):
        n = "" if row.get("scope") == "connection" else _plural(row["midstream"], "conversation") + " "
        parts.append(f"{n}begun before the capture (midstream)")
    if row.get("unfollowed"):
        parts.append(f"{_plural(row['unfollowed'], 'TCP flow')} like DCE/RPC not followed")
    if row.get("attempts"):
        targets = f" ({row['attempt_targets']})" if row.get("attempt_targets") else ""
        parts.append(f"{_plural(row['attempts'], 'connection attempt')} without a PDU{targets}")
    return parts


_TARGETS_MAX = 8  # server:port pairs named per capture


def _attempt_targets(attempts: pd.DataFrame) -> pd.Series:
    """Per capture: the servers and ports attempted, most attempted first ("10.0.0.5:135 x3, ...")."""
    if attempts.empty:
        return pd.Series(dtype="string")
    target = attempts["server_ip"].astype("string") + ":" + attempts["server_port"].astype("string")
    counts = target.groupby(attempts["capture"]).value_counts()
    out: dict[str, str] = {}
    for cap, group in counts.groupby(level=0):
        items = [f"{t} x{n}" if n > 1 else str(t) for (_c, t), n in group.head(_TARGETS_MAX).items()]
        more = len(group) - _TARGETS_MAX
        out[str(cap)] = ", ".join(items) + (f", {more} more" if more > 0 else "")
    series: pd.Series = pd.Series(out, dtype="string")
    return series


def data_quality(
    captures: pd.DataFrame,
    connections: pd.DataFrame,
    violations: pd.DataFrame,
    binds: pd.DataFrame,
    calls: pd.DataFrame,
    attempts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """What the capture did not show, per capture and per connection.

    One row per capture (`scope` capture, stream empty) and one per DCE/RPC connection (`scope`
    connection): unreadable or truncated files, connections whose end was not seen, TCP gaps,
    violations by kind, caps hit, bind items nobody answered, calls whose interface did not come from
    a bind seen in the capture, calls nobody answered, encrypted stubs and unknown interfaces.
    `summary` says it in a few words ("complete" when nothing is missing), so a reader knows what the
    other tables cannot say.
    """
    if captures.empty and connections.empty:
        return empty_view("data_quality")
    bk, ck, vk = _conn_key(binds), _conn_key(calls), _conn_key(violations)
    # A violations row may stand for several occurrences (its count); caps are the Limits fields' codes.
    is_cap = violations["what"].isin(CAP_CODES).fillna(False).astype(bool)
    weight = violations["occurrences"].fillna(1).astype("int64")
    per: dict[str, pd.Series] = {
        "binds_unanswered": _count_by(bk, binds["ack_result"] == "none"),
        # Connectionless calls name their interface in every header: they have no bind to miss.
        "calls_without_bind": _count_by(ck, ~calls["interface_source"].isin(["bind", "header"])),
        "calls_unanswered": _count_by(ck, calls["status"].isna()),
        "encrypted_calls": _count_by(ck, calls["encrypted"]),
        "caps_hit": weight[is_cap & vk.notna()].groupby(vk[is_cap & vk.notna()]).sum(),
        "violations": weight[vk.notna()].groupby(vk[vk.notna()]).sum(),
        "unknown_interfaces": pd.concat(
            [
                bk[binds["interface_name"].str.startswith("unknown-").fillna(False).astype(bool)],
                ck[calls["interface_name"].str.startswith("unknown-").fillna(False).astype(bool)],
            ]
        ).value_counts(),
    }
    conn = connections.assign(scope="connection")
    if "midstream" in conn:
        conn["midstream"] = conn["midstream"].fillna(False).astype("int64")
    key = _conn_key(conn)
    for col, counts in per.items():
        conn[col] = key.map(counts).fillna(0).astype("int64")
    kinds = violations.assign(key=vk).dropna(subset=["key"])
    conn["violation_kinds"] = key.map(joined(kinds, ["key"], "what"))

    # A capture's counts add up its connections', plus the file-level violations of no connection.
    counted = [*per, "gaps", *(["midstream"] if "midstream" in conn else [])]
    by_cap = conn.groupby("capture")[counted].sum()
    cap = captures[["capture", "error", "truncated"]].assign(scope="capture")
    for col in counted:
        cap[col] = cap["capture"].map(by_cap[col]).fillna(0).astype("int64")
    cap["violations"] = cap["capture"].map(weight.groupby(violations["capture"]).sum()).fillna(0).astype("int64")
    cap["caps_hit"] = (
        cap["capture"].map(weight[is_cap].groupby(violations["capture"][is_cap]).sum()).fillna(0).astype("int64")
    )
    cap["violation_kinds"] = cap["capture"].map(joined(violations, ["capture"], "what"))
    unconfirmed = violations["what"] == "unconfirmed_conversation"
    unfollowed = weight[unconfirmed].groupby(violations.loc[unconfirmed, "capture"]).sum()
    cap["unfollowed"] = cap["capture"].map(unfollowed).fillna(0).astype("int64")
    if attempts is not None:
        cap["attempts"] = cap["capture"].map(attempts.groupby("capture").size()).fillna(0).astype("int64")
        cap["attempt_targets"] = cap["capture"].map(_attempt_targets(attempts))

    rows = _shape(pd.concat([df for df in (cap, conn) if not df.empty], ignore_index=True), DATA_QUALITY)
    rows["summary"] = pd.array([_summary(r) for r in _records(rows)], dtype="string")
    return _shape(_sorted(rows, ["capture", "stream"]), DATA_QUALITY)


def _records(df: pd.DataFrame, chunk: int = 10_000) -> Iterable[dict[str, Any]]:
    """Rows as dicts with missing values as None and counts as ints, `chunk` rows converted at a
    time: a flood of connections is a million rows, and a million dicts at once is gigabytes."""
    for start in range(0, len(df), chunk):
        for rec in df.iloc[start : start + chunk].to_dict("records"):
            yield {str(k): (None if v is pd.NA or v is pd.NaT else v) for k, v in rec.items()}


# -- text renderings for the terminal --------------------------------------------------------------


def _clean(value: object) -> str:
    """Wire text made safe and readable for a terminal: missing as '-', control characters as '?'."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return printable(value)


def _list(value: object) -> str:
    return _clean(value).replace(";", ", ")


def _wrapped(label: str, text: str, width: int = 100) -> list[str]:
    head = f"  {label:<12}"
    lines = textwrap.wrap(text, width=width - len(head), break_long_words=False, break_on_hyphens=False) or [""]
    return [head + lines[0], *(" " * len(head) + line for line in lines[1:])]


def hosts_text(hosts: pd.DataFrame, matrix: pd.DataFrame | None = None, role: str | None = None) -> str:
    """The per-host view as readable text: one block per host and role.

    With the matrix, each block ends with the services negotiated: for a server, which client bound
    or called which interface on which port or pipe, how often, as whom and which operations; for a client, the same
    seen from its side. `role` keeps only "server" or "client" blocks. Wire text is cleaned of
    control characters.
    """
    h = hosts if role is None else hosts[hosts["role"] == role]
    if h.empty:
        return "no hosts\n" if role is None else f"no hosts seen as {role}\n"
    out: list[str] = []
    for row in _records(h):
        host, r = row["host"], row["role"]
        out.append(
            f"{_clean(host)} as {r}: {_plural(row['connections'], 'connection')}, first {_clean(row['first_seen'])}, "
            f"last {_clean(row['last_seen'])}"
        )
        out += _wrapped("services", _list(row["interfaces"]))
        out += _wrapped("specs", _list(row["specs"]))
        out += _wrapped(
            "where",
            f"{_list(row['transports'])}; ports {_list(row['ports'])}; dynamic {_list(row['dynamic_ports'])}; "
            f"pipes {_list(row['pipes'])}",
        )
        out += _wrapped("clients" if r == "server" else "servers", f"{_list(row['peers'])} ({row['peer_count']})")
        counts = (
            f"binds {row['binds']} (accepted {row['accepted']}, rejected {row['rejected']}); "
            f"calls {row['calls']} (faults {row['faults']})"
        )
        if r == "server":
            counts += f"; EPM towers {row['epm_endpoints']}"
        out += _wrapped("counts", counts)
        out += _wrapped("auth", f"{_list(row['auth_levels'])}; users {_list(row['users'])}")
        if matrix is not None and not matrix.empty:
            mine = matrix[matrix["server_ip" if r == "server" else "client_ip"] == host]
            if not mine.empty:
                out.append("  negotiated")
                out += _service_lines(mine, "client_ip" if r == "server" else "server_ip")
        out.append("")
    return "\n".join(out)


def _service_lines(m: pd.DataFrame, peer: str) -> list[str]:
    header = (
        "interface",
        "client" if peer == "client_ip" else "server",
        "port/pipe",
        "binds",
        "acc",
        "rej",
        "calls",
        "faults",
        "auth",
        "users",
        "operations",
    )
    rows = [
        (
            _clean(r["interface_name"]),
            _clean(r[peer]),
            _list(r["endpoints"]),
            str(r["binds"]),
            str(r["accepted"]),
            str(r["rejected"]),
            str(r["calls"]),
            str(r["faults"]),
            _list(r["auth_levels"]),
            _list(r["users"]),
            _list(r["operations"]),
        )
        for r in _records(m)
    ]
    widths = [max(len(x[i]) for x in (header, *rows)) for i in range(len(header))]
    numeric = {3, 4, 5, 6, 7}
    lines = []
    for x in (header, *rows):
        cells = [x[i].rjust(widths[i]) if i in numeric else x[i].ljust(widths[i]) for i in range(len(x))]
        lines.append("    " + "  ".join(cells).rstrip())
    return lines


def inventory_text(inventory: pd.DataFrame) -> str:
    """The endpoint inventory in the layout of `portqry -e 135` / `rpcdump`, grouped by server.

    Each entry: `UUID: <uuid> <annotation>` (portqry's line, here with the interface name and version),
    then the string binding, then what the capture adds: status, clients, calls, first sighting.
    """
    if inventory.empty:
        return "no endpoints announced or used\n"
    out: list[str] = []
    for server, entries in inventory.groupby("server", sort=False):
        statuses = entries["status"].value_counts()
        tally = ", ".join(f"{statuses[s]} {s}" for s in STATUSES if s in statuses)
        epms = sorted({e for v in entries["epm_servers"].dropna() for e in str(v).split(";")})
        out.append(f"Server {_clean(server)}: {_plural(len(entries), 'endpoint')} ({tally})")
        out.append(f"Endpoint mapper answers from: {', '.join(_clean(e) for e in epms) or 'none seen'}")
        out.append("")
        for e in _records(entries):
            annotation = f" {_clean(e['annotation'])}" if e["annotation"] else ""
            version = f" v{_clean(e['interface_version'])}" if e["interface_version"] else ""
            spec = f" {_clean(e['spec'])}" if e["spec"] else ""
            out.append(f"UUID: {_clean(e['interface_uuid'])}{annotation}")
            out.append(f"  {_clean(e['interface_name'])}{version}{spec}")
            out.append(f"  {_clean(e['string_binding'])}")
            seen = (
                f"first seen {_clean(e['first_seen'])} ({_clean(e['first_capture'])} frame {_clean(e['first_frame'])})"
            )
            out.append(
                f"  {e['status']}; EPM answers {e['epm_frames']}; clients {e['client_count']}"
                f"{' (' + _list(e['clients']) + ')' if e['clients'] else ''}; binds {e['binds']}; calls {e['calls']}"
            )
            out.append(f"  {seen}")
            out.append("")
    n = len(inventory)
    out.append(f"Total endpoints: {n} on {_plural(inventory['server'].nunique(), 'server')}")
    return "\n".join(out) + "\n"
