"""The short summary the CLI prints after a run: what was read, what was found, where it went."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from analyzer.api import AnalysisResult


def _clean(text: object) -> str:
    s = "" if text is None else str(text)
    return "".join(ch if ch.isprintable() else "?" for ch in s)


def _services(binds: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """Per server, port or pipe, and interface: clients, binds, accepted items, calls."""
    keys = ["server_ip", "where", "interface_name"]

    def keyed(df: pd.DataFrame) -> pd.DataFrame:
        out = df.assign(where=df["pipe"].fillna(df["server_port"].astype("string")))
        kept: pd.DataFrame = out[out["interface_name"].notna()]
        return kept

    b, c = keyed(binds), keyed(calls)
    per_bind = b.groupby(keys).agg(
        clients=("client_ip", "nunique"),
        binds=("ack_result", "size"),
        accepted=("ack_result", lambda r: int((r == "acceptance").sum())),
    )
    per_call = c.groupby(keys).agg(calls=("opnum", "size"), call_clients=("client_ip", "nunique"))
    both = per_bind.join(per_call, how="outer").fillna(0)
    both["clients"] = both[["clients", "call_clients"]].max(axis=1)
    both = both.drop(columns="call_clients").astype(int)
    ranked: pd.DataFrame = both.sort_values(["binds", "calls"], ascending=False).reset_index()
    return ranked


def _print_findings(findings: pd.DataFrame, out_dir: Path, fmt: str, console: Console) -> None:
    """The findings count by severity, and the most severe few (`rpc-analyzer findings` shows them all)."""
    if findings.empty:
        console.print(f"0 findings -> {out_dir}/findings.{fmt}")
        return
    counts = findings["severity"].value_counts()
    order = ("critical", "high", "medium", "low", "info")
    by = ", ".join(f"{int(counts[s])} {s}" for s in order if s in counts)
    console.print(f"{len(findings)} findings ({by}) -> {out_dir}/findings.{fmt}")
    for r in findings.head(5).itertuples(index=False):
        who = f"{_clean(r.client_ip)} -> {_clean(r.server_ip)}"
        console.print(f"  {_clean(r.severity)}: {_clean(r.technique)} {_clean(r.title)} ({who})")


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

        status = f"error: {c['error']}" if not pd.isna(c["error"]) else "truncated" if bool(c["truncated"]) else "ok"
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

    services = _services(binds, calls)
    if not services.empty:
        s = Table(title="Services negotiated", title_justify="left", show_edge=False)
        for col in ("server", "port/pipe", "interface", "clients", "binds", "accepted", "calls"):
            s.add_column(col, justify="right" if col in ("clients", "binds", "accepted", "calls") else "left")
        for row in services.head(25).itertuples(index=False):
            s.add_row(*(_clean(v) for v in row))
        console.print(s)
        if len(services) > 25:
            console.print(f"... and {len(services) - 25} more: see hosts.{fmt} and binds.{fmt}")
    _print_findings(result.findings, out_dir, fmt, console)
    n_ports = eps["port"].notna().sum() if not eps.empty else 0
    console.print(
        f"{len(binds)} context items bound, {len(eps)} EPM towers ({n_ports} with ports), {len(calls)} calls, "
        f"{len(conns)} RPC connections, {len(result.violations)} violations -> {out_dir}/*.{fmt}"
    )
