"""User override files of names (the CSV format is in analyzer.registry's docstring): parsing and merging.
Pure: the registry applies what `read_overrides` returns to its own state.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from analyzer.registry.tables import norm_uuid

VERSION_RE = re.compile(r"^(\d+)(?:\.(\d+))?$")
OVERRIDE_COLUMNS = ("uuid", "version", "name", "spec", "provider", "opnum", "operation")


@dataclass
class IfaceOverride:
    name: str | None = None
    spec: str | None = None
    provider: str | None = None
    source: str = "override"


IfaceOverrides = dict[tuple[str, int | None], IfaceOverride]
OpOverrides = dict[tuple[str, int | None, int], tuple[str, str]]  # -> (operation name, source)


def read_overrides(path: Path) -> tuple[IfaceOverrides, OpOverrides]:
    """The interface and operation entries of one override file; ValueError("FILE:LINE: why") if it is bad."""
    name = str(path)
    try:
        if path.exists() and not path.is_file():  # a FIFO would block the read forever
            raise ValueError(f"{name}: not a regular file: only a CSV file of names is read")
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"{name}: cannot read the override file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not a UTF-8 text file") from None
    header: list[str] | None = None
    ifaces: IfaceOverrides = {}
    ops: OpOverrides = {}
    source = f"override:{path.name}"
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in next(csv.reader([line]))]
        where = f"{name}:{lineno}"
        if header is None:
            header = _header(where, cells)
            continue
        if len(cells) != len(header):
            raise ValueError(f"{where}: {len(cells)} cells, the header has {len(header)}")
        row = dict(zip(header, cells, strict=True))
        uuid = norm_uuid(row["uuid"])
        if uuid is None:
            raise ValueError(f"{where}: {row['uuid']!r} is not a UUID")
        major: int | None = None
        if row.get("version"):
            m = VERSION_RE.match(row["version"])
            if not m:
                raise ValueError(f"{where}: version {row['version']!r} is not MAJOR or MAJOR.MINOR")
            major = int(m.group(1))
        if row.get("opnum"):
            if not row["opnum"].isdigit() or int(row["opnum"]) > 0xFFFF:
                raise ValueError(f"{where}: opnum {row['opnum']!r} is not a number from 0 to 65535")
            if not row.get("operation"):
                raise ValueError(f"{where}: a row with an opnum needs an operation name")
            ops[(uuid, major, int(row["opnum"]))] = (row["operation"], source)
            if row.get("name") or row.get("spec") or row.get("provider"):
                ifaces[(uuid, major)] = _merge(ifaces.get((uuid, major)), row, source)
        elif row.get("operation"):
            raise ValueError(f"{where}: an operation name needs an opnum")
        elif row.get("name") or row.get("spec") or row.get("provider"):
            ifaces[(uuid, major)] = _merge(ifaces.get((uuid, major)), row, source)
        else:
            raise ValueError(f"{where}: the row names nothing (give name, spec, provider or opnum+operation)")
    if header is None:
        raise ValueError(f"{name}:1: empty override file (expected the header {','.join(OVERRIDE_COLUMNS)})")
    return ifaces, ops


def _header(where: str, cells: list[str]) -> list[str]:
    """The column names of the first line, checked."""
    header = [c.lower() for c in cells]
    unknown = [c for c in header if c not in OVERRIDE_COLUMNS]
    if unknown:
        raise ValueError(f"{where}: unknown column {unknown[0]!r} (expected {','.join(OVERRIDE_COLUMNS)})")
    if "uuid" not in header:
        raise ValueError(f"{where}: the header has no uuid column")
    if len(set(header)) != len(header):
        raise ValueError(f"{where}: a column is named twice")
    return header


def _merge(old: IfaceOverride | None, row: dict[str, str], source: str) -> IfaceOverride:
    new = IfaceOverride(row.get("name") or None, row.get("spec") or None, row.get("provider") or None, source)
    return merge_override(old, new)


def merge_override(old: IfaceOverride | None, new: IfaceOverride) -> IfaceOverride:
    if old is None:
        return new
    return IfaceOverride(
        new.name or old.name, new.spec or old.spec, new.provider or old.provider, new.source or old.source
    )
