"""The per-host table and the endpoint inventory as readable text for a terminal.

Every value goes through `terminal.printable` (the one sanitiser): wire text reaches the terminal
without control characters."""

from __future__ import annotations

import textwrap

import pandas as pd

from analyzer.report.terminal import printable
from analyzer.report.views.inventory import STATUSES
from analyzer.report.views.shape import plural, records


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
    for row in records(h):
        host, r = row["host"], row["role"]
        out.append(
            f"{_clean(host)} as {r}: {plural(row['connections'], 'connection')}, first {_clean(row['first_seen'])}, "
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
        for r in records(m)
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
        out.append(f"Server {_clean(server)}: {plural(len(entries), 'endpoint')} ({tally})")
        out.append(f"Endpoint mapper answers from: {', '.join(_clean(e) for e in epms) or 'none seen'}")
        out.append("")
        for e in records(entries):
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
    out.append(f"Total endpoints: {n} on {plural(inventory['server'].nunique(), 'server')}")
    return "\n".join(out) + "\n"
