"""Rules -> findings: select each rule's rows, group them, cut the groups into bursts, keep the bursts
that satisfy the rule, and describe each as one findings row; then merge the rows that report the same
technique between the same hosts in overlapping time.

A burst is a run of a group's rows (ordered by time) with no gap longer than the rule's window_s: the
way the public thresholds are stated ("20 in 2 minutes", "10 hosts in 5 minutes").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from analyzer.findings.conditions import evaluate, field_series
from analyzer.findings.context import Context
from analyzer.findings.rules import CONFIDENCES, SEVERITIES, Rule
from analyzer.findings.schema import FINDINGS, frame

MAX_FRAMES = 25  # evidence frames listed per finding (calls says how many rows there were)
MAX_LISTED = 5  # distinct values listed in a text column (hosts, operations, users, arguments)
MAX_ARGUMENT = 300  # characters of the decisive argument
MERGE_GAP_S = 300.0  # findings of one technique and host pair this close are one finding
_ITERATED_ROWS = 100_000  # a rule's rows up to which its groups come from iterating the group-by
_NA_KEY = "\x00"  # group keys may be missing; pandas drops missing keys


def _matches(values: pd.Series, wanted: Iterable[str]) -> pd.Series:
    text = values.astype("string").str.lower()
    mask = pd.Series(False, index=values.index)
    for w in wanted:
        mask |= text.str.startswith(w[:-1], na=False) if w.endswith("*") else (text == w).fillna(False)
    out: pd.Series = mask.astype(bool)
    return out


def select(df: pd.DataFrame, rule: Rule) -> pd.Series:
    """The rows a rule looks at: its interface, any of its operations (of any step), its conditions."""
    mask = pd.Series(True, index=df.index)
    if rule.interface:
        by_name = _matches(df["interface_name"], rule.interface)
        by_uuid = _matches(df["interface_uuid"], rule.interface) if "interface_uuid" in df.columns else by_name
        mask &= by_name | by_uuid
    if rule.operations:
        ops = [o for step in rule.operations for o in step]
        hit = _matches(df["operation"], ops)
        if "opnum" in df.columns:
            hit |= _matches(df["opnum"].astype("string"), ops)
        mask &= hit
    if mask.any() and rule.when:
        sub = df[mask]
        mask.loc[sub.index] = evaluate(sub, rule.when)
    out: pd.Series = mask.astype(bool)
    return out


def bursts(rows: pd.DataFrame, window_s: float) -> list[pd.DataFrame]:
    """Rows (sorted by ts) cut wherever more than window_s passes between two of them; an unknown time
    never cuts. Slices, not a group-by: this runs once per rule and host pair, and a group-by per call
    was most of the findings' time on a large capture."""
    if len(rows) < 2:
        return [rows]
    gaps = rows["ts"].diff().dt.total_seconds().to_numpy(dtype=float, na_value=0.0)
    cuts = np.flatnonzero(gaps > window_s).tolist()
    edges = [0, *cuts, len(rows)]
    return [rows.iloc[a:b] for a, b in pairwise(edges)]


def _step_rows(burst: pd.DataFrame, rule: Rule) -> pd.DataFrame | None:
    """The rows of a burst that make the rule's steps happen in order; None when they do not."""
    ops = burst["operation"].astype("string").str.lower().tolist()
    opnums = burst["opnum"].astype("string").tolist() if "opnum" in burst.columns else [None] * len(ops)
    step, keep = 0, []
    for i, (op, num) in enumerate(zip(ops, opnums, strict=True)):
        for s in range(min(step + 1, len(rule.operations))):
            alts = rule.operations[s]
            if any(op == a or num == a or (a.endswith("*") and str(op).startswith(a[:-1])) for a in alts):
                keep.append(i)
                step = max(step, s + 1)
                break
    return burst.iloc[keep] if step == len(rule.operations) else None


def _holds(burst: pd.DataFrame, rule: Rule) -> bool:
    for t in rule.threshold:
        n = len(burst) if t.measure == "count" else field_series(burst, t.measure).nunique(dropna=True)
        if n >= t.minimum:
            return True
    return False


