"""The unit of work of a parallel run: one capture session, analysed in a worker from a fresh state.

A serial run reads its sessions (see `analyzer.capture.session`) one after the other with one `Pipeline`, and
two things carry from one session to the next: the selector's ports (every port learned from an EPM
answer, a bind_ack secondary address or a heuristic conversation stays selected) and the endpoint
book. A worker cannot know what earlier sessions will learn, so it starts fresh and returns, with the
records, what the merge (`analyzer.parallel.merge`) needs to prove that the fresh run equals the serial one:

- `census` (`Census`): every TCP/UDP conversation its frames carry, with its first frame, and the
  ports of every payload the selector's probe was asked about. Whatever earlier sessions left behind
  can only change this session through a packet on a port they selected or an endpoint their book
  holds; `merge` decides from the census whether any packet could have been read differently.
- `tcp_ports` / `udp_ports`: the selector's ports at the end, for the sessions after it.
- `held`: the violation aggregates it leaves live, whose total bounds the log's evictions.

`redo` reads a session again from the serial run's state at its start (ports and book): the exact
answer when the census says the fresh one may differ.

Layering: the pipeline's level (a file loop); imports the pipeline, records and capture, nothing above.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analyzer.book import EndpointBook
from analyzer.bounded import fewer_collections
from analyzer.capture.decode import PacketDecoder, Probe, Selector
from analyzer.capture.ipfrag import Defragmenter
from analyzer.capture.prefilter import Batch
from analyzer.capture.reader import RawFrame
from analyzer.capture.session import FrameMap, Member
from analyzer.capture.tunnel import UDP_GENEVE, UDP_VXLAN
from analyzer.limits import Limits
from analyzer.model import (
    NCACN_IP_TCP,
    NCADG_IP_UDP,
    AttemptRecord,
    BindRecord,
    CallRecord,
    CaptureSummary,
    ConnectionRecord,
    DatagramRecord,
    EndpointRecord,
    Violation,
)
from analyzer.pipeline.conversations import Conversations
from analyzer.pipeline.files import FileLoop
from analyzer.pipeline.state import Run
from analyzer.records import Records

_PLAIN = b"\x08\x00\x45"  # Ethernet type IPv4, IPv4 header without options
_KEY = np.arange(26, 38)  # where a plain frame's addresses and ports are: the census key
_TUNNEL_PORT_BYTES = frozenset(p.to_bytes(2, "big") for p in (UDP_VXLAN, UDP_GENEVE))  # a key's last two bytes

_c_census: Callable[[bytes, np.ndarray, int, dict[bytes, int]], bytes] | None
try:  # the census of a batch in C (optional, see setup.py); else `Census._plain_keys`
    from analyzer.parallel._census import census as _c_census
except ImportError:  # not built (no compiler at install): the numpy twin, the same notes
    _c_census = None

# A worker's progress: (bytes of this session read so far).
Tick = Callable[[int], None]


def _always(_buf: bytes, _start: int, _end: int) -> bool:
    return True


class Census:
    """What a session's frames could show a pipeline whose selector carried more ports.

    - `flows`: every TCP or UDP conversation, as the bytes of its source and destination address and
      port, with its first frame. Plain Ethernet + IPv4 frames (nearly all) are keyed by a slice: from
      the batched reader's batches (`batch`, called by the decoder before it filters one) with numpy,
      else one by one (`frames`); every other frame is decoded as the pipeline would decode it (VLAN,
      IPv6, tunnels, fragments), with a selector that keeps everything.
    - `probed`: the port bytes of every TCP payload the selector's probe was asked about: payloads
      starting like DCE/RPC on ports the selector did not hold (several candidates when the TCP header
      length is ambiguous: a superset).

    `complete` is False when a plain frame is a tunnel (VXLAN, Geneve), whose inner conversations the
    census did not read: then it proves nothing."""

    def __init__(self, limits: Limits) -> None:
        self.flows: dict[bytes, int] = {}
        self.probed: set[bytes] = set()
        self._limits = limits
        self._decoder: PacketDecoder | None = None

    def frames(self, frames: Iterable[RawFrame]) -> Iterator[RawFrame]:
        """The frames, unchanged, each one noted on the way."""
        note, other = self.flows.setdefault, self._other
        for frame, rec in enumerate(frames, 1):
            _ts, link, buf, s, _e = rec
            if link == 1 and buf[s + 12 : s + 15] == _PLAIN:
                note(buf[s + 26 : s + 38], frame)
            else:
                other(rec, frame)
            yield rec

    def batch(self, b: Batch) -> None:
        """A batch's frames noted (`PacketDecoder.on_batch`): the same notes as `frames`, the plain
        frames' keys noted in C (`_census`, about a quarter of a worker's reading in numpy on the
        140 MB benchmark captures) or, where it is not built, gathered and deduplicated with numpy
        (`_plain_keys`, the first frame of each kept)."""
        start = b.start
        if b.link == 1 and len(b.buf) >= 38:
            if _c_census is not None:
                offsets = np.ascontiguousarray(start, dtype=np.int64)
                plain = np.frombuffer(_c_census(b.buf, offsets, b.frame0, self.flows), dtype=np.bool_)
            else:
                plain = self._plain_keys(b)
        else:
            plain = np.zeros(len(start), dtype=np.bool_)
        buf, link, frame0 = b.buf, b.link, b.frame0 + 1
        for i in np.flatnonzero(~plain).tolist():
            s = int(start[i])
            rec = (int(b.ts[i]), link, buf, s, int(b.end[i]))
            if link == 1 and buf[s + 12 : s + 15] == _PLAIN:
                self.flows.setdefault(buf[s + 26 : s + 38], frame0 + i)
            else:
                self._other(rec, frame0 + i)

    def _plain_keys(self, b: Batch) -> np.ndarray:
        """The twin of `_census.census`: the batch's plain frames (whole keys inside the buffer,
        Ethernet type IPv4, a five-word IPv4 header) noted, and which frames they were."""
        start = b.start
        view = np.frombuffer(b.buf, dtype=np.uint8)
        fits = start + 38 <= len(view)  # a key cut by the buffer's end: the per-frame test in `batch`
        at = np.where(fits, start, 0)
        plain: np.ndarray = (
            fits & (view[at + 12] == _PLAIN[0]) & (view[at + 13] == _PLAIN[1]) & (view[at + 14] == _PLAIN[2])
        )
        idx = np.flatnonzero(plain)
        if len(idx):
            keys = view[start[idx, None] + _KEY]
            first = first_of_each(keys)
            unique = keys[first].view(np.dtype((np.void, 12))).ravel()
            note, frame0 = self.flows.setdefault, b.frame0 + 1
            for key, i in zip(unique.tolist(), idx[first].tolist(), strict=True):
                note(key, frame0 + i)
        return plain

    def _other(self, rec: RawFrame, frame: int) -> None:
        if self._decoder is None:
            keep_all = Selector()
            keep_all.tcp_probe = keep_all.udp_probe = _always
            self._decoder = PacketDecoder(keep_all, Defragmenter(self._limits))
        ts, link, buf, start, end = rec
        pkt = self._decoder.decode(link, buf, start, end, 0, ts)
        if pkt is not None:
            key = pkt.src + pkt.dst + pkt.sport.to_bytes(2, "big") + pkt.dport.to_bytes(2, "big")
            self.flows.setdefault(key, frame)

    def probe(self, inner: Probe) -> Probe:
        """The selector's TCP probe, noting the ports of what it is asked about."""
        add = self.probed.add

        def probe(buf: bytes, start: int, end: int) -> bool:
            for length in range(20, 64, 4):  # where the TCP header may start: its data offset says
                h = start - length
                if h >= 0 and buf[h + 12] >> 4 == length >> 2:
                    add(buf[h : h + 4])
            return inner(buf, start, end)

        return probe

    def __getstate__(self) -> dict[str, Any]:
        """Sent from the worker without its decoder (and its fragment reassembly state)."""
        return {**self.__dict__, "_decoder": None}

    @property
    def complete(self) -> bool:
        return not any(len(k) == 12 and k[10:] in _TUNNEL_PORT_BYTES for k in self.flows)


