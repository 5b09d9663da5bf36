"""Where records go ([analyzer.records]): Arrow batches on disk read back as the same records, the
run directory's life, and the violation log's aggregation per kind and connection."""

from __future__ import annotations

import gc
import os
import pickle
from pathlib import Path

import pytest

from analyzer import records as rec_mod
from analyzer import violation_log
from analyzer.limits import Limits
from analyzer.model import BindRecord, ConnectionRecord, Flow, Violation
from analyzer.records import Records
from analyzer.violation_log import ViolationLog
from tests.conftest import SAMPLES, run


def _flow(stream: int, pipe: str | None = None) -> Flow:
    return Flow("c.pcap", stream, "ncacn_ip_tcp", "10.0.0.1", 50000 + stream, "10.0.0.2", 135, pipe)


def _bind(i: int) -> BindRecord:
    return BindRecord(
        _flow(i % 7, "\\pipe\\x" if i % 2 else None),
        frame=i,
        ts=1_700_000_000_000_000_000 + i,
        pdu_type="bind",
        call_id=i,
        ctx_id=0,
        interface_uuid="e1af8308-5d1f-11c9-91a4-08002b14a0fa",
        if_major=3,
        if_minor=0,
        transfer_syntaxes=("8a885d04-1ceb-11c9-9fe8-08002b104860",) * (i % 3),
        ack_result="acceptance",
        ack_reason=None,
        ack_frame=i + 1 if i % 5 else None,
        ack_transfer_syntax=None,
        sec_addr="135",
        max_xmit_frag=4280,
        max_recv_frag=4280,
        assoc_group=0xFFFFFFFF,
        ack_assoc_group=None,
        auth_type=None,
        auth_level=None,
        identified_by="port135",
    )


def test_records_round_trip_through_batches_on_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 10)
    r = Records()
    made = [_bind(i) for i in range(35)]
    r.binds.extend(made)
    files = sorted(os.listdir(str(r._run.path)))
    assert len(files) == 3 and all(f.endswith(".arrow") for f in files)  # 30 on disk, 5 buffered
    assert len(r.binds) == 35 and list(r.binds) == made and r.binds == made
    assert r.binds[-1] == made[-1] and r.binds[3:5] == made[3:5]
    # Flows read back are shared, as they were when made: one object per conversation.
    assert len({id(b.flow) for b in r.binds[:30]}) == 7 * 2


