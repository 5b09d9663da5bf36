"""Firewall allow-lists from observed RPC traffic: per server, what was bound and called, by whom.

The unit is one server, interface (UUID and version) and transport endpoint (TCP port, pipe, UDP
port): whether a bind accepted it and whether calls used it, the clients and their /24 subnets, the
opnums called, auth types and levels, users, counts and times (`allow_list`, the `csv` format).

From it, per server:
- a `netsh -f` script of Windows RPC filters ([MS-RPCE] is not involved: these are Windows Filtering
  Platform RPC layers, `netsh rpc filter`): one permit filter per observed interface and client
  (`if_uuid` + `remote_addr_v4/v6`; named-pipe traffic gets `protocol=ncacn_np` and no address, because
  RPC filters cannot see a pipe caller's address before Windows 11 25H2), then per interface a filter
  that audits or blocks every other caller, then optionally a catch-all for every interface not seen;
  `opnum` conditions only behind `opnums=True`, since only Windows 11 24H2 and Server 2025 honour them;
- Windows Firewall rules (`netsh advfirewall`) for the endpoint mapper (`RPC-EPMap`), the dynamic RPC
  endpoints (`RPC`) and SMB (445) when pipes were used, limited to the observed clients;
- the narrowest dynamic port range covering every dynamic port the server used or its endpoint mapper
  announced, as commented-out commands (narrowing it is rarely worth the risk);
- a Markdown report (`md`);
- an RpcFw.conf for zeronetworks' RPC Firewall (`rpcfw`), the one option that filters by opnum and
  caller address (pipes included) on every Windows version.
Facts and syntax: ../shared/detection/firewall.md. Every output says what passive observation cannot
know: services nobody used during the capture are absent and would be audited or blocked.
"""

from __future__ import annotations

import ipaddress
import uuid as uuidlib
from collections.abc import Iterable
from typing import Any, cast

import pandas as pd

from analyzer import registry

FORMATS = ("netsh", "rpcfw", "csv", "md")
NETSH_PROTOCOLS = frozenset({"ncacn_np", "ncacn_ip_tcp", "ncacn_http"})  # values of the `protocol` condition
REST_ACTIONS = ("audit", "block", "none")
WELL_KNOWN_PORTS = frozenset({135, 139, 445, 593})
NETSH_MIN_PORTS = 255  # the smallest count `netsh int ipv4 set dynamicport` accepts
MAX_CLIENT_FILTERS = 32  # per interface; beyond that one filter permits the interface from anyone
_FILTER_NS = uuidlib.UUID("8d6f0f6e-3c55-4d7a-9a53-52a1c0f1a7e2")  # names the deterministic filter keys

ALLOW_LIST: dict[str, str] = {
    "server_ip": "string",
    "interface_uuid": "string",
    "interface_version": "string",
    "interface_name": "string",
    "spec": "string",
    "transport": "string",
    "endpoint": "string",
    "bound": "boolean",
    "called": "boolean",
    "clients": "string",
    "subnets": "string",
    "opnums": "string",
    "operations": "string",
    "binds": "Int64",
    "calls": "Int64",
    "faults": "Int64",
    "auth_types": "string",
    "auth_levels": "string",
    "users": "string",
    "first_seen": "datetime64[ns, UTC]",
    "last_seen": "datetime64[ns, UTC]",
}

CANNOT_KNOW = (
    "What passive observation cannot know: services nobody used during the capture are not listed and "
    "would be audited or blocked; clients that did not call during the capture are not permitted; the "
    "server process (image_name), principals' group membership and DCOM AppIDs are not on the wire; "
    "encrypted pipes and calls whose bind was not captured are missing. Review before applying."
)


def _endpoint(df: pd.DataFrame) -> pd.Series:
    pipe = df["pipe_name"]
    port = df["server_port"].astype("Int64").astype("string")
    out: pd.Series = pipe.where(df["transport"] == "ncacn_np", port)
    return out


def _join(values: Iterable[object]) -> str | None:
    out = sorted({str(v) for v in values if v is not None and v is not pd.NA and str(v) != "" and v == v})
    return ";".join(out) if out else None