def first_of_each(keys: np.ndarray) -> np.ndarray:
    """The row of the first occurrence of each distinct row of `keys` (uint8, 12 columns: two IPv4
    addresses and two ports), in the rows' byte order: `np.unique(keys as 12-byte voids,
    return_index=True)[1]`, but sorted as two integers (bytes 0-7, 8-11, big-endian, so that their
    order is the bytes' order) by a stable `lexsort`, whose first row of each run of equal keys is
    the earliest: half the time of comparing 12-byte voids, the larger part of the census."""
    hi = keys[:, :8].view(">u8").ravel()
    lo = keys[:, 8:].view(">u4").ravel()
    order = np.lexsort((lo, hi))
    hi, lo = hi[order], lo[order]
    new = np.empty(len(order), dtype=np.bool_)
    new[:1] = True
    np.not_equal(hi[1:], hi[:-1], out=new[1:])
    new[1:] |= lo[1:] != lo[:-1]
    return order[new]


class _CensusLoop(FileLoop):
    """A file loop whose frames pass through a `Census` on their way to the decoder (numbered as the
    records number them: through the session)."""

    def __init__(self, run: Run, census: Census) -> None:
        super().__init__(run)
        self._census = census

    def _select(
        self, conv: Conversations, decoder: PacketDecoder, frames: Iterable[RawFrame], tick: Callable[[], None] | None
    ) -> None:
        if hasattr(frames, "batches"):  # the batched reader: the census sees each batch whole
            decoder.on_batch = self._census.batch
        else:
            frames = self._census.frames(frames)
        super()._select(conv, decoder, frames, tick)


