"""One burst's evidence, aggregated as its rows go by, and the findings row it becomes.

A finding shows the burst's first frames, its time span, the first few distinct hosts, operations,
users and arguments, and how many rows it had; a count rule's threshold needs the number of rows or
of distinct values of a column. `Evidence` keeps exactly that: the smallest MAX_FRAMES + 1 distinct
frames, the first and last time, and per shown column its distinct values in the order first seen
(bounded by distinct values, not by rows: a flood of a million rows from one client is one value).
The text it yields is the text the rows would give all at once (`listed` over the column).

`Rows` is the rows of one chunk a rule selected, as a view over the chunk's columns: a run of rows
(a flood's chunk is one, of one group) is aggregated from the column arrays (`Evidence.add_range`:
numpy for frames and times, the column's own `unique` for the shown values), so no Python object is
made per row; the per-row path reads the columns as Python lists, made when first asked for (one
conversion per chunk and column).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import cached_property
from sys import intern
from typing import Any

import numpy as np
import pandas as pd

from analyzer.findings.conditions import field_series
from analyzer.findings.rules import Rule

MAX_FRAMES = 25  # evidence frames listed per finding (calls says how many rows there were)
MAX_LISTED = 5  # distinct values listed in a text column (hosts, operations, users, arguments)
MAX_ARGUMENT = 300  # characters of the decisive argument
MIN_RUN = 64  # rows per run of one group, on average, for a chunk to be aggregated run by run
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


def _ns(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A time column as integer nanoseconds (int64) and where the time is known."""
    arr: Any = pd.to_datetime(values, utc=True).array
    arr = arr.as_unit("ns")
    ns: np.ndarray = arr.asi8
    known: np.ndarray = ~np.asarray(arr.isna(), dtype=bool)
    return ns, known


