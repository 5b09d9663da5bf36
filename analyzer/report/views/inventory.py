"""The endpoint inventory: per server, what `portqry -e 135` or `rpcdump` would have listed, rebuilt
passively from endpoint-mapper answers and from the binds and calls seen."""

from __future__ import annotations

import pandas as pd

from analyzer.report.columns import INT, STR, TIME
from analyzer.report.lists import joined_columns
from analyzer.report.source import Source
from analyzer.report.views.shape import fill_keys, is_ip, shape, sorted_view, spec, unfill_keys

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


def endpoint_inventory(source: Source) -> pd.DataFrame:
    """What each server's endpoint mapper offers and which of it was used: a passive `rpcdump`.

    One row per (server, interface UUID, protocol, endpoint). The server is the address the tower
    points to (the EPM's own address when the tower names none or a NetBIOS name); the endpoint is the
    port, the pipe (compared without regard to case, as SMB does) or the ncalrpc endpoint. An entry is
    "used" when a bind accepted it or a call used it on that server, transport and port or pipe.

    `status` answers "was the service only advertised, advertised and used, or used without anyone
    seeing it advertised" (the last is normal for the endpoint mapper itself and for well-known pipes,
    and worth a look on a dynamic port).
    """
    endpoints, binds, calls = source.frame("endpoints"), source.frame("binds"), source.frame("calls")
    if endpoints.empty and binds.empty and calls.empty:
        return shape(pd.DataFrame(), ENDPOINT_INVENTORY)
    announced = _announced(endpoints)
    parts = [announced, *_used(binds, calls)]
    # Every part has a subset of the announcement's columns; empty parts are left out of the concat.
    rows = pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)
    rows = rows.reindex(columns=announced.columns)
    if rows.empty:
        return shape(pd.DataFrame(), ENDPOINT_INVENTORY)
    return _entries(rows)


def _announced(endpoints: pd.DataFrame) -> pd.DataFrame:
    """One row per tower naming an interface: where the endpoint mapper said it lives."""
    ann = endpoints[endpoints["interface_uuid"].notna()]
    ann_server = ann["host"].where(ann["host"].map(is_ip), ann["epm_server_ip"])
    announced: pd.DataFrame = pd.DataFrame(
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
    return announced


def _used(binds: pd.DataFrame, calls: pd.DataFrame) -> list[pd.DataFrame]:
    """One row per accepted bind item, then one per call on a known interface: where it was used."""
    parts = []
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
    return parts


def _entries(rows: pd.DataFrame) -> pd.DataFrame:
    """The announcements and uses grouped into entries, each with its status and string binding."""
    # Pipe names are case-insensitive (\PIPE\lsass and \pipe\lsass are one pipe); ports are text here.
    rows["endpoint_key"] = rows["endpoint"].astype("string").where(rows["protocol"] != "ncacn_np")
    rows["endpoint_key"] = rows["endpoint_key"].fillna(rows["endpoint"].astype("string").str.lower())
    keys = ["server", "interface_uuid", "protocol", "endpoint_key"]
    rows = fill_keys(rows, keys).sort_values(["ts", "capture", "frame"], kind="stable")
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
    out = unfill_keys(out.reset_index(), keys)
    # The host a tower named (a NetBIOS name, say) wins over the address a client reached.
    out["host"] = out["host"].fillna(out["server"])
    used = (out["binds"] + out["calls"]) > 0
    out["status"] = ANNOUNCED_ONLY
    out.loc[used & out["announced"], "status"] = ANNOUNCED_AND_USED
    out.loc[used & ~out["announced"], "status"] = USED_WITHOUT_ANNOUNCEMENT
    out["spec"] = out["interface_uuid"].map(lambda u: spec(u) if isinstance(u, str) else None)
    out["string_binding"] = [
        _string_binding(p, h, e) for p, h, e in zip(out["protocol"], out["host"], out["endpoint"], strict=True)
    ]
    return shape(
        sorted_view(out, ["server", "protocol", "port", "endpoint", "interface_name", "interface_uuid"]),
        ENDPOINT_INVENTORY,
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
