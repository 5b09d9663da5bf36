"""Rules -> findings, in one pass over each source's chunks (`report.source`).

Each source (calls, binds, endpoints, attempts, violations) is read once, a chunk at a time, holding
only the columns its rules need (`select.Plan`). Per chunk the key columns are indexed once and each
rule takes its rows (`select.Selector`); those rows go to the rule's stream (`stream.RuleStream`),
which cuts them into groups and bursts and keeps each burst's evidence aggregated. The domain
controllers are learnt from the same chunks (`context.DomainControllers`); rules that ask for a
host's role (`client_role=host`) keep their selected rows until every table went by, then are
selected again with the roles. Violations are joined with the connections they happened on, read
for those connections only.

Then, in rule file order, each rule's bursts that satisfy `after` (a technique already found for the
same hosts) become findings, and findings that report the same technique between the same hosts in
overlapping time merge into one.

A burst is a run of a group's rows (ordered by time) with no gap longer than the rule's window_s: the
way the public thresholds are stated ("20 in 2 minutes", "10 hosts in 5 minutes").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from analyzer.findings.context import ROLES, DomainControllers, shaped, with_roles
from analyzer.findings.evidence import MAX_ARGUMENT, MAX_FRAMES, Rows, listed
from analyzer.findings.rules import CONFIDENCES, SEVERITIES, SOURCES, Rule
from analyzer.findings.schema import FINDINGS, empty, frame
from analyzer.findings.select import KeyIndex, Plan, Selector
from analyzer.findings.stream import Emitted, RuleStream
from analyzer.report.source import Source, empty_table
from analyzer.report.tables import CHUNK_ROWS

MERGE_GAP_S = 300.0  # findings of one technique and host pair this close are one finding
# Attempts rows held and given to the rules at once: a SYN flood's attempts table is a million rows,
# and a chunk's fixed cost (shaping, selecting, the columns' arrays) is paid per this many, not per chunk.
HELD_ATTEMPTS = 16_384
ROLE_TABLES = ("calls", "binds", "endpoints", "attempts")  # where domain controllers show


def _stream_key(capture: Any, stream: Any) -> tuple[str, int | None]:
    """A violation's or connection's (capture, stream), missing as None (NA compares to nothing)."""
    return str(capture), None if stream is None or stream is pd.NA else int(stream)


def _connections(source: Source) -> pd.DataFrame:
    """The connections the violations happened on: their addresses, pipe and start (as `ts`)."""
    streams: set[tuple[str, int | None]] = set()
    for chunk in source.chunks("violations", ["capture", "stream"]):
        streams.update(map(_stream_key, chunk["capture"].tolist(), chunk["stream"].tolist()))
    columns = Plan.connection_columns()
    kept = [empty_table("connections", columns)]
    for chunk in source.chunks("connections", columns) if streams else ():
        keys = map(_stream_key, chunk["capture"].tolist(), chunk["stream"].tolist())
        hit = np.fromiter((k in streams for k in keys), dtype=bool, count=len(chunk))
        if hit.any():
            kept.append(chunk[hit].astype({"capture": object}))
    where: pd.DataFrame = pd.concat(kept, ignore_index=True).astype({"capture": object})
    out: pd.DataFrame = where.rename(columns={"first_ts": "ts"})
    return out


def _chunks(source: Source, table: str, plan: Plan) -> Iterator[pd.DataFrame]:
    """A source's chunks with the columns its rules need; violations joined with their connections."""
    columns = plan.columns[table]
    if table != "violations":
        yield from source.chunks(table, columns)
        return
    where: pd.DataFrame | None = None
    for chunk in source.chunks("violations", columns):
        if where is None:
            where = _connections(source)
        yield chunk.astype({"capture": object}).merge(where, on=["capture", "stream"], how="left")


