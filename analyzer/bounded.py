"""Bounded state: a dict with a cap (the one way state tables forget their oldest entry), and
the collector's cadence for a run.

Every table that grows with the traffic (flows, pending requests, files, trees, sessions) has a cap
in `Limits`. `BoundedDict.put` inserts (a key put again moves to the newest place) and, when the cap
is passed, removes the oldest entry and returns it, so that the caller reports the cap (`cap_<field>`)
and finishes what the evicted entry held. Nothing here reports: the layers own their sinks.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedDict(dict[K, V]):
    """A dict of at most `cap` entries in insertion order; `put` evicts the oldest past the cap."""

    __slots__ = ("cap",)

    def __init__(self, cap: int) -> None:
        # No dict.__init__: made empty already, and an association makes several (a bind flood,
        # one per connection).
        self.cap = cap

    def put(self, key: K, value: V) -> tuple[K, V] | None:
        """Insert as the newest entry; the evicted (oldest) entry when the cap was passed, else None."""
        self.pop(key, None)
        return self.put_new(key, value)

    def put_new(self, key: K, value: V) -> tuple[K, V] | None:
        """`put` of a key the dict does not hold (no pop first): a table that grows by an entry a
        PDU (the pending calls under a flood of unanswered requests) pays only the insert."""
        self[key] = value
        if len(self) > self.cap:
            old = next(iter(self))
            return old, self.pop(old)
        return None


class _Vacant(BoundedDict[Any, Any]):
    """`VACANT`: no entry, and none can be put."""

    __slots__ = ()

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("VACANT holds nothing: make the table first")


# The table of a state machine that has not needed it yet: read (get, pop with a default, in,
# values, len) as an empty table, and replaced by a real one at its first entry. A connection of
# one bind and its answer never pends a call nor waits for an early answer, and making those tables
# empty cost a tenth of its association.
VACANT: BoundedDict[Any, Any] = _Vacant(0)


class FifoDict(OrderedDict[K, V]):
    """A `BoundedDict` whose oldest entry goes out in constant time, for a table that has reached its
    cap and stays there (the pending calls under a flood of unanswered requests): a dict finds its
    oldest entry by walking past the ones deleted before it, on average some hundreds at a cap of
    1,024 (measured: 0.88 against 0.49 us an insertion with its eviction). Below the cap a dict is
    quicker (0.28 against 0.47 us an insertion), hence the move only once the cap is reached."""

    __slots__ = ("cap",)

    def __init__(self, cap: int, entries: dict[K, V] | None = None) -> None:
        super().__init__(entries or {})
        self.cap = cap

    def put(self, key: K, value: V) -> tuple[K, V] | None:
        """As `BoundedDict.put`."""
        self.pop(key, None)
        return self.put_new(key, value)

    def put_new(self, key: K, value: V) -> tuple[K, V] | None:
        """As `BoundedDict.put_new`."""
        self[key] = value
        return self.popitem(last=False) if len(self) > self.cap else None


class LruDict(OrderedDict[K, V]):
    """A `BoundedDict` kept in order of use: `touch` makes an entry the newest, so the one evicted
    past the cap is the least recently used (the flow table's order)."""

    __slots__ = ("cap",)

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put(self, key: K, value: V) -> tuple[K, V] | None:
        """Insert as the newest entry; the evicted (least recently used) entry past the cap, else None."""
        self[key] = value
        self.move_to_end(key)
        return self.popitem(last=False) if len(self) > self.cap else None

    def touch(self, key: K) -> None:
        self.move_to_end(key)


YOUNG_COLLECTION_EVERY = 20_000  # allocations between young-generation collections (Python's default: 700)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect the young generation every `YOUNG_COLLECTION_EVERY` allocations instead of 700, for
    the length of a run. Every connection leaves cyclic garbage (a flow and its parsers refer to
    each other), and under a flood of short connections the default cadence spent three quarters
    of the run in the collector. The garbage waiting meanwhile is bounded by that count."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], YOUNG_COLLECTION_EVERY), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


@contextmanager
def no_collections() -> Iterator[None]:
    """No cyclic collection inside the block (and the collector as it was after it), for a bulk
    step that makes tens of thousands of short-lived tuples at once and few cycles: a run of SYNs
    (`analyzer.pipeline.syn_runs`) made a young collection every 20,000 of them, each walking the
    flow keys and entries not yet freed, 0.6 s of the 3.3 s a million SYNs took (0.2 s so). What it
    leaves is collected at the next allocation after it: the garbage waiting is one run's."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
