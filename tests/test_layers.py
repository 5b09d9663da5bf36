"""The package's shape, from analyzer/layers.py: imports go down the declared layers, no module imports
itself back through others, and modules and functions stay small.

Every import counts: top-level ones, lazy ones inside functions and `if TYPE_CHECKING:` ones; relative
imports are resolved; `from pkg import name` is an import of `pkg.name` when that is a module, else of `pkg`.

The layout is being reworked (issue 8), so what does not conform yet is listed once, in `KNOWN` below
(module -> why it is excused); everything it excuses is printed and summarised as a warning, and an entry
that excuses nothing any more (or names a module that is gone) fails, so the list only shrinks. A module not
in `KNOWN` must conform.
"""

from __future__ import annotations

import ast
import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from analyzer.layers import LAYERS, LONG_FUNCTION_MARKER, MAX_FUNCTION_LINES, MAX_MODULE_LINES, layer_of, rank

PACKAGE = Path(__file__).resolve().parents[1] / "analyzer"

# module -> why it does not conform yet. Emptied as the issue 8 branches land.
KNOWN: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module of the package
    line: int


def module_names(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name -> file of every module of the package (`analyzer.smb` is analyzer/smb/__init__.py);
    a compiled module is its stub (analyzer/capture/_batch.pyi)."""
    out: dict[str, Path] = {}
    stubs = [p for p in root.rglob("*.pyi") if not p.with_suffix(".py").exists()]
    for path in sorted([*root.rglob("*.py"), *stubs]):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _base(source: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute module a (possibly relative) `from` import names."""
    if not level:
        return module or ""
    parts = source.split(".")
    if not is_package:
        parts.pop()
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, module] if module else parts)