@dataclass
class SessionRecords:
    """A session's records as lists, in the order they were made (violations as the log would write
    them), for the trip from the worker; and what the run keeps beside them."""

    binds: list[BindRecord]
    endpoints: list[EndpointRecord]
    calls: list[CallRecord]
    connections: list[ConnectionRecord]
    datagrams: list[DatagramRecord]
    attempts: list[AttemptRecord]
    violations: list[Violation]
    captures: list[CaptureSummary]
    frame_maps: dict[str, FrameMap]
    book: EndpointBook
    digests: dict[str, str] = field(default_factory=dict)  # the inputs' SHA-256, taken as they were read

    @classmethod
    def of(cls, records: Records) -> SessionRecords:
        """The records read back (from the worker's spool), which is then removed."""
        out = cls(
            list(records.binds),
            list(records.endpoints),
            list(records.calls),
            list(records.connections),
            list(records.datagrams),
            list(records.attempts),
            list(records.violations),  # the aggregates still live last, in the order a flush writes them
            records.captures,
            records.frame_maps,
            records.book,
            records.digests,
        )
        records.close()
        return out


@dataclass
class SessionResult:
    """What a worker made of one session: the records, and the facts the merge checks."""

    index: int
    records: SessionRecords | Records  # Records: still on the worker's disk (one machine)
    tcp_ports: set[int]
    udp_ports: set[int]
    census: Census | None  # None: not taken (the first session) or incomplete
    held: int  # violation aggregates still live at the end
    redone: bool = False  # read from the serial run's state (its book includes the earlier sessions')
    names: list[str] = field(default_factory=list)
    # What the merge reads of the records, taken here (`conversation_starts`, `same_port_binds`) while
    # they are still in memory: the parent read the spools back for it, serially, after the workers.
    starts: dict[tuple[str, int, str, int], int] | None = None
    same_port: set[tuple[str, int]] | None = None


@dataclass
class SerialState:
    """What the serial run carries from one session to the next: the selector's ports and the book."""

    tcp_ports: set[int]
    udp_ports: set[int]
    book: EndpointBook


