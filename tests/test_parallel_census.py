"""The census of a parallel run (`analyzer.parallel.units.Census`): taken from the batched reader's
batches (`PacketDecoder.on_batch`) it notes the same conversations, with the same first frames, as
taken frame by frame, and the worker's records are those of a plain pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.capture.prefilter import Batch
from analyzer.capture.session import Member
from analyzer.capture.source import open_capture
from analyzer.limits import DEFAULT_LIMITS
from analyzer.parallel import units
from analyzer.pipeline import Pipeline
from tests.conftest import CAPTURES, SAMPLES, needs_shared


def _census_both_ways(path: Path) -> tuple[units.Census, units.Census] | None:
    reader = open_capture(str(path), path.name, DEFAULT_LIMITS)
    if not hasattr(reader, "batches"):
        reader.close()
        return None
    batched = units.Census(DEFAULT_LIMITS)
    for batch in reader.batches():
        batched.batch(batch)
    reader.close()
    framed = units.Census(DEFAULT_LIMITS)
    reader = open_capture(str(path), path.name, DEFAULT_LIMITS)
    for _frame in framed.frames(reader):
        pass
    reader.close()
    return batched, framed


def _compare(paths: list[Path]) -> int:
    compared = 0
    for path in paths:
        both = _census_both_ways(path)
        if both is not None:
            batched, framed = both
            assert batched.flows == framed.flows, path.name
            assert batched.complete == framed.complete, path.name
            compared += 1
    return compared


def test_batched_census_equals_frame_by_frame_census_on_the_samples() -> None:
    assert _compare(sorted(SAMPLES.glob("*.pcap*"))) >= 10


def test_the_numpy_twin_of_the_c_census_equals_frame_by_frame_census(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(units, "_c_census", None)
    assert _compare(sorted(SAMPLES.glob("*.pcap*"))) >= 10


_PLAIN_HEAD = b"\x00" * 12 + b"\x08\x00\x45"


@pytest.mark.skipif(units._c_census is None, reason="the C census is not built: its twin runs")
@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_c_census_notes_what_its_numpy_twin_notes(data: st.DataObject) -> None:
    """Frames at any offset (overlapping, out of order, cut by the buffer's end), plain or not,
    their keys drawn from a few (runs of one conversation, keys seen in an earlier batch)."""
    keys = [data.draw(st.binary(min_size=12, max_size=12)) for _ in range(3)]
    frames = []
    for _ in range(data.draw(st.integers(0, 12))):
        head = data.draw(st.sampled_from([_PLAIN_HEAD, b"\x00" * 12 + b"\x08\x00\x46", b"\x00" * 12 + b"\x81\x00\x45"]))
        frames.append(head + bytes(11) + data.draw(st.sampled_from(keys)) + data.draw(st.binary(max_size=8)))
    buf = b"".join(frames) + data.draw(st.binary(max_size=40))
    starts, at = [], 0
    for f in frames:
        starts.append(at)
        at += len(f)
    starts += data.draw(st.lists(st.integers(0, max(len(buf) - 1, 0)), max_size=6))  # anywhere, even cut
    start = np.array(data.draw(st.permutations(starts)), dtype=np.int64)
    batch = Batch(buf, 1, data.draw(st.integers(0, 1000)), start, start + 1, np.zeros(len(start), dtype=np.int64))
    seen = {keys[0]: 7}  # a key an earlier batch noted keeps its frame
    twin, c = units.Census(DEFAULT_LIMITS), units.Census(DEFAULT_LIMITS)
    twin.flows, c.flows = dict(seen), dict(seen)
    if len(buf) < 38:
        return
    plain_twin = twin._plain_keys(batch)
    plain_c = np.frombuffer(units._c_census(batch.buf, batch.start, batch.frame0, c.flows), dtype=np.bool_)
    assert plain_c.tolist() == plain_twin.tolist()
    assert c.flows == twin.flows


@needs_shared
def test_batched_census_equals_frame_by_frame_census_on_the_shared_captures() -> None:
    paths = sorted(p for p in CAPTURES.rglob("*") if p.is_file() and p.suffix in (".pcap", ".pcapng", ".cap"))
    assert _compare(paths) >= 50


@pytest.mark.parametrize("name", ["epm_map_session.pcap", "smb2_pipes.pcap", "cl_udp.pcap"])
def test_a_worker_with_its_census_makes_the_plain_pipeline_records(name: str) -> None:
    path = str(SAMPLES / name)
    member = Member(path, name, None, None)
    result = units.analyse_session(1, [member], DEFAULT_LIMITS)  # index 1: a census is taken
    assert result.census is not None and result.census.flows
    plain = Pipeline(DEFAULT_LIMITS).run([path])
    got = result.records
    assert list(got.binds) == list(plain.binds) and list(got.calls) == list(plain.calls)
    assert list(got.connections) == list(plain.connections) and got.captures == plain.captures


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=300), st.data())
def test_first_of_each_is_numpys_unique_of_the_keys_as_bytes(picks: list[int], data: st.DataObject) -> None:
    # a few distinct keys (some sharing their first 8 bytes), picked in any order, repeated
    distinct = [data.draw(st.binary(min_size=12, max_size=12)) for _ in range(3)]
    distinct += [distinct[0][:8] + distinct[1][8:], distinct[1][:8] + distinct[0][8:], bytes(12)]
    keys = np.frombuffer(b"".join(distinct[i] for i in picks), dtype=np.uint8).reshape(-1, 12)
    _unique, first = np.unique(keys.view(np.dtype((np.void, 12))).ravel(), return_index=True)
    assert units.first_of_each(keys).tolist() == first.tolist()