def imports_in(source: str, text: str, modules: set[str], is_package: bool = False) -> Iterator[Import]:
    """Every import of a package module in `text`, wherever it sits in the file."""
    root = source.split(".")[0]
    for node in ast.walk(ast.parse(text)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _base(source, is_package, node.level, node.module)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for name in names:
            if name != root and not name.startswith(root + "."):
                continue
            while name not in modules and "." in name:  # `import analyzer.x.Y` style attribute paths
                name = name.rsplit(".", 1)[0]
            if name != source:
                yield Import(source, name, node.lineno)


@functools.cache
def all_imports() -> tuple[Import, ...]:
    modules = module_names()
    out: list[Import] = []
    for name, path in modules.items():
        out += imports_in(name, path.read_text(), set(modules), path.name == "__init__.py")
    return tuple(out)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def long_functions(text: str) -> Iterator[tuple[str, int, int]]:
    """(name, first line, length) of every function over the limit that does not carry the marker."""
    lines = text.splitlines()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            body = lines[node.lineno - 1 : node.end_lineno]
            if length > MAX_FUNCTION_LINES and not any(LONG_FUNCTION_MARKER in ln for ln in body):
                yield node.name, node.lineno, length


# -- the checker itself ----------------------------------------------------------------------------------------


def test_the_import_walk_counts_lazy_type_only_and_relative_imports() -> None:
    text = """
from __future__ import annotations
from typing import TYPE_CHECKING
import os
from . import sibling
from .sibling import thing
from .. import limits
from analyzer.pkg import sub
import analyzer.pkg.sub.Attr
if TYPE_CHECKING:
    from analyzer.top import Name
def later():
    from analyzer.lazy import f
"""
    modules = {"analyzer", "analyzer.limits", "analyzer.pkg", "analyzer.pkg.sibling", "analyzer.pkg.sub"}
    modules |= {"analyzer.pkg.mod", "analyzer.top", "analyzer.lazy"}
    got = sorted((i.target, i.line) for i in imports_in("analyzer.pkg.mod", text, modules))
    assert got == [
        ("analyzer.lazy", 13),
        ("analyzer.limits", 7),
        ("analyzer.pkg.sibling", 5),
        ("analyzer.pkg.sibling", 6),
        ("analyzer.pkg.sub", 8),
        ("analyzer.pkg.sub", 9),
        ("analyzer.top", 11),
    ]
    # In a package's __init__, "." is the package itself.
    assert [i.target for i in imports_in("analyzer.pkg", "from .sub import x", modules, is_package=True)] == [
        "analyzer.pkg.sub"
    ]


def test_cycles_and_long_functions_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert [n for n, _l, _n in long_functions(f"def f():\n{body}\n")] == ["f"]
    assert not list(long_functions(f"def f():\n    {LONG_FUNCTION_MARKER}\n{body}\n"))
    assert not list(long_functions(f"def f():\n{body[: body.rfind(chr(10))]}\n"))


def test_the_layers_are_declared_once() -> None:
    prefixes = [p for _name, ps in LAYERS for p in ps]
    assert len(prefixes) == len(set(prefixes))
    assert layer_of("analyzer.smb.smb2") == "smb" and layer_of("analyzer") == "api"
    modules = module_names()
    dangling = [p for p in prefixes if not any(m == p or m.startswith(p + ".") for m in modules)]
    assert not dangling, f"analyzer/layers.py names modules that do not exist: {dangling}"
    assert layer_of("analyzer.reporting") is None and rank("base") == 0


# -- the package ----------------------------------------------------------------------------------------------

Problem = tuple[list[str], str]  # (the modules it is about, what is wrong)


def layer_problems() -> list[Problem]:
    out: list[Problem] = []
    for imp in all_imports():
        src, dst = layer_of(imp.source), layer_of(imp.target)
        if src is not None and dst is not None and rank(dst) > rank(src):
            out.append(([imp.source], f"{imp.source}:{imp.line} ({src}) imports {imp.target} ({dst})"))
    return out


def cycle_problems() -> list[Problem]:
    edges: dict[str, set[str]] = {}
    for imp in all_imports():
        edges.setdefault(imp.source, set()).add(imp.target)
    return [(comp, "import cycle: " + " <-> ".join(comp)) for comp in cycles(edges)]


def size_problems() -> list[Problem]:
    out: list[Problem] = []
    for name, path in module_names().items():
        text = path.read_text()
        n = len(text.splitlines())
        if n > MAX_MODULE_LINES:
            out.append(([name], f"{name}: {n} lines (at most {MAX_MODULE_LINES})"))
        for func, line, length in long_functions(text):
            out.append(([name], f"{name}:{line} {func}(): {length} lines (at most {MAX_FUNCTION_LINES})"))
    return out


def docstring_problems() -> list[Problem]:
    """Each package's `__init__` docstring says what the package must not import (or that it imports nothing)."""
    out: list[Problem] = []
    for name, path in module_names().items():
        if path.name == "__init__.py":
            doc = (ast.get_docstring(ast.parse(path.read_text())) or "").lower()
            if "must not import" not in doc and "imports nothing" not in doc:
                out.append(([name], f"{name}: the __init__ docstring does not say what the package must not import"))
    return out


def check(name: str, problems: list[Problem]) -> None:
    """Fail on every problem `KNOWN` does not excuse; print the excused ones and warn how many there are."""
    excused, failures = [], []
    for modules, text in problems:
        known = [m for m in modules if m in KNOWN]
        if known:
            excused.append(f"{text}  [KNOWN " + "; ".join(f"{m}: {KNOWN[m]}" for m in known) + "]")
        else:
            failures.append(text)
    for line in excused:
        print(f"{name}: excused: {line}")
    if excused:
        warnings.warn(f"{name}: {len(excused)} problem(s) excused by KNOWN (run with -s to list them)", stacklevel=2)
    assert not failures, "\n".join(failures)


def test_every_module_has_a_layer() -> None:
    missing = [m for m in module_names() if layer_of(m) is None]
    assert not missing, f"add a prefix to analyzer/layers.py for: {missing}"


def test_imports_go_down_the_layers() -> None:
    check("layers", layer_problems())


def test_no_import_cycles() -> None:
    check("cycles", cycle_problems())


def test_modules_and_functions_are_small() -> None:
    check("sizes", size_problems())


def test_package_docstrings_say_what_they_must_not_import() -> None:
    check("docstrings", docstring_problems())


def test_known_entries_are_still_needed() -> None:
    """A KNOWN entry that names no module or excuses nothing any more must go: the list only shrinks."""
    modules = module_names()
    gone = sorted(m for m in KNOWN if m not in modules)
    problems = layer_problems() + cycle_problems() + size_problems() + docstring_problems()
    needed = {m for mods, _text in problems for m in mods}
    stale = sorted(set(KNOWN) - needed - set(gone))
    assert not gone, f"KNOWN in tests/test_layers.py names modules that no longer exist, delete them: {gone}"
    assert not stale, f"KNOWN in tests/test_layers.py excuses nothing for these any more, delete them: {stale}"
