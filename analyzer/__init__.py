"""analyzer: a passive traffic analyzer for Microsoft RPC (DCE/RPC).

Which RPC services were negotiated, between which hosts, over which ports: from pcap / pcapng /
NetMon captures to tables of binds, endpoint-mapper answers, calls, connections and per-host views.

    import analyzer
    result = analyzer.analyze(["capture.pcapng"])
    result.binds, result.endpoints, result.calls, result.hosts   # pandas DataFrames
    result.write("out/")                                        # CSV files

The package imports pandas only when `analyze` is first used, so the CLI's other commands start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from analyzer.api import AnalysisResult, analyze

__all__ = ["AnalysisResult", "__version__", "analyze"]


def __getattr__(name: str) -> Any:
    if name in ("analyze", "AnalysisResult"):
        from analyzer import api

        return getattr(api, name)
    raise AttributeError(f"module 'analyzer' has no attribute {name!r}")
