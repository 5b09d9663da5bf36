"""The modules mypyc compiles (setup.py's NATIVE) against their own source (`analyzer.twins`).

A compiled module checks its annotations at run time where the source does not, and its classes
are not the interpreter's; the records must not depend on which ran. Each run is a subprocess, so
the finder that loads the source decides every import of it."""

from __future__ import annotations

import filecmp
import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

from analyzer import twins
from tests.conftest import CAPTURES, ROOT, needs_shared
from tests.test_extensions import native_names
from tests.test_floods import floods

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _env(source: bool) -> dict[str, str]:
    """This environment, with `RPC_ANALYZER_SOURCE` set when the source is to run, else unset."""
    env = {k: v for k, v in os.environ.items() if k != twins.ENV}
    return env | {twins.ENV: "1"} if source else env


def _python(code: str, source: bool, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=_env(source), cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_source_of_is_the_py_beside_an_extension(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("")
    (tmp_path / f"mod{SUFFIX}").write_bytes(b"")
    (tmp_path / f"alone{SUFFIX}").write_bytes(b"")
    assert twins.source_of(str(tmp_path / f"mod{SUFFIX}")) == str(tmp_path / "mod.py")
    assert twins.source_of(str(tmp_path / f"alone{SUFFIX}")) is None  # a C extension: its twin is elsewhere
    assert twins.source_of(str(tmp_path / "mod.py")) is None


def test_the_environment_loads_every_native_module_from_its_source() -> None:
    code = "import importlib, sys\nfor n in sys.argv[1:]: print(importlib.import_module(n).__file__)"
    names = native_names()
    files = _python(code, True, *names).split()
    assert files == [str(ROOT / (n.replace(".", "/") + ".py")) for n in names]
    # The C extensions are left as they are (their twins are other modules).
    c_file = _python("import analyzer.tcp._tcp as m; print(m.__file__)", True).strip()
    assert not c_file.endswith(".py")


def _tables(paths: list[Path], out: Path, source: bool) -> Path:
    args = ["analyze", *map(str, paths), "-o", str(out), "-q", "--jobs", "1"]
    subprocess.run([sys.executable, "-m", "analyzer", *args], env=_env(source), cwd=ROOT, check=True)
    return out


def _same_tables(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir() if p.name != "manifest.json")
    assert names == sorted(p.name for p in b.iterdir() if p.name != "manifest.json")
    _, differ, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert (differ, errors) == ([], [])


def test_compiled_and_source_write_the_same_tables_under_floods(tmp_path: Path) -> None:
    made = []
    for name, build, n in (("binds", floods.bind_flood, 3000), ("pending", floods.pending_flood, 3000)):
        path = tmp_path / f"{name}.pcap"
        with path.open("wb") as f:
            build(f, n)
        made.append(path)
    bogus = tmp_path / "bogus.pcap"
    with bogus.open("wb") as f:
        floods.bogus_flood(f, 20_000)
    made.append(bogus)
    _same_tables(_tables(made, tmp_path / "compiled", False), _tables(made, tmp_path / "source", True))


@needs_shared
def test_compiled_and_source_write_the_same_tables_on_real_captures(tmp_path: Path) -> None:
    compiled, source = _tables([CAPTURES], tmp_path / "compiled", False), _tables([CAPTURES], tmp_path / "source", True)
    _same_tables(compiled, source)
    assert (compiled / "binds.csv").stat().st_size > 10_000  # the captures were read
