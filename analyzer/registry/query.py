"""Browse the name registry: the rows behind ``rpc-analyzer names QUERY``.

    search("svcctl")        interfaces and operations named so (exact, case-insensitive; else a substring match)
    search("367abb81")      interfaces whose UUID starts so (a whole UUID works too)
    search("\\pipe\\samr")  interfaces served on a well-known named pipe
    search("MS-DRSR")       interfaces of a specification ("[MS-DRSR]" works too)
    all_rows()              the whole table

A matched interface contributes one row per operation, or a single row (opnum None) when it has no known
operation; a matched operation contributes its own row. Rows come sorted by UUID, then opnum. Every field is a
plain value (lists are "|"-joined strings), so ``dataclasses.astuple(row)`` is a ready CSV row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from analyzer import registry

__all__ = ["NameRow", "all_rows", "search"]

_HEX_PREFIX = re.compile(r"^\{?[0-9a-f][0-9a-f-]{3,35}\}?$")
_SPEC = re.compile(r"^\[?((?:MS|MC)-[A-Z0-9]+|C706|IEC 61158-6-10|OPC-DA)\]?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class NameRow:
    uuid: str
    version: str | None
    name: str
    spec: str | None
    spec_title: str | None
    provider: str | None
    opnum: int | None
    operation: str | None
    operation_names: str  # every known name of the operation, "|"-joined, the specification's first
    attack: str  # MITRE ATT&CK techniques watching the operation (BZAR), "|"-joined
    pipes: str  # well-known named pipes serving the interface, "|"-joined
    source: str  # sources of the row's facts, "|"-joined

    def as_dict(self) -> dict[str, str]:
        """Text cells (for CSV): None as ''."""
        return {key: "" if getattr(self, key) is None else str(getattr(self, key)) for key in self.__slots__}


def _rows_of(uuid: str) -> list[NameRow]:
    info = registry.interface_info(uuid)
    if info is None:
        return []
    pipes = "|".join(registry.interface_pipes(uuid))
    ops = registry._operations_of(uuid)
    if not ops:
        return [
            NameRow(
                info.uuid,
                info.version,
                info.name,
                info.spec,
                info.spec_title,
                info.provider,
                None,
                None,
                "",
                "",
                pipes,
                "|".join(info.sources),
            )
        ]
    return [
        NameRow(
            info.uuid,
            op.version or info.version,
            info.name,
            info.spec,
            info.spec_title,
            info.provider,
            op.opnum,
            op.names[0] if op.names else None,
            "|".join(op.names),
            "|".join(op.attack),
            pipes,
            "|".join(op.sources),
        )
        for op in ops
    ]


def all_rows() -> list[NameRow]:
    """The whole table: one row per interface operation plus one row per interface that has none."""
    rows: list[NameRow] = []
    for uuid in registry._all_uuids():
        rows.extend(_rows_of(uuid))
    return rows


def search(query: str) -> list[NameRow]:
    """Interfaces and operations matching a UUID (or prefix), a name, a pipe or a specification."""
    q = query.strip()
    if not q:
        return []
    low = q.lower()
    uuids: set[str] = set()
    op_rows: list[NameRow] = []
    if "\\" in q or "/" in q or low.startswith("pipe"):
        uuids.update(registry.pipe_interfaces(q))
    elif _HEX_PREFIX.match(low):
        prefix = low.strip("{}")
        uuids.update(u for u in registry._all_uuids() if u.startswith(prefix))
    spec = _SPEC.match(q)
    if spec and not uuids:
        wanted = f"[{spec.group(1).upper()}]"
        for u in registry._all_uuids():
            info = registry.interface_info(u)
            if info is not None and info.spec is not None and info.spec.upper() == wanted:
                uuids.add(u)
    if not uuids and not spec:
        uuids, op_rows = _by_name(low, exact=True)
        if not uuids and not op_rows:
            uuids, op_rows = _by_name(low, exact=False)
    rows: dict[tuple[str, int | None], NameRow] = {}
    for u in uuids:
        for row in _rows_of(u):
            rows[(row.uuid, row.opnum)] = row
    for row in op_rows:
        rows.setdefault((row.uuid, row.opnum), row)
    return [rows[k] for k in sorted(rows, key=lambda k: (k[0], -1 if k[1] is None else k[1]))]


def _by_name(low: str, *, exact: bool) -> tuple[set[str], list[NameRow]]:
    def hit(name: str | None) -> bool:
        if not name:
            return False
        n = name.lower()
        return n == low if exact else low in n

    uuids: set[str] = set()
    ops: list[NameRow] = []
    for u in registry._all_uuids():
        info = registry.interface_info(u)
        if info is not None and (hit(info.name) or any(hit(a) for a in registry.interface_aliases(u))):
            uuids.add(u)
        elif any(hit(n) for n in registry._operation_name_index(u)):
            ops.extend(
                r for r in _rows_of(u) if r.opnum is not None and any(hit(n) for n in r.operation_names.split("|"))
            )
    return uuids, ops
