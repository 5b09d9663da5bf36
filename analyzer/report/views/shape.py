"""What the views share: casting to a schema, missing group keys, address order, and rows as dicts."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import cache
from typing import Any

import pandas as pd

from analyzer import registry
from analyzer.report.columns import FLOAT, INT, TIME

NONE = "\x00"
REJECTED = ("user_rejection", "provider_rejection", "nak")
_IP_COLUMNS = {"server", "client_ip", "server_ip", "host"}
_INT_LIKE_FLOATS = (INT, FLOAT)


def shape(df: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """Exactly the schema's columns, in order, cast to its dtypes (missing columns become all-missing)."""
    out = df.reindex(columns=list(schema))
    for col, dtype in schema.items():
        s = out[col]
        if dtype == TIME:
            out[col] = pd.to_datetime(s, utc=True).astype(TIME)
        elif dtype in _INT_LIKE_FLOATS and s.dtype == object:
            out[col] = pd.to_numeric(s).astype(dtype)
        else:
            out[col] = s.astype(dtype)
    shaped: pd.DataFrame = out.reset_index(drop=True)
    return shaped


def fill_keys(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    filled: pd.DataFrame = df.assign(**{k: df[k].astype("string").fillna(NONE) for k in keys if df[k].dtype != TIME})
    return filled


def unfill_keys(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    for k in keys:
        if k in df and df[k].dtype != TIME:
            df[k] = df[k].astype("string").mask(df[k] == NONE)
    return df


def ip_sort_key(s: pd.Series) -> pd.Series:
    """Addresses in numeric order (10.0.0.5 before 10.0.0.10), IPv4 before IPv6 before names."""
    if s.name not in _IP_COLUMNS:
        return s

    def key(v: object) -> str:
        if not isinstance(v, str):
            return "3"
        try:
            ip = ipaddress.ip_address(v)
        except ValueError:
            return "2" + v
        return f"{ip.version - 4:d}{int(ip):039d}"

    uniques = {v: key(v) for v in s.unique()}
    return s.map(uniques)


def sorted_view(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    out: pd.DataFrame = df.sort_values(by, key=ip_sort_key, kind="stable", na_position="first", ignore_index=True)
    return out


def is_ip(v: object) -> bool:
    if not isinstance(v, str):
        return False
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


@cache
def spec(uuid: str) -> str | None:
    info = registry.interface_info(uuid)
    return info.spec if info is not None else None


def identity(calls: pd.DataFrame) -> pd.Series:
    """DOMAIN\\user when the domain is known, else the user."""
    who: pd.Series = calls["user"].where(calls["domain"].isna(), calls["domain"] + "\\" + calls["user"])
    return who


def records(df: pd.DataFrame, chunk: int = 10_000) -> Iterable[dict[str, Any]]:
    """Rows as dicts with missing values as None and counts as ints, `chunk` rows converted at a
    time: a flood of connections is a million rows, and a million dicts at once is gigabytes."""
    for start in range(0, len(df), chunk):
        for rec in df.iloc[start : start + chunk].to_dict("records"):
            yield {str(k): (None if v is pd.NA or v is pd.NaT else v) for k, v in rec.items()}


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else many or word + 's'}"
