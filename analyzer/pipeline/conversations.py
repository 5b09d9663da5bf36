"""The conversations of one capture: selected packets in, to the connection each belongs to.

`Conversations` is everything that lives for one capture (a file, or a session of files) and no
longer: the record collector, the TCP flow table, the stream counter, the SMB pipe table, the
RPC-over-HTTP virtual connections and the UDP transport. It is made fresh for each capture, so
the per-capture state is reset in one place, and `close_all` at the end of the capture closes
every conversation, so records never wait for a later file.

TCP packets of a connection in the flow table go to it; others go to the `Classifier`. A closed
connection becomes a connections row (it carried PDUs) or an attempts row (a SYN, a reset, an empty
connection), and leaves a tombstone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeGuard

from analyzer.capture.decode import ACK, SYN, Packet
from analyzer.model import BY_HEURISTIC, BY_MIDSTREAM
from analyzer.pipeline.classify import PROBE_BUDGET, WELL_KNOWN, Classifier, ip_text
from analyzer.pipeline.collector import Collector
from analyzer.pipeline.flow_table import Entry, FlowKey, FlowTable, SynOnly, Undecided
from analyzer.pipeline.midstream import Candidate
from analyzer.pipeline.syn_only import SynTail, syn_only_ended
from analyzer.tcp.connection import ROW_PDUS, TcpConnection, Tombstone
from analyzer.transports.ncacn_http import VirtualConnections
from analyzer.transports.ncacn_np import SMB_TRANSPORT, PipeTable
from analyzer.transports.ncadg_ip_udp import UdpTransport

try:  # a followed connection's packet in C (analyzer/tcp/_tcp.c): `_tcp`'s twin
    from analyzer.tcp._tcp import Follow
except ImportError:  # not built: `_tcp`
    Follow = None  # type: ignore[assignment, misc]

if TYPE_CHECKING:
    from analyzer.pipeline.state import Run

_SYN_ACK = SYN | ACK


_KEEPS_PORT = (BY_HEURISTIC, BY_MIDSTREAM)  # how a followed connection was found when it keeps its port selected


def _keeps_port(entry: Entry) -> TypeGuard[TcpConnection]:
    return isinstance(entry, TcpConnection) and entry.identified_by in _KEEPS_PORT


class Conversations:
    """One capture's live conversations and where their records go."""

    def __init__(self, run: Run, capture: str) -> None:
        self.limits = run.limits
        self.selector = run.selector
        self._book = run.learner.book
        self.collector = Collector(run, capture, run.learner)
        self.table = FlowTable(run.limits.max_tcp_flows)
        self._lookup, self._touch = self.table.lookup, self.table.touching
        # A TCP packet in: a followed connection's (nearly every one) in C where built, the rest in `_other`.
        self.tcp: Callable[[Packet, int, int], None] = (
            self._tcp if Follow is None else Follow(self._lookup, self._touch, TcpConnection, self._other, self.close)
        )
        self._streams = 0
        self.pipes = PipeTable(self.collector, run.limits, self.next_stream)
        self.vcs = VirtualConnections(self.collector, run.limits)
        self.udp_transport = UdpTransport(self.collector, run.limits, self._udp_announced, self.next_stream)
        self.classifier = Classifier(self, run.learner, run.follow)
        # Per server port: the entries in the table that keep it selected (undecided connections
        # holding it, followed heuristic and midstream connections to it).
        self._port_users: Counter[int] = Counter()
        self.syn_tail: SynTail | None = None  # the SYN-only entries a run of SYNs put last (`syn_runs`)

    def next_stream(self) -> int:
        n = self._streams
        self._streams += 1
        return n

    def next_streams(self, count: int) -> int:
        """The first of `count` stream numbers taken at once (a run of SYNs, `pipeline.syn_runs`)."""
        n = self._streams
        self._streams += count
        return n

    def _udp_announced(self, ip: str, port: int) -> bool:
        return ("udp", ip, port) in self._book

    # -- packets in -----------------------------------------------------------------------------

    def _tcp(self, pkt: Packet, frame: int, ts: int) -> None:
        """A TCP packet (`tcp`, where analyzer/tcp/_tcp.c's `Follow` is not built: its twin)."""
        _proto, src, dst, sport, dport, _seq, _ack, flags, _payload = pkt  # one step, not an attribute each
        key = (src, sport, dst, dport)
        entry = self._lookup(key)
        # Every entry is of one of the five classes, none subclassed: `type() is`, cheaper than isinstance,
        # and a followed connection (nearly every packet) is told by the first test.
        if type(entry) is TcpConnection:
            client = entry.client
            from_client = src == client[0] and sport == client[1]
            if flags & _SYN_ACK != SYN or not from_client:  # as at the end of `_other`
                entry.packet(pkt, from_client, frame, ts)
                self._touch(id(entry))
                if entry.reset or (entry.c2s.finished and entry.s2c.finished):  # `finished`, without its call
                    self.close(entry, "rst" if entry.reset else "fin", ts)
                return
        self._other(key, entry, pkt, frame, ts)

    def _other(self, key: FlowKey, entry: Entry | None, pkt: Packet, frame: int, ts: int) -> None:
        """A TCP packet that is not one of a followed connection's, or is its client's SYN (`entry` is
        what `key`, the packet's, looked up): a new flow, an entry not followed, the second packet of a
        `SynOnly` entry, or a SYN that may start a new connection on the same addresses and ports."""
        if entry is None:
            self.classifier.new_tcp(key, pkt, frame, ts)
            return
        if type(entry) is not TcpConnection:
            if type(entry) is not SynOnly:
                self._unfollowed(key, entry, pkt, frame, ts)
                return
            entry = self.classifier.follow_syn(entry)  # its second packet: followed from its SYN, in its place
        client = entry.client
        from_client = pkt.src == client[0] and pkt.sport == client[1]
        if pkt.flags & _SYN_ACK != SYN or not from_client or not entry.is_new_connection(pkt):
            entry.packet(pkt, from_client, frame, ts)
            self._touch(id(entry))
            if entry.reset or (entry.c2s.finished and entry.s2c.finished):
                self.close(entry, "rst" if entry.reset else "fin", ts)
            return
        self.close(entry, "rst" if entry.reset else "fin", ts)  # a new connection on the same addresses
        self.classifier.new_tcp(key, pkt, frame, ts)

    def _unfollowed(self, key: FlowKey, entry: Entry, pkt: Packet, frame: int, ts: int) -> None:
        """A packet of an entry that is not a followed connection: a candidate, a tombstone or an
        undecided conversation."""
        if type(entry) is Candidate:
            self.classifier.candidate(key, entry, pkt, frame, ts)
            return
        if type(entry) is Tombstone:
            entry.last_ts = ts
            if entry.swallows(pkt):
                return
            self.forget(key, entry)
        elif type(entry) is Undecided:
            entry.last_ts = ts
            if pkt.payload and (entry.client is not None or entry.probes < PROBE_BUDGET):
                self.classifier.judge(key, entry, pkt, frame, ts)
            elif self.classifier.keeps(entry):
                entry.packets.append((pkt, frame, ts))  # an ACK or FIN the flow will need
            return
        self.classifier.new_tcp(key, pkt, frame, ts)

    def udp(self, pkt: Packet, frame: int, ts: int) -> None:
        """A datagram on UDP 135, on a port the EPM announced, or one that looks like CL DCE/RPC."""
        self.udp_transport.datagram(ip_text(pkt.src), pkt.sport, ip_text(pkt.dst), pkt.dport, pkt.payload, frame, ts)

    # -- the flow table -------------------------------------------------------------------------

    def put(self, key: FlowKey, entry: Entry) -> None:
        """Add an entry; past `max_tcp_flows` the least recently seen is evicted (and finished)."""
        evicted = self.table.put(key, entry)
        # `_keeps_port`, inline (an entry a SYN under a flood); TcpConnection is never subclassed.
        if type(entry) is TcpConnection and entry.identified_by in _KEEPS_PORT:
            self._port_users[entry.flow.server_port] += 1
        # A tombstone evicted leaves nothing to finish or say (the commonest case under a flood).
        if evicted is not None and type(evicted[1]) is not Tombstone:
            self.evicted(evicted[1], f"{len(self.table) + 1} live flows")

    def evicted(self, old: Entry, detail: str) -> None:
        """An entry the flow table let go past `max_tcp_flows`: finished, and the cap said (`detail`)."""
        if isinstance(old, TcpConnection | SynOnly):
            if isinstance(old, TcpConnection):
                self._left(old)
                self.collector.violation(old.flow, old.last_frame, "limits", "cap_tcp_flows", detail)
                self.close(old, "evicted", old.last_ts, tombstone=False)
            else:
                self.collector.stream_violation(old.stream, old.frame, "limits", "cap_tcp_flows", detail)
                self._syn_only_ended(None, old)
        else:
            self._released(old)
            if isinstance(old, Candidate):
                self.unconfirmed(old, old.packets[-1][1])

    def forget(self, key: FlowKey, entry: Entry) -> None:
        if self.table.holds(entry):
            self._left(entry)
        self.table.forget(key, entry)
        self._released(entry)

    def _left(self, entry: Entry) -> None:
        """An entry leaves the table: a port a heuristic or midstream connection kept is one use less."""
        if _keeps_port(entry):
            self._port_users[entry.flow.server_port] -= 1

    def hold_port(self, entry: Undecided | Candidate, port: int) -> None:
        """Select a server port while a connection to it is being judged."""
        entry.held_port = port
        self._port_users[port] += 1
        self.selector.tcp_ports.add(port)

    def _released(self, entry: Entry) -> None:
        """An entry left the table: a server port it held selected while deciding is let go."""
        if isinstance(entry, Undecided | Candidate) and entry.held_port is not None:
            port, entry.held_port = entry.held_port, None
            self._port_users[port] -= 1
            self._release_port(port)

    def _release_port(self, port: int) -> None:
        """Stop selecting a port an undecided connection held, unless something else still needs it:
        a well-known or announced port, another undecided connection, or a followed heuristic or
        midstream connection in the table (which keeps its port selected for the run). Counted, not
        searched for: a flood of undecided connections must not cost a scan of the table each."""
        if port in WELL_KNOWN or self._book.has_port(port) or self._port_users[port] > 0:
            return
        self.selector.tcp_ports.discard(port)

    def close(self, conn: TcpConnection, end: str, ts: int, tombstone: bool = True) -> None:
        """Close a followed connection: its row, and a tombstone in its place."""
        key = self.table.key_of(conn)
        row = conn.close_row(end)  # its connections row as a tuple: no record object made for it
        if conn.flow.transport == SMB_TRANSPORT:  # not a conversation itself; a scan of 445 or 139 is attempts
            if conn.client_isn is not None and not (conn.client_bytes or conn.server_bytes):
                self._attempt(conn)
        elif row[ROW_PDUS]:
            self.collector.connection_row(row)
        elif conn.client_isn is not None:  # a SYN, a reset or an empty connection: an attempt
            self._attempt(conn)
        # else the tail of a connection begun before the capture (FIN, ACKs) that carried no PDU: nothing
        if self.pipes.closed:
            self.pipes_closed()
        if key is not None:
            if conn.identified_by in _KEEPS_PORT:  # `_left`, inline (a connection closes once per flow)
                self._port_users[conn.flow.server_port] -= 1
            if tombstone:  # `forget` then `put`, in one step (a followed connection holds no port of its own)
                self.table.replace(key, conn, Tombstone(conn.client, ts))
            else:
                self.table.forget(key, conn)

    def _attempt(self, conn: TcpConnection) -> None:
        """The attempts row of a closed connection that carried no PDU."""
        f = conn.flow
        self.collector.attempt(
            conn.first_frame, conn.first_ts, f.client_ip, f.client_port, f.server_ip, f.server_port, conn.outcome()
        )

    def _syn_only_ended(self, key: FlowKey | None, s: SynOnly) -> None:
        """A connection that never showed more than its SYN ended (evicted, idle, end of capture):
        an attempts row, as a connection that carried nothing gives."""
        c_addr, c_port, s_addr, s_port = s.key
        self.collector.attempt(s.frame, s.last_ts, ip_text(c_addr), c_port, ip_text(s_addr), s_port, "syn_only")
        self.pipes_closed()
        if key is not None:
            self.forget(key, s)

    def _syn_only_run(self, entries: list[SynOnly]) -> None:
        """`_syn_only_ended` of each of a run of SYN-only entries at the end of the capture, in bulk."""
        if entries:
            syn_only_ended(self.collector, entries)
            self.pipes_closed()

    def pipes_closed(self) -> None:
        """The rows of the pipes closed since a connection last closed (kept in that order)."""
        for record in self.pipes.closed:
            self.collector.connection(record)
        self.pipes.closed.clear()

    def unconfirmed(self, cand: Candidate, frame: int) -> None:
        """Report a flow that looked like DCE/RPC but could not be followed."""
        c, s = cand.client, cand.server
        self.collector.violation(
            None,
            frame,
            "dcerpc",
            "unconfirmed_conversation",
            f"{ip_text(c[0])}:{c[1]} -> {ip_text(s[0])}:{s[1]}: a DCE/RPC header not confirmed by the "
            "next PDU or an answer; not followed",
        )

    def expire(self, now: int) -> None:
        """Close what has been silent longer than `tcp_idle_timeout_s`, oldest first."""
        horizon = now - int(self.limits.tcp_idle_timeout_s * 1_000_000_000)
        while (oldest := self.table.oldest()) is not None:
            key, entry = oldest
            if entry.last_ts >= horizon:
                break
            if isinstance(entry, TcpConnection):
                self.close(entry, "idle", entry.last_ts, tombstone=False)
            elif isinstance(entry, SynOnly):
                self._syn_only_ended(key, entry)
            else:
                self.forget(key, entry)
                if isinstance(entry, Candidate):
                    self.unconfirmed(entry, entry.packets[-1][1])

    def open_keys(self) -> list[FlowKey]:
        """The connections still followed (for a caller that cuts a capture into shards)."""
        return list(self.table.open_keys())

    def close_all(self, end: str) -> None:
        """End of the capture: every conversation is closed and its records written."""
        syn_only: list[SynOnly] = []  # a run of SYN-only entries, written in bulk (a SYN flood's table is)
        for key, entry in self.table.entries():
            if type(entry) is SynOnly:
                syn_only.append(entry)
                continue
            self._syn_only_run(syn_only)  # before this entry's rows: the attempts keep table order
            syn_only = []
            if isinstance(entry, TcpConnection):
                self.close(entry, end, entry.last_ts, tombstone=False)
            elif isinstance(entry, Candidate):
                self.forget(key, entry)
                self.unconfirmed(entry, entry.packets[-1][1])
        self._syn_only_run(syn_only)
        self.vcs.close_all()
        for record in self.pipes.close_all(end):
            self.collector.connection(record)
        self.udp_transport.close(end)
        self.table.clear()
