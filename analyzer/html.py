"""The HTML report: one self-contained file an analyst can open offline or attach to a ticket.

Summary, services negotiated (the matrix), per-host tables for both roles, the endpoint inventory,
three plots (activity timeline, host x interface heat map, dynamic ports) and the data-quality table.
Everything is inline: CSS in a <style> element, plots as base64 PNG made with matplotlib's Agg
backend, no script at all, and a Content-Security-Policy that forbids fetching anything, so the file
behaves the same with or without a network. All text that came off the wire is HTML-escaped and
stripped of control characters. The output is a function of the input alone (no clock, fixed PNG
metadata), so two runs over the same captures give the same bytes.

matplotlib is imported only here and only when a report is rendered.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from html import escape
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analyzer import __version__, views
from analyzer.report import FLOAT, INT, SCHEMAS, STR

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from analyzer.api import AnalysisResult

MAX_ROWS = 500  # per table: a report that does not open is no report; the CSVs hold everything
MAX_HEAT = 40  # rows and columns of the heat map
TOP_SERIES = 8  # interfaces stacked in the timeline, servers coloured in the ports plot

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5rem 2rem; color: #1d2330;
       background: #fff; line-height: 1.35; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 2px solid #d8dde6; padding-bottom: .2rem; }
p.lead, p.note { color: #4a5263; margin: .3rem 0 .8rem; }
nav a { margin-right: .9rem; color: #2456a6; text-decoration: none; }
dl.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .5rem; }
dl.figures div { background: #f3f5f9; border-radius: 6px; padding: .5rem .7rem; }
dl.figures dt { font-size: .8rem; color: #4a5263; }
dl.figures dd { margin: 0; font-size: 1.3rem; font-weight: 600; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .8rem; margin: .4rem 0 1rem; }
th, td { border: 1px solid #d8dde6; padding: .2rem .45rem; vertical-align: top; text-align: left; }
th { background: #eef1f6; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td { white-space: nowrap; }
td.wrap { white-space: normal; min-width: 10rem; max-width: 28rem; overflow-wrap: break-word; }
tr:nth-child(even) td { background: #fafbfd; }
td.status-announced-only { color: #6b7280; }
td.status-announced-and-used { color: #0a6b2d; font-weight: 600; }
td.status-used-without-announcement { color: #9a4b00; font-weight: 600; }
td.quality-complete { color: #0a6b2d; }
td.severity-critical, td.severity-high { color: #a40000; font-weight: 600; }
td.severity-medium { color: #9a4b00; font-weight: 600; }
figure { margin: .5rem 0 1.5rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #d8dde6; }
figcaption { font-size: .85rem; color: #4a5263; }
footer { margin-top: 3rem; font-size: .8rem; color: #6b7280; }
"""