def _subnets(clients: Iterable[str]) -> str | None:
    nets = set()
    for c in clients:
        try:
            ip = ipaddress.ip_address(c)
        except ValueError:
            continue
        nets.add(str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False)))
    return ";".join(sorted(nets)) or None


def allow_list(binds: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """One row per server, interface and endpoint that a bind accepted or a call used."""
    key = ["server_ip", "interface_uuid", "interface_version", "transport", "endpoint"]
    b = binds[binds["ack_result"] == "acceptance"].assign(endpoint=lambda d: _endpoint(d))
    c = calls[calls["interface_uuid"].notna()].assign(endpoint=lambda d: _endpoint(d))
    rows = []
    groups: dict[tuple[object, ...], dict[str, pd.DataFrame]] = {}
    for name, part_df in (("b", b), ("c", c)):
        for k, part in part_df.groupby(key, dropna=False, sort=True):
            groups.setdefault(tuple(k), {})[name] = part
    for k, parts in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        pb, pc = parts.get("b", b.iloc[0:0]), parts.get("c", c.iloc[0:0])
        both = pd.concat(
            [pb[["client_ip", "ts", "auth_type", "auth_level"]], pc[["client_ip", "ts", "auth_type", "auth_level"]]]
        )
        info = registry.interface_info(str(k[1]))
        ops = pc[["opnum", "operation"]].drop_duplicates().sort_values("opnum")
        who = pc["user"].where(pc["domain"].isna(), pc["domain"] + "\\" + pc["user"])
        clients = sorted(set(both["client_ip"].dropna()), key=_ip_key)
        rows.append(
            {
                **dict(zip(key, k, strict=True)),
                "interface_name": (pb["interface_name"].tolist() + pc["interface_name"].tolist() or [None])[0],
                "spec": info.spec if info else None,
                "bound": not pb.empty,
                "called": not pc.empty,
                "clients": ";".join(clients) or None,
                "subnets": _subnets(clients),
                "opnums": ";".join(str(int(n)) for n in ops["opnum"]) or None,
                "operations": ";".join(str(o) for o in ops["operation"]) or None,
                "binds": len(pb),
                "calls": len(pc),
                "faults": int(pc["fault_code"].notna().sum()),
                "auth_types": _join(both["auth_type"]),
                "auth_levels": _join(both["auth_level"]),
                "users": _join(who),
                "first_seen": both["ts"].min(),
                "last_seen": both["ts"].max(),
            }
        )
    df: pd.DataFrame = pd.DataFrame(rows, columns=list(ALLOW_LIST))
    for col, dtype in ALLOW_LIST.items():
        df[col] = df[col].astype(cast(Any, dtype))
    return df


def _ip_key(ip: str) -> tuple[int, int]:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return (9, 0)
    return (a.version, int(a))


def dynamic_ports(connections: pd.DataFrame, endpoints: pd.DataFrame, server: str) -> list[int]:
    """TCP ports above the well-known ones the server used for RPC or its endpoint mapper announced."""
    conn = connections[
        (connections["server_ip"] == server) & connections["transport"].isin(["ncacn_ip_tcp", "ncacn_http"])
    ]
    ann = endpoints[(endpoints["host"] == server) & endpoints["protocol"].isin(["ncacn_ip_tcp", "ncacn_http"])]
    ports = {int(p) for p in pd.concat([conn["server_port"], ann["port"]]).dropna()}
    return sorted(p for p in ports if p not in WELL_KNOWN_PORTS and p >= 1024)


def narrowest_range(ports: list[int]) -> tuple[int, int] | None:
    """(start, count) for `netsh int ipv4 set dynamicport tcp`: covers every port, at least 255 long."""
    if not ports:
        return None
    start, end = min(ports), max(ports)
    count = max(end - start + 1, NETSH_MIN_PORTS)
    start = min(start, 65536 - count)
    return start, count


def filter_key(*parts: object) -> str:
    """A deterministic filterkey, so a rule can be deleted alone and reruns give the same keys."""
    return str(uuidlib.uuid5(_FILTER_NS, "|".join(str(p) for p in parts)))


def _addr_field(ip: str) -> str:
    return "remote_addr_v6" if ":" in ip else "remote_addr_v4"


def _rule(lines: list[str], action: str, key: str, conditions: list[tuple[str, str]], audit: bool) -> None:
    if any(f"filterkey={key}" in ln for ln in lines):
        lines.append(f"# (the same filter as {key} above)")
        return
    lines.append(f"add rule layer=um actiontype={action} filterkey={key}" + (" audit=enable" if audit else ""))
    lines.extend(f"add condition field={f} matchtype=equal data={v}" for f, v in conditions)
    lines.append("add filter")


def _interface_rules(lines: list[str], server: str, rows: pd.DataFrame, rest: str, opnums: bool) -> None:
    """Permit filters for one interface's observed uses, then its filter for every other caller."""
    u = str(rows["interface_uuid"].iloc[0])
    name, spec = rows["interface_name"].iloc[0], rows["spec"].iloc[0]
    lines.append("")
    lines.append(f"# {name} {'' if spec is pd.NA else spec} {u}".replace("  ", " "))
    for r in rows.itertuples():
        clients = [] if r.clients is pd.NA else str(r.clients).split(";")
        what = "bound and called" if r.bound and r.called else "bound" if r.bound else "called"
        ops = "" if r.operations is pd.NA else f"; opnums {r.opnums} ({str(r.operations).replace(';', ', ')})"
        where = _safe(r.endpoint)
        lines.append(f"# {what} over {r.transport} {where} by {', '.join(clients) or '?'}{ops}")
        base = [("if_uuid", u)]
        if r.transport == "ncacn_np":
            base.append(("protocol", "ncacn_np"))
            lines.append("# named pipe: RPC filters cannot see the caller's address here (before Windows 11 25H2)")
            callers: list[list[tuple[str, str]]] = [[]]
        elif len(clients) > MAX_CLIENT_FILTERS:
            lines.append(f"# {len(clients)} clients: permitted from any address")
            callers = [[]]
        else:
            if r.transport in NETSH_PROTOCOLS:
                base.append(("protocol", str(r.transport)))
            callers = [[(_addr_field(ip), ip)] for ip in clients] or [[]]
        op_sets = [[("opnum", n)] for n in str(r.opnums).split(";")] if opnums and r.opnums is not pd.NA else [[]]
        for who in callers:
            for op in op_sets:
                conds = base + who + op
                _rule(lines, "permit", filter_key(server, *conds), conds, False)
    if rest != "none":
        lines.append(f"# every other caller of {name}: {rest}")
        action = "block" if rest == "block" else "permit"
        _rule(lines, action, filter_key(server, u, rest), [("if_uuid", u)], True)


def netsh_script(allow: pd.DataFrame, server: str, ports: list[int], rest: str = "audit", opnums: bool = False) -> str:
    """The `netsh -f` script for one server (run on that server, as administrator)."""
    rows = allow[allow["server_ip"] == server]
    clients = sorted({c for cs in rows["clients"].dropna() for c in str(cs).split(";")}, key=_ip_key)
    lines = [
        f"# RPC allow-list for {server}, generated by rpc-analyzer from observed traffic.",
        "# " + CANNOT_KNOW,
        "# Usage:    netsh -f <this file>    (on the server, as administrator)",
        "# Check:    netsh rpc filter show filter",
        "# Rollback: netsh rpc filter delete filter filterkey=<key>  (each rule's key is below), or",
        "#           netsh rpc filter delete filter filterkey=all  (removes every RPC filter, not only these)",
        "# Matches of audit=enable rules are Security event 5712 once auditing is on:",
        '#           auditpol /set /subcategory:"RPC Events" /success:enable /failure:enable',
        "# Filters rely on WFP's automatic weights: a filter with more conditions wins over a broader one,",
        "# as in the published examples (permit with conditions, then block or audit the interface).",
    ]
    if opnums:
        lines.append("# opnum conditions: honoured only on Windows 11 24H2 and Windows Server 2025 or later;")
        lines.append("# Server 2016 and older reject them (FWP_E_CONDITION_NOT_FOUND), 2019/2022 ignore them.")
    lines += _windows_firewall(server, rows, clients, ports)
    lines += ["", "# --- RPC filters (Windows Filtering Platform, user-mode RPC layer) ---", "rpc filter"]
    for _u, group in rows.groupby("interface_uuid", sort=True):
        _interface_rules(lines, server, group, rest, opnums)
    if rest != "none":
        lines.append("")
        lines.append(f"# every interface not seen in the capture: {rest}")
        if rest == "block":
            lines.append("# WARNING: a catch-all block breaks every RPC service unused during the capture (on a")
            lines.append(
                "# domain controller: Netlogon, replication, ...). Prefer audit, read event 5712, then decide."
            )
        _rule(lines, "block" if rest == "block" else "permit", filter_key(server, "rest", rest), [], True)
    return "\n".join(lines) + "\n"


def _windows_firewall(server: str, rows: pd.DataFrame, clients: list[str], ports: list[int]) -> list[str]:
    """Windows Defender Firewall rules (root netsh context) for the endpoint mapper, dynamic RPC, SMB."""
    remote = ",".join(clients) if clients else "any"
    transports = set(rows["transport"])
    endpoints = set(rows["endpoint"].dropna())
    out = ["", "# --- Windows Firewall: inbound TCP from the observed clients ---"]
    if "135" in endpoints:
        out.append(
            f'advfirewall firewall add rule name="RPC endpoint mapper (rpc-analyzer {server})" dir=in action=allow '
            f"protocol=TCP localport=RPC-EPMap remoteip={remote}"
        )
    if transports & {"ncacn_ip_tcp", "ncacn_http"} and ports:
        out.append(
            f'advfirewall firewall add rule name="RPC dynamic endpoints (rpc-analyzer {server})" dir=in action=allow '
            f"protocol=TCP localport=RPC remoteip={remote}"
        )
    http_ports = sorted(
        {int(e) for e in rows.loc[rows["transport"] == "ncacn_http", "endpoint"].dropna() if str(e).isdigit()}
        - set(ports)
    )
    for port in http_ports:
        what = "RPC over HTTP v1 endpoint mapper" if port == 593 else "RPC over HTTP via an RPC proxy, port"
        out.append(
            f'advfirewall firewall add rule name="{what} {port} (rpc-analyzer {server})" dir=in action=allow '
            f"protocol=TCP localport={port} remoteip={remote}"
        )
    if "ncacn_np" in transports:
        out.append("# named pipes travel in SMB: the firewall cannot tell RPC pipes from file sharing on 445")
        out.append(
            f'advfirewall firewall add rule name="SMB named pipes (rpc-analyzer {server})" dir=in action=allow '
            f"protocol=TCP localport=445 remoteip={remote}"
        )
    rng = narrowest_range(ports)
    if rng is not None:
        start, count = rng
        out.append(f"# dynamic RPC ports observed: {', '.join(str(p) for p in ports)}")
        out.append(f"# narrowest range covering them (at least {NETSH_MIN_PORTS} ports): {start}-{start + count - 1}.")
        out.append("# Narrowing the range risks port exhaustion and gains little (Microsoft AskDS, ADFW); if you must:")
        out.append(f"# int ipv4 set dynamicport tcp start={start} num={count}")
        out.append(f"# or for RPC only: HKLM\\SOFTWARE\\Microsoft\\Rpc\\Internet Ports = {start}-{start + count - 1}")
    return out


def markdown(allow: pd.DataFrame, server_ports: dict[str, list[int]]) -> str:
    """The allow-list as Markdown, one section per server."""
    out = ["# RPC allow-list from observed traffic", "", CANNOT_KNOW, ""]
    for server, rows in allow.groupby("server_ip", sort=True):
        head = "| interface | uuid | transport | endpoint | bound | called | clients | opnums | users |"
        out += [f"## {server}", "", head, "|---|---|---|---|---|---|---|---|---|"]
        for r in rows.itertuples():
            cells = [
                r.interface_name,
                r.interface_uuid,
                r.transport,
                r.endpoint,
                r.bound,
                r.called,
                r.clients,
                r.operations,
                r.users,
            ]
            out.append("| " + " | ".join(_md(v) for v in cells) + " |")
        rng = narrowest_range(server_ports.get(str(server), []))
        if rng is not None:
            out += [
                "",
                f"Dynamic ports observed: {', '.join(map(str, server_ports[str(server)]))}; narrowest "
                f"range: {rng[0]}-{rng[0] + rng[1] - 1}.",
            ]
        out.append("")
    return "\n".join(out)


def _safe(v: object) -> str:
    """Wire text (a pipe name) made harmless for a script line: printable characters only."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(v))


def rpcfw_config(allow: pd.DataFrame, server: str, rest: str = "audit", opnums: bool = False) -> str:
    """RpcFw.conf lines for zeronetworks' RPC Firewall (firewall.md section 2): `fw:` rules are checked
    per call by the injected DLL, first match wins, and honour addresses (pipes too) and opnums on
    every Windows version. Allows for what was observed, then per interface and at the end the rest."""
    rows = allow[allow["server_ip"] == server]
    lines = [
        f"# RpcFw.conf for {server}, generated by rpc-analyzer from observed traffic (RPC Firewall, zeronetworks).",
        "# " + CANNOT_KNOW,
        "# First match wins: allows first. Load with: RpcFwManager.exe /update",
    ]
    seen: set[str] = set()
    for r in rows.itertuples():
        u = str(r.interface_uuid)
        lines.append(f"# {r.interface_name} over {r.transport} {_safe(r.endpoint)}")
        clients = [] if r.clients is pd.NA else str(r.clients).split(";")
        ops: list[str | None] = [*str(r.opnums).split(";")] if opnums and r.opnums is not pd.NA else [None]
        prot = f" prot:{r.transport}" if r.transport in NETSH_PROTOCOLS else ""
        callers: list[str | None] = [*clients] or [None]
        for ip in callers:
            for op in ops:
                rule = f"fw:uuid:{u}{prot}" + (f" addr:{ip}" if ip else "") + (f" opnum:{op}" if op else "")
                if rule not in seen:
                    seen.add(rule)
                    lines.append(rule + " action:allow audit:true")
    if rest != "none":
        action = "block" if rest == "block" else "allow"
        for u in sorted(set(rows["interface_uuid"].dropna())):
            lines.append(f"fw:uuid:{u} action:{action} audit:true")
        if rest == "block":
            lines.append("# WARNING: blocks every interface unused during the capture (on a DC: Netlogon, ...)")
        lines.append(f"fw:action:{action} audit:true")
    return "\n".join(lines) + "\n"


def scripts(result: object, rest: str = "audit", opnums: bool = False, fmt: str = "netsh") -> dict[str, str]:
    """server -> its netsh script (or, fmt `rpcfw`, its RpcFw.conf), for every server with an accepted
    bind or a call."""
    allow = allow_list(result.binds, result.calls)  # type: ignore[attr-defined]
    out = {}
    for server in sorted(set(allow["server_ip"].dropna()), key=_ip_key):
        if fmt == "rpcfw":
            out[server] = rpcfw_config(allow, server, rest, opnums)
            continue
        ports = dynamic_ports(result.connections, result.endpoints, server)  # type: ignore[attr-defined]
        out[server] = netsh_script(allow, server, ports, rest, opnums)
    return out


def server_ports(result: object, allow: pd.DataFrame) -> dict[str, list[int]]:
    return {
        str(s): dynamic_ports(result.connections, result.endpoints, str(s))  # type: ignore[attr-defined]
        for s in allow["server_ip"].dropna().unique()
    }


def _md(v: object) -> str:
    if v is None or v is pd.NA:
        return ""
    if str(v) in ("True", "False"):  # Python's or numpy's bool
        return "yes" if str(v) == "True" else "no"
    text = str(v).replace(";", ", ")
    return "".join(ch if ch.isprintable() else "?" for ch in text).replace("|", "\\|")
