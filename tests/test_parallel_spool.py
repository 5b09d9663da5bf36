"""A parallel run's merge adopts a worker's spool (`records.Spool.adopt`): the worker's batch files
move into the merged run's directory unread, in order after what the merge held, and survive the
worker's directory being removed."""

from __future__ import annotations

import os
import pickle

import pytest

from analyzer import records as rec_mod
from analyzer.records import Records
from tests.test_records import _bind


def test_an_adopted_spool_keeps_every_record_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 10)
    merged, worker = Records(), Records()
    first = [_bind(i) for i in range(7)]  # buffered in the merged spool, not yet on disk
    theirs = [_bind(100 + i) for i in range(25)]  # 2 files of 10 in the worker's directory, 5 buffered
    merged.binds.extend(first)
    worker.binds.extend(theirs)
    handed = pickle.loads(pickle.dumps(worker))  # as a worker sends it (its 5 flushed): the directory goes with it
    merged.binds.adopt(handed.binds)
    handed.close()  # the worker's directory is removed: the adopted files are no longer in it
    assert len(merged.binds) == 32 and list(merged.binds) == first + theirs
    assert len(handed.binds) == 0
    on_disk = os.listdir(str(merged._run.path))
    assert len(on_disk) == 1 + 3 and all(name.startswith("binds-") for name in on_disk)  # our 7, their 3 files


def test_adopting_an_empty_spool_changes_nothing() -> None:
    merged = Records()
    merged.binds.extend([_bind(1), _bind(2)])
    merged.binds.adopt(Records().binds)
    assert list(merged.binds) == [_bind(1), _bind(2)]
