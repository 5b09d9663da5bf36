"""The flow table of one capture: every TCP conversation the pipeline is following or judging.

Entries are keyed both ways by (address, port, address, port), so a packet finds its entry in one
look-up whichever way it travels, and kept in an LRU (`analyzer.bounded.LruDict`) for idle expiry
and the `max_tcp_flows` cap. An entry is one of:
- `TcpConnection`: followed (`analyzer.tcp.connection`);
- `SynOnly`: to be followed, seen only as its client's SYN (a small tuple: a SYN flood builds no more);
- `Tombstone`: closed, swallowing stragglers until a new SYN;
- `Undecided`: its client bytes have not yet said whether it is DCE/RPC (`analyzer.pipeline.classify`);
- `Candidate`: a conversation joined in the middle, to be confirmed (`analyzer.pipeline.midstream`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice, repeat
from operator import is_not, itemgetter
from typing import NamedTuple

from analyzer.book import Announcement
from analyzer.bounded import LruDict
from analyzer.capture.decode import PROTO_TCP, Packet
from analyzer.pipeline.midstream import Candidate
from analyzer.tcp.connection import TcpConnection, Tombstone

FlowKey = tuple[bytes, int, bytes, int]
Kept = list[tuple[Packet, int, int]]  # (packet, frame, ts) held for replay


class Undecided:
    """A conversation the selector let through whose client bytes have not yet said whether it is
    DCE/RPC. Two cases: its first payload was too short to tell (a bind or channel request cut into
    tiny segments, as IDS evasion does), so the client's bytes are accumulated, and its packets kept
    for replay, until they can be judged; or its payload did not look like a start (a port collision,
    or a capture that began mid-PDU), so a few more payloads are probed one by one before the flow is
    ignored. Both are bounded."""

    __slots__ = ("client", "held_port", "last_ts", "packets", "prefix", "probes")

    def __init__(self, ts: int) -> None:
        self.last_ts = ts
        self.probes = 0
        self.client: tuple[bytes, int] | None = None  # the side whose bytes are being accumulated
        self.prefix = b""
        self.packets: Kept = []
        self.held_port: int | None = None  # a server port selected while deciding


class SynOnly(NamedTuple):
    """A connection to follow that has shown only its client's first SYN: what it takes to follow
    it from its next packet (`Classifier.follow_syn`), or to write its attempts row. Its SYN is kept
    as its fields, and its sides as the table's key for it: under a SYN flood every tuple an entry
    holds is one more object for the cyclic collector to visit once (a third of a run's time)."""

    key: FlowKey  # (client address, port, server address, port): the SYN's, the table's key for it
    seq: int
    ack: int
    flags: int
    payload: bytes
    frame: int
    last_ts: int
    stream: int  # its stream number, taken when the SYN was seen (-1 for SMB)
    kind: str  # co | http | smb
    identified_by: str
    announced: Announcement | None

    @property
    def client(self) -> tuple[bytes, int]:
        return self.key[0], self.key[1]

    @property
    def server(self) -> tuple[bytes, int]:
        return self.key[2], self.key[3]

    @property
    def syn(self) -> Packet:
        """The SYN, as the decoder gave it."""
        src, sport, dst, dport = self.key
        return Packet(PROTO_TCP, src, dst, sport, dport, self.seq, self.ack, self.flags, self.payload)


Entry = TcpConnection | SynOnly | Tombstone | Undecided | Candidate


def reverse(key: FlowKey) -> FlowKey:
    src, sport, dst, dport = key
    return dst, dport, src, sport


class FlowTable:
    """Entries by address pair, least recently seen first."""

    __slots__ = ("_by_pair", "_lru")

    def __init__(self, cap: int) -> None:
        self._by_pair: dict[FlowKey, Entry] = {}
        self._lru: LruDict[int, tuple[FlowKey, Entry]] = LruDict(cap)

    @property
    def lookup(self) -> Callable[[FlowKey], Entry | None]:
        """`get` without a call of its own, for the per-packet path."""
        return self._by_pair.get

    @property
    def touching(self) -> Callable[[int], None]:
        """`touch` of an entry's id, without a call of its own, for the per-packet path."""
        return self._lru.move_to_end

    def __len__(self) -> int:
        return len(self._lru)

    def get(self, key: FlowKey) -> Entry | None:
        return self._by_pair.get(key)

    def holds(self, entry: Entry) -> bool:
        return id(entry) in self._lru

    def key_of(self, entry: Entry) -> FlowKey | None:
        kept = self._lru.get(id(entry))
        return None if kept is None else kept[0]

    def touch(self, entry: Entry) -> None:
        """A packet of this entry: it becomes the most recently seen."""
        self._lru.touch(id(entry))

    def put(self, key: FlowKey, entry: Entry) -> tuple[FlowKey, Entry] | None:
        """Insert; the least recently seen entry when the cap was passed, already forgotten."""
        src, sport, dst, dport = key
        self._by_pair[key] = self._by_pair[dst, dport, src, sport] = entry
        evicted = self._lru.put(id(entry), (key, entry))
        if evicted is None:
            return None
        old_key, old = evicted[1]
        self._unpair(old_key, old)
        return old_key, old

    def put_many(self, keys: list[FlowKey], back: Iterable[FlowKey], entries: Sequence[Entry]) -> None:
        """Insert entries for `keys` the table does not hold (`back`: the same keys reversed), in
        order, when it has room for all of them (a run of SYNs, `pipeline.syn_runs`): `put` without
        its per-entry steps (no call per key)."""
        assert len(self._lru) + len(entries) <= self._lru.cap
        self._by_pair.update(zip(keys, entries, strict=True))
        self._by_pair.update(zip(back, entries, strict=True))
        self._lru.update(zip(map(id, entries), zip(keys, entries, strict=True), strict=True))

    def replace(self, key: FlowKey, old: Entry, new: Entry) -> None:
        """Put `new` where `old` was held under `key`, as the most recently seen: `forget` then `put`
        in one step (a connection followed from its SYN, a closed one's tombstone), never evicting."""
        src, sport, dst, dport = key
        self._by_pair[key] = self._by_pair[dst, dport, src, sport] = new
        lru = self._lru
        lru.pop(id(old), None)  # as `forget`: tolerant of an entry already gone
        lru[id(new)] = (key, new)

    def forget(self, key: FlowKey, entry: Entry) -> None:
        self._unpair(key, entry)
        self._lru.pop(id(entry), None)

    def _unpair(self, key: FlowKey, entry: Entry) -> None:
        """Both directions' keys of `entry` let go, where they are still its. Popped, and put back in
        the rare case another entry holds one: one hash of the key where a look-up then a deletion
        took two (a flood evicts an entry per SYN; the order of `_by_pair` is never read)."""
        by_pair = self._by_pair
        src, sport, dst, dport = key
        held = by_pair.pop(key, None)
        if held is not None and held is not entry:
            by_pair[key] = held
        back = (dst, dport, src, sport)
        held = by_pair.pop(back, None)
        if held is not None and held is not entry:
            by_pair[back] = held

    def new_keys(self, keys: list[FlowKey]) -> int:
        """How many of `keys`, from the first, are each held neither by the table nor earlier in
        `keys` (looked up without a Python call per key: a run of SYNs has tens of thousands)."""
        if keys and keys[0] in self._by_pair:  # a flow the table knows (then the per-packet way): no set made
            return 0
        unique = set(keys)
        held = not self._by_pair.keys().isdisjoint(unique)  # walks the smaller side: a flood's table
        if not held and len(unique) == len(keys):  # a flood's run: none held, none repeated
            return len(keys)
        end = list(map(self._by_pair.__contains__, keys)).index(True) if held else len(keys)
        if len(set(keys[:end])) == end:
            return end
        seen: set[FlowKey] = set()
        for i, key in enumerate(keys[:end]):
            if key in seen:
                return i
            seen.add(key)
        return end

    @property
    def cap(self) -> int:
        return self._lru.cap

    def nth_oldest(self, n: int) -> Entry:
        """The entry with n entries seen less recently than it (0: the oldest)."""
        return next(islice(self._lru.values(), n, None))[1]

    def pop_oldest(self) -> Entry:
        """Forget the least recently seen entry (what `put` does past the cap) and return it."""
        _id, (key, entry) = self._lru.popitem(last=False)
        self._unpair(key, entry)
        return entry

    def pop_syn_only(self, limit: int) -> list[SynOnly]:
        """Forget the least recently seen entries while they are `SynOnly`, at most `limit` (what
        `pop_oldest` does one by one), and return them in that order: a SYN flood evicts tens of
        thousands a run, here without a Python call each."""
        head = list(islice(self._lru.values(), limit))
        entries = list(map(itemgetter(1), head))
        kinds = list(map(type, entries))
        k = (
            len(kinds)
            if kinds.count(SynOnly) == len(kinds)
            else next(i for i, t in enumerate(kinds) if t is not SynOnly)
        )
        if not k:
            return []
        del head[k:], entries[k:]
        deque(map(self._lru.popitem, repeat(False, k)), maxlen=0)
        keys = list(map(itemgetter(0), head))
        backs = [(dst, dport, src, sport) for src, sport, dst, dport in keys]
        by_pair = self._by_pair
        for side in (keys, backs):  # as `_unpair`: a key another entry holds is put back (rare)
            held = list(map(by_pair.pop, side, repeat(None)))
            if any(map(is_not, held, entries)):
                for key, was, entry in zip(side, held, entries, strict=True):
                    if was is not None and was is not entry:
                        by_pair[key] = was
        return entries

    def oldest(self) -> tuple[FlowKey, Entry] | None:
        """The least recently seen entry (for idle expiry), or None when empty."""
        return next(iter(self._lru.values()), None)

    def entries(self) -> list[tuple[FlowKey, Entry]]:
        """Every entry, least recently seen first (a copy: the caller may change the table)."""
        return list(self._lru.values())

    def open_keys(self) -> Iterator[FlowKey]:
        """The keys (first packet's direction) of the connections still being followed."""
        return (key for key, entry in self._lru.values() if isinstance(entry, TcpConnection | SynOnly))

    def clear(self) -> None:
        self._by_pair.clear()  # the same dict: `lookup` is its bound `get`
        self._lru.clear()
