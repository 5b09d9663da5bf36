"""Registry lookups for the tables, memoised per distinct key: thousands of rows share a handful of
UUIDs, operations and status codes, so each is looked up once per run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analyzer import registry


class Names:
    """Registry lookups memoised per distinct key: thousands of rows share a handful of UUIDs."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], str] = {}

    def _get(self, key: tuple[Any, ...], fn: Callable[[], str]) -> str:
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = fn()
        return v

    def interface(self, uuid: str | None, major: int | None) -> str | None:
        if uuid is None:
            return None
        return self._get(("i", uuid, major), lambda: registry.interface_name(uuid, major))

    def operation(self, uuid: str | None, major: int | None, opnum: int) -> str:
        if uuid is None:
            return f"opnum-{opnum}"
        return self._get(("o", uuid, major, opnum), lambda: registry.operation_name(uuid, major, opnum))

    def attack(self, uuid: str | None, major: int | None, opnum: int) -> str | None:
        """The registry's ATT&CK tags of an operation, ';'-joined; missing when it has none."""
        if uuid is None:
            return None
        key = ("a", uuid, major, opnum)
        if key not in self._cache:
            op = registry.operation_info(uuid, major, opnum)
            self._cache[key] = ";".join(op.attack) if op is not None else ""
        return self._cache[key] or None

    def syntax(self, uuid: str | None) -> str | None:
        if uuid is None:
            return None
        return self._get(("t", uuid), lambda: registry.transfer_syntax_name(uuid))

    def status(self, code: int | None, kind: str | None = None) -> str | None:
        if code is None:
            return None
        return self._get(("s", code, kind), lambda: registry.status_name(code, kind))

    def auth_type(self, n: int | None) -> str | None:
        if n is None:
            return None
        return self._get(("at", n), lambda: registry.auth_type_name(n))

    def auth_level(self, n: int | None) -> str | None:
        if n is None:
            return None
        return self._get(("al", n), lambda: registry.auth_level_name(n))
