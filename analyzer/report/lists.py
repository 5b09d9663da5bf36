"""`;`-joined lists in table cells: how their values are ordered, port ranges, and the per-key
joins the hosts table and the views are made of."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, cast

import pandas as pd

from analyzer.report.columns import STR


def join(values: Iterable[Any]) -> str | None:
    """Distinct values, sorted by `list_order`, ';'-joined; missing when there are none."""
    out = sorted({str(v) for v in values if v is not None and v is not pd.NA and v == v}, key=list_order)
    return ";".join(out) if out else None


@lru_cache(maxsize=65536)
def list_order(value: str) -> tuple[int, int, int, str]:
    """How the values of a `;`-joined list are ordered: numbers as numbers (80 before 135 before 49665,
    never 135, 445, 49665, 593, 80), then addresses in numeric order (10.0.0.5 before 10.0.0.10), then
    text."""
    if value.isdigit():
        return (0, 0, int(value), "")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return (2, 0, 0, value)
    return (1, ip.version, int(ip), "")


# Ports further apart than this are different ranges: 6004 (RPC over HTTP) and 49665-49670 (the
# Windows dynamic range) must not read as one range 6004-49670.
RANGE_GAP = 1024


def port_ranges(ports: Iterable[Any]) -> str | None:
    """Sorted distinct ports as `;`-joined ranges, a new range wherever two ports are RANGE_GAP or
    more apart: `6004;49665-49670`."""
    values = sorted({int(p) for p in ports if p is not None and p is not pd.NA and p == p})
    if not values:
        return None
    runs: list[list[int]] = [[values[0], values[0]]]
    for port in values[1:]:
        if port - runs[-1][1] < RANGE_GAP:
            runs[-1][1] = port
        else:
            runs.append([port, port])
    return ";".join(f"{lo}-{hi}" if lo != hi else f"{lo}" for lo, hi in runs)


def joined_columns(df: pd.DataFrame, keys: str | list[str], cols: dict[str, str], sep: str = ";") -> pd.DataFrame:
    """Per key (one column or several): for each output column, the distinct non-missing, non-empty
    values of its source column, sorted by `list_order` and sep-joined. `cols` maps output column -> source column.

    Plain Python in one pass over the rows: a group-by that joins per group costs a Python call per
    group and column anyway, and building one index for all columns is what makes it cheap."""
    keys = [keys] if isinstance(keys, str) else keys
    key_cols = [df[k].tolist() for k in keys]
    sources = {out: df[src].tolist() for out, src in cols.items()}
    values: dict[Any, dict[str, set[str]]] = {}
    na = pd.NA
    for i in range(len(df)):
        k = key_cols[0][i] if len(keys) == 1 else tuple(c[i] for c in key_cols)
        sets = values.get(k)
        if sets is None:
            sets = values[k] = {out: set() for out in cols}
        for out, vals in sources.items():
            v = vals[i]
            if v is not None and v is not na and v == v:
                text = str(v)
                if text:
                    sets[out].add(text)
    index = (
        pd.MultiIndex.from_tuples(list(values), names=keys)
        if len(keys) > 1 and values
        else pd.Index(list(values), name=keys[0] if len(keys) == 1 else None)
    )
    data = {
        out: pd.array(
            [sep.join(sorted(sets[out], key=list_order)) or None for sets in values.values()], dtype=cast(Any, STR)
        )
        for out in cols
    }
    table: pd.DataFrame = pd.DataFrame(data, index=index, columns=list(cols))
    return table


def joined(df: pd.DataFrame, keys: str | list[str], col: str, sep: str = ";") -> pd.Series:
    """`joined_columns` for one column."""
    out: pd.Series = joined_columns(df, keys, {col: col}, sep)[col]
    return out
