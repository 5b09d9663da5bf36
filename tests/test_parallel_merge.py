"""The merge a session at a time (`merge.Merger`) and the pool fed a few tasks at a time
(`multicore._Work`): the serial run's records whether a session is merged fresh or read again, and a
reading again given to the next free worker, ahead of the fresh sessions not given yet."""

from __future__ import annotations

import concurrent.futures as cf
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analyzer.limits import DEFAULT_LIMITS
from analyzer.parallel import merge, multicore, units
from analyzer.pipeline import Pipeline
from tests.conftest import SAMPLES
from tests.test_multicore import assert_same_records


def test_progress_asks_for_a_reading_again_and_merges_it_once_done(cut_in_two: Path) -> None:
    groups = multicore.plan([str(cut_in_two)])
    results = [units.analyse_session(i, g, DEFAULT_LIMITS) for i, g in enumerate(groups)]
    merger = merge.Merger(DEFAULT_LIMITS)
    merger.offer(results[1])
    assert merger.progress() == [] and merger.added == 0  # session 0 first
    merger.offer(results[0])
    asks = merger.progress()
    assert merger.added == 1 and [i for _t, i, _s in asks] == [1]
    token, _i, state = asks[0]
    assert len(state.book) > 0  # the first file's EPM answer
    assert merger.progress() == [] and merger.added == 1  # asked once, waiting for it
    merger.redone(token, units.redo_session(1, groups[1], DEFAULT_LIMITS, state))
    assert merger.progress() == [] and merger.added == 2
    merged = merger.records()
    assert merged is not None
    assert_same_records(Pipeline(DEFAULT_LIMITS).run([m.path for g in groups for m in g]), merged)


def test_a_reading_again_asked_for_ahead_is_merged_only_from_the_merges_state(cut_in_two: Path, tmp_path: Path) -> None:
    """Sessions 1 and 2 both reached by session 0's endpoint mapper answer: while session 1 is
    read again, session 2's reading again starts from the state session 1's fresh result predicts.
    Here the prediction is wrong (the fresh book learned a secondary address that the reading
    again, whose book knew the server, does not), so session 2 is read again from the merge's own
    state before it is merged: the records are the serial run's."""
    again_file = tmp_path / "use_again.pcap"
    shutil.copyfile(cut_in_two / "use.pcap", again_file)
    paths = [str(cut_in_two / "announce.pcap"), str(cut_in_two / "use.pcap"), str(again_file)]
    groups = [multicore.plan([p])[0] for p in paths]
    results = [units.analyse_session(i, g, DEFAULT_LIMITS) for i, g in enumerate(groups)]
    merger = merge.Merger(DEFAULT_LIMITS)
    for r in results:
        merger.offer(r)
    asks = merger.progress()
    assert [i for _t, i, _s in asks] == [1, 2] and merger.added == 1  # both asked for at once
    again: list[int] = []
    while asks:
        token, i, state = asks.pop()
        again.append(i)
        merger.redone(token, units.redo_session(i, groups[i], DEFAULT_LIMITS, state))
        asks += merger.progress()
    assert merger.added == 3 and again == [2, 1, 2]  # the one predicted wrongly read a third time
    merged = merger.records()
    assert merged is not None
    serial = Pipeline(DEFAULT_LIMITS)
    for g in groups:
        serial.add_file(g[0].path, g[0].name)
    assert_same_records(serial.records, merged)


def test_sessions_with_the_same_name_are_not_merged() -> None:
    members = multicore.plan([str(SAMPLES / "epm_map_session.pcap")])[0]
    merger = merge.Merger(DEFAULT_LIMITS)
    for i in range(2):  # the same file twice: its violations would share aggregates
        r = units.analyse_session(i, members, DEFAULT_LIMITS)
        merger.offer(units.SessionResult(i, r.records, r.tcp_ports, r.udp_ports, r.census, r.held, names=r.names))
        merger.progress()
    assert merger.added == 2 and merger.records() is None


def test_the_worker_takes_what_the_merge_reads_as_the_spool_gives_it() -> None:
    groups = multicore.plan([str(SAMPLES)])
    taken = 0
    for i, g in enumerate(groups[1:], 1):
        r = pickle.loads(pickle.dumps(units.analyse_session(i, g, DEFAULT_LIMITS)))  # as the parent gets it
        assert r.same_port == units.same_port_binds(r.records)
        if r.census is not None:
            assert r.starts == units.conversation_starts(r.records)
            taken += bool(r.starts)
        r.records.close()
    assert taken > 0


class _Pool:
    """A pool that runs nothing: it notes what it was given."""

    def __init__(self) -> None:
        self.given: list[tuple[str, int]] = []

    def submit(self, fn: Callable[..., Any], i: int, *args: Any) -> cf.Future[Any]:
        self.given.append((fn.__name__, i))
        return cf.Future()


def test_a_reading_again_goes_to_the_next_free_worker() -> None:
    groups = multicore.plan([str(SAMPLES)])
    pool = _Pool()
    work = multicore._Work(pool, 2, groups, DEFAULT_LIMITS)  # type: ignore[arg-type]
    work.top_up()
    assert pool.given == [("_analyse", 0), ("_analyse", 1), ("_analyse", 2)]  # one waiting beyond two workers
    done = next(iter(work.tasks))
    del work.tasks[done]  # session 0 finished
    work.redo(7, 1, merge.start_state(DEFAULT_LIMITS))
    work.top_up()
    assert pool.given[3:] == [("_redo", 1)]  # ahead of session 3, which waits for room
    for fut in list(work.tasks)[:2]:
        del work.tasks[fut]
    work.top_up()
    assert pool.given[4:] == [("_analyse", 3), ("_analyse", 4)]


def test_the_imports_failing_beside_the_workers_fall_back_to_the_serial_run() -> None:
    paths = [str(SAMPLES / "cl_udp.pcap"), str(SAMPLES / "smb2_pipes.pcap")]
    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        raise RuntimeError("an import failed")

    serial = Pipeline(DEFAULT_LIMITS).run(paths)
    records = multicore.run(paths, DEFAULT_LIMITS, 2, while_reading=failing)
    assert calls == [1]  # run once, on its thread; the serial run does not run it again
    assert_same_records(serial, records)
