"""Sigma rules on captures, evaluated by pySigma (the reference implementation; no Sigma parser here).

Rules are read from a path with `SigmaCollection.load_ruleset` and converted to SQL by the pySigma SQLite
backend through a processing pipeline that maps their logsources onto in-memory tables built from ours
(`analyzer.report.zeek_names`):

    product zeek, service dce_rpc   -> table dce_rpc       (Zeek dce_rpc.log fields; src_ip -> id.orig_h)
    product zeek, service smb_files -> table smb_files     (one row per named-pipe conversation)
    product rpc_firewall            -> table rpc_firewall  (RPC Firewall event 3: InterfaceUuid, OpNum, ...)

Other logsources fail conversion with a clear message. Every match becomes a findings row: technique
and ATT&CK id from the rule's `attack.tNNNN` tags (the most specific), tactic from its tactic tags,
severity from its level, `detail` naming the rule id and title. Comparison is case-insensitive, as
Sigma requires (the backend's collate_nocase option); keywords (values without a field) are searched in
a column holding the row's values (the backend's fulltext_field).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from analyzer.findings.context import identity
from analyzer.findings.evidence import MAX_ARGUMENT, MAX_LISTED, listed
from analyzer.findings.schema import FINDINGS, empty, frame
from analyzer.report import zeek_names

TABLES = {("zeek", "dce_rpc"): "dce_rpc", ("zeek", "smb_files"): "smb_files", ("rpc_firewall", None): "rpc_firewall"}
_LEVELS = {"informational": "info", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
_TECHNIQUE_TAG = re.compile(r"^t\d{4}(\.\d{3})?$")
BURST_S = 300.0
# Sigma keywords (values without a field) match anywhere in an event: every view has this column, the
# row's values one per line.
FULLTEXT = "_text"


class SigmaRuleError(ValueError):
    """Rules that cannot be read or converted: the message names the file or rule and why."""


@dataclass
class Converted:
    """One rule, the table its logsource maps to and its SQL queries."""

    rule: Any  # sigma.rule.SigmaRule
    table: str
    queries: list[str]

    @property
    def id(self) -> str:
        return str(self.rule.id) if self.rule.id else str(self.rule.title)


def _pipeline() -> Any:
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import (
        FieldMappingTransformation,
        RuleFailureTransformation,
        SetStateTransformation,
    )

    def conditions() -> list[Any]:  # a condition belongs to one processing item: fresh ones each time
        return [LogsourceCondition(product=p, service=s) for (p, s) in TABLES]

    items = [
        ProcessingItem(
            identifier=f"rpc_analyzer_table_{table}",
            transformation=SetStateTransformation("table", table),
            rule_conditions=[cond],
        )
        for cond, table in zip(conditions(), TABLES.values(), strict=True)
    ]
    items.append(
        ProcessingItem(
            identifier="rpc_analyzer_zeek_field_names",
            transformation=FieldMappingTransformation(cast(Any, dict(zeek_names.SIGMA_ZEEK_ALIASES))),
            rule_conditions=[LogsourceCondition(product="zeek")],
        )
    )
    items.append(
        ProcessingItem(
            identifier="rpc_analyzer_unsupported_logsource",
            transformation=RuleFailureTransformation(
                "rpc-analyzer evaluates only the logsources zeek/dce_rpc, zeek/smb_files and rpc_firewall"
            ),
            rule_conditions=conditions(),
            rule_condition_linking=any,
            rule_condition_negation=True,
        )
    )
    return ProcessingPipeline(name="rpc-analyzer tables", priority=20, items=items)


def load(paths: Iterable[str | Path]) -> Any:
    """The Sigma rules in paths (files or directories of .yml), as a pySigma SigmaCollection."""
    import yaml
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError

    try:
        return SigmaCollection.load_ruleset([Path(p) for p in paths])
    except (SigmaError, OSError, ValueError, yaml.YAMLError) as e:
        raise SigmaRuleError(f"cannot load the Sigma rules: {e}") from None


def convert(collection: Any) -> tuple[list[Converted], list[str]]:
    """Every rule of the collection converted to SQLite queries over our tables, and one message per rule
    that pySigma cannot convert (e.g. the retired `| count() by` aggregation syntax of Sigma 66a0bdc6)."""
    from sigma.backends.sqlite import sqlite
    from sigma.exceptions import SigmaError

    backend: Any = cast(Any, sqlite.sqliteBackend)(_pipeline(), collate_nocase=True, fulltext_field=FULLTEXT)
    out, errors = [], []
    for rule in collection.rules:
        ls = rule.logsource
        table = TABLES.get((ls.product, ls.service)) or TABLES.get((ls.product, None))
        try:
            queries = backend.convert_rule(rule)
        except SigmaError as e:
            errors.append(f"Sigma rule {rule.id} ({rule.title}) not evaluated: {e}")
            continue
        if table is None:  # the pipeline fails such rules already; kept as a guard
            errors.append(f"Sigma rule {rule.id} ({rule.title}) not evaluated: logsource {ls} is not supported")
            continue
        out.append(Converted(rule, table, [str(q) for q in queries]))
    return out, errors


def _regexp(pattern: str, value: object) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


def _database(calls: pd.DataFrame, connections: pd.DataFrame) -> sqlite3.Connection:
    """The three views in an in-memory SQLite, each row keyed by _row (its row in calls/connections)."""
    db = sqlite3.connect(":memory:")
    db.create_function("REGEXP", 2, _regexp, deterministic=True)
    views = {
        "dce_rpc": zeek_names.sigma_dce_rpc(calls),
        "rpc_firewall": zeek_names.rpc_firewall(calls),
        "smb_files": zeek_names.smb_files(connections),
    }
    for name, df in views.items():
        plain = df.astype(object).where(df.notna(), None)
        plain[FULLTEXT] = ["\n".join(str(v) for v in row if v is not None) for row in plain.itertuples(index=False)]
        plain.insert(0, "_row", df.index.astype(int))
        plain.to_sql(name, db, index=False)
    return db


def _tags(rule: Any) -> tuple[str | None, str | None]:
    """(most specific ATT&CK technique id, tactics) from the rule's attack.* tags."""
    techniques: list[str] = []
    tactics: list[str] = []
    for tag in rule.tags:
        if str(tag.namespace).lower() != "attack":
            continue
        name = str(tag.name).lower()
        (techniques if _TECHNIQUE_TAG.match(name) else tactics).append(name)
    best = max(techniques, key=lambda t: (len(t), t), default=None)
    return (best.upper() if best else None), (";".join(tactics) or None)


