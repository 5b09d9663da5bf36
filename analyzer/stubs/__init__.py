"""Stub decoders: what the unsealed stubs of a call say, declared per (interface, opnum, direction).

Owns: the registry (`registry.py`: `family()` / `Family.op()` declarations, `wants`, `decode`,
`StubState` for context-handle names) and one module per interface family, each a list of
declarations written with the NDR types of `analyzer.dcerpc.ndr_types`. The connection-oriented
association and the connectionless tracker alike get it injected through the seam
`analyzer.dcerpc.decoding.StubDecoder`: whoever builds them passes `stub_decoder(limits)` (one per
association, or per capture's connectionless calls); `analyzer.dcerpc` never imports this package.
The endpoint mapper is one entry like the others.

Must not import: the pipeline, the report layer, pandas, or anything doing I/O (sans-IO, like
`analyzer.dcerpc`).

Adding an operation: one `F.op(opnum, name, request_params, response_params, show=...)` line in
its family's module, plus a test that decodes a real stub and an impacket-built one.
"""

from __future__ import annotations

from analyzer.limits import DEFAULT_LIMITS, Limits
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
    OPERATIONS,
    Decoded,
    RegistryDecoder,
    StubState,
    decode,
)


def stub_decoder(limits: Limits = DEFAULT_LIMITS) -> RegistryDecoder:
    """A fresh decoder for one association (or one capture's connectionless calls)."""
    return RegistryDecoder(limits)


__all__ = [
    "FAMILIES",
    "OPERATIONS",
    "Decoded",
    "RegistryDecoder",
    "StubState",
    "decode",
    "stub_decoder",
]