class _Run:
    """The rules' streams over every source, the rows kept for role rules, the domain controllers."""

    def __init__(self, rules: list[Rule]) -> None:
        self.plan = Plan.of(rules)
        self.order = self.plan.ordered  # the selectors in rule file order
        self.streams = {id(s): RuleStream(s.rule) for s in self.order}
        self.kept: dict[int, list[pd.DataFrame]] = {}
        self.dcs = DomainControllers() if any(s.deferred for s in self.order) else None
        self.rows = 0  # rows of the tables that can raise findings (calls, binds, endpoints, attempts)

    def source_pass(self, source: Source, table: str, only: list[Selector] | None = None) -> None:
        """One pass over a source read again (`only`: the rules whose rows came out of time order)."""
        for chunk in _chunks(source, table, self.plan):
            self.take(table, chunk, only)

    def reads(self, table: str) -> bool:
        """Whether the first pass reads this source: for its rules, or for the domain controllers."""
        return bool(self.plan.selectors[table]) or table in ROLE_TABLES

    def take(self, table: str, chunk: pd.DataFrame, only: list[Selector] | None = None) -> None:
        """One chunk of a source to its rules' streams (or kept: role rules and `only`)."""
        selectors = only if only is not None else self.plan.selectors[table]
        if only is None and table in ROLE_TABLES:
            self.rows += len(chunk)
            if self.dcs is not None:
                self.dcs.add(table, chunk)
        if not selectors:
            return
        df = shaped(table, chunk)
        index, has = KeyIndex(df), set(df.columns)
        for sel in selectors:
            mask = sel.mask(df, index)
            if not mask.any():
                continue
            rows = df[mask] if not mask.all() else df
            if sel.deferred or only is not None:
                self.kept.setdefault(id(sel), []).append(rows)
                continue
            stream = self.streams[id(sel)]
            if not stream.disordered:
                stream.feed(Rows(rows, sel.rule), has)

    def sorted_pass(self, sel: Selector, rows: pd.DataFrame | None) -> None:
        """A rule's rows (all of them) in time order, as the whole-table engine sorted them."""
        stream = self.streams[id(sel)] = RuleStream(sel.rule)
        if rows is None or rows.empty:
            return
        if not rows["ts"].is_monotonic_increasing:
            rows = rows.sort_values("ts", kind="stable")
        has = set(rows.columns) - set(ROLES)
        for start in range(0, len(rows), CHUNK_ROWS):
            stream.feed(Rows(rows.iloc[start : start + CHUNK_ROWS], sel.rule), has)

    def kept_rows(self, sel: Selector) -> pd.DataFrame | None:
        parts = self.kept.pop(id(sel), [])
        return pd.concat(parts, ignore_index=True) if parts else None

    def finish(self, source: Source) -> list[dict[str, Any]] | None:
        """After the first pass: each source again for a rule whose rows came out of time order, then
        the role rules; None when no table that can raise findings has rows."""
        for table in SOURCES:
            again = [s for s in self.plan.selectors[table] if self.streams[id(s)].disordered]
            if again:
                self.source_pass(source, table, again)
                for sel in again:
                    self.sorted_pass(sel, self.kept_rows(sel))
        if not self.rows:
            return None
        for sel in (s for s in self.order if s.deferred):
            rows = self.kept_rows(sel)
            if rows is not None and self.dcs is not None:
                rows = with_roles(rows, self.dcs.pairs)
                rows = rows[sel.again().mask(rows, KeyIndex(rows))].reset_index(drop=True)
            self.sorted_pass(sel, rows)
        return self.findings()

    def findings(self) -> list[dict[str, Any]]:
        """In rule file order, each rule's bursts whose `after` holds (a rule sees the findings before it)."""
        found: list[dict[str, Any]] = []
        for sel in self.order:
            out: list[dict[str, Any]] = []
            for e in self.streams[id(sel)].finish():
                if _after_ok(sel.rule, e, [*found, *out]):
                    out.append(e.row)
            found.extend(out)
        return found


def _after_ok(rule: Rule, e: Emitted, found: list[dict[str, Any]]) -> bool:
    if rule.after is None:
        return True
    cap, last = e.row["capture"], e.row["last_ts"]
    return any(
        f["technique"] == rule.after
        and f["capture"] == cap
        and f["first_ts"] <= last
        and any(c in str(f["client_ip"]).split(";") and s in str(f["server_ip"]).split(";") for c, s in e.pairs)
        for f in found
    )


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


class Findings:
    """The rules as a fold (`report.passes`, whose order it counts on): each source's chunks go to
    the rules as they go by; the violations are kept (one row per cap and connection, not per event)
    until the connections they happened on went by, then joined with them and given to the rules."""

    def __init__(self, rules: list[Rule]) -> None:
        self.run = _Run(rules)
        self.violations: list[pd.DataFrame] = []
        self.streams: set[tuple[str, int | None]] = set()
        self.where = [empty_table("connections", Plan.connection_columns())]
        self.found: list[dict[str, Any]] | None = None
        self.held: list[pd.DataFrame] = []  # attempts chunks not yet given to the rules
        self.held_rows = 0

    def wants(self, table: str) -> list[str] | None:
        if table == "connections":  # only where violations happened (none: no connection is looked up)
            return Plan.connection_columns() if self.violations else None
        if table not in SOURCES or not self.run.reads(table):
            return None
        return self.run.plan.columns[table]

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        if table == "violations":
            self.violations.append(chunk)
            self.streams.update(map(_stream_key, chunk["capture"].tolist(), chunk["stream"].tolist()))
        elif table == "connections":
            keys = map(_stream_key, chunk["capture"].tolist(), chunk["stream"].tolist())
            hit = np.fromiter((k in self.streams for k in keys), dtype=bool, count=len(chunk))
            if hit.any():
                self.where.append(chunk[hit].astype({"capture": object}))
        elif table == "attempts":
            self.held.append(chunk)
            self.held_rows += len(chunk)
            if self.held_rows >= HELD_ATTEMPTS:
                self._attempts()
        else:
            self.run.take(table, chunk)

    def _attempts(self) -> None:
        """The attempts rows held, to the rules as one chunk (in table order)."""
        if self.held:
            held = self.held[0] if len(self.held) == 1 else pd.concat(self.held, ignore_index=True)
            self.held, self.held_rows = [], 0
            self.run.take("attempts", held)

    def done(self, source: Source) -> None:
        self._attempts()
        if self.violations:
            where = pd.concat(self.where, ignore_index=True).astype({"capture": object})
            where = where.rename(columns={"first_ts": "ts"})
            for chunk in self.violations:
                joined = chunk.astype({"capture": object}).merge(where, on=["capture", "stream"], how="left")
                self.run.take("violations", joined)
            self.violations, self.where = [], []
        self.found = self.run.finish(source)

    def result(self) -> pd.DataFrame:
        """Every rule over the source's tables, most severe first; no rows either when no table that
        can raise findings (calls, binds, endpoints, attempts) has rows."""
        if self.found is None:
            return empty()
        df = frame(_merge(self.found))
        if df.empty:
            return df
        rank = df["severity"].map({s: -i for i, s in enumerate(SEVERITIES)})
        order = df.assign(_r=rank).sort_values(["_r", "capture", "first_ts", "first_frame"], kind="stable")
        out: pd.DataFrame = order.drop(columns="_r").reset_index(drop=True)[list(FINDINGS)]
        return out
