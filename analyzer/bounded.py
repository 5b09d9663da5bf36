"""A dict with a cap: the one way state tables forget their oldest entry.

Every table that grows with the traffic (flows, pending requests, files, trees, sessions) has a cap
in `Limits`. `BoundedDict.put` inserts (a key put again moves to the newest place) and, when the cap
is passed, removes the oldest entry and returns it, so that the caller reports the cap (`cap_<field>`)
and finishes what the evicted entry held. Nothing here reports: the layers own their sinks.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedDict(dict[K, V]):
    """A dict of at most `cap` entries in insertion order; `put` evicts the oldest past the cap."""

    __slots__ = ("cap",)

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put(self, key: K, value: V) -> tuple[K, V] | None:
        """Insert as the newest entry; the evicted (oldest) entry when the cap was passed, else None."""
        self.pop(key, None)
        self[key] = value
        if len(self) > self.cap:
            old = next(iter(self))
            return old, self.pop(old)
        return None
