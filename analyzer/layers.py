"""The package's layers, lowest first: the one declared order of dependencies (checked by tests/test_layers.py).

Data flows up this list: packets are read (`capture`), reassembled (`tcp`), framed and decoded (`dcerpc`,
`stubs`), carried over SMB pipes (`smb`) and the transports named by their protocol sequence (`transports`),
driven by the run (`pipeline`), turned into tables (`report`), judged (`findings`), exported for other tools
(`interop`), spread over cores or a cluster (`parallel`), offered as a Python API (`api`) and a command
line (`cli`). A module may import only from its own
layer or a lower one; lazy imports (inside functions) and `if TYPE_CHECKING:` imports count as well. `dcerpc`
gets the stub decoders injected: it must not import `analyzer.stubs`.

A module belongs to the layer whose prefix names it most precisely (`analyzer.smb` covers `analyzer.smb.smb2`;
`analyzer` alone is the package's own `__init__`). A new module or package slots in by one prefix here.

Size limits, checked by the same test: no module over `MAX_MODULE_LINES` lines, no function over
`MAX_FUNCTION_LINES` lines unless its length is a record's field list and a comment inside it says so with
`LONG_FUNCTION_MARKER`.

This module imports nothing: every layer may read it.
"""

from __future__ import annotations

# (layer, module prefixes), lowest layer first.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "base",
        (
            "analyzer.errors",
            "analyzer.limits",
            "analyzer.bounded",
            "analyzer.model",
            "analyzer.version",
            "analyzer.book",
            "analyzer.registry",
            "analyzer.layers",
            "analyzer.ntlm",
            "analyzer.twins",
        ),
    ),
    ("capture", ("analyzer.capture",)),
    ("tcp", ("analyzer.tcp",)),
    ("dcerpc", ("analyzer.dcerpc",)),
    ("stubs", ("analyzer.stubs",)),
    ("smb", ("analyzer.smb",)),
    ("transports", ("analyzer.transports",)),
    (
        "pipeline",
        (
            "analyzer.pipeline",
            "analyzer.records",
            "analyzer.spool_codec",
            "analyzer.readback",
            "analyzer.violation_log",
            "analyzer.packets",
        ),
    ),
    ("report", ("analyzer.report",)),
    ("findings", ("analyzer.findings",)),
    ("interop", ("analyzer.zeek", "analyzer.firewall")),
    ("parallel", ("analyzer.parallel",)),
    ("api", ("analyzer", "analyzer.api", "analyzer.live")),
    ("cli", ("analyzer.cli", "analyzer.__main__")),
)

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
LONG_FUNCTION_MARKER = "# long: field list"


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name (`analyzer.smb.smb2` -> `smb`), None if no prefix names it."""
    best: tuple[int, str] | None = None
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            exact_root = prefix == "analyzer" and module == "analyzer"
            covers = prefix != "analyzer" and (module == prefix or module.startswith(prefix + "."))
            if (exact_root or covers) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), name)
    return best[1] if best else None


def rank(layer: str) -> int:
    """The position of a layer, 0 for the lowest."""
    return [name for name, _prefixes in LAYERS].index(layer)
