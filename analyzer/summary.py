"""The short summary the CLI prints after a run: what was read, what was found, where it went."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from analyzer.api import AnalysisResult


def _clean(text: object) -> str:
    s = "" if text is None else str(text)
    return "".join(ch if ch.isprintable() else "?" for ch in s)


def print_summary(result: AnalysisResult, out_dir: Path, fmt: str, console: Console | None = None) -> None:
    console = console or Console(highlight=False, soft_wrap=True)
    caps = result.captures
    binds = result.binds
    calls = result.calls
    eps = result.endpoints
    conns = result.connections

    t = Table(title="Captures", title_justify="left", show_edge=False)
    for col in ("capture", "frames", "RPC conns", "binds", "EPM towers", "calls", "violations", "status"):
        t.add_column(col, justify="right" if col not in ("capture", "status") else "left")
    for _, c in caps.iterrows():
        name = c["capture"]

        def count(df: object, name: str = name) -> int:
            return int((df["capture"] == name).sum())  # type: ignore[index]

        status = "error: " + str(c["error"]) if c["error"] is not None and c["error"] == c["error"] else (
            "truncated" if bool(c["truncated"]) else "ok"
        )
        t.add_row(
            _clean(Path(str(name)).name),
            str(c["frames"]),
            str(count(conns)),
            str(count(binds)),
            str(count(eps)),
            str(count(calls)),
            str(count(result.violations)),
            _clean(status),
        )
    console.print(t)

    if not binds.empty or not calls.empty:
        s = Table(title="Services negotiated (server <- clients)", title_justify="left", show_edge=False)
        for col in ("server", "port/pipe", "interface", "clients", "binds", "accepted", "calls"):
            s.add_column(col)
        accepted = binds[binds["ack_result"] == "acceptance"]
        keys = ["server_ip", "server_port", "pipe", "interface_name"]
        b = binds.groupby(keys, dropna=False).agg(binds=("ack_result", "size"), clients=("client_ip", "nunique"))
        a = accepted.groupby(keys, dropna=False).size()
        c = calls.groupby(keys, dropna=False).size() if not calls.empty else None
        for key, row in b.sort_values("binds", ascending=False).head(25).iterrows():
            server, port, pipe, iface = key  # type: ignore[misc]
            where = pipe if isinstance(pipe, str) else str(port)
            s.add_row(
                _clean(server),
                _clean(where),
                _clean(iface),
                str(row["clients"]),
                str(row["binds"]),
                str(int(a.get(key, 0))),
                str(int(c.get(key, 0)) if c is not None else 0),
            )
        console.print(s)
    n_ports = eps["port"].notna().sum() if not eps.empty else 0
    console.print(
        f"{len(binds)} context items bound, {len(eps)} EPM towers ({n_ports} with ports), {len(calls)} calls, "
        f"{len(conns)} RPC connections, {len(result.violations)} violations -> {out_dir}/*.{fmt}"
    )
