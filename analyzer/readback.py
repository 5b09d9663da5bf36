"""The sequence behaviour shared by containers whose body is read back from disk (`records.Spool`,
`violation_log.ViolationLog`): indexing and equality go through one full iteration, since the records
live in batch files rather than in a list. Subclasses give `__iter__` and `__len__`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar, overload

T = TypeVar("T")


class ReadBack(Sequence[T]):
    """A read-only view in record order; a list with the same records compares equal."""

    __slots__ = ()

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        """Same records in the same order (a list compares equal too)."""
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]
