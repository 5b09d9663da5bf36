"""Calls spooled as rows ([C706] 12.6.4.9-11 calls, `records.RowSpool.add_row`, `spool_codec._Codec.encode_rows`):
a row is the record it stands for, on disk and read back; and the decode memo's look-up
(`stubs.memo.DecodeMemo.find`) finds what was kept, under the call's key only."""

from __future__ import annotations

import os
from dataclasses import astuple, fields

import pytest

from analyzer import records as rec_mod
from analyzer.dcerpc.decoding import Stubs
from analyzer.model import CallRecord, Flow
from analyzer.records import Records
from analyzer.stubs.memo import _STUB_BYTES, DecodeMemo


def _call(i: int) -> CallRecord:
    flow = Flow("c.pcap", i % 3, "ncacn_ip_tcp", "10.0.0.1", 50000 + i % 3, "10.0.0.2", 135, None)
    answered = i % 2 == 0
    return CallRecord(
        flow, i, 1_700_000_000_000_000_000 + i, i, i, 0,
        "367abb81-9844-35f1-ad32-98f038001003" if i % 4 else None, 2 if i % 4 else None, 0 if i % 4 else None,
        "bind" if i % 4 else "unknown", 16, None, 10 * i, 1,
        i + 1 if answered else None, i + 2 if answered else None, 4 if answered else None,
        1 if answered else None, 5 if i % 6 == 0 else None, answered,
        None, None, None, None, None, None, False,
        None, None, 0 if answered else None, "win32" if answered else None, f"service_name=s{i}", None,
    )  # fmt: skip


def _row(rec: CallRecord) -> tuple[object, ...]:
    return tuple(getattr(rec, f.name) for f in fields(CallRecord))


def test_calls_added_as_rows_read_back_as_the_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 10)
    by_rows, by_records = Records(), Records()
    made = [_call(i) for i in range(25)]
    for rec in made:
        by_rows.calls.add_row(_row(rec))
        by_records.calls.append(rec)
    assert len(os.listdir(str(by_rows._run.path))) == 2  # 20 on disk, 5 buffered
    assert list(by_rows.calls) == made == list(by_records.calls)
    for a, b in zip(by_rows.calls.batches(), by_records.calls.batches(), strict=True):
        assert a.equals(b)  # the same Arrow batches, `flow.capture` and all
    assert by_rows.calls[3] == made[3] and astuple(by_rows.calls[-1]) == astuple(made[-1])


def test_a_codec_encodes_rows_as_it_encodes_records() -> None:
    spool = Records().calls
    made = [_call(i) for i in range(7)]
    codec = spool._codec
    assert codec.encode_rows([_row(r) for r in made]).equals(codec.encode(made))
    assert codec.encode_rows([]).num_rows == 0


def test_a_row_whose_value_does_not_fit_is_kept_anyway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 2)
    r = Records()
    huge = (*_row(_call(0))[:1], 2**70, *_row(_call(0))[2:])  # a frame number past int64
    r.calls.add_row(huge)
    r.calls.add_row(_row(_call(1)))
    assert any(f.endswith(".pickle") for f in os.listdir(str(r._run.path)))
    assert [c.frame for c in r.calls] == [2**70, 1]


def test_the_memo_finds_what_was_kept_under_the_calls_key_only() -> None:
    memo = DecodeMemo()
    small = Stubs(False, b"\x01\x02", True, None, True, None)
    limits = (1, 2, 3)
    key, found = memo.find(limits, "u", 1, small)
    assert key == (limits, "u", 1, small) and found is None
    memo.keep(key, "result")
    assert memo.find(limits, "u", 1, small) == (key, "result")
    assert memo.find(limits, "u", 2, small) == ((limits, "u", 2, small), None)  # another opnum
    assert memo.find((1, 2, 4), "u", 1, small)[1] is None  # other NDR limits
    big = Stubs(False, b"\x00" * (_STUB_BYTES + 1), True, None, True, None)
    assert memo.find(limits, "u", 1, big) == (None, None)  # too large to keep
    mutable = Stubs(False, bytearray(b"\x01"), True, None, True, None)  # type: ignore[arg-type]
    found_key, result = memo.find(limits, "u", 1, mutable)
    assert found_key is not None and result is None  # unhashable: never found
    memo.keep(found_key, "never")  # nor kept
    assert len(memo) == 1
