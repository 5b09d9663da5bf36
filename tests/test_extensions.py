"""The optional C extensions of setup.py, and the modules it compiles with mypyc (`NATIVE`): in CI
every one of them is built and imports.

Each has a Python twin that runs where it cannot be built, and the twins' tests compare both paths
only where the extension exists; a build that failed quietly (no compiler, no OpenSSL headers) would
leave CI testing the twins alone. `.ci/run` installs what the builds need and sets CI."""

from __future__ import annotations

import ast
import importlib
import os

import pytest

from analyzer import twins
from tests.conftest import ROOT


def extension_names() -> list[str]:
    """The module names of setup.py's `Extension(...)` entries, read from its syntax tree."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "Extension"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]


def native_names() -> list[str]:
    """The module names of setup.py's `NATIVE` (the sources mypyc compiles), read from its syntax tree."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["NATIVE"]:
            paths = ast.literal_eval(node.value)
            return [p.removesuffix(".py").replace("/", ".") for p in paths]
    raise AssertionError("setup.py has no NATIVE list")


def test_setup_lists_the_extensions_beside_their_sources() -> None:
    names = extension_names()
    assert len(names) >= 5, names
    for name in names:
        assert (ROOT / (name.replace(".", "/") + ".c")).is_file(), name


@pytest.mark.skipif(not os.environ.get("CI"), reason="outside CI an extension may be absent: its twin runs")
@pytest.mark.parametrize("name", extension_names())
def test_in_ci_every_extension_is_built(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None and not module.__file__.endswith(".py"), module.__file__


def test_setup_compiles_sources_of_the_package() -> None:
    names = native_names()
    assert len(names) >= 5, names
    for name in names:
        assert (ROOT / (name.replace(".", "/") + ".py")).is_file(), name


@pytest.mark.skipif(not os.environ.get("CI"), reason="outside CI mypyc may be absent: the source runs")
@pytest.mark.skipif(bool(os.environ.get(twins.ENV)), reason=f"{twins.ENV} asks for the source")
@pytest.mark.parametrize("name", native_names())
def test_in_ci_every_native_module_is_compiled(name: str) -> None:
    assert twins.compiled(importlib.import_module(name)), name