def conversation_starts(records: SessionRecords | Records) -> dict[tuple[str, int, str, int], int]:
    """The first frame of every TCP conversation a reading followed or counted as an attempt, by
    (address, port, address, port) in both directions (what `merge` compares with the census)."""
    ends = [
        (c.flow.client_ip, c.flow.client_port, c.flow.server_ip, c.flow.server_port, c.first_frame)
        for c in records.connections
        if c.flow.transport != NCADG_IP_UDP
    ]
    ends += [(a.client_ip, a.client_port, a.server_ip, a.server_port, a.frame) for a in records.attempts]
    starts: dict[tuple[str, int, str, int], int] = {}
    for cip, cport, sip, sport, first in ends:
        for k in ((cip, cport, sip, sport), (sip, sport, cip, cport)):
            starts[k] = min(first, starts.get(k, first))
    return starts


def same_port_binds(records: SessionRecords | Records) -> set[tuple[str, int]]:
    """(capture, frame) of the announcements learned from accepted binds whose secondary address is
    the port they were made on: `EndpointLearner.bind_ack` learns those only for a server the book
    lacks, so the merge replays them only where the serial book lacked it."""
    out = set()
    for b in records.binds:
        f = b.flow
        if b.ack_result == "acceptance" and f.transport == NCACN_IP_TCP and b.sec_addr == str(f.server_port):
            out.add((f.capture, b.ack_frame or b.frame))
    return out


def _read(run: Run, members: list[Member], census: Census | None, tick: Tick | None) -> None:
    """One session through a file loop of `run`, as `Pipeline.run` reads it (through the census)."""
    loop = FileLoop(run) if census is None else _CensusLoop(run, census)
    with fewer_collections():
        if len(members) > 1:
            loop.add_session(members, progress=tick)
        else:
            loop.add_file(members[0].path, progress=tick)


def _result(index: int, run: Run, census: Census | None, redone: bool, portable: bool) -> SessionResult:
    """The worker's answer. On one machine a session hands its spool over as it is (pickled, its
    buffers are written as batch files; its directory then belongs to the receiver, whose merge
    adopts the files unread): the records need not fit in memory, and none is read back, pickled
    and encoded again (the lists cost 0.1 s of CPU more on the 8 benchmark captures, half of it in
    the parent). `portable` (another machine, no shared disk): lists, in memory."""
    records = run.records
    complete = census if census is not None and census.complete else None
    fresh = not redone and index > 0  # the first session and a redone one are merged as they are
    starts = conversation_starts(records) if fresh and complete is not None else None
    same_port = same_port_binds(records) if fresh else None
    return SessionResult(
        index,
        records if not portable else SessionRecords.of(records),  # (SessionRecords.of closes the spool)
        set(run.selector.tcp_ports),
        set(run.selector.udp_ports),
        complete,
        records.violations.held,
        redone,
        [c.capture for c in records.captures],
        starts,
        same_port,
    )


def analyse_session(
    index: int, members: list[Member], limits: Limits, tick: Tick | None = None, portable: bool = False
) -> SessionResult:
    """Session `index` from a fresh state, with its census (see the module docstring); `portable`:
    the records as lists (for a worker on another machine, see `_result`)."""
    run = Run(limits, strict=False, digests=True)  # digests: each input hashed as it is read
    # The first session starts from the fresh state in the serial run too: it needs no census.
    census = Census(limits) if index > 0 else None
    if census is not None:
        run.selector.tcp_probe = census.probe(run.selector.tcp_probe)
    _read(run, members, census, tick)
    return _result(index, run, census, False, portable)


def redo_session(
    index: int,
    members: list[Member],
    limits: Limits,
    state: SerialState,
    tick: Tick | None = None,
    portable: bool = False,
) -> SessionResult:
    """Session `index` from the serial run's state at its start: exactly what the serial run makes."""
    run = Run(limits, strict=False, digests=True)
    run.selector.tcp_ports |= state.tcp_ports
    run.selector.udp_ports |= state.udp_ports
    run.records.book = run.learner.book = state.book
    _read(run, members, None, tick)
    return _result(index, run, None, True, portable)


def session_bytes(members: list[Member]) -> int:
    """The stored size of a session's files (for progress)."""
    total = 0
    for m in members:
        with contextlib.suppress(OSError):
            total += os.path.getsize(m.path)
    return total
