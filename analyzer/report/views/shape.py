"""What the views share: the bind answers that are rejections, addresses, interface specs, rows as
dicts and plurals."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import cache
from typing import Any

import pandas as pd

from analyzer import registry

REJECTED = ("user_rejection", "provider_rejection", "nak")


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


def records(df: pd.DataFrame, chunk: int = 10_000) -> Iterable[dict[str, Any]]:
    """Rows as dicts with missing values as None and counts as ints, `chunk` rows converted at a
    time: a flood of connections is a million rows, and a million dicts at once is gigabytes."""
    for start in range(0, len(df), chunk):
        for rec in df.iloc[start : start + chunk].to_dict("records"):
            yield {str(k): (None if v is pd.NA or v is pd.NaT else v) for k, v in rec.items()}


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else many or word + 's'}"
