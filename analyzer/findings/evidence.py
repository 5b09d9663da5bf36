"""One burst's evidence, aggregated as its rows go by, and the findings row it becomes.

A finding shows the burst's first frames, its time span, the first few distinct hosts, operations,
users and arguments, and how many rows it had; a count rule's threshold needs the number of rows or
of distinct values of a column. `Evidence` keeps exactly that: the smallest MAX_FRAMES + 1 distinct
frames, the first and last time, and per shown column its distinct values in the order first seen
(bounded by distinct values, not by rows: a flood of a million rows from one client is one value).
The text it yields is the text the rows would give all at once (`listed` over the column).

`Rows` is the rows of one chunk a rule selected, as Python lists (one conversion per chunk and column).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analyzer.findings.conditions import field_series
from analyzer.findings.rules import Rule

MAX_FRAMES = 25  # evidence frames listed per finding (calls says how many rows there were)
MAX_LISTED = 5  # distinct values listed in a text column (hosts, operations, users, arguments)
MAX_ARGUMENT = 300  # characters of the decisive argument
NA_KEY = "\x00"  # a missing group key's text (it sorts first, as the group-by it replaces sorted it)
# The shown columns and the column of Rows each is read from.
SHOWN = {"client": "client_ip", "server": "server_ip", "interface": "interface_name", "operation": "operation"}
SHOWN |= {"user": "identity", "argument": "_argument", "status": "status", "returns": "return_status"}


def missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def listed(values: Iterable[Any], limit: int = MAX_LISTED) -> str | None:
    seen: list[str] = []
    for v in values:
        if missing(v):
            continue
        s = str(v)
        if s and s not in seen:
            seen.append(s)
    return _listed(seen, limit)


def _listed(seen: list[str], limit: int) -> str | None:
    if not seen:
        return None
    more = len(seen) - limit
    return ";".join(seen[:limit]) + (f";(+{more} more)" if more > 0 else "")


def _ns(values: pd.Series) -> list[int | None]:
    """A time column as integer nanoseconds, None where unknown."""
    arr: Any = pd.to_datetime(values, utc=True).array
    arr = arr.as_unit("ns")
    ns: list[int | None] = arr.asi8.tolist()
    if arr.isna().any():
        ns = [None if m else v for v, m in zip(ns, arr.isna().tolist(), strict=True)]
    return ns


def _plain(values: pd.Series) -> list[Any]:
    """A column's values as a list, every kind of missing as None."""
    if not values.hasnans:
        out: list[Any] = values.tolist()
        return out
    return [None if m else v for v, m in zip(values.tolist(), values.isna().tolist(), strict=True)]


def _texts(values: list[Any]) -> list[str]:
    """A group key column as text, missing as NA_KEY (converted once per distinct value)."""
    text = {v: NA_KEY if missing(v) else str(v) for v in dict.fromkeys(values)}
    return list(map(text.__getitem__, values))


def picked(values: list[Any], idx: list[int]) -> list[Any]:
    """values[idx]: a slice when idx is a run (a chunk's rows of one group often are)."""
    if idx[-1] - idx[0] + 1 == len(idx):
        return values[idx[0] : idx[-1] + 1]
    return [values[i] for i in idx]


class Rows:
    """A rule's selected rows of one chunk: each column it reads as a list (missing as None), the
    group keys as text tuples, the times in nanoseconds."""

    def __init__(self, df: pd.DataFrame, rule: Rule) -> None:
        self.n = len(df)
        self.capture = df["capture"].tolist()
        self.frame = _plain(df["frame"])
        self.ts = _ns(df["ts"])
        shown = set(SHOWN.values()) - {"_argument"}
        cols = {c: _plain(df[c]) for c in shown if c in df.columns}
        cols["_argument"] = _plain(field_series(df, rule.argument))
        for t in rule.threshold:
            if t.measure != "count" and t.measure not in cols:
                cols[t.measure] = _plain(field_series(df, t.measure))
        self.columns = cols
        keys = [df["capture"], *(field_series(df, k) for k in rule.group)]
        if self.n and all(k.nunique(dropna=False) == 1 for k in keys):  # one group (a flood's chunk)
            self.keys = [tuple(_texts([k.iloc[0]])[0] for k in keys)] * self.n
        else:
            self.keys = list(zip(*(_texts(k.tolist()) for k in keys), strict=True))
        if rule.kind == "sequence":
            ops = _plain(df["operation"].astype("string").str.lower())
            nums = _plain(df["opnum"].astype("string")) if "opnum" in df.columns else [None] * self.n
            self.steps = list(zip(ops, nums, strict=True))


@dataclass
class Distinct:
    """A column's distinct values: as text in the order first seen (`listed`), and whether an empty
    text was seen (counted as a value, never listed)."""

    seen: dict[str, None] = field(default_factory=dict)
    empty: bool = False

    def add(self, distinct: Iterable[Any]) -> None:
        """Distinct values, in order (missing as None)."""
        for v in distinct:
            if v is None:
                continue
            s = str(v)
            if s:
                self.seen.setdefault(s)
            else:
                self.empty = True

    def text(self, limit: int = MAX_LISTED) -> str | None:
        return _listed(list(self.seen), limit)

    def count(self) -> int:
        return len(self.seen) + self.empty