# No network, no script: images only from data: URLs, styles only inline.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _text(value: object) -> str:
    """A value as escaped, printable HTML text; missing is empty."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, pd.Timestamp):
        s = value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    elif isinstance(value, bool | np.bool_):
        s = "yes" if value else "no"
    elif isinstance(value, float):
        s = f"{value:.6f}"
    else:
        s = str(value)
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in s)
    # ';'-joined lists get a space so the browser can wrap them.
    return escape(cleaned.replace(";", "; "), quote=True)


def _table(
    df: pd.DataFrame,
    columns: Sequence[str],
    schema: dict[str, str],
    *,
    headers: dict[str, str] | None = None,
    css_class: dict[str, str] | None = None,
    max_rows: int = MAX_ROWS,
) -> str:
    """An HTML table of df's columns; numbers right-aligned; at most max_rows rows, with a note past it."""
    if df.empty:
        return '<p class="note">Nothing to show.</p>'
    headers = headers or {}
    css_class = css_class or {}
    numeric = {c for c in columns if schema.get(c) in (INT, FLOAT)}
    shown = df.head(max_rows)
    # Lists and sentences wrap; addresses, UUIDs and times stay on one line.
    wrap = {c for c in columns if schema.get(c) == STR and shown[c].str.contains(";| ", na=False).any()}
    out = ['<div class="scroll"><table>', "<thead><tr>"]
    for c in columns:
        cls = ' class="num"' if c in numeric else ""
        out.append(f"<th{cls}>{escape(headers.get(c, c))}</th>")
    out.append("</tr></thead><tbody>")
    for row in shown[list(columns)].itertuples(index=False, name=None):
        out.append("<tr>")
        for c, v in zip(columns, row, strict=True):
            classes = []
            if c in numeric:
                classes.append("num")
            elif c in wrap:
                classes.append("wrap")
            if c in css_class and isinstance(v, str):
                classes.append(f"{css_class[c]}-{_slug(v)}")
            cls = f' class="{" ".join(classes)}"' if classes else ""
            out.append(f"<td{cls}>{_text(v)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    if len(df) > max_rows:
        out.append(f'<p class="note">First {max_rows} of {len(df)} rows; the CSV files hold them all.</p>')
    return "".join(out)


def _slug(value: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in value.lower())


def _section(anchor: str, title: str, *body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{"".join(body)}</section>'


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


# -- plots -----------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig: Figure) -> str:
    """The figure as a data: URL. No Software/date metadata, so equal input gives equal bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _label(value: object, width: int = 40) -> str:
    """Wire text for a plot: printable, shortened, and with $ escaped so mathtext never parses it."""
    s = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    s = s if len(s) <= width else s[: width - 1] + "…"
    return s.replace("$", r"\$")


def _time_axis(ax: Axes, times: Iterable[datetime]) -> None:
    """Readable UTC ticks at any span; at least three minutes shown so one busy minute is not a wall."""
    import matplotlib.dates as mdates

    ts = sorted(times)
    if ts:
        start, end = ts[0] - timedelta(minutes=1), max(ts[-1], ts[0] + timedelta(minutes=1)) + timedelta(minutes=1)
        lo, hi = mdates.date2num([start, end])  # type: ignore[no-untyped-call]  # unannotated upstream, as below
        ax.set_xlim(float(lo), float(hi))
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _img(src: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="{src}" alt="{escape(alt)}"><figcaption>{escape(caption)}</figcaption></figure>'
        if src
        else _note(f"{alt}: no data.")
    )


def timeline_png(timeline: pd.DataFrame) -> str:
    """Binds + calls per minute, stacked by interface (the busiest ones, the rest as 'other')."""
    if timeline.empty:
        return ""
    t = timeline.assign(
        activity=timeline["binds"] + timeline["calls"],
        interface=timeline["interface_name"].fillna("(unknown)"),
        minute=timeline["minute"].dt.tz_convert(None),
    )
    top = t.groupby("interface")["activity"].sum().sort_values(ascending=False, kind="stable")
    keep = list(top.index[:TOP_SERIES])
    t["interface"] = t["interface"].where(t["interface"].isin(keep), "other")
    order = keep + (["other"] if (t["interface"] == "other").any() else [])
    pivot = t.pivot_table(index="minute", columns="interface", values="activity", aggfunc="sum", fill_value=0)
    pivot = pivot.reindex(columns=order, fill_value=0).sort_index()
    fig = _figure(10, 3.8)
    ax = fig.add_subplot()
    bottom = [0.0] * len(pivot)
    x = list(pivot.index.to_pydatetime())
    for name in order:
        heights = [float(v) for v in pivot[name]]
        ax.bar(x, heights, width=0.9 / 1440, bottom=bottom, label=_label(name), align="edge")
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_ylabel("binds + calls")
    ax.set_xlabel("minute (UTC)")
    ax.set_title("RPC activity per minute")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    _time_axis(ax, x)
    return _png(fig)


def heatmap_png(matrix: pd.DataFrame) -> str:
    """Host (as server and as client) x interface, coloured by binds + calls on a log scale."""
    if matrix.empty:
        return ""
    m = matrix.assign(
        activity=matrix["binds"] + matrix["calls"], interface=matrix["interface_name"].fillna("(unknown)")
    )
    both = pd.concat(
        [
            m.assign(host=m["server_ip"] + " (server)")[["host", "interface", "activity"]],
            m.assign(host=m["client_ip"] + " (client)")[["host", "interface", "activity"]],
        ]
    )
    grid = both.pivot_table(index="host", columns="interface", values="activity", aggfunc="sum", fill_value=0)
    rows = grid.sum(axis=1).sort_values(ascending=False, kind="stable").index[:MAX_HEAT]
    cols = grid.sum(axis=0).sort_values(ascending=False, kind="stable").index[:MAX_HEAT]
    grid = grid.loc[sorted(rows), sorted(cols)]
    values = grid.to_numpy(dtype=float)
    from matplotlib.colors import LogNorm

    fig = _figure(max(6.0, 2.5 + 0.35 * len(cols)), max(3.0, 1.6 + 0.3 * len(rows)))
    ax = fig.add_subplot()
    masked = [[v if v > 0 else float("nan") for v in row] for row in values]
    image = ax.imshow(masked, aspect="auto", cmap="viridis", norm=LogNorm(vmin=1, vmax=max(1.0, values.max())))
    ax.set_xticks(range(len(cols)), [_label(c, 30) for c in cols], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [_label(r) for r in grid.index], fontsize=8)
    if values.size <= 600:
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                if v > 0:
                    ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=7, color="white")
    ax.set_title("Host x interface: binds + calls")
    fig.colorbar(image, ax=ax, label="binds + calls (log)")
    return _png(fig)


_PORT_COLOURS = {
    views.ANNOUNCED_AND_USED: "#1a7f37",
    views.USED_WITHOUT_ANNOUNCEMENT: "#c2580a",
    views.ANNOUNCED_ONLY: "#9ca3af",
}


def ports_png(inventory: pd.DataFrame, connections: pd.DataFrame) -> str:
    """Dynamic ports (1024 and above): one bar per server and port, as long as the connections made to
    it, coloured by what the endpoint inventory says (announced and used, used without announcement,
    announced only); labelled with the interfaces behind it."""
    ported = inventory[inventory["port"].notna() & (inventory["port"] >= 1024) & (inventory["protocol"] != "ncalrpc")]
    if ported.empty:
        return ""
    rank = {s: i for i, s in enumerate(views.STATUSES)}
    groups = []
    for (server, port), g in ported.groupby(["server", "port"], sort=False):
        statuses = set(g["status"])
        # The most telling status wins: used-and-announced, else used-unannounced, else announced-only.
        status = next(
            s
            for s in (views.ANNOUNCED_AND_USED, views.USED_WITHOUT_ANNOUNCEMENT, views.ANNOUNCED_ONLY)
            if s in statuses
        )
        names = ", ".join(sorted({str(n) for n in g["interface_name"].dropna()}))
        groups.append((str(server), int(port), status, names))
    conns = connections[connections["transport"] != "ncacn_np"].groupby(["server_ip", "server_port"]).size()
    server_rank = {srv: i for i, srv in enumerate(dict.fromkeys(g[0] for g in groups))}
    groups = sorted(groups, key=lambda g: (server_rank[g[0]], g[1]))[:MAX_HEAT]
    fig = _figure(10, max(2.5, 1.2 + 0.28 * len(groups)))
    ax = fig.add_subplot()
    labels, widths, colours = [], [], []
    for server, port, status, names in groups:
        labels.append(_label(f"{server}:{port}  {names}", 60))
        widths.append(int(conns.get((server, port), 0)))
        colours.append(_PORT_COLOURS[status])
    y = list(range(len(groups)))
    ax.barh(y, widths, color=colours)
    for yi, (w, (_, _, status, _)) in enumerate(zip(widths, groups, strict=True)):
        if w == 0:
            ax.plot([0], [yi], marker="x", markersize=8, color=_PORT_COLOURS[status])
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("connections to the port")
    ax.set_title("Dynamic RPC ports: announced by an endpoint mapper and used")
    from matplotlib.patches import Patch

    ax.legend(
        handles=[Patch(color=c, label=s) for s, c in sorted(_PORT_COLOURS.items(), key=lambda kv: rank[kv[0]])],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        frameon=False,
    )
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(fig)


# -- the page --------------------------------------------------------------------------------------

_HOST_COLUMNS = [
    "host",
    "interfaces",
    "specs",
    "transports",
    "ports",
    "dynamic_ports",
    "pipes",
    "peers",
    "peer_count",
    "connections",
    "binds",
    "accepted",
    "rejected",
    "calls",
    "faults",
    "auth_levels",
    "users",
    "first_seen",
    "last_seen",
]


def _figures(pairs: Iterable[tuple[str, object]]) -> str:
    cells = "".join(f"<div><dt>{escape(k)}</dt><dd>{_text(v)}</dd></div>" for k, v in pairs)
    return f'<dl class="figures">{cells}</dl>'


def findings_section(findings: pd.DataFrame) -> str:
    """The findings, most severe first, at the top of the report (findings.csv has them all)."""
    from analyzer.findings import FINDINGS

    counts = findings["severity"].value_counts()
    order = ("critical", "high", "medium", "low", "info")
    lead = ", ".join(f"{int(counts[s])} {s}" for s in order if s in counts) or "none"
    columns = [
        "severity",
        "confidence",
        "technique",
        "title",
        "client_ip",
        "server_ip",
        "user",
        "operation",
        "argument",
        "frames",
        "capture",
        "detail",
    ]
    return _section(
        "findings",
        "Findings",
        f'<p class="lead">{len(findings)} finding(s): {escape(lead)}.</p>',
        _note(
            "What looks like an attack, reconnaissance or a risky admin action, most severe first; frames are "
            "the evidence to open in Wireshark (findings.csv)."
        ),
        _table(findings, columns, FINDINGS, css_class={"severity": "severity"}),
    )


def render(result: AnalysisResult, title: str = "RPC traffic report") -> str:
    """The report as one HTML document (a str); write it with UTF-8."""
    import matplotlib as mpl

    caps, binds, calls, conns = result.captures, result.binds, result.calls, result.connections
    hosts, inv, dq = result.hosts, result.endpoint_inventory, result.data_quality
    first, last = caps["first_ts"].min(), caps["last_ts"].max()
    span = f"from {_text(first)} to {_text(last)}" if not pd.isna(first) else "no packets read"
    summary = _figures(
        [
            ("captures", len(caps)),
            ("unreadable", int(caps["error"].notna().sum())),
            ("frames", int(caps["frames"].fillna(0).sum())),
            ("RPC connections", len(conns)),
            ("hosts", hosts["host"].nunique()),
            ("context items bound", len(binds)),
            ("accepted", int((binds["ack_result"] == "acceptance").sum())),
            ("EPM towers", len(result.endpoints)),
            ("calls", len(calls)),
            ("faults", int(calls["fault_code"].notna().sum())),
            ("encrypted calls", int(calls["encrypted"].fillna(False).astype(bool).sum())),
            ("violations", len(result.violations)),
        ]
    )
    cap_cols = ["capture", "format", "link_types", "frames", "bytes", "first_ts", "last_ts", "truncated", "error"]
    servers = hosts[hosts["role"] == "server"]
    clients = hosts[hosts["role"] == "client"]
    not_complete = dq[dq["summary"] != "complete"]
    complete_conns = int(((dq["scope"] == "connection") & (dq["summary"] == "complete")).sum())
    dq_shown = pd.concat([dq[dq["scope"] == "capture"], not_complete[not_complete["scope"] == "connection"]])
    dq_shown = dq_shown.sort_values(["capture", "stream"], na_position="first", kind="stable")

    with mpl.rc_context({"font.size": 9}):
        timeline_src = timeline_png(result.timeline)
        heatmap_src = heatmap_png(result.matrix)
        ports_src = ports_png(inv, conns)

    sections = [
        findings_section(result.findings),
        _section(
            "summary",
            "Summary",
            f'<p class="lead">{len(caps)} capture file(s), {span}.</p>',
            summary,
            _table(caps, cap_cols, SCHEMAS["captures"]),
        ),
        _section(
            "services",
            "Services negotiated between hosts",
            _note("One row per client, server and interface: where, how often and as whom (matrix.csv)."),
            _table(result.matrix, [c for c in views.MATRIX if c != "interface_uuid"], views.MATRIX),
        ),
        _section(
            "servers",
            "Hosts as servers",
            _note("The RPC services each host offered or was seen serving (hosts.csv, role server)."),
            _table(
                servers,
                [*_HOST_COLUMNS[:-2], "epm_endpoints", *_HOST_COLUMNS[-2:]],
                SCHEMAS["hosts"],
                headers={"peers": "clients", "peer_count": "client_count", "epm_endpoints": "EPM towers"},
            ),
        ),
        _section(
            "clients",
            "Hosts as clients",
            _note("The services each host negotiated, where and with what identity (hosts.csv, role client)."),
            _table(
                clients, _HOST_COLUMNS, SCHEMAS["hosts"], headers={"peers": "servers", "peer_count": "server_count"}
            ),
        ),
        _section(
            "inventory",
            "Endpoint inventory",
            _note(
                "What `rpcdump` / `portqry -e 135` would have listed, rebuilt from endpoint-mapper answers and "
                "the binds and calls seen (endpoint_inventory.csv)."
            ),
            _table(
                inv,
                [
                    "server",
                    "status",
                    "interface_name",
                    "interface_version",
                    "interface_uuid",
                    "spec",
                    "string_binding",
                    "annotation",
                    "epm_frames",
                    "client_count",
                    "clients",
                    "binds",
                    "calls",
                    "first_seen",
                ],
                views.ENDPOINT_INVENTORY,
                css_class={"status": "status"},
            ),
        ),
        _section(
            "timeline",
            "Activity timeline",
            _img(timeline_src, "Activity timeline", "Binds and calls per minute, by interface (timeline.csv)."),
        ),
        _section(
            "heatmap",
            "Host x interface",
            _img(heatmap_src, "Host x interface heat map", "Binds and calls per host and interface (matrix.csv)."),
        ),
        _section(
            "ports",
            "Dynamic ports",
            _img(
                ports_src,
                "Dynamic ports",
                "Ports 1024 and above per server: connections made to each (x: none), coloured by the inventory "
                "status, labelled with the interfaces behind the port (endpoint_inventory.csv).",
            ),
        ),
        _section(
            "quality",
            "Data quality",
            _note(
                f"What the capture did not show. Every capture is listed; {complete_conns} connection(s) with "
                "nothing missing are not (data_quality.csv has them all)."
            ),
            _table(
                dq_shown,
                [
                    "capture",
                    "stream",
                    "scope",
                    "client_ip",
                    "server_ip",
                    "server_port",
                    "pipe",
                    "gaps",
                    "violations",
                    "caps_hit",
                    "calls_without_bind",
                    "encrypted_calls",
                    "unknown_interfaces",
                    "summary",
                ],
                views.DATA_QUALITY,
                css_class={"summary": "quality"},
            ),
        ),
        _section(
            "violations",
            "Violations",
            _table(result.violations, list(SCHEMAS["violations"]), SCHEMAS["violations"], max_rows=200),
        ),
    ]
    nav = "".join(
        f'<a href="#{a}">{escape(t)}</a>'
        for a, t in (
            ("findings", "Findings"),
            ("summary", "Summary"),
            ("services", "Services"),
            ("servers", "Servers"),
            ("clients", "Clients"),
            ("inventory", "Endpoint inventory"),
            ("timeline", "Timeline"),
            ("heatmap", "Heat map"),
            ("ports", "Dynamic ports"),
            ("quality", "Data quality"),
            ("violations", "Violations"),
        )
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(title)}</title><style>{_CSS}</style></head>\n<body>"
        f"<header><h1>{_text(title)}</h1><nav>{nav}</nav></header>\n<main>"
        + "\n".join(sections)
        + f"</main>\n<footer>Made by rpc-analyzer {escape(__version__)} from the captures listed above.</footer>"
        "</body></html>\n"
    )