def _argument(rows: pd.DataFrame) -> str | None:
    """The decoded arguments of the matched calls, as findings show them."""
    if "arguments" not in rows:
        return None
    text = listed(rows["arguments"].tolist(), 3)
    return text if text is None or len(text) <= MAX_ARGUMENT else text[: MAX_ARGUMENT - 3] + "..."


def bursts(rows: pd.DataFrame, window_s: float) -> list[pd.DataFrame]:
    """Rows (sorted by ts) cut wherever more than window_s passes between two of them; an unknown time
    never cuts (the rule engine's bursts, `findings.stream`, over a match's rows)."""
    if len(rows) < 2:
        return [rows]
    gaps = rows["ts"].diff().dt.total_seconds().to_numpy(dtype=float, na_value=0.0)
    cuts = np.flatnonzero(gaps > window_s).tolist()
    edges = [0, *cuts, len(rows)]
    return [rows.iloc[a:b] for a, b in pairwise(edges)]


def _rows(c: Converted, ev: pd.DataFrame) -> list[dict[str, Any]]:
    technique, tactic = _tags(c.rule)
    level = _LEVELS.get(str(c.rule.level.name).lower() if c.rule.level else "", "medium")
    out = []
    for _, group in ev.groupby(["capture", "client_ip", "server_ip"], sort=True, dropna=False):
        for burst in bursts(group.sort_values("ts", kind="stable"), BURST_S):
            frames = sorted({int(f) for f in burst["frame"].dropna().tolist()})
            out.append(
                {
                    "capture": burst["capture"].iloc[0],
                    "first_frame": frames[0] if frames else None,
                    "frames": ";".join(map(str, frames[:25])) + (";..." if len(frames) > 25 else ""),
                    "first_ts": burst["ts"].min(),
                    "last_ts": burst["ts"].max(),
                    "technique": technique or f"sigma:{c.id}",
                    "attack_id": technique,
                    "tactic": tactic,
                    "title": str(c.rule.title),
                    "severity": level,
                    "confidence": "likely",
                    "client_ip": burst["client_ip"].iloc[0],
                    "server_ip": burst["server_ip"].iloc[0],
                    "interface_name": listed(burst["interface_name"].tolist()) if "interface_name" in burst else None,
                    "operation": listed(burst["operation"].tolist(), MAX_LISTED) if "operation" in burst else None,
                    "user": listed(identity(burst).tolist()) if "user" in burst else None,
                    "argument": _argument(burst),
                    "calls": len(burst),
                    "detail": f"Sigma rule {c.id} '{c.rule.title}' matched {len(burst)} row(s) of its {c.table} view",
                }
            )
    return out


def evaluate(converted: list[Converted], calls: pd.DataFrame, connections: pd.DataFrame) -> pd.DataFrame:
    """The matches of the converted rules over one run's calls and connections, as findings rows."""
    if not converted or (calls.empty and connections.empty):
        return empty()
    calls = calls.reset_index(drop=True)
    connections = connections.reset_index(drop=True)
    db = _database(calls, connections)
    rows: list[dict[str, Any]] = []
    try:
        for c in converted:
            hit: set[int] = set()
            for q in c.queries:
                hit.update(int(r[0]) for r in db.execute(q.replace("SELECT *", "SELECT _row", 1)))
            if not hit:
                continue
            source = (
                connections.rename(columns={"first_ts": "ts", "first_frame": "frame"})
                if c.table == "smb_files"
                else calls
            )
            rows.extend(_rows(c, source.loc[sorted(hit)]))
    finally:
        db.close()
    out: pd.DataFrame = frame(rows)[list(FINDINGS)]
    return out


def sigma_findings(paths: Iterable[str | Path], calls: pd.DataFrame, connections: pd.DataFrame) -> pd.DataFrame:
    """Load, convert and evaluate the Sigma rules in paths over one run's tables (rules that cannot be
    converted are skipped; `convert` says why)."""
    return evaluate(convert(load(paths))[0], calls, connections)