@dataclass
class Evidence:
    """One burst's rows so far (see the module docstring). `step`: how far a sequence rule got."""

    rule: Rule
    capture: Any = None
    n: int = 0
    frames: list[int] = field(default_factory=list)
    first_ns: int | None = None
    last_ns: int | None = None
    shown: dict[str, Distinct] = field(default_factory=dict)
    distinct: dict[str, set[Any]] = field(default_factory=dict)
    pairs: set[tuple[Any, Any]] = field(default_factory=set)
    step: int = 0

    @property
    def measures(self) -> set[str]:
        """The columns a count threshold counts the distinct values of."""
        return {t.measure for t in self.rule.threshold if t.measure != "count"}

    def add(self, rows: Rows, idx: list[int]) -> None:
        """Rows idx of `rows` (in burst order)."""
        if not idx:
            return
        if not self.n:
            self.capture = rows.capture[idx[0]]
        self.n += len(idx)
        frames = set(picked(rows.frame, idx))
        frames.discard(None)
        if len(self.frames) <= MAX_FRAMES or min(frames, default=self.frames[-1]) < self.frames[-1]:
            self.frames = heapq.nsmallest(MAX_FRAMES + 1, {int(f) for f in frames}.union(self.frames))
        times = [t for t in picked(rows.ts, idx) if t is not None]
        if times:
            lo, hi = min(times), max(times)
            self.first_ns = lo if self.first_ns is None else min(self.first_ns, lo)
            self.last_ns = hi if self.last_ns is None else max(self.last_ns, hi)
        measures = self.measures
        for name, col in rows.columns.items():
            distinct = dict.fromkeys(picked(col, idx))
            self.shown.setdefault(name, Distinct()).add(distinct)
            if name in measures:
                self.distinct.setdefault(name, set()).update(distinct)
                self.distinct[name].discard(None)
        if self.rule.after is not None:
            client, server = rows.columns.get("client_ip"), rows.columns.get("server_ip")
            none = [None] * len(idx)
            self.pairs.update(
                zip(picked(client, idx) if client else none, picked(server, idx) if server else none, strict=True)
            )

    def holds(self) -> bool:
        """A count rule's threshold (any of them) over the burst."""
        for t in self.rule.threshold:
            n = self.n if t.measure == "count" else len(self.distinct.get(t.measure, ()))
            if n >= t.minimum:
                return True
        return False


def _time(ns: int | None) -> Any:
    """A time as the tables hold it (a UTC Timestamp; NaT when unknown)."""
    return pd.NaT if ns is None else pd.Timestamp(ns, unit="ns", tz="UTC")


class _Format(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def finding(ev: Evidence, has: set[str]) -> dict[str, Any]:
    """The findings row of a burst (`has`: the columns the rule's source has, for its statuses)."""
    rule = ev.rule

    def shown(name: str, limit: int = MAX_LISTED) -> str | None:
        d = ev.shown.get(SHOWN[name])
        return d.text(limit) if d is not None else None

    frames = ev.frames
    arg = shown("argument", 3)
    if arg is not None and len(arg) > MAX_ARGUMENT:
        arg = arg[: MAX_ARGUMENT - 3] + "..."
    row = {
        "capture": ev.capture,
        "first_frame": frames[0] if frames else None,
        "frames": ";".join(map(str, frames[:MAX_FRAMES])) + (";..." if len(frames) > MAX_FRAMES else ""),
        "first_ts": _time(ev.first_ns),
        "last_ts": _time(ev.last_ns),
        "technique": rule.technique,
        "attack_id": rule.attack_id or None,
        "tactic": rule.tactic or None,
        "title": rule.title,
        "severity": rule.severity,
        "confidence": rule.confidence,
        "client_ip": shown("client"),
        "server_ip": shown("server"),
        "interface_name": shown("interface"),
        "operation": shown("operation", 8),
        "user": shown("user"),
        "argument": arg,
        "calls": ev.n,
    }
    count = {k: (ev.shown[SHOWN[k]].count() if SHOWN[k] in ev.shown else 0) for k in ("client", "server")}
    values = _Format(
        calls=str(ev.n),
        clients=str(count["client"]),
        servers=str(count["server"]),
        client=str(row["client_ip"]),
        server=str(row["server_ip"]),
        operations=str(row["operation"]),
        argument=str(arg or "not readable"),
        statuses=str(shown("status") if "status" in has else None),
        returns=str(shown("returns") if "return_status" in has else None),
        seconds=f"{(row['last_ts'] - row['first_ts']).total_seconds():.1f}",
        rule=rule.id,
    )
    row["detail"] = (rule.detail or rule.title).format_map(values) + f" (rule {rule.id})"
    return row