def test_the_buffered_records_are_encoded_once_until_more_come(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small table's rows are all in the buffer, and a table is read more than once (sort keys,
    rows, the views): its batch is made once, and made again once a record is added or written."""
    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 10)
    r = Records()
    made = [_bind(i) for i in range(25)]
    r.binds.extend(made[:3])  # all of them buffered
    first, again = list(r.binds.batches()), list(r.binds.batches())
    assert len(first) == 1 and again[0] is first[0]
    assert r.binds.__getstate__()["_buffered"] is None  # a pickled copy makes its own
    r.binds.append(made[3])
    assert next(iter(r.binds.batches())) is not first[0] and list(r.binds) == made[:4]
    r.binds.extend(made[4:13])  # the buffer written: nothing kept for it
    assert r.binds._buffered is None and list(r.binds) == made[:13]
    first, again = list(r.binds.batches()), list(r.binds.batches())  # 10 on disk and 3 buffered
    assert len(first) == 2 and again[-1] is first[-1]
    monkeypatch.setattr(rec_mod, "SMALL_SPOOL", 12)  # a big table: its last piece made each time
    first, again = list(r.binds.batches()), list(r.binds.batches())
    assert again[-1] is not first[-1]
    r.binds.extend(made[13:])
    assert list(r.binds) == made
    r.close()


def test_some_fields_read_back_as_the_records_have_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """`fields` and `arrow_fields` read some columns of each batch file (mapped, the rest not read),
    of a pickled batch and of the buffer: the records' values, in record order, arrays that outlive
    the pass that read them."""
    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 10)
    r = Records()
    made = [_bind(i) for i in range(25)]
    r.binds.extend(made)

    def conn(stream: int, ts: int) -> ConnectionRecord:
        return ConnectionRecord(
            _flow(stream), "port135", 1, ts, 2, ts, packets=1, client_bytes=0, server_bytes=0, pdus=0, end="fin"
        )

    r.connections.extend([*(conn(i, i) for i in range(19)), conn(1, 2**70), conn(5, 5), conn(6, 6)])
    assert [os.path.splitext(f)[1] for f in r.connections._files] == [".arrow", ".pickle"]
    names = ["frame", "flow.stream", "transfer_syntaxes", "ack_frame"]
    kept = [[a.to_pylist() for a in arrays] for arrays in r.binds.arrow_fields(names)]
    assert [len(k[0]) for k in kept] == [10, 10, 5]
    columns = [[v for k in kept for v in k[i]] for i in range(len(names))]
    assert columns[0] == [b.frame for b in made] and columns[1] == [b.flow.stream for b in made]
    assert columns[2] == [list(b.transfer_syntaxes) for b in made] and columns[3] == [b.ack_frame for b in made]
    assert [d["frame"] for d in r.binds.fields(["frame"])] == [
        list(range(0, 10)),
        list(range(10, 20)),
        list(range(20, 25)),
    ]
    streams = [s for (arr,) in r.connections.arrow_fields(["flow.stream"]) for s in arr.to_pylist()]
    assert streams == [*range(19), 1, 5, 6]  # a batch file, a pickled one (2**70 fits no int64), the buffer
    r.close()


def test_a_value_outside_its_arrow_type_is_kept_anyway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 2)
    r = Records()
    huge = ConnectionRecord(
        _flow(1), "port135", 1, 2**70, 2, 2**70, packets=1, client_bytes=0, server_bytes=0, pdus=0, end="fin"
    )
    r.connections.extend([huge, huge])
    assert list(r.connections) == [huge, huge]


def test_attempt_columns_read_back_as_added_rows() -> None:
    """Rows given as columns (a SYN run's attempts; a column of one repeated value made in one step)
    read back as the same rows added one by one."""
    rows = [("c.pcap", i, 10 + i, f"10.0.0.{i % 3}", 1024 + i, "10.0.0.9", 135, "syn_only") for i in range(6)]
    by_rows, by_columns = Records(), Records()
    for row in rows:
        by_rows.attempts.add(*row)
    by_columns.attempts.add_columns([list(c) for c in zip(*rows, strict=True)])
    by_columns.attempts.add_columns([["c.pcap"], [99], [1], ["a"], [1], ["b"], [2], ["syn_only"]])
    by_rows.attempts.add("c.pcap", 99, 1, "a", 1, "b", 2, "syn_only")
    by_rows.attempts.flush()
    assert list(by_columns.attempts) == list(by_rows.attempts)
    batch = next(iter(by_columns.attempts.batches()))
    assert batch.schema == next(iter(by_rows.attempts.batches())).schema
    assert batch.column("server_ip").to_pylist() == ["10.0.0.9"] * 6
    by_rows.close()
    by_columns.close()


def test_run_directory_is_removed_on_close_and_when_collected() -> None:
    r = Records()
    r.binds.append(_bind(1))
    r.finish()
    path = Path(str(r._run.path))
    assert path.is_dir() and any(path.iterdir())
    r.close()
    assert not path.exists()
    r2 = Records()
    r2.binds.append(_bind(2))
    r2.finish()
    path2 = Path(str(r2._run.path))
    assert path2.is_dir()
    del r2
    gc.collect()
    assert not path2.exists()


def test_a_run_that_writes_no_batch_makes_no_directory() -> None:
    r = run([SAMPLES / "epm_map_session.pcap"])
    assert r.binds and r._run.path is None


def test_a_pickled_copy_owns_the_directory() -> None:
    """The forked reader's case: the child pickles, the parent's copy reads and cleans up."""
    r = Records()
    r.binds.extend(_bind(i) for i in range(5))
    copy = pickle.loads(pickle.dumps(r))
    path = Path(str(copy._run.path))
    del r
    gc.collect()
    assert path.is_dir() and list(copy.binds) == [_bind(i) for i in range(5)]
    del copy
    gc.collect()
    assert not path.exists()


def test_pipeline_records_equal_what_the_tables_need() -> None:
    """The spooled records of a sample read back whole, every time they are iterated."""
    r = run([SAMPLES / "epm_map_session.pcap"])
    first = list(r.calls)
    assert first and list(r.calls) == first and len(r.calls) == len(first)


# -- the violation log --------------------------------------------------------------------------


def _v(what: str, frame: int | None, stream: int | None = 0, capture: str = "c.pcap") -> Violation:
    return Violation(capture, frame, stream, "limits" if what.startswith("cap_") else "dcerpc", what, f"#{frame}")


def _log(listed: int = 3) -> ViolationLog:
    return Records(Limits(max_violations_listed=listed)).violations


def test_a_cap_is_one_row_per_cap_and_connection_with_its_count() -> None:
    log = _log()
    for f in range(10, 20):
        log.append(_v("cap_pending_calls", f, stream=1))
    log.append(_v("cap_pending_calls", 30, stream=2))
    rows = sorted(log, key=lambda v: v.stream or 0)
    assert [(v.stream, v.count, v.frame, v.last_frame, v.detail) for v in rows] == [
        (1, 10, 10, 19, "#10"),
        (2, 1, 30, 30, "#30"),
    ]


def test_a_run_wide_cap_is_one_row_per_capture_whichever_flow_was_evicted() -> None:
    log = _log()
    for s in range(1000):
        log.append(_v("cap_tcp_flows", 100 + s, stream=s))
    log.append(_v("cap_tcp_flows", 5, stream=0, capture="d.pcap"))
    rows = list(log)
    assert [(v.capture, v.stream, v.count, v.frame, v.last_frame) for v in rows] == [
        ("c.pcap", None, 1000, 100, 1099),
        ("d.pcap", None, 1, 5, 5),
    ]


def test_other_kinds_are_listed_then_summarised() -> None:
    log = _log(listed=3)
    for f in range(1, 11):
        log.append(_v("short_request", f))
    log.append(_v("short_request", 50, stream=4))
    log.flush()
    rows = [(v.stream, v.frame, v.count, v.last_frame, v.detail) for v in log]
    assert rows == [
        (0, 1, 1, 1, "#1"),
        (0, 2, 1, 2, "#2"),
        (0, 3, 1, 3, "#3"),
        (4, 50, 1, 50, "#50"),
        (0, 4, 7, 10, "#4"),  # the rest of stream 0's, with a sample
    ]
    assert sum(v.count for v in log) == 11 and len(log) == 5


def test_aggregates_held_are_bounded_and_counts_still_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(violation_log, "LIVE_AGGREGATES", 8)
    log = _log()
    for s in range(100):
        for f in range(3):
            log.append(_v("cap_ooo_bytes", s * 10 + f, stream=s))
    assert len(log._live) <= 8
    rows = list(log)
    assert len(rows) == 100 and all(v.count == 3 for v in rows)


def test_the_command_line_leaves_no_run_directory_behind(tmp_path: Path) -> None:
    """The forked reader hands its run directory to the parent, which removes it at exit."""
    import subprocess
    import sys

    from tests.test_floods import floods  # the flood builders of bench/floods.py

    capture = tmp_path / "syn.pcap"
    with open(capture, "wb") as out:
        floods.syn_flood(out, rec_mod.BATCH_ROWS + 10)  # one batch of attempts goes to disk
    spool = tmp_path / "tmp"
    spool.mkdir()
    env = dict(os.environ, TMPDIR=str(spool))
    cmd = [sys.executable, "-m", "analyzer", "analyze", str(capture), "-o", str(tmp_path / "out"), "-q"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "out" / "attempts.csv") as f:  # SYNs only: attempts, not connections
        assert sum(1 for _ in f) == rec_mod.BATCH_ROWS + 11  # read back whole, header included
    assert not [p.name for p in spool.iterdir() if p.name.startswith("rpc-analyzer-run-")]
