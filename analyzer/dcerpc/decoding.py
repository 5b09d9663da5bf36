"""The seam between the call state machines and the stub decoders.

The connection-oriented `Association` and the connectionless `ClTracker` know calls: which
fragments belong together, who answered, whether the stub is sealed. What a call's stubs mean,
which of them are worth keeping, and what an endpoint-mapper answer teaches is policy: it lives
in the stub decoder registry (`analyzer.stubs`), keyed by (interface, opnum, direction), and
reaches the state machines through the `StubDecoder` they are given. This package defines the
protocol and the values crossing it; it never imports the decoders (they sit a layer above).

One decoder object serves one association (or one capture's connectionless calls): it holds what
their calls teach each other, such as the names context handles were opened with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from analyzer.model import EndpointRecord, Flow


@dataclass(frozen=True, slots=True)
class Want:
    """What of a call's stubs the decoders need kept: the request, the response, its last bytes
    (the return value, [MS-RPCE] 2.2.5)."""

    request: bool
    response: bool
    tail: bool


NOTHING = Want(False, False, False)


class Stubs(NamedTuple):
    """A finished call's kept stubs (None when not kept or not whole). A named tuple: one is made
    per decoded call, at half the cost of a frozen dataclass, and it hashes as fast as a tuple."""

    ndr64: bool
    request: bytes | None
    request_little: bool
    response: bytes | None
    response_little: bool
    response_tail: bytes | None
    object_uuid: str | None = None  # the request's object (a DCOM IPID): scopes what calls learn


class Decoded(Protocol):
    """What a call's stubs said: the call record's decoded columns, complaints, endpoints."""

    @property
    def return_code(self) -> int | None: ...

    @property
    def return_kind(self) -> str | None: ...

    @property
    def arguments(self) -> str | None: ...

    @property
    def arguments_json(self) -> str | None: ...

    @property
    def product(self) -> Any:
        """What the answer announced (the endpoint mapper's towers), None when nothing: a call
        whose product is None has no endpoints, and `endpoints` need not be asked."""
        ...

    @property
    def violations(self) -> Sequence[tuple[str, str, str]]:
        """(layer, what, detail) of each thing the stubs got wrong."""
        ...

    def endpoints(
        self, flow: Flow, frame: int, ts: int, call_id: int, request_frame: int | None
    ) -> Iterable[EndpointRecord]:
        """The endpoints the answer announced (endpoint-mapper towers, [C706] Appendix I), placed
        on the answer's conversation and frame; none for other operations."""
        ...


class StubDecoder(Protocol):
    """What the state machines ask of the stub decoders (see `analyzer.stubs.stub_decoder`)."""

    def wants(self, uuid: str | None, opnum: int) -> Want:
        """Which stubs of a call to (uuid, opnum) to keep."""
        ...

    def wants_answer(self, uuid: str | None) -> Want:
        """Which stubs to keep of an answer whose request is not seen yet (no opnum known)."""
        ...

    def decode(self, uuid: str | None, opnum: int, stubs: Stubs) -> Decoded | None:
        """A finished, unsealed call's stubs; None when no decoder knows the interface."""
        ...

    def decode_answer(self, uuid: str | None, stubs: Stubs) -> Decoded | None:
        """An answer whose request never came, read as whichever operation it parses as; None
        when the interface has no such reading or the stub fits none."""
        ...


class NoDecoder:
    """Keeps and decodes nothing: calls are still paired and counted, their stubs left alone."""

    __slots__ = ()

    def wants(self, uuid: str | None, opnum: int) -> Want:
        return NOTHING

    def wants_answer(self, uuid: str | None) -> Want:
        return NOTHING

    def decode(self, uuid: str | None, opnum: int, stubs: Stubs) -> Decoded | None:
        return None

    def decode_answer(self, uuid: str | None, stubs: Stubs) -> Decoded | None:
        return None