def _ints(values: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """An integer column as int64 and where it is known; None for another dtype (read as a list)."""
    if not pd.api.types.is_integer_dtype(values.dtype):
        return None
    known: np.ndarray = ~values.isna().to_numpy(dtype=bool)
    out: np.ndarray = values.to_numpy(dtype=np.int64, na_value=0)
    return out, known


def _listed_known(values: np.ndarray, known: np.ndarray) -> list[Any]:
    """Column values as a list, None where not known."""
    out: list[Any] = values.tolist()
    if not known.all():
        out = [v if k else None for v, k in zip(out, known.tolist(), strict=True)]
    return out


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
    """A rule's selected rows of one chunk (see the module docstring): times in nanoseconds and frames
    as int64 arrays, the shown and measured columns as Series; as lists (missing as None), the group
    keys as text tuples and a sequence rule's steps when the per-row path asks for them."""

    def __init__(self, df: pd.DataFrame, rule: Rule) -> None:
        self.n = len(df)
        self._df, self._rule = df, rule
        shown = set(SHOWN.values()) - {"_argument"}
        series = {c: df[c] for c in shown if c in df.columns}
        series["_argument"] = field_series(df, rule.argument)
        for t in rule.threshold:
            if t.measure != "count" and t.measure not in series:
                series[t.measure] = field_series(df, t.measure)
        self.series = series
        self.ts_ns, self.ts_known = _ns(df["ts"])
        self.frames = _ints(df["frame"])  # None: not an integer column (the per-row path reads it)
        self._keys = [df["capture"], *(field_series(df, k) for k in rule.group)]
        self.one_group = bool(self.n) and all(k.nunique(dropna=False) == 1 for k in self._keys)

    @cached_property
    def capture(self) -> list[Any]:
        out: list[Any] = self._df["capture"].tolist()
        return out

    @cached_property
    def frame(self) -> list[Any]:
        if self.frames is None:
            return _plain(self._df["frame"])
        return _listed_known(*self.frames)

    @cached_property
    def ts(self) -> list[int | None]:
        return _listed_known(self.ts_ns, self.ts_known)

    @cached_property
    def columns(self) -> dict[str, list[Any]]:
        return {c: _plain(v) for c, v in self.series.items()}

    @cached_property
    def keys(self) -> list[tuple[str, ...]]:
        if self.one_group:  # one group (a flood's chunk): its key once
            return [tuple(_texts([k.iloc[0]])[0] for k in self._keys)] * self.n
        return list(zip(*(_texts(k.tolist()) for k in self._keys), strict=True))

    @cached_property
    def steps(self) -> list[tuple[Any, Any]]:
        df = self._df
        ops = _plain(df["operation"].astype("string").str.lower())
        nums = _plain(df["opnum"].astype("string")) if "opnum" in df.columns else [None] * self.n
        return list(zip(ops, nums, strict=True))

    def capture_at(self, i: int) -> Any:
        return self._df["capture"].iloc[i]

    def runs(self) -> list[tuple[tuple[str, ...], int, int]] | None:
        """The rows as runs of one group each, every group in one run, found column-wise: (key, a, b)
        for rows a..b-1. A flood's chunk is one run, or a few (its clients one after the other); None
        when the groups interleave or change every few rows (the per-row path then)."""
        if self.one_group:
            return [(self.keys[0], 0, self.n)]
        change = np.zeros(max(self.n - 1, 0), dtype=bool)
        for k in self._keys:
            codes = pd.factorize(k, use_na_sentinel=True)[0]  # missing as one code (-1): one text
            change |= codes[1:] != codes[:-1]
        starts = [0, *(np.flatnonzero(change) + 1).tolist()]
        if len(starts) * MIN_RUN > self.n:
            return None
        keys = [tuple(_texts([k.iloc[a]])[0] for k in self._keys) for a in starts]
        if len(set(keys)) < len(keys):  # a group in two runs (or two values with one text)
            return None
        return list(zip(keys, starts, [*starts[1:], self.n], strict=True))

    def distinct(self, name: str, a: int, b: int) -> dict[Any, None]:
        """The distinct values of column `name` in rows a..b-1, in the order first seen, missing as
        None: `dict.fromkeys` over the list, from the column's `unique` (a hash table in C)."""
        values = self.series[name].iloc[a:b].unique()
        return dict.fromkeys(None if missing(v) else v for v in values.tolist())


@dataclass(slots=True)
class Distinct:
    """A column's distinct values: as text in the order first seen (`listed`), and whether an empty
    text was seen (counted as a value, never listed). The text is interned: a chunk's values are new
    objects, and the open bursts of a run's clients held each of their hosts' names once per burst."""

    seen: dict[str, None] = field(default_factory=dict)
    empty: bool = False

    def add(self, distinct: Iterable[Any]) -> None:
        """Distinct values, in order (missing as None)."""
        for v in distinct:
            if v is None:
                continue
            s = intern(str(v))
            if s:
                self.seen.setdefault(s)
            else:
                self.empty = True

    def text(self, limit: int = MAX_LISTED) -> str | None:
        return _listed(list(self.seen), limit)

    def count(self) -> int:
        return len(self.seen) + self.empty


# The pairs of a burst before any is kept (a rule without `after` keeps none): one empty set for all.
_NO_PAIRS: frozenset[tuple[Any, Any]] = frozenset()


@dataclass(slots=True)
class Evidence:
    """One burst's rows so far (see the module docstring). `step`: how far a sequence rule got."""

    rule: Rule
    capture: Any = None
    n: int = 0
    frames: list[int] = field(default_factory=list)
    first_ns: int | None = None
    last_ns: int | None = None
    shown: dict[str, Distinct] = field(default_factory=dict)  # the measured columns too (`holds` counts them)
    pairs: AbstractSet[tuple[Any, Any]] = _NO_PAIRS  # a set of its own for a rule with `after`
    step: int = 0

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
        for name, col in rows.columns.items():
            self._values(name, dict.fromkeys(picked(col, idx)))
        if self.rule.after is not None:
            client, server = rows.columns.get("client_ip"), rows.columns.get("server_ip")
            none = [None] * len(idx)
            pairs = self.pairs = self.pairs if isinstance(self.pairs, set) else set()
            pairs.update(
                zip(picked(client, idx) if client else none, picked(server, idx) if server else none, strict=True)
            )

    def add_range(self, rows: Rows, a: int, b: int) -> None:
        """`add` of rows a..b-1 (in burst order), from the column arrays: nothing made per row."""
        if b <= a:
            return
        if rows.frames is None or self.rule.after is not None:  # the per-row path (`pairs` are per row)
            self.add(rows, list(range(a, b)))
            return
        if not self.n:
            self.capture = rows.capture_at(a)
        self.n += b - a
        frames, known = rows.frames
        f = frames[a:b][known[a:b]]
        if f.size:
            head = f[: MAX_FRAMES + 1]  # frames come increasing (table order): the first are the smallest
            rising = bool((f[1:] > f[:-1]).all())
            low = (head if rising else np.unique(f)[: MAX_FRAMES + 1]).tolist()  # all `add` would keep
            if len(self.frames) <= MAX_FRAMES or low[0] < self.frames[-1]:
                self.frames = heapq.nsmallest(MAX_FRAMES + 1, set(low).union(self.frames))
        t = rows.ts_ns[a:b][rows.ts_known[a:b]]
        if t.size:
            lo, hi = int(t.min()), int(t.max())
            self.first_ns = lo if self.first_ns is None else min(self.first_ns, lo)
            self.last_ns = hi if self.last_ns is None else max(self.last_ns, hi)
        for name in rows.series:
            self._values(name, rows.distinct(name, a, b))

    def _values(self, name: str, distinct: dict[Any, None]) -> None:
        """A column's distinct values of rows added: shown, and counted when a threshold measures them.
        A column with none known adds nothing (shown and counted alike: no text, no value), and makes
        no `Distinct`: most bursts have no user, status or argument."""
        if all(v is None for v in distinct):
            return
        self.shown.setdefault(name, Distinct()).add(distinct)

    def holds(self) -> bool:
        """A count rule's threshold (any of them) over the burst."""
        for t in self.rule.threshold:
            shown = self.shown.get(t.measure)
            n = self.n if t.measure == "count" else 0 if shown is None else shown.count()
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