def listed(values: Iterable[Any], limit: int = MAX_LISTED) -> str | None:
    seen: list[str] = []
    for v in values:
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            continue
        s = str(v)
        if s and s not in seen:
            seen.append(s)
    if not seen:
        return None
    more = len(seen) - limit
    return ";".join(seen[:limit]) + (f";(+{more} more)" if more > 0 else "")


class _Format(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _finding(rule: Rule, ev: pd.DataFrame) -> dict[str, Any]:
    frames = sorted({int(f) for f in ev["frame"].dropna().tolist()})
    arg = listed(field_series(ev, rule.argument).tolist(), 3)
    if arg is not None and len(arg) > MAX_ARGUMENT:
        arg = arg[: MAX_ARGUMENT - 3] + "..."
    row = {
        "capture": ev["capture"].iloc[0],
        "first_frame": frames[0] if frames else None,
        "frames": ";".join(map(str, frames[:MAX_FRAMES])) + (";..." if len(frames) > MAX_FRAMES else ""),
        "first_ts": ev["ts"].min(),
        "last_ts": ev["ts"].max(),
        "technique": rule.technique,
        "attack_id": rule.attack_id or None,
        "tactic": rule.tactic or None,
        "title": rule.title,
        "severity": rule.severity,
        "confidence": rule.confidence,
        "client_ip": listed(ev["client_ip"].tolist()),
        "server_ip": listed(ev["server_ip"].tolist()),
        "interface_name": listed(ev["interface_name"].tolist()),
        "operation": listed(ev["operation"].tolist(), 8),
        "user": listed(ev["identity"].tolist()),
        "argument": arg,
        "calls": len(ev),
    }
    values = _Format(
        calls=str(len(ev)),
        clients=str(ev["client_ip"].nunique()),
        servers=str(ev["server_ip"].nunique()),
        client=str(row["client_ip"]),
        server=str(row["server_ip"]),
        operations=str(row["operation"]),
        argument=str(arg or "not readable"),
        statuses=str(listed(ev["status"].tolist()) if "status" in ev.columns else None),
        returns=str(listed(ev["return_status"].tolist()) if "return_status" in ev.columns else None),
        seconds=f"{(row['last_ts'] - row['first_ts']).total_seconds():.1f}",
        rule=rule.id,
    )
    row["detail"] = (rule.detail or rule.title).format_map(values) + f" (rule {rule.id})"
    return row


def _after_ok(rule: Rule, ev: pd.DataFrame, found: list[dict[str, Any]]) -> bool:
    if rule.after is None:
        return True
    cap, last = ev["capture"].iloc[0], ev["ts"].max()
    pairs = set(zip(ev["client_ip"].tolist(), ev["server_ip"].tolist(), strict=True))
    return any(
        f["technique"] == rule.after
        and f["capture"] == cap
        and f["first_ts"] <= last
        and any(c in str(f["client_ip"]).split(";") and s in str(f["server_ip"]).split(";") for c, s in pairs)
        for f in found
    )


def _group_key(values: pd.Series) -> pd.Series:
    """A column as a group key: text, a missing value as _NA_KEY (pandas drops missing keys)."""
    if isinstance(values.dtype, pd.CategoricalDtype):  # a compact table's text: its codes group it
        if not values.hasnans:
            return values
        return values.cat.add_categories([_NA_KEY]).fillna(_NA_KEY)
    text = values.astype("string")
    return text.fillna(_NA_KEY) if text.hasnans else text


def _groups(keyed: pd.DataFrame, grouped: Any) -> Iterator[pd.DataFrame]:
    """A rule's groups in key order. A large source (a flood) or a compact one is taken a group at a
    time, since iterating the group-by would first copy it whole, sorted by group; a small one is
    iterated, which is faster with many groups. Compact keys are categories, ordered by their text here."""
    compact = any(isinstance(t, pd.CategoricalDtype) for t in keyed.dtypes)
    if len(keyed) <= _ITERATED_ROWS and not compact:
        yield from (group for _, group in grouped)
        return
    where = grouped.indices
    for key in sorted(where):
        yield keyed.take(where[key])


def run_rule(rule: Rule, df: pd.DataFrame, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings of one rule over its source's rows (`found`: earlier findings, for `after`)."""
    if df.empty:
        return []
    mask = select(df, rule)
    # every row selected (a flood of one kind): the source itself, not a copy of it
    rows = df if bool(mask.all()) else df[mask]
    if rows.empty:
        return []
    keys = ["capture", *rule.group]
    keyed = rows.assign(**{f"_k{i}": _group_key(field_series(rows, k)) for i, k in enumerate(keys)})
    if not keyed["ts"].is_monotonic_increasing:  # sorting what is in order already copies every column
        keyed = keyed.sort_values("ts", kind="stable")
    out: list[dict[str, Any]] = []
    grouped = keyed.groupby([f"_k{i}" for i in range(len(keys))], sort=True, observed=True)
    for group in _groups(keyed, grouped):
        for burst in bursts(group, rule.window_s):
            ev: pd.DataFrame | None = burst
            if rule.kind == "sequence":
                ev = _step_rows(burst, rule)
            elif rule.kind == "count" and not _holds(burst, rule):
                ev = None
            if ev is not None and not ev.empty and _after_ok(rule, ev, [*found, *out]):
                out.append(_finding(rule, ev))
    return out


def _joined_arguments(a: str | None, b: str | None) -> str | None:
    """Both arguments of merged findings (each says something the other may not), capped."""
    if not a or not b or b in a:
        return a or b
    if a in b:
        return b
    both = f"{a} | {b}"
    return both if len(both) <= MAX_ARGUMENT else both[: MAX_ARGUMENT - 3] + "..."


def _merge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per technique, host pair and burst: rows overlapping in time (within MERGE_GAP_S) join,
    keeping the highest severity and confidence, every evidence frame, and the first argument found."""
    rows = sorted(
        rows, key=lambda r: (r["capture"], r["technique"], str(r["client_ip"]), str(r["server_ip"]), r["first_ts"])
    )
    out: list[dict[str, Any]] = []
    for r in rows:
        prev = out[-1] if out else None
        same = prev is not None and all(prev[k] == r[k] for k in ("capture", "technique", "client_ip", "server_ip"))
        if prev is None or not same or (r["first_ts"] - prev["last_ts"]).total_seconds() > MERGE_GAP_S:
            out.append(dict(r))
            continue
        frames = sorted({int(f) for f in f"{prev['frames']};{r['frames']}".split(";") if f.isdigit()})
        better = SEVERITIES.index(r["severity"]) > SEVERITIES.index(prev["severity"])
        prev.update(
            first_frame=min(prev["first_frame"], r["first_frame"]),
            frames=";".join(map(str, frames[:MAX_FRAMES])) + (";..." if len(frames) > MAX_FRAMES else ""),
            last_ts=max(prev["last_ts"], r["last_ts"]),
            calls=max(prev["calls"], r["calls"]),
            operation=listed([*str(prev["operation"]).split(";"), *str(r["operation"]).split(";")], 8),
            user=prev["user"] or r["user"],
            argument=_joined_arguments(prev["argument"], r["argument"]),
            confidence=max(prev["confidence"], r["confidence"], key=CONFIDENCES.index),
        )
        if better:
            prev.update(severity=r["severity"], title=r["title"], detail=r["detail"], attack_id=r["attack_id"])
    return out


def run_rules(rules: list[Rule], ctx: Context) -> pd.DataFrame:
    """Every rule over its source, in file order (a rule with `after` sees the findings before it)."""
    found: list[dict[str, Any]] = []
    for rule in rules:
        found.extend(run_rule(rule, ctx.sources[rule.source], found))
    merged = _merge(found)
    df = frame(merged)
    if df.empty:
        return df
    rank = df["severity"].map({s: -i for i, s in enumerate(SEVERITIES)})
    order = df.assign(_r=rank).sort_values(["_r", "capture", "first_ts", "first_frame"], kind="stable")
    out: pd.DataFrame = order.drop(columns="_r").reset_index(drop=True)[list(FINDINGS)]
    return out
