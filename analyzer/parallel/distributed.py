"""Beyond one machine: a run's capture sessions read on a Dask cluster (`distributed`), and its tables
written as partitioned Parquet datasets.

`run_on_cluster(paths, limits, client)` sends the units of work `analyzer.parallel.multicore` runs in local
processes (`units.analyse_session`: one capture session each, the largest first) to the cluster's
workers, and merges their results exactly as the local run does (`merge.merge`, which has a worker
read again from the serial state any session that state could reach). The records are the serial
run's. What travels back is the records themselves (`units.SessionRecords`, in memory): a worker
needs no directory shared with the client, only the capture files at the same paths, and the same
version of rpc-analyzer (with the same name overrides: `names_file` is loaded on each worker).

The tables of such a run are written as partitioned Parquet datasets by `analyzer.report.partitioned`.

Layering: the pipeline's level (a file loop over a cluster); no pandas here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from analyzer.capture.session import Member
from analyzer.limits import Limits
from analyzer.parallel.merge import merge, mergeable
from analyzer.parallel.multicore import Tally, plan
from analyzer.parallel.units import SerialState, SessionResult, analyse_session, redo_session, session_bytes
from analyzer.pipeline import Pipeline, Progress
from analyzer.records import Records

_POLL_S = 0.2  # how often the client looks at the workers' progress
_loaded_names: set[str] = set()  # name override files loaded in this (worker) process


def _names(names_file: str | None) -> None:
    if names_file and names_file not in _loaded_names:
        from analyzer import registry

        registry.load_overrides(names_file)
        _loaded_names.add(names_file)


def _analyse(
    index: int, members: list[Member], limits: Limits, names_file: str | None, queue: str | None
) -> SessionResult:
    _names(names_file)
    tick = None
    if queue is not None:  # the bytes read so far, to the client's progress
        from distributed import Queue

        q = Queue(queue)  # type: ignore[no-untyped-call]

        def tick(pos: int) -> None:
            q.put((index, pos))  # type: ignore[no-untyped-call]

    return analyse_session(index, members, limits, tick, portable=True)


def _redo(
    index: int, members: list[Member], limits: Limits, state: SerialState, names_file: str | None
) -> SessionResult:
    _names(names_file)
    return redo_session(index, members, limits, state, portable=True)


def _collect(client: Any, futures: dict[Any, int], queue: str | None, tally: Tally) -> dict[int, SessionResult]:
    """The sessions' results as they finish, the workers' progress shown meanwhile."""
    from distributed import Queue

    q = Queue(queue, client=client) if queue is not None else None  # type: ignore[no-untyped-call]
    results: dict[int, SessionResult] = {}
    pending = dict(futures)
    while pending:
        for fut in [f for f in pending if f.done()]:
            results[pending.pop(fut)] = fut.result()
            tally.done(futures[fut])
        if q is not None:
            for index, pos in q.get(batch=True):  # type: ignore[no-untyped-call]
                tally.at(index, pos)
        tally.show()
        if pending:
            time.sleep(_POLL_S)
    return results


def run_on_cluster(
    paths: Iterable[str],
    limits: Limits,
    client: Any,
    progress: Progress | None = None,
    names_file: str | None = None,
) -> Records:
    """The serial run's records, the sessions read by the workers of `client` (a distributed.Client);
    `progress(bytes, files)` as the workers read (each reports through a distributed.Queue)."""
    paths = list(paths)
    groups = plan(paths)
    if len(groups) < 2:
        return Pipeline(limits).run(paths, progress)
    queue = f"rpc-analyzer-progress-{uuid.uuid4().hex}" if progress is not None else None
    largest_first = sorted(range(len(groups)), key=lambda i: -session_bytes(groups[i]))
    futures = {client.submit(_analyse, i, groups[i], limits, names_file, queue, pure=False): i for i in largest_first}
    results = _collect(client, futures, queue, Tally(groups, progress))
    ordered = [results[i] for i in range(len(groups))]
    if not mergeable(ordered):
        return Pipeline(limits).run(paths)

    def redo(i: int, state: SerialState) -> SessionResult:
        result: SessionResult = client.submit(_redo, i, groups[i], limits, state, names_file, pure=False).result()
        return result

    return merge(ordered, limits, redo)
