"""Which rows of a chunk each rule looks at, with the key columns indexed once per chunk.

A rule names interfaces (names or UUIDs, `*` a trailing wildcard) and operations (names or opnums).
Those columns hold few distinct values, so each chunk's key columns are factorised once (`KeyIndex`:
codes and distinct values; a categorical column is its codes already), each rule decides once per
distinct value whether it wants it (`Wanted`, remembered across chunks), and a rule's rows are its
wanted values' codes: no per-rule text operation over the chunk, the fixed cost that made 57 rules
cost 57 pandas passes. The `when` conditions (`conditions.py`) then run on those rows only.

`Plan` says, per source, which rules read it and which table columns they need: a chunk holds only
those columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analyzer.findings.conditions import Condition, evaluate
from analyzer.findings.context import COMMON, CONNECTION_COLUMNS, DC_COLUMNS, JOINED, RENAMED, ROLES
from analyzer.findings.rules import SOURCES, Rule
from analyzer.report.source import TABLES
from analyzer.report.vector import one_value

# What every rule reads besides its own fields: its keys and what a finding shows (`evidence.finding`).
READ: tuple[str, ...] = ("capture", "frame", "ts", "client_ip", "server_ip", "interface_name", "interface_uuid")
READ += ("operation", "opnum", "identity", "status", "return_status")


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


class Wanted:
    """Whether a rule wants a key value: `values` compared lower-case, `x*` a prefix (as `_matches`
    compares a column), decided once per distinct value."""

    def __init__(self, values: Iterable[str]) -> None:
        self.exact = {v for v in values if not v.endswith("*")}
        self.prefixes = tuple(v[:-1] for v in values if v.endswith("*"))
        self._seen: dict[Any, bool] = {}

    def __call__(self, value: Any) -> bool:
        hit = self._seen.get(value)
        if hit is None:
            text = str(value).lower()
            hit = text in self.exact or text.startswith(self.prefixes)
            self._seen[value] = hit
        return hit

    def mask(self, column: tuple[np.ndarray, list[Any]] | None, n: int) -> np.ndarray:
        """The rows whose value this rule wants (a missing value never: NA matches nothing)."""
        if column is None:
            return np.zeros(n, dtype=bool)
        codes, uniques = column
        ok = np.fromiter((self(u) for u in uniques), dtype=bool, count=len(uniques))
        out: np.ndarray = np.append(ok, False)[codes]  # code -1 (missing) picks the appended False
        return out


class KeyIndex:
    """A chunk's key columns as (codes, distinct values), made when first asked for."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self._columns: dict[str, tuple[np.ndarray, list[Any]] | None] = {}
        self._orders: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def column(self, name: str) -> tuple[np.ndarray, list[Any]] | None:
        if name not in self._columns:
            self._columns[name] = self._factorise(name)
        return self._columns[name]

    def first(self, name: str, codes: np.ndarray) -> np.ndarray:
        """The first row holding each of `codes` (-1: a missing value) in column `name`."""
        column = self.column(name)
        assert column is not None
        if name not in self._orders:
            order = np.argsort(column[0], kind="stable")
            self._orders[name] = (order, column[0][order])
        order, ordered = self._orders[name]
        out: np.ndarray = order[np.searchsorted(ordered, codes, side="left")]
        return out

    def _factorise(self, name: str) -> tuple[np.ndarray, list[Any]] | None:
        if name not in self.df.columns:
            return None
        col = self.df[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            return col.cat.codes.to_numpy(), list(col.cat.categories)
        if one_value(col):  # a flood's chunk: one value throughout
            return np.zeros(len(col), dtype=np.intp), col.iloc[:1].tolist()
        codes, uniques = pd.factorize(col, use_na_sentinel=True)
        values = [u for u in uniques.tolist()]
        return codes, values


def _uses_roles(rule: Rule) -> bool:
    refs = {c.field for c in rule.when} | {v[1:] for c in rule.when for v in c.values if v.startswith("$")}
    fields = refs | set(rule.group) | {t.measure for t in rule.threshold} | {rule.argument}
    return bool(fields & set(ROLES))


@dataclass
class Selector:
    """One rule's selection: interface and operations by key index, then its conditions. A rule that
    needs the hosts' roles (`deferred`) is given its rows without the conditions on roles here; the
    engine selects them again once the domain controllers are known."""

    rule: Rule
    interface: Wanted | None = None
    operations: Wanted | None = None
    conditions: tuple[Condition, ...] = ()
    deferred: bool = False
    known: dict[Condition, dict[Any, bool]] = field(default_factory=dict)  # per condition: value -> holds

    @classmethod
    def of(cls, rule: Rule) -> Selector:
        ops = [o for step in rule.operations for o in step]
        deferred = _uses_roles(rule)
        kept = tuple(c for c in rule.when if not deferred or not _mentions_roles(c))
        return cls(
            rule, Wanted(rule.interface) if rule.interface else None, Wanted(ops) if ops else None, kept, deferred
        )

    def again(self) -> Selector:
        """The same selection with every condition (a deferred rule's, once the roles are known)."""
        return Selector(self.rule, self.interface, self.operations, self.rule.when)

    def mask(self, df: pd.DataFrame, index: KeyIndex) -> np.ndarray:
        """The chunk's rows this rule looks at (as the whole table's `select` would take them)."""
        n = len(df)
        mask = np.ones(n, dtype=bool)
        if self.interface is not None:
            by_name = self.interface.mask(index.column("interface_name"), n)
            if "interface_uuid" in df.columns:
                by_name |= self.interface.mask(index.column("interface_uuid"), n)
            mask &= by_name
        if self.operations is not None and mask.any():
            hit = self.operations.mask(index.column("operation"), n)
            if "opnum" in df.columns:
                hit |= self.operations.mask(index.column("opnum"), n)
            mask &= hit
        for cond in self.conditions:
            if not mask.any():
                break
            mask &= _holds(cond, df, index, mask, self.known.setdefault(cond, {}))
        return mask


_NA = object()  # a missing value, as a key of the values a condition was decided for


def _holds(cond: Condition, df: pd.DataFrame, index: KeyIndex, mask: np.ndarray, known: dict[Any, bool]) -> np.ndarray:
    """Where one condition holds, among the rows of `mask`. A condition on one column (or on one
    decoded argument) depends on that column's value only: it is evaluated once per distinct value
    (on the first row holding it, remembered in `known` across chunks) and read back through the
    codes; one that compares two columns is evaluated row by row."""
    refs = any(v.startswith("$") for v in cond.values)
    column = "arguments_json" if cond.field.startswith("arg.") else cond.field
    keyed = index.column(column) if not refs and column in df.columns else None
    if keyed is None:
        where = np.flatnonzero(mask)
        rows = np.zeros(len(df), dtype=bool)
        rows[where] = evaluate(df.iloc[where], (cond,)).to_numpy(dtype=bool)
        return rows
    codes, uniques = keyed
    wanted = np.unique(codes[mask]).tolist()
    values = [uniques[c] if c >= 0 else _NA for c in wanted]
    new = [c for c, v in zip(wanted, values, strict=True) if v not in known]
    if new:
        decided = evaluate(df.iloc[index.first(column, np.array(new))], (cond,)).tolist()
        known.update(zip((uniques[c] if c >= 0 else _NA for c in new), decided, strict=True))
    ok = np.zeros(len(uniques) + 1, dtype=bool)  # the last entry: a missing value (code -1)
    ok[wanted] = [known[v] for v in values]
    out: np.ndarray = ok[codes]
    return out


def _mentions_roles(c: Condition) -> bool:
    return c.field in ROLES or any(v[1:] in ROLES for v in c.values if v.startswith("$"))


def _rule_fields(rule: Rule) -> set[str]:
    out = {c.field for c in rule.when} | {v[1:] for c in rule.when for v in c.values if v.startswith("$")}
    return out | set(rule.group) | {t.measure for t in rule.threshold} | {rule.argument}


def table_columns(table: str, fields: Iterable[str]) -> list[str]:
    """The columns of `table` that give the shaped fields (`arg.*` from arguments_json, identity from
    user and domain, renamed and joined columns from where they come), in table order."""
    renamed = RENAMED.get(table, {})
    want: set[str] = set()
    for f in fields:
        if f.startswith("arg."):
            want.add("arguments_json")
        elif f == "identity":
            want.update(("user", "domain"))
        elif table == "violations" and f in JOINED:
            want.add("stream")
        else:
            want.add(renamed.get(f, f))
    want.update(("capture", "stream") if table == "violations" else ())
    return [c for c in TABLES[table] if c in want]


@dataclass
class Plan:
    """Per source, its rules' selectors and the table columns a chunk of it must hold."""

    selectors: dict[str, list[Selector]] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)
    ordered: list[Selector] = field(default_factory=list)  # every selector, in rule file order

    @classmethod
    def of(cls, rules: list[Rule]) -> Plan:
        plan = cls({s: [] for s in SOURCES})
        fields: dict[str, set[str]] = {s: set(READ) | set(COMMON) for s in SOURCES}
        for rule in rules:
            sel = Selector.of(rule)
            plan.selectors[rule.source].append(sel)
            plan.ordered.append(sel)
            fields[rule.source] |= _rule_fields(rule)
        for s in SOURCES:
            cols = table_columns(s, fields[s] - set(ROLES))
            plan.columns[s] = [*cols, *(c for c in DC_COLUMNS.get(s, ()) if c not in cols)]
        return plan

    @staticmethod
    def connection_columns() -> list[str]:
        return ["capture", "stream", *CONNECTION_COLUMNS]
