"""`--jobs 1` memory (issue 13): the one process reads its captures before pandas is imported, with
Arrow's system pool from the start, and then builds its tables as the two-process run's parent does.

- `child.with_pandas` undoes `child.without_pandas` for pyarrow too: its pandas shim, which remembered
  the refused import, knows pandas again (a pandas Series is converted as one, not as a sequence).
- `analyze --jobs 1` imports no pandas while it reads, picks the system pool for Arrow's C++ too
  (`report.memory.system_pool_throughout`) and writes what the default run writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import SAMPLES


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return done.stdout.strip()


def test_pandas_comes_back_for_pyarrow_after_the_reading() -> None:
    """Refused while reading, pandas is importable again after `with_pandas`, and pyarrow converts a
    nullable pandas Series as pandas (without the retried import it took the Series for a list of
    Python values and failed on its NA)."""
    out = _python(
        "import sys\n"
        "from analyzer.parallel.child import with_pandas, without_pandas\n"
        "without_pandas()\n"
        "import pyarrow as pa\n"
        "pa.array([1, 2])\n"  # the first pa.array asked for pandas, and was refused
        "refused = 'pandas' not in sys.modules\n"
        "with_pandas()\n"
        "import pandas as pd\n"
        "arr = pa.array(pd.Series([1, None], dtype='Int64'))\n"
        "print(refused, arr.type, arr.null_count)\n"
    )
    assert out == "True int64 1"


def test_with_pandas_without_the_guard_changes_nothing() -> None:
    out = _python(
        "import sys\n"
        "from analyzer.parallel.child import with_pandas\n"
        "before = list(sys.meta_path)\n"
        "with_pandas()\n"
        "print(sys.meta_path == before, 'pyarrow' in sys.modules)\n"
    )
    assert out == "True False"


def test_one_process_reads_before_pandas_and_writes_the_same(tmp_path: Path) -> None:
    """`analyze --jobs 1`: no pandas while the pipeline runs, the system pool in Arrow's C++, and the
    same files (but the manifest) as the default run's."""
    one, default = tmp_path / "one", tmp_path / "default"
    out = _python(
        "import sys\n"
        "import analyzer.parallel.child as child\n"
        "seen = []\n"
        "real = child._run\n"
        "def _run(*a, **k):\n"
        "    made = real(*a, **k)\n"
        "    seen.append('pandas' in sys.modules)\n"
        "    return made\n"
        "child._run = _run\n"
        "from analyzer.cli.app import main\n"
        f"main.main(['analyze', {str(SAMPLES)!r}, '-o', {str(one)!r}, '-q', '--jobs', '1'],"
        " prog_name='rpc-analyzer', standalone_mode=False)\n"
        "import pyarrow as pa\n"
        "print(seen, pa.default_memory_pool().backend_name)\n"
    )
    assert out == "[False] system"
    subprocess.run(
        [sys.executable, "-m", "analyzer", "analyze", str(SAMPLES), "-o", str(default), "-q"], check=True, timeout=300
    )
    names = sorted(p.name for p in one.iterdir() if p.name != "manifest.json")
    assert names == sorted(p.name for p in default.iterdir() if p.name != "manifest.json")
    assert "binds.csv" in names
    for name in names:
        assert (one / name).read_bytes() == (default / name).read_bytes(), name
