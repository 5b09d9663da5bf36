"""Detection rules declared as data: the shipped `rules.tsv` and the user's own files (`--rules FILE`).

A rule says which rows it looks at (`source`: calls, binds, endpoints, attempts or violations), which of
them count (`interface`, `operations`, `when`), how they are put together (`kind`, `group`, `window_s`,
`threshold`, `after`) and what a match means (technique, ATT&CK id and tactic, severity, confidence,
title, the decisive argument, a one-sentence detail). The README's "Findings" section is the reference
for the format; `conditions.py` for the `when` language.

kinds:
    call      every matching row is evidence; one finding per group and burst;
    count     the same, but a burst is a finding only when `threshold` holds (``count>=20``,
              ``distinct:server_ip>=10``, alternatives joined with `` or ``);
    sequence  `operations` lists steps joined with `` > ``; a burst is a finding when they occur in order;
    off       (user files only) switches the rule with the same id off.

A user file has the same header (a subset of the columns is enough; missing cells take the defaults
below). A row whose id exists replaces that rule, a new id adds one; later files win.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from analyzer.findings.conditions import Condition, parse_conditions

RULES_FILE = Path(__file__).resolve().parent / "rules.tsv"

SOURCES = ("calls", "binds", "endpoints", "attempts", "violations")
KINDS = ("call", "count", "sequence", "off")
SEVERITIES = ("info", "low", "medium", "high", "critical")
CONFIDENCES = ("likely", "certain")
_THRESHOLD_RE = re.compile(r"^(count|distinct:[a-z_.]+)\s*(>=|>)\s*(\d+)$")


@dataclass(frozen=True)
class Threshold:
    """``count>=N`` (rows) or ``distinct:COLUMN>=N`` (distinct values of a column) over one burst."""

    measure: str  # "count" or a column name
    minimum: int  # the burst needs at least this many


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    source: str = "calls"
    interface: tuple[str, ...] = ()  # empty: any interface; names or UUIDs, lower-case
    operations: tuple[tuple[str, ...], ...] = ()  # one tuple of alternatives per step; empty: any
    when: tuple[Condition, ...] = ()
    group: tuple[str, ...] = ("client_ip", "server_ip")
    threshold: tuple[Threshold, ...] = ()  # any of them is enough
    window_s: float = 300.0
    after: str | None = None  # a technique already found for the same client and server
    technique: str = ""
    attack_id: str = ""
    tactic: str = ""
    severity: str = "medium"
    confidence: str = "likely"
    argument: str = "arguments"
    title: str = ""
    detail: str = ""
    origin: str = "rules.tsv"


COLUMNS = tuple(f.name for f in fields(Rule) if f.name != "origin")


class RuleError(ValueError):
    """A rule file that cannot be used: the message says FILE:LINE and why."""


def _split(text: str, sep: str = "|") -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(sep) if p.strip())


def _threshold(text: str, where: str) -> tuple[Threshold, ...]:
    out = []
    for part in _split(text, " or "):
        m = _THRESHOLD_RE.match(part.strip())
        if not m:
            raise RuleError(f"{where}: threshold {part!r} is not count>=N or distinct:COLUMN>=N")
        n = int(m.group(3)) + (1 if m.group(2) == ">" else 0)
        measure = m.group(1).removeprefix("distinct:")
        out.append(Threshold(measure, n))
    return tuple(out)


def _rule(cells: dict[str, str], where: str, origin: str, base: Rule | None) -> Rule:
    """One row -> Rule; cells left empty take the base rule's value (an override) or the default."""
    rid = cells.get("id", "").strip()
    if not rid:
        raise RuleError(f"{where}: a rule needs an id")
    kind = cells.get("kind", "").strip() or (base.kind if base else "")
    if kind not in KINDS:
        raise RuleError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    rule = base if base is not None else Rule(rid, kind)
    rule = replace(rule, id=rid, kind=kind, origin=origin)
    if kind == "off":
        return rule
    changes: dict[str, object] = {}
    for col, raw in cells.items():
        text = raw.strip()
        if col in ("id", "kind") or not text:
            continue
        if col == "source":
            if text not in SOURCES:
                raise RuleError(f"{where}: source {text!r} is not one of {', '.join(SOURCES)}")
            changes[col] = text
        elif col == "interface":
            changes[col] = () if text == "*" else tuple(s.lower() for s in _split(text))
        elif col == "operations":
            steps = _split(text, ">") if kind == "sequence" else (text,)
            changes[col] = () if text == "*" else tuple(tuple(s.lower() for s in _split(st)) for st in steps)
        elif col == "when":
            try:
                changes[col] = parse_conditions(text)
            except ValueError as e:
                raise RuleError(f"{where}: {e}") from None
        elif col == "group":
            changes[col] = _split(text, ",")
        elif col == "threshold":
            changes[col] = _threshold(text, where)
        elif col == "window_s":
            try:
                changes[col] = float(text)
            except ValueError:
                raise RuleError(f"{where}: window_s {text!r} is not a number of seconds") from None
        elif col == "severity" and text not in SEVERITIES:
            raise RuleError(f"{where}: severity {text!r} is not one of {', '.join(SEVERITIES)}")
        elif col == "confidence" and text not in CONFIDENCES:
            raise RuleError(f"{where}: confidence {text!r} is not one of {', '.join(CONFIDENCES)}")
        else:
            changes[col] = text
    rule = replace(rule, **changes)  # type: ignore[arg-type]
    if not rule.technique or not rule.title:
        raise RuleError(f"{where}: rule {rid} needs a technique and a title")
    if rule.kind == "count" and not rule.threshold:
        raise RuleError(f"{where}: a count rule needs a threshold")
    if rule.kind == "sequence" and len(rule.operations) < 2:
        raise RuleError(f"{where}: a sequence rule needs at least two steps joined with ' > '")
    return rule


def _read(path: Path, rules: dict[str, Rule]) -> None:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise RuleError(f"{name}: cannot read the rule file: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise RuleError(f"{name}: not a UTF-8 text file") from None
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise RuleError(f"{name}:1: empty rule file (expected a header with {', '.join(COLUMNS)})")
    header = [c.strip() for c in lines[0][1].split("\t")]
    unknown = [c for c in header if c not in COLUMNS]
    if unknown or "id" not in header:
        what = f"unknown column {unknown[0]!r}" if unknown else "no id column"
        raise RuleError(f"{name}:{lines[0][0]}: {what} (columns: {', '.join(COLUMNS)}; tab-separated)")
    for lineno, line in lines[1:]:
        cells = next(csv.reader([line], delimiter="\t", quoting=csv.QUOTE_NONE))
        if len(cells) > len(header):
            raise RuleError(f"{name}:{lineno}: {len(cells)} cells, the header has {len(header)}")
        row = dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True))
        base = rules.get(row.get("id", "").strip())
        rule = _rule(row, f"{name}:{lineno}", path.name, base)
        rules[rule.id] = rule


def load_rules(extra: list[str] | tuple[str, ...] = ()) -> list[Rule]:
    """The shipped rules, then each user file in turn (its rows replace or add by id); rules switched
    off are dropped. Raises RuleError("FILE:LINE: why") for a bad file."""
    rules: dict[str, Rule] = {}
    _read(RULES_FILE, rules)
    for p in extra:
        _read(Path(p), rules)
    return [r for r in rules.values() if r.kind != "off"]
