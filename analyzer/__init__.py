"""analyzer: a passive traffic analyzer for Microsoft RPC (DCE/RPC).

Which RPC services were negotiated, between which hosts, over which ports: from pcap / pcapng /
NetMon captures to tables of binds, endpoint-mapper answers, calls, connections and per-host views.

    import analyzer
    result = analyzer.analyze(["capture.pcapng"])
    result.binds, result.endpoints, result.calls, result.hosts   # pandas DataFrames
    result.write("out/")                                        # CSV files
    analyzer.analyze_packets(dpkt.pcap.Reader(f), link_type=1, name="cap")  # any packet source

The package imports pandas only when `analyze` is first used, so the CLI's other commands start fast.

The root owns only these public names (each loaded lazily from `analyzer.api` or `analyzer.packets`)
and `__version__` (from `analyzer.version`); with `RPC_ANALYZER_SOURCE=1` set it first makes the
modules mypyc compiled load from their source (`analyzer.twins`). It must not import `analyzer.cli`,
and no module of the package imports the root: the layers are declared in `analyzer.layers`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from analyzer import twins
from analyzer.version import __version__

if os.environ.get(twins.ENV):  # the mypyc-compiled modules run from their source (analyzer.twins)
    twins.use_source()

if TYPE_CHECKING:
    from analyzer.api import AnalysisResult, analyze, analyze_packets, from_records
    from analyzer.packets import PacketFeed

__all__ = ["AnalysisResult", "PacketFeed", "__version__", "analyze", "analyze_packets", "from_records"]


def __getattr__(name: str) -> Any:
    if name in ("analyze", "analyze_packets", "from_records", "AnalysisResult"):
        from analyzer import api

        return getattr(api, name)
    if name == "PacketFeed":
        from analyzer import packets

        return packets.PacketFeed
    raise AttributeError(f"module 'analyzer' has no attribute {name!r}")
