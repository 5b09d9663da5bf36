"""`--jobs 1` memory (issue 13): the one process reads its captures before pandas is imported, with
Arrow's system pool from the start, and then builds its tables as the two-process run's parent does.

- `child.with_pandas` undoes `child.without_pandas` for pyarrow too: its pandas shim, which remembered
  the refused import, knows pandas again (a pandas Series is converted as one, not as a sequence).
- `analyze --jobs 1` imports no pandas while it reads, picks the system pool for Arrow's C++ too
  (`report.memory.system_pool_throughout`) and writes what the default run writes.
- the views' rows are sorted a column at a time (`fold.sort_rows`): the order of all the keys at
  once, with a few references per row alive rather than a key tuple per row and column.
- the timeline holds a key tuple and a row number per key, its counts in int64 columns."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from analyzer.report.columns import frame
from analyzer.report.fold import IP_COLUMNS, ip_key, sort_rows
from analyzer.report.source import TABLES
from analyzer.report.views.activity import Timeline
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


def test_the_default_run_gives_arrow_the_system_pool_in_every_process(tmp_path: Path) -> None:
    """Without --jobs the captures are read in a forked child: it and the parent take Arrow's system
    pool for its C++ allocations too (`system_pool_throughout` before either imports pyarrow). With
    mimalloc's, the reader's spool writer and the parent's Parquet writer and IPC reads kept what
    they freed: the reader's peak on 10.8 GB 143 -> 126 MiB with it, the parent's writing the
    binds flood to Parquet 195 -> 180 MiB."""
    seen = tmp_path / "pools"
    out = _python(
        "import os\n"
        "import analyzer.parallel.child as child\n"
        "real = child._run\n"
        "def _run(*a, **k):\n"
        "    import pyarrow as pa\n"
        f"    with open({str(seen)!r}, 'a') as f:\n"
        "        f.write(f'{os.getpid()} {pa.default_memory_pool().backend_name}\\n')\n"
        "    return real(*a, **k)\n"
        "child._run = _run\n"
        "from analyzer.cli.app import main\n"
        f"main.main(['analyze', {str(SAMPLES)!r}, '-o', {str(tmp_path / 'out')!r}, '-q'],"
        " prog_name='rpc-analyzer', standalone_mode=False)\n"
        "print(os.getpid(), os.environ.get('ARROW_DEFAULT_MEMORY_POOL'))\n"
    )
    parent, pool = out.split()
    readers = [line.split() for line in seen.read_text().splitlines()]
    assert pool == "system" and readers and all(pid != parent and name == "system" for pid, name in readers)


def _composite_sort(data: dict[str, list[Any]], by: list[str]) -> dict[str, list[Any]]:
    """The views' row order as it was made before: one key tuple per row, of one key per column."""
    keyed = [
        [ip_key(v) for v in data[col]] if col in IP_COLUMNS else [(0, 0) if v is None else (1, v) for v in data[col]]
        for col in by
    ]
    order = sorted(range(len(data[by[0]])), key=lambda i: tuple(k[i] for k in keyed))
    return {col: [values[i] for i in order] for col, values in data.items()}


_ADDRESSES = st.sampled_from(["10.0.0.2", "10.0.0.10", "::1", "fe80::1", "HOST", "host", "", None])


@given(
    st.lists(
        st.tuples(_ADDRESSES, st.one_of(st.none(), st.integers(-3, 3)), st.one_of(st.none(), st.sampled_from("ab"))),
        max_size=40,
    ),
    st.permutations(["server_ip", "minute", "name"]),
)
def test_sort_rows_is_the_order_of_all_its_keys_at_once(rows: list[tuple[Any, ...]], by: list[str]) -> None:
    """Sorting a column at a time, the last key first, gives the stable order of sorting by every key at
    once (ties kept in the rows' order: `row` numbers them)."""
    data: dict[str, list[Any]] = {"server_ip": [], "minute": [], "name": [], "row": []}
    for i, (ip, minute, name) in enumerate(rows):
        for col, v in zip(data, (ip, minute, name, i), strict=True):
            data[col].append(v)
    if not rows:
        return
    assert sort_rows(data, by) == _composite_sort(data, by)


def _sorting_peak(n: int) -> int:
    """tracemalloc's peak while `sort_rows` orders n timeline-like rows by five columns, above its
    input and output (which are the view's rows)."""
    data: dict[str, list[Any]] = {
        "minute": [i // 7 for i in range(n)][::-1],
        "client_ip": [f"10.1.{i % 50}.{i % 200}" for i in range(n)],
        "server_ip": ["10.0.0.1"] * n,
        "interface_name": [None if i % 3 else "drsuapi" for i in range(n)],
        "interface_uuid": [str(i % 11) for i in range(n)],
    }
    by = list(data)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = sort_rows(data, by)
        held = tracemalloc.get_traced_memory()[0] - base  # the output's lists
        peak = tracemalloc.get_traced_memory()[1] - base - held
    finally:
        tracemalloc.stop()
    assert out["minute"] == sorted(data["minute"])
    return peak


def test_sorting_a_view_makes_no_key_per_row_and_column() -> None:
    """What `sort_rows` makes beside the rows is a few references per row, not a key tuple per row and
    column (about 400 bytes a row for five columns): 40,000 rows cost about 4x 10,000 at most, and
    well under 100 bytes a row."""
    small, big = _sorting_peak(10_000), _sorting_peak(40_000)
    assert big < 100 * 40_000, big
    assert big < 5 * small + 200_000, (small, big)


def _timeline_bytes(keys: int) -> float:
    """Traced bytes a `Timeline` holds per key after folding `keys` distinct (minute, pair) keys, a
    bind and a call each, 4,096 rows a chunk (a long capture's timeline: every minute a new key)."""
    start_ns, minute_ns = 1_767_225_600_000_000_000, 60_000_000_000  # 2026-01-01, a minute
    binds = frame(
        TABLES["binds"],
        {
            "ts": [start_ns + i * minute_ns for i in range(keys)],
            "client_ip": [f"10.1.0.{i % 200}" for i in range(keys)],
            "server_ip": ["10.0.0.1"] * keys,
            "interface_uuid": ["e3514235-4b06-11d1-ab04-00c04fc2dcd2"] * keys,
            "interface_name": ["drsuapi"] * keys,
        },
    )
    calls = frame(
        TABLES["calls"],
        {
            **{c: list(binds[c]) for c in ("client_ip", "server_ip", "interface_uuid", "interface_name")},
            "ts": [start_ns + i * minute_ns for i in range(keys)],
            "request_bytes": [1_000 + i for i in range(keys)],
            "response_bytes": [100_000 + i for i in range(keys)],
            "operation": ["DRSGetNCChanges"] * keys,
        },
    )
    view = Timeline()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for table, rows in (("binds", binds), ("calls", calls)):
            for start in range(0, keys, 4096):
                view.add(table, rows.iloc[start : start + 4096])
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(view.result()) == keys
    return held / keys


def test_the_timeline_holds_a_tuple_and_a_number_per_key() -> None:
    """A key's counts are items of int64 columns, not a list of int objects: about 250 traced bytes a
    key with its operations (340 as a list per key), and no more per key for 4x the keys."""
    small, big = _timeline_bytes(5_000), _timeline_bytes(20_000)
    assert big < 290, big
    assert big < small * 1.25 + 20, (small, big)
