"""Stub decoders: what the unsealed stubs of a call say, declared per (interface, opnum, direction).

Owns: the registry (`registry.py`: `family()` / `Family.op()` declarations, `wants`, `decode`,
`StubState` for context-handle names) and one module per interface family, each a list of
declarations written with the NDR types of `analyzer.dcerpc.ndr_types`. Used by the
connection-oriented association and the connectionless tracker alike; the endpoint mapper is one
entry like the others.

Must not import: the pipeline, the report layer, pandas, or anything doing I/O (sans-IO, like
`analyzer.dcerpc`).

Adding an operation: one `F.op(opnum, name, request_params, response_params, show=...)` line in
its family's module, plus a test that decodes a real stub and an impacket-built one.
"""

from __future__ import annotations

from analyzer.stubs import (  # noqa: F401 - importing a family module registers its operations
    dcom,
    drsuapi,
    efsrpc,
    epm,
    eventlog,
    lsarpc,
    misc,
    netlogon,
    returns,
    samr,
    spoolss,
    srvsvc,
    svcctl,
    tasks,
    winreg,
)
from analyzer.stubs.registry import (
    FAMILIES,
    NOTHING,
    OPERATIONS,
    Decoded,
    Stubs,
    StubState,
    Want,
    decode,
    decoder,
    wants,
    wants_answer,
)

__all__ = [
    "FAMILIES",
    "NOTHING",
    "OPERATIONS",
    "Decoded",
    "StubState",
    "Stubs",
    "Want",
    "decode",
    "decoder",
    "wants",
    "wants_answer",
]
