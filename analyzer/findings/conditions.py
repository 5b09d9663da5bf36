"""The `when` language of a rule: conditions on a row's columns and decoded arguments, evaluated over a
whole DataFrame at once.

    when      := condition (";" condition)*          every condition must hold
    condition := FIELD OP VALUE
    FIELD     := a column of the rule's source (status, return_status, request_bytes, user, ...),
                 `arg.KEY` (a key of the decoded `arguments_json`, e.g. arg.binary_path), or the context
                 columns client_role / server_role (`dc` or `host`, see context.py)
    OP        := =  !=  ~ (contains)  !~ (contains none)  ^ (starts with)  % / !% (a Python regular
                 expression found / not found; its | is the regex's, not an alternative)  >=  >  <=  <
    VALUE     := alternatives joined with "|" (any may match; for != and !~ none may), compared
                 case-insensitively; `$COLUMN` compares with another column of the same row; `none`
                 with = / != asks whether the field is missing.

A condition on a missing field is false (nothing can be asserted about what was not decoded), except
`FIELD=none`. A `$COLUMN` reference that is itself missing contradicts nothing: `!=`/`!~` hold.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

_COND_RE = re.compile(r"^\s*([a-z_][a-z0-9_.]*)\s*(!=|!~|!%|>=|<=|=|~|%|\^|>|<)\s*(.*?)\s*$")
_NUMERIC_OPS = (">=", ">", "<=", "<")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.field}{self.op}{'|'.join(self.values)}"


def parse_conditions(text: str) -> tuple[Condition, ...]:
    """'status=ok; arg.count>=100' -> conditions; ValueError naming the bad part."""
    out = []
    for part in text.split(";"):
        if not part.strip():
            continue
        m = _COND_RE.match(part)
        if not m:
            raise ValueError(f"condition {part.strip()!r} is not FIELD OP VALUE (OP one of = != ~ !~ ^ % !% >= > <= <)")
        field, op, value = m.groups()
        if op in ("%", "!%"):
            try:
                re.compile(value)
            except re.error as e:
                raise ValueError(f"condition {part.strip()!r}: bad regular expression ({e})") from None
            values: tuple[str, ...] = (value,)
        else:
            values = tuple(v.strip() for v in value.split("|")) if value else ("",)
        if op in _NUMERIC_OPS:
            for v in values:
                try:
                    float(v)
                except ValueError:
                    raise ValueError(f"condition {part.strip()!r}: {op} needs a number") from None
        out.append(Condition(field, op, values))
    return tuple(out)


def _find(obj: Any, key: str, depth: int = 0) -> Any:
    """A key anywhere in a decoded JSON object (top level first, then request/response parts)."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        if depth < 4:
            for v in obj.values():
                found = _find(v, key, depth + 1)
                if found is not None:
                    return found
    return None


def _text(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return ";".join(t for t in (_text(x) for x in v) if t is not None)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return str(v)


def missing_series(df: pd.DataFrame) -> pd.Series:
    """All <NA>, aligned with df."""
    out: pd.Series = pd.Series(pd.NA, index=df.index, dtype="string")
    return out


def argument_series(df: pd.DataFrame, key: str) -> pd.Series:
    """One decoded argument per row, as text (lists ';'-joined); missing where not decoded."""
    if "arguments_json" not in df.columns:
        return missing_series(df)
    cache: dict[str, str | None] = {}

    def one(raw: object) -> str | None:
        if not isinstance(raw, str):
            return None
        if raw not in cache:
            try:
                cache[raw] = _text(_find(json.loads(raw), key))
            except (ValueError, RecursionError):
                cache[raw] = None
        return cache[raw]

    return pd.Series([one(v) for v in df["arguments_json"].tolist()], index=df.index, dtype="string")


def field_series(df: pd.DataFrame, field: str) -> pd.Series:
    """A field of the `when` language as a Series aligned with df (missing: all <NA>)."""
    if field.startswith("arg."):
        return argument_series(df, field[4:])
    if field in df.columns:
        s: pd.Series = df[field]
        return s
    return missing_series(df)


def _compare(op: str, have: pd.Series, want: str) -> pd.Series:
    if op in _NUMERIC_OPS:
        num = pd.to_numeric(have, errors="coerce")
        x = float(want)
        r = {">=": num >= x, ">": num > x, "<=": num <= x, "<": num < x}[op]
        return r.fillna(False).astype(bool)
    text = have.astype("string").str.lower()
    w = want.lower()
    if op in ("=", "!="):
        r = text == w
    elif op == "~":
        r = text.str.contains(w, regex=False)
    elif op == "%":
        r = have.astype("string").str.contains(want, regex=True, flags=re.IGNORECASE)
    else:
        r = text.str.startswith(w)
    out: pd.Series = r.fillna(False).astype(bool)
    return out


def _compare_columns(op: str, have: pd.Series, other: pd.Series) -> pd.Series:
    a = have.astype("string").str.lower()
    b = other.astype("string").str.lower()
    pairs: list[tuple[Any, Any]] = list(zip(a.tolist(), b.tolist(), strict=True))
    test: Callable[[str, str], bool] = (lambda x, y: y in x) if op in ("~", "!~") else (lambda x, y: x == y)
    vals = [test(x, y) if isinstance(x, str) and isinstance(y, str) else None for x, y in pairs]
    return pd.Series(vals, index=have.index, dtype="boolean")


def evaluate(df: pd.DataFrame, conditions: tuple[Condition, ...]) -> pd.Series:
    """The rows of df where every condition holds (a boolean Series)."""
    mask = pd.Series(True, index=df.index)
    for cond in conditions:
        if not mask.any():
            break
        have = field_series(df, cond.field)
        missing = have.isna()
        negative = cond.op in ("!=", "!~", "!%")
        if cond.values == ("none",) and cond.op in ("=", "!="):
            mask &= missing if cond.op == "=" else ~missing
            continue
        hit = pd.Series(False, index=df.index)
        for v in cond.values:
            if v.startswith("$"):
                ref = field_series(df, v[1:])
                r = _compare_columns(cond.op, have, ref)
                # a missing reference matches nothing, so it contradicts nothing either
                hit |= r.fillna(False).astype(bool)
            else:
                op = {"!=": "=", "!~": "~", "!%": "%"}.get(cond.op, cond.op)
                hit |= _compare(op, have, v)
        mask &= (~hit if negative else hit) & ~missing
    out: pd.Series = mask.astype(bool)
    return out
