"""`;`-joined lists in table cells: how their values are ordered, port ranges, and the per-key sets
the hosts table and the views keep while they fold chunks (`add`, then `joined`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import pandas as pd


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


def add(values: set[str], value: Any) -> None:
    """Keep a value for a `;`-joined list (a view's or host's per-key set): missing and empty text are
    not listed."""
    if value is not None:
        text = value if isinstance(value, str) else str(value)
        if text:
            values.add(text)


# A per-key list held compactly (`put`): nothing yet, its one text, a tuple of a few distinct texts,
# or the set of more. A view with tens of thousands of keys (the matrix of a 10 GB capture: 18,700
# pairs of six lists each) mostly lists one value or a few per key, and a set is 216 bytes however
# few it holds: the 10.8 GB capture's views held 22,800 sets of two or more (4.8 MiB traced at the
# end of the pass), a tuple of two to `SMALL_LISTED` texts is 56 to 104 bytes.
Listed = str | tuple[str, ...] | set[str] | None
SMALL_LISTED = 8  # a list of more distinct texts is held as a set (membership then hashed)


def put(held: Listed, value: Any) -> Listed:
    """`add` for a list held as `Listed`: what to hold now (missing and empty text are not listed)."""
    if value is None:
        return held
    text = value if isinstance(value, str) else str(value)
    if not text or held == text:
        return held
    if held is None:
        return text
    if isinstance(held, str):
        return (held, text)
    if isinstance(held, tuple):
        if text in held:
            return held
        return (*held, text) if len(held) < SMALL_LISTED else {*held, text}
    held.add(text)
    return held


def items(held: Listed) -> tuple[str, ...] | set[str]:
    """The distinct texts a list held as `Listed` holds."""
    return () if held is None else (held,) if isinstance(held, str) else held


def joined(values: Listed) -> str | None:
    """A per-key list (`add`, `put`) as its cell: sorted by `list_order`, `;`-joined; missing when empty
    (a tuple's texts are distinct, as a set's are)."""
    if not values:
        return None
    if isinstance(values, str):
        return values
    return ";".join(sorted(values, key=list_order))
