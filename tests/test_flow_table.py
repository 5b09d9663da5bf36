"""The flow table's LRU and address pairs ([analyzer.pipeline.flow_table])."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.model import Flow
from analyzer.pipeline.flow_table import Entry, FlowTable, SynOnly, Undecided, reverse
from analyzer.tcp.connection import Tombstone


def _key(i: int) -> tuple[bytes, int, bytes, int]:
    return bytes([10, 0, 0, i]), 1024 + i, bytes([10, 0, 0, 200]), 135


def _state(table: FlowTable) -> tuple[list[tuple[object, int]], dict[object, int]]:
    """The table's entries oldest first, and each key's (both directions') entry, by identity."""
    order = [(key, id(entry)) for key, entry in table.entries()]
    pairs = {}
    for key, _entry in table.entries():
        for k in (key, reverse(key)):
            found = table.get(k)
            pairs[k] = -1 if found is None else id(found)
    return order, pairs


def test_replace_is_forget_then_put() -> None:
    """`replace` leaves the table as `forget` then `put` do: the new entry under both directions of
    the key, as the most recently seen, the others in their order, nothing evicted."""
    entries = [Undecided(i) for i in range(4)]
    a, b = FlowTable(4), FlowTable(4)
    for t in (a, b):
        for i, e in enumerate(entries):
            t.put(_key(i), e)
    new = Tombstone((bytes([10, 0, 0, 1]), 1025), 99)
    a.forget(_key(1), entries[1])
    assert a.put(_key(1), new) is None
    b.replace(_key(1), entries[1], new)
    assert _state(a) == _state(b)
    assert [key for key, _ in b.entries()] == [_key(0), _key(2), _key(3), _key(1)]
    assert b.get(reverse(_key(1))) is new and len(b) == 4


def test_lookup_and_touching_follow_the_table_after_clear() -> None:
    """The bound look-ups the per-packet path keeps stay the table's own after `clear`."""
    t = FlowTable(3)
    lookup, touching = t.lookup, t.touching
    e0, e1 = Undecided(0), Undecided(1)
    t.put(_key(0), e0)
    t.put(_key(1), e1)
    touching(id(e0))
    assert [k for k, _ in t.entries()] == [_key(1), _key(0)]
    t.clear()
    assert lookup(_key(0)) is None
    t.put(_key(2), e1)
    assert lookup(reverse(_key(2))) is e1


def test_records_compare_hash_and_pickle_by_their_fields() -> None:
    """Records (`analyzer.model.record`) are equal and hash alike when their fields are, keep no
    per-instance dict, and survive a pickle (the forked reader's handover)."""
    f1 = Flow("c", 1, "ncacn_ip_tcp", "10.0.0.1", 1025, "10.0.0.2", 135, None, 5)
    f2 = Flow("c", 1, "ncacn_ip_tcp", "10.0.0.1", 1025, "10.0.0.2", 135, None, 5)
    assert f1 == f2 and hash(f1) == hash(f2) and f1 is not f2
    assert f1 != Flow("c", 2, "ncacn_ip_tcp", "10.0.0.1", 1025, "10.0.0.2", 135, None, 5)
    assert not hasattr(f1, "__dict__")
    assert pickle.loads(pickle.dumps(f1)) == f1
    assert len({f1, f2}) == 1


def test_a_syn_only_entry_gives_back_its_syn() -> None:
    """A connection seen only as its SYN keeps the SYN as fields and its sides as its key: what it
    gives back is the packet the decoder made, a SYN carrying data (TCP Fast Open) included, and the
    table holds it under both directions; unpaired, the other entry under a key stays."""
    from analyzer.capture.decode import PROTO_TCP, SYN, Packet
    from analyzer.pipeline.flow_table import SynOnly

    src, sport, dst, dport = _key(3)
    for payload in (b"", b"\x05\x00\x0b"):
        pkt = Packet(PROTO_TCP, src, dst, sport, dport, 7, 0, SYN | 0x40, payload)
        s = SynOnly(_key(3), 7, 0, SYN | 0x40, payload, 12, 34, 0, "co", "port135", None)
        assert s.syn == pkt
        assert (s.client, s.server) == ((src, sport), (dst, dport))
    table = FlowTable(4)
    table.put(s.key, s)
    assert table.get(s.key) is s and table.get(reverse(s.key)) is s
    other = Undecided(1)
    table._by_pair[reverse(s.key)] = other  # another entry took one direction's key
    table.forget(s.key, s)
    assert table.get(s.key) is None and table.get(reverse(s.key)) is other


def _syn_only(i: int) -> SynOnly:
    return SynOnly(_key(i), i, 0, 0x02, b"", i, i, i, "co", "port135", None)


@settings(max_examples=200, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["syn", "syn", "syn", "undecided"]), min_size=1, max_size=12),
    limit=st.integers(0, 14),
    shared=st.booleans(),
)
def test_popping_syn_only_entries_in_bulk_is_popping_the_oldest_one_by_one(
    kinds: list[str], limit: int, shared: bool
) -> None:
    """`pop_syn_only` leaves the table as `pop_oldest` does for each SynOnly entry at its head, up to
    `limit`, and gives them in that order; a key another entry holds stays held by it."""
    a, b = FlowTable(20), FlowTable(20)
    entries: list[Entry] = [_syn_only(i) if kind == "syn" else Undecided(i) for i, kind in enumerate(kinds)]
    for t in (a, b):
        for i, e in enumerate(entries):
            t.put(_key(i), e)
        if shared:  # one direction of the oldest entry's key taken over by a later entry
            t._by_pair[reverse(_key(0))] = entries[-1]
    bulk = a.pop_syn_only(limit)
    one_by_one: list[Entry] = []
    while len(one_by_one) < limit and len(b) and type(b.nth_oldest(0)) is SynOnly:
        one_by_one.append(b.pop_oldest())
    assert [id(e) for e in bulk] == [id(e) for e in one_by_one]
    assert _state(a) == _state(b) and a._by_pair == b._by_pair


@settings(max_examples=200, deadline=None)
@given(held=st.sets(st.integers(0, 8), max_size=4), run=st.lists(st.integers(0, 8), max_size=12))
def test_new_keys_stop_at_the_first_key_held_or_repeated(held: set[int], run: list[int]) -> None:
    """`new_keys` is how many keys of a run come before the first the table holds (either way
    round) or the run already had."""
    table = FlowTable(20)
    for i in held:
        table.put(_key(i), _syn_only(i))
    keys = [reverse(_key(i)) if i % 2 else _key(i) for i in run]
    seen: set[int] = set()
    expected = len(run)
    for at, i in enumerate(run):
        if i in held or i in seen:
            expected = at
            break
        seen.add(i)
    assert table.new_keys(keys) == expected
