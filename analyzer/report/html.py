"""The HTML report: one self-contained file an analyst can open offline or attach to a ticket.

Summary, services negotiated (the matrix), per-host tables for both roles, the endpoint inventory
(network endpoints; ncalrpc ones on request), two plots (activity timeline, dynamic ports), the host x
interface heat map as a coloured table (its labels and numbers are text, read from the same frame)
and the data-quality table.
Everything is inline: CSS in a <style> element, plots as base64 PNG made with matplotlib's Agg
backend, no script at all, and a Content-Security-Policy that forbids fetching anything, so the file
behaves the same with or without a network. All text that came off the wire is HTML-escaped and
stripped of control characters. The output is a function of the input alone (no clock, fixed PNG
metadata), so two runs over the same captures give the same bytes.

matplotlib is imported only when a report is rendered: by the plots (analyzer.report.plots) and for the font size here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape

import numpy as np
import pandas as pd

from analyzer.report import views
from analyzer.report.columns import FLOAT, INT, STR
from analyzer.report.figures import VIOLATIONS_SHOWN, Figures
from analyzer.report.plots import cell_colours, dynamic_endpoints, heatmap_grid, ports_png, timeline_png
from analyzer.report.style import CSP, CSS
from analyzer.report.tables import SCHEMAS
from analyzer.report.terminal import printable
from analyzer.version import __version__

_LONG = 40  # characters: a longer text cell wraps instead of widening its column
MAX_ROWS = 500  # per table: a report that does not open is no report; the CSVs hold everything


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
    cleaned = printable(s)
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
    total: int | None = None,
) -> str:
    """An HTML table of df's columns; numbers right-aligned; at most max_rows rows, with a note past it
    (`total`: the rows df is the first of, when it is not all of them)."""
    if df.empty:
        return '<p class="note">Nothing to show.</p>'
    headers = headers or {}
    css_class = css_class or {}
    numeric = {c for c in columns if schema.get(c) in (INT, FLOAT)}
    shown = df.head(max_rows)
    # Lists and sentences wrap; addresses, UUIDs and times stay on one line.
    wrap = {
        c
        for c in columns
        if schema.get(c) == STR
        and (shown[c].str.contains(";| ", na=False).any() or (shown[c].str.len() > _LONG).fillna(False).any())
    }
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
    total = len(df) if total is None else total
    if total > max_rows:
        out.append(f'<p class="note">First {max_rows} of {total} rows; the CSV files hold them all.</p>')
    return "".join(out)


def _slug(value: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in value.lower())


def _section(anchor: str, title: str, *body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{"".join(body)}</section>'


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


# -- pictures --------------------------------------------------------------------------------------


def _img(src: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="{src}" alt="{escape(alt)}"><figcaption>{escape(caption)}</figcaption></figure>'
        if src
        else _note(f"{alt}: no data.")
    )


def heatmap_table(grid: pd.DataFrame) -> str:
    """The heat map as an HTML table: interfaces across, hosts down, each cell its count on its colour."""
    if grid.empty:
        return _note("Host x interface: no data.")
    top = int(grid.to_numpy().max())
    out = ['<div class="scroll"><table class="heatmap"><thead><tr><th>host</th>']
    out += [f'<th class="col">{_text(c)}</th>' for c in grid.columns]
    out.append("</tr></thead><tbody>")
    for host, values in zip(grid.index, grid.to_numpy(), strict=True):
        out.append(f'<tr><th class="row">{_text(host)}</th>')
        for v in values:
            if v > 0:
                bg, fg = cell_colours(int(v), top)
                out.append(f'<td class="num" style="background:{bg};color:{fg}">{int(v)}</td>')
            else:
                out.append('<td class="num empty"></td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _ports_section(inventory: pd.DataFrame, src: str) -> str:
    caption = (
        "Ports 1024 and above per server: connections made to each (x: none), coloured by the inventory "
        "status, labelled with the interfaces behind the port (endpoint_inventory.csv)."
    )
    if src:
        return _img(src, "Dynamic ports", caption)
    announced = len(dynamic_endpoints(inventory))
    more = f" {announced} were announced by an endpoint mapper; none was connected to." if announced else ""
    return _note(f"No dynamic port was used.{more}")


# -- the page --------------------------------------------------------------------------------------

# Who and what first: at 1400 px the host, its peers, the interfaces and the identities are on screen.
_HOST_COLUMNS = [
    "host",
    "peers",
    "interfaces",
    "users",
    "auth_levels",
    "ports",
    "dynamic_ports",
    "pipes",
    "peer_count",
    "connections",
    "binds",
    "accepted",
    "rejected",
    "calls",
    "faults",
    "specs",
    "transports",
    "first_seen",
    "last_seen",
]
_MATRIX_COLUMNS = [
    "client_ip",
    "server_ip",
    "interface_name",
    "operations",
    "users",
    "auth_levels",
    "endpoints",
    "transports",
    "connections",
    "binds",
    "accepted",
    "rejected",
    "calls",
    "faults",
    "first_seen",
    "last_seen",
]


def _figures(pairs: Iterable[tuple[str, object]]) -> str:
    cells = "".join(f"<div><dt>{escape(k)}</dt><dd>{_text(v)}</dd></div>" for k, v in pairs)
    return f'<dl class="figures">{cells}</dl>'


def findings_section(findings: pd.DataFrame) -> str:
    """The findings, most severe first, at the top of the report (findings.csv has them all)."""
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
        _table(
            findings, columns, {str(c): str(t) for c, t in findings.dtypes.items()}, css_class={"severity": "severity"}
        ),
    )


def _summary_section(fig: Figures, hosts: pd.DataFrame) -> str:
    """What was read: the figures of the run and one row per capture file."""
    caps = fig.captures
    first, last = caps["first_ts"].min(), caps["last_ts"].max()
    span = f"from {_text(first)} to {_text(last)}" if not pd.isna(first) else "no packets read"
    summary = _figures(
        [
            ("captures", len(caps)),
            ("unreadable", int(caps["error"].notna().sum())),
            ("frames", int(caps["frames"].fillna(0).sum())),
            ("RPC connections", fig.rows["connections"]),
            ("hosts", hosts["host"].nunique()),
            ("context items bound", fig.rows["binds"]),
            ("accepted", fig.accepted),
            ("EPM towers", fig.rows["endpoints"]),
            ("calls", fig.rows["calls"]),
            ("faults", fig.faults),
            ("encrypted calls", fig.encrypted),
            ("violations", fig.occurrences),  # a row may stand for many
        ]
    )
    cap_cols = ["capture", "format", "link_types", "frames", "bytes", "first_ts", "last_ts", "truncated", "error"]
    return _section(
        "summary",
        "Summary",
        f'<p class="lead">{len(caps)} capture file(s), {span}.</p>',
        summary,
        _table(caps, cap_cols, SCHEMAS["captures"]),
    )


def _host_sections(hosts: pd.DataFrame) -> list[str]:
    """Hosts as servers, then as clients."""
    servers = hosts[hosts["role"] == "server"]
    clients = hosts[hosts["role"] == "client"]
    return [
        _section(
            "servers",
            "Hosts as servers",
            _note("The RPC services each host offered or was seen serving (hosts.csv, role server)."),
            _table(
                servers,
                [*_HOST_COLUMNS[:-4], "epm_endpoints", *_HOST_COLUMNS[-4:]],
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
    ]


def _inventory_section(inv: pd.DataFrame, hidden: int) -> str:
    """The network endpoints of the inventory (`hidden` local ones left out)."""
    return _section(
        "inventory",
        "Endpoint inventory",
        _note(
            "What `rpcdump` / `portqry -e 135` would have listed, rebuilt from endpoint-mapper answers and "
            "the binds and calls seen (endpoint_inventory.csv)."
            + (
                f" {hidden} local (ncalrpc) endpoint(s), unreachable from the network, are not shown "
                "(rpc-analyzer report --all shows them; the CSV has them all)."
                if hidden
                else ""
            )
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
    )


def _quality_section(dq: pd.DataFrame) -> str:
    """Every capture's data quality, and the connections that miss something."""
    not_complete = dq[dq["summary"] != "complete"]
    complete_conns = int(((dq["scope"] == "connection") & (dq["summary"] == "complete")).sum())
    dq_shown = pd.concat([dq[dq["scope"] == "capture"], not_complete[not_complete["scope"] == "connection"]])
    dq_shown = dq_shown.sort_values(["capture", "stream"], na_position="first", kind="stable")
    return _section(
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
                "pipe_name",
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
    )


