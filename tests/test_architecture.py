"""The layering rules of ../shared/DESIGN.md, checked by reading each module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "analyzer"

# Sans-IO layers: bytes in, events/records out. No I/O, clocks, logging, or the upper layers.
SANS_IO = ["tcp", "transports", "dcerpc", "stubs", "smb"]
FORBIDDEN = {
    "dpkt",
    "pandas",
    "click",
    "rich",
    "logging",
    "time",
    "socket",
    "os",
    "analyzer.pipeline",
    "analyzer.report",
    "analyzer.cli",
    "analyzer.api",
}
# Only these modules may import pandas.
PANDAS_USERS = {
    "api.py",
    "localise.py",
    # the firewall view of the tables (interop)
    "firewall.py",
    "partitioned.py",  # the tables as partitioned Parquet datasets (a cluster run's output)
}
# Packages of the report layer: they work on the tables, never on packets (report/views is the views).
PANDAS_PACKAGES = {"report", "views", "findings", "zeek"}


def _modules(rel: str) -> list[Path]:
    p = PACKAGE / rel
    if p.is_dir():
        return sorted(p.rglob("*.py"))
    return [p] if p.exists() else []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def _calls_open(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open" for n in ast.walk(tree))


def test_sans_io_modules_do_no_io() -> None:
    checked = 0
    for rel in SANS_IO:
        for mod in _modules(rel):
            bad = {i for i in _imports(mod) if i in FORBIDDEN or i.split(".")[0] in FORBIDDEN}
            assert not bad, (mod.name, bad)
            assert not _calls_open(mod), mod.name
            checked += 1
    assert checked >= 10


def test_pandas_stays_in_the_report_layer() -> None:
    for mod in PACKAGE.rglob("*.py"):
        if "pandas" in {i.split(".")[0] for i in _imports(mod)}:
            assert mod.name in PANDAS_USERS or mod.parent.name in PANDAS_PACKAGES, mod


def test_capture_layer_is_the_only_one_that_reads_files() -> None:
    for mod in PACKAGE.rglob("*.py"):
        if _calls_open(mod):
            # records.py reads back only the batches it spilled to its own run directory.
            assert mod.parent.name in ("capture", "registry") or mod.name in ("output.py", "records.py"), mod


def test_the_report_layer_imports_nothing_above_it() -> None:
    """`report/` reads records and the registry; the layers that use it (findings, Zeek writers, the
    API, the CLI) and the pipeline that feeds it are never imported from it, lazily or not: so
    `render()` takes the base tables' figures and the views, not an `AnalysisResult`, and there is
    no api <-> html cycle."""
    above = ("analyzer.api", "analyzer.cli", "analyzer.findings", "analyzer.zeek", "analyzer.pipeline")
    checked = 0
    for mod in (PACKAGE / "report").rglob("*.py"):
        names = _imports(mod) | _imported_names(mod)
        bad = {i for i in names if any(i == a or i.startswith(a + ".") for a in above)}
        assert not bad, (mod.relative_to(PACKAGE), bad)
        checked += 1
    assert checked >= 15


def _imported_names(path: Path) -> set[str]:
    """`from analyzer import api` as `analyzer.api` (what `_imports` sees as `analyzer`)."""
    tree = ast.parse(path.read_text())
    return {
        f"{node.module}.{a.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for a in node.names
    }
