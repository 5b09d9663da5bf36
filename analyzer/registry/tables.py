"""The shipped name tables (analyzer/registry/data/*.tsv, built by tools/build_registry.py), parsed once,
and the records a lookup answers with. No state of its own: analyzer.registry holds the loaded tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    uuid: str
    version: str | None
    name: str
    spec: str | None
    spec_title: str | None
    provider: str | None
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OperationInfo:
    uuid: str
    version: str | None
    opnum: int
    spec_name: str | None
    common_name: str | None
    impl_name: str | None
    aliases: tuple[str, ...]
    attack: tuple[str, ...]
    sources: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Every name, specification name first, then the common and implementation names, then aliases."""
        out: list[str] = []
        for n in (self.spec_name, self.common_name, self.impl_name, *self.aliases):
            if n and n not in out:
                out.append(n)
        return tuple(out)


class Tables:
    """The shipped data, parsed once."""

    def __init__(self, data_dir: Path) -> None:
        self.interfaces: dict[str, InterfaceInfo] = {}
        self.by_major: dict[tuple[str, int], InterfaceInfo] = {}
        self.aliases: dict[str, tuple[str, ...]] = {}
        self.ops: dict[tuple[str, int | None, int], list[str]] = {}
        self.ops_by_uuid: dict[str, list[list[str]]] = {}
        self.pipes: dict[str, list[str]] = {}
        self.pipe_display: dict[str, str] = {}
        self.pipes_of: dict[str, list[str]] = {}
        self.status: dict[int, list[tuple[str, str]]] = {}
        self.constants: dict[str, dict[int, str]] = {}
        self.syntaxes: dict[str, str] = {}
        self.syntax_prefixes: list[tuple[str, str]] = []
        self._load(data_dir)

    @staticmethod
    def _rows(path: Path) -> list[list[str]]:
        lines = [ln for ln in path.read_text(encoding="utf-8").split("\n") if ln and not ln.startswith("#")]
        return [ln.split("\t") for ln in lines[1:]]

    def _load(self, data_dir: Path) -> None:
        for uuid, major, version, name, spec, title, provider, aliases, sources, _how in self._rows(
            data_dir / "interfaces.tsv"
        ):
            info = InterfaceInfo(
                uuid, version or None, name, spec or None, title or None, provider or None, tuple(sources.split("|"))
            )
            if major:
                self.by_major[(uuid, int(major))] = info
            else:
                self.interfaces[uuid] = info
                self.aliases[uuid] = tuple(aliases.split("|")) if aliases else ()
        for row in self._rows(data_dir / "operations.tsv"):
            # OperationInfo objects are made on demand: building 7,000 of them would double the load time
            uuid, version, opnum = row[0], row[1], int(row[2])
            self.ops[(uuid, int(version.split(".")[0]) if version else None, opnum)] = row
            self.ops_by_uuid.setdefault(uuid, []).append(row)
        spec_first: list[tuple[bool, str, str, str]] = []
        for pipe, uuid, _name, source in self._rows(data_dir / "pipes.tsv"):
            spec_first.append((not source.startswith("spec:"), pipe_key(pipe), uuid, pipe))
        for _common, key, uuid, pipe in sorted(spec_first):
            self.pipes.setdefault(key, []).append(uuid)
            self.pipe_display.setdefault(key, pipe)
            self.pipes_of.setdefault(uuid, []).append(pipe)
        for code, name, kind, _source in self._rows(data_dir / "status.tsv"):
            self.status.setdefault(int(code, 16), []).append((name, kind))
        for kind, value, name, _source in self._rows(data_dir / "constants.tsv"):
            if kind == "transfer_syntax":
                self.syntaxes[value] = name
            elif kind == "transfer_syntax_prefix":
                self.syntax_prefixes.append((value, name))
            else:
                self.constants.setdefault(kind, {})[int(value)] = name


def norm_uuid(uuid: str) -> str | None:
    u = uuid.strip().strip("{}").lower()
    return u if UUID_RE.match(u) else None


def pipe_key(pipe: str) -> str:
    parts = [p for p in pipe.strip().replace("/", "\\").split("\\") if p]
    lowered = [p.lower() for p in parts]
    if "pipe" in lowered:
        parts = parts[lowered.index("pipe") + 1 :]
    return "\\".join(parts).lower()
