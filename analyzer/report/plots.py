"""The report's pictures and the data they are drawn from: matplotlib PNGs (activity timeline,
dynamic ports) and the heat map's grid and colours (html.py lays the grid out as a table).

matplotlib is imported only inside these functions, so importing this module costs nothing. A
figure's PNG carries no software or date metadata: equal input gives equal bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from analyzer.report import views
from analyzer.report.terminal import printable

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_HEAT = 40  # rows and columns of the heat map
TOP_SERIES = 8  # interfaces stacked in the timeline, servers coloured in the ports plot


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
    s = printable(value)
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


_BUCKETS = (("min", 1, "minute"), ("10min", 10, "10 minutes"), ("h", 60, "hour"), ("D", 1440, "day"))
MAX_BARS = 400  # a one-minute bar on a two-month axis is narrower than a pixel: nothing is drawn


def timeline_bucket(first: pd.Timestamp, last: pd.Timestamp) -> tuple[str, int, str]:
    """The finest bucket that keeps the span within MAX_BARS bars (days for anything longer)."""
    span_min = (last - first).total_seconds() / 60
    for freq, minutes, label in _BUCKETS:
        if span_min / minutes <= MAX_BARS:
            return freq, minutes, label
    return _BUCKETS[-1]


def timeline_png(timeline: pd.DataFrame) -> str:
    """Binds + calls per bucket (a minute, or coarser over long spans), stacked by interface (the
    busiest ones, the rest as 'other')."""
    if timeline.empty:
        return ""
    minutes = timeline["minute"].dt.tz_convert(None)
    freq, width_min, label = timeline_bucket(minutes.min(), minutes.max())
    t = timeline.assign(
        activity=timeline["binds"] + timeline["calls"],
        interface=timeline["interface_name"].fillna("(unknown)"),
        minute=minutes.dt.floor(freq),
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
        ax.bar(x, heights, width=0.9 * width_min / 1440, bottom=bottom, label=_label(name), align="edge")
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_ylabel(f"binds + calls per {label}")
    ax.set_xlabel(f"{label} (UTC)")
    ax.set_title(f"RPC activity per {label}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    _time_axis(ax, x)
    return _png(fig)


def heatmap_grid(matrix: pd.DataFrame) -> pd.DataFrame:
    """Host (as server and as client) x interface: binds + calls, the busiest MAX_HEAT of each, both
    axes in alphabetical order. Labels and values come from this one frame, indexed by label, so a
    cell can never show another label's count."""
    if matrix.empty:
        nothing: pd.DataFrame = pd.DataFrame()
        return nothing
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
    out: pd.DataFrame = grid.loc[sorted(rows), sorted(cols)].astype("int64")
    return out


def cell_colours(value: int, top: int) -> tuple[str, str]:
    """(background, text) for a count on a log scale: viridis, with black text on its light end and
    white on its dark end, so every number stays readable."""
    from matplotlib import colormaps

    share = 0.0 if top <= 1 else float(np.log(value) / np.log(top))
    r, g, b, _ = colormaps["viridis"](0.15 + 0.85 * share)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    background = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
    return background, "#000" if luminance > 0.45 else "#fff"


_PORT_COLOURS = {
    views.ANNOUNCED_AND_USED: "#1a7f37",
    views.USED_WITHOUT_ANNOUNCEMENT: "#c2580a",
    views.ANNOUNCED_ONLY: "#9ca3af",
}


def dynamic_endpoints(inventory: pd.DataFrame) -> pd.DataFrame:
    """Inventory entries on an IP port of 1024 or above."""
    kept: pd.DataFrame = inventory[
        inventory["port"].notna() & (inventory["port"] >= 1024) & (inventory["protocol"] != views.LOCAL_PROTOCOL)
    ]
    return kept


def ports_png(inventory: pd.DataFrame, per_port: Mapping[tuple[str | None, int | None], int], dynamic: int) -> str:
    """Dynamic ports (1024 and above): one bar per server and port, as long as the connections made to
    it, coloured by what the endpoint inventory says (announced and used, used without announcement,
    announced only); labelled with the interfaces behind it. `per_port`: the connections (not pipes) per
    server and port; `dynamic`: how many of them are to a port of 1024 or above."""
    ported = dynamic_endpoints(inventory)
    if ported.empty or dynamic == 0:
        return ""  # an axis of "-0.045 to 0.045 connections" says nothing: the section says why instead
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
        groups.append((str(server), int(cast(Any, port)), status, names))
    server_rank = {srv: i for i, srv in enumerate(dict.fromkeys(g[0] for g in groups))}
    groups = sorted(groups, key=lambda g: (server_rank[g[0]], g[1]))[:MAX_HEAT]
    fig = _figure(10, max(2.5, 1.2 + 0.28 * len(groups)))
    ax = fig.add_subplot()
    labels, widths, colours = [], [], []
    for server, port, status, names in groups:
        labels.append(_label(f"{server}:{port}  {names}", 60))
        widths.append(int(per_port.get((server, port), 0)))
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
