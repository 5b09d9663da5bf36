"""The findings table's columns and dtypes (the shared contract: Sigma matches use the same columns)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd

from analyzer.report.columns import INT, STR, TIME
from analyzer.report.columns import frame as _frame

FINDINGS: dict[str, str] = {
    "capture": STR,
    "first_frame": INT,
    "frames": STR,
    "first_ts": TIME,
    "last_ts": TIME,
    "technique": STR,
    "attack_id": STR,
    "tactic": STR,
    "title": STR,
    "severity": STR,
    "confidence": STR,
    "client_ip": STR,
    "server_ip": STR,
    "interface_name": STR,
    "operation": STR,
    "user": STR,
    "argument": STR,
    "calls": INT,
    "detail": STR,
}


def _ns(v: Any) -> int | None:
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, pd.Timestamp):
        return int(v.value)
    return int(v)


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Findings rows (dicts with the FINDINGS keys; times as Timestamps or ns) -> the typed table."""
    cols: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        for c, dtype in FINDINGS.items():
            v = r.get(c)
            cols[c].append(_ns(v) if dtype == TIME else v)
    return _frame(FINDINGS, dict(cols)) if rows else _frame(FINDINGS, {})


def empty() -> pd.DataFrame:
    return frame([])
