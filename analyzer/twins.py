"""The Python source of the modules mypyc compiled, run instead of their extensions.

setup.py compiles some modules of the reading's per-PDU and per-connection path with mypyc
(`NATIVE` there): the extension it builds for `analyzer/dcerpc/association.py` sits beside the
source and is what `import` finds first. `use_source()` puts a finder ahead of the others that
loads such a module from its `.py` file instead: any `analyzer` module found as an extension
with a source file of the same name beside it. The C extensions (`_batch`, `_tcp`, ...) have no
source of their name (their twins are other modules) and are not touched.

Who needs it: the fuzzer, whose coverage instrumentation sees Python code only; the tests that hold
the two builds to the same records; and anyone measuring what the compiled modules give.
`RPC_ANALYZER_SOURCE=1` in the environment calls `use_source()` when the package is imported.
Modules imported before the call stay as they were loaded.

This module imports nothing from the package (the root imports it first).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

ENV = "RPC_ANALYZER_SOURCE"


def source_of(origin: str) -> str | None:
    """The `.py` file beside an extension module's file (None when it is not one, or has none)."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if origin.endswith(suffix):
            source = origin[: -len(suffix)] + ".py"
            return source if os.path.isfile(source) else None
    return None


class SourceFirst(importlib.abc.MetaPathFinder):
    """A finder for `analyzer.*` modules compiled from their own source: the source's spec."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not fullname.startswith("analyzer."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        source = None if spec is None or spec.origin is None else source_of(spec.origin)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


def use_source() -> None:
    """From now on, import the compiled modules from their source (once; see the module docstring)."""
    if not any(isinstance(f, SourceFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, SourceFirst())


def compiled(module: ModuleType) -> bool:
    """Whether a module of the package was loaded from an extension built from its own source. Told
    by its name, not its `__file__`: mypyc gives a module of a group built inside the package a
    path under the group's directory (`analyzer/analyzer/dcerpc/...`), where no file is."""
    name = module.__name__
    if not name.startswith("analyzer."):
        return False
    root = os.path.dirname(os.path.abspath(__file__))  # this module is never compiled
    source = os.path.join(root, *name.split(".")[1:]) + ".py"
    return os.path.isfile(source) and not str(getattr(module, "__file__", "")).endswith(".py")