def _violations_section(fig: Figures) -> str:
    """The first violations; the CSV files hold them all."""
    schema = SCHEMAS["violations"]
    rows = _table(fig.violations, list(schema), schema, max_rows=VIOLATIONS_SHOWN, total=fig.rows["violations"])
    return _section("violations", "Violations", rows)


def render(
    fig: Figures,
    hosts: pd.DataFrame,
    views_: Mapping[str, pd.DataFrame],
    title: str = "RPC traffic report",
    include_local: bool = False,
) -> str:
    """The report as one HTML document (a str); write it with UTF-8, from the base tables' figures
    (`report.figures`, folded in the one pass over them), the per-host table and the views (`endpoint_inventory`,
    `timeline`, `matrix`, `data_quality` and `findings`). The endpoint inventory leaves out ncalrpc
    (local) endpoints unless include_local."""
    import matplotlib as mpl

    all_inv, matrix = views_["endpoint_inventory"], views_["matrix"]
    inv = views.network_endpoints(all_inv, include_local)
    with mpl.rc_context({"font.size": 9}):
        timeline_src = timeline_png(views_["timeline"])
        ports_src = ports_png(inv, fig.per_port, fig.dynamic_connections)
    sections = [
        findings_section(views_["findings"]),
        _summary_section(fig, hosts),
        _section(
            "services",
            "Services negotiated between hosts",
            _note("One row per client, server and interface: where, how often and as whom (matrix.csv)."),
            _table(matrix, _MATRIX_COLUMNS, views.MATRIX),
        ),
        *_host_sections(hosts),
        _inventory_section(inv, len(all_inv) - len(inv)),
        _section(
            "timeline",
            "Activity timeline",
            _img(
                timeline_src,
                "Activity timeline",
                "Binds and calls per minute (10 minutes, hour or day over long spans), by interface (timeline.csv).",
            ),
        ),
        _section(
            "heatmap",
            "Host x interface",
            _note("Binds and calls per host and interface (matrix.csv); darker is fewer, on a log scale."),
            heatmap_table(heatmap_grid(matrix)),
        ),
        _section(
            "ports",
            "Dynamic ports",
            _ports_section(inv, ports_src),
        ),
        _quality_section(views_["data_quality"]),
        _violations_section(fig),
    ]
    return _document(title, sections)


def _document(title: str, sections: list[str]) -> str:
    """The page around the sections: CSP, styles, title and the table of contents."""
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
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(title)}</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>{_text(title)}</h1><nav>{nav}</nav></header>\n<main>"
        + "\n".join(sections)
        + f"</main>\n<footer>Made by rpc-analyzer {escape(__version__)} from the captures listed above.</footer>"
        "</body></html>\n"
    )
