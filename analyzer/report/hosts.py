"""The per-host table: for each host as server and as client, a group-by over the base tables."""

from __future__ import annotations

import pandas as pd

from analyzer import registry
from analyzer.records import Records
from analyzer.report.columns import frame
from analyzer.report.lists import joined, joined_columns, port_ranges
from analyzer.report.source import Frames, Source
from analyzer.report.spooled import Spooled
from analyzer.report.tables import HOSTS, Tables


def _spec(uuid: object) -> str | None:
    if not isinstance(uuid, str):
        return None
    info = registry.interface_info(uuid)
    return info.spec if info is not None else None


# What the per-host rows read of a connection, beside its two addresses.
_CONNECTION_COLUMNS = ["capture", "transport", "server_port", "pipe_name", "first_ts", "last_ts"]


def hosts_frame(source: Source) -> pd.DataFrame:
    """Per host and role: the services it offered (server) or negotiated (client).

    Built from group-bys over the other tables: connections give the conversations, ports, peers and
    times; binds the context items and their answers; calls the calls, faults and identities.
    Interfaces are those accepted in a bind or used by a call.
    """
    binds, calls, endpoints, connections = (source.frame(t) for t in ("binds", "calls", "endpoints", "connections"))
    if connections.empty:
        return frame(HOSTS, {})
    # Only the columns read below: the role loop renames (copies) what it is given, twice.
    ends, used = ["server_ip", "client_ip"], ["interface_name", "interface_uuid", "auth_level"]
    binds, connections = binds[[*ends, *used, "ack_result"]], connections[[*ends, *_CONNECTION_COLUMNS]]
    rejected = binds["ack_result"].isin(["user_rejection", "provider_rejection", "nak"])
    who = calls["user"].where(calls["domain"].isna(), calls["domain"] + "\\" + calls["user"])
    calls = calls[[*ends, *used]].assign(identity=who, faulted=calls["fault_code"].notna())
    binds = binds.assign(accepted=binds["ack_result"] == "acceptance", rejected=rejected)
    parts = []
    for role, me, peer in (("server", "server_ip", "client_ip"), ("client", "client_ip", "server_ip")):
        parts.append(_role(role, me, peer, connections, binds, calls, endpoints).reset_index())
    df = pd.concat(parts, ignore_index=True)
    for col in ("binds", "accepted", "rejected", "calls", "faults", "epm_endpoints"):
        df[col] = df[col].fillna(0) if col in df else 0
    df = df.reindex(columns=list(HOSTS))
    for col, dtype in HOSTS.items():
        df[col] = df[col].astype(dtype)
    hosts: pd.DataFrame = df.sort_values(["host", "role"], ignore_index=True)
    return hosts


def _role(
    role: str,
    me: str,
    peer: str,
    connections: pd.DataFrame,
    binds: pd.DataFrame,
    calls: pd.DataFrame,
    endpoints: pd.DataFrame,
) -> pd.DataFrame:
    """The hosts in one role (`me` is their address column, `peer` the other side's), one row each."""
    conn = connections.rename(columns={me: "host"})
    b = binds.rename(columns={me: "host"})
    c = calls.rename(columns={me: "host"})
    used = pd.concat(
        [
            b.loc[b["accepted"], ["host", "interface_name", "interface_uuid"]],
            c[["host", "interface_name", "interface_uuid"]],
        ]
    )
    g = conn.groupby("host")
    out = pd.DataFrame(
        {
            "connections": g.size(),
            "peer_count": g[peer].nunique(),
            "first_seen": g["first_ts"].min(),
            "last_seen": g["last_ts"].max(),
        }
    )
    out["role"] = role
    out = out.join(_lists(conn, used, peer))
    dyn = conn[conn["server_port"] >= 1024].groupby("host")["server_port"].agg(port_ranges)
    out["dynamic_ports"] = dyn.astype("string")
    levels = pd.concat([b[["host", "auth_level"]], c[["host", "auth_level"]]])
    out["auth_levels"] = joined(levels, "host", "auth_level")
    bg = b.groupby("host")
    out["binds"] = bg.size()
    out["accepted"] = bg["accepted"].sum()
    out["rejected"] = bg["rejected"].sum()
    cg = c.groupby("host")
    out["calls"] = cg.size()
    out["faults"] = cg["faulted"].sum()
    out["users"] = joined(c, "host", "identity")
    if role == "server" and not endpoints.empty:
        out["epm_endpoints"] = endpoints.groupby("epm_server_ip").size()
    result: pd.DataFrame = out
    return result


def _lists(conn: pd.DataFrame, used: pd.DataFrame, peer: str) -> pd.DataFrame:
    """Per host: its captures, transports, ports, pipes and peers; the interfaces it used and their specs."""
    conn_text = conn.assign(server_port=conn["server_port"].astype("Int64").astype("string"))
    where = joined_columns(
        conn_text,
        "host",
        {"captures": "capture", "transports": "transport", "ports": "server_port", "pipes": "pipe_name", "peers": peer},
    )
    specs = {u: _spec(u) for u in used["interface_uuid"].dropna().unique()}
    interfaces = joined_columns(
        used.assign(spec=used["interface_uuid"].map(specs)),
        "host",
        {"interfaces": "interface_name", "interface_uuids": "interface_uuid", "specs": "spec"},
    )
    lists: pd.DataFrame = where.join(interfaces)
    return lists


def build(records: Records) -> Tables:
    """All tables from the records of one run, each sorted by its `ORDER`."""
    b = Spooled(records)
    base = {t: b.table(t) for t in ("binds", "endpoints", "calls", "connections", "violations", "captures")}
    hosts = hosts_frame(Frames(base))
    return Tables(**base, hosts=hosts)
