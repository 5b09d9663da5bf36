"""The findings as readable text: grouped by the host acted upon (the server), most severe first, each with
its evidence frames so that one can jump to them in Wireshark (`frame.number in {...}`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyzer.findings.rules import SEVERITIES
from analyzer.report.terminal import printable


def _s(v: Any) -> str:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return printable(v)  # the one sanitiser for terminal text


def findings_text(findings: pd.DataFrame) -> str:
    """One block per server host, its findings ordered by severity then time."""
    if findings.empty:
        return "No findings.\n"
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    df = findings.assign(
        _host=findings["server_ip"].fillna("?"),
        _rank=findings["severity"].map(lambda s: -rank.get(str(s), 0)),
    )
    host_rank = df.groupby("_host")["_rank"].min().sort_values(kind="stable")
    counts = findings["severity"].value_counts()
    head = ", ".join(f"{int(counts[s])} {s}" for s in reversed(SEVERITIES) if s in counts)
    lines = [f"{len(findings)} finding(s): {head}", ""]
    for host in host_rank.index:
        block = df[df["_host"] == host].sort_values(["_rank", "first_ts", "first_frame"], kind="stable")
        lines.append(f"== {_s(host)}")
        for r in block.itertuples(index=False):
            row = r._asdict()
            lines.append(
                f"  [{_s(row['severity']).upper()}/{_s(row['confidence'])}] {_s(row['technique'])} "
                f"({_s(row['attack_id'])}) {_s(row['title'])}"
            )
            lines.append(f"      from {_s(row['client_ip'])}  as {_s(row['user']) or '-'}  {_s(row['first_ts'])}")
            lines.append(f"      {_s(row['interface_name'])}: {_s(row['operation'])} ({_s(row['calls'])} rows)")
            if _s(row["argument"]):
                lines.append(f"      argument: {_s(row['argument'])}")
            lines.append(f"      {_s(row['detail'])}")
            frames = [f for f in _s(row["frames"]).split(";") if f.isdigit()]
            lines.append(f"      frames: {_s(row['frames'])}   capture: {_s(row['capture'])}")
            if frames:
                lines.append(f"      wireshark: frame.number in {{{' '.join(frames)}}}")
        lines.append("")
    return "\n".join(lines)


def render_findings(findings: pd.DataFrame, fmt: str) -> str:
    """What the `findings` and `sigma` commands print: the findings table as CSV (`fmt` "csv"), or the
    text grouped by host."""
    if fmt == "csv":
        from analyzer.findings.schema import FINDINGS
        from analyzer.report.output import csv_text

        return csv_text(findings, FINDINGS)
    return findings_text(findings)
