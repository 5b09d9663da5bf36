"""The endpoint inventory as `rpcdump.py` and `portqry -e 135` print an endpoint mapper's database.

Grouped by server, then by interface (UUID and version). Each interface shows `Protocol:` (its
specification and title) and `Provider:` (the Windows binary serving it) from the name registry, the
`UUID` line, then `Bindings:`, every string binding it was announced on or used over, each with what
the capture adds (announced-only / announced-and-used / used-without-announcement, clients, binds,
calls). Local-only `ncalrpc` bindings (which an endpoint mapper lists but no remote client can use)
are hidden unless `show_all`; an interface with nothing else is hidden with them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyzer import registry
from analyzer.report.terminal import printable
from analyzer.report.views import STATUSES, network_endpoints

_NA = "N/A"  # what rpcdump.py prints for an unknown protocol or provider


def _text(v: Any) -> str:
    """A cell as terminal-safe text (`terminal.printable`, the one sanitiser); missing is empty."""
    return "" if v is None or v is pd.NA or (isinstance(v, float) and v != v) else printable(v)


def _protocol_line(uuid: str, spec: str) -> tuple[str, str]:
    info = registry.interface_info(uuid)
    if info is None:
        return (spec or _NA), _NA
    title = f"{info.spec}: {info.spec_title}" if info.spec and info.spec_title else info.spec or spec or _NA
    return title, info.provider or _NA


def _binding_line(e: dict[Any, Any]) -> str:
    clients = _text(e["clients"]).replace(";", ", ")
    extra = f"; clients {clients}" if clients else ""
    used = f"; binds {e['binds']}; calls {e['calls']}" if e["binds"] or e["calls"] else ""
    return f"          {_text(e['string_binding']):<40} {e['status']}{extra}{used}"


def rpcdump_text(inventory: pd.DataFrame, show_all: bool = False) -> str:
    """The inventory as text in rpcdump's layout; ncalrpc bindings only with show_all."""
    if inventory.empty:
        return "no endpoints announced or used\n"
    shown = network_endpoints(inventory, include_local=show_all)  # the filter the HTML report uses too
    hidden = len(inventory) - len(shown)
    out: list[str] = []
    for server, entries in shown.groupby("server", sort=False):
        ifaces = entries.groupby(["interface_uuid", "interface_version"], sort=False, dropna=False)
        epms = sorted({e for v in entries["epm_servers"].dropna() for e in str(v).split(";")})
        counts = entries["status"].value_counts()
        tally = ", ".join(f"{counts[s]} {s}" for s in STATUSES if s in counts)
        out.append(
            f"Server {_text(server)}: {len(ifaces)} interfaces, {len(entries)} bindings ({tally}); "
            f"endpoint mapper answers from {', '.join(epms) or 'none seen'}"
        )
        out.append("")
        for (uuid, version), rows in ifaces:
            first = rows.iloc[0]
            protocol, provider = _protocol_line(str(uuid), _text(first["spec"]))
            annotation = sorted({_text(a) for a in rows["annotation"] if _text(a)})
            out.append(f"Protocol: {protocol}")
            out.append(f"Provider: {provider}")
            ver = f" v{version}" if _text(version) else ""
            note = f"  {'; '.join(annotation)}" if annotation else ""
            out.append(f"UUID    : {str(uuid).upper()}{ver} {_text(first['interface_name'])}{note}")
            out.append("Bindings: ")
            out.extend(_binding_line(e) for e in rows.to_dict("records"))
            out.append("")
    n_servers = shown["server"].nunique()
    out.append(f"Total: {len(shown)} bindings on {n_servers} server{'s' if n_servers != 1 else ''}")
    if hidden:
        out.append(f"({hidden} local-only ncalrpc bindings hidden; --all shows them)")
    return "\n".join(out) + "\n"
