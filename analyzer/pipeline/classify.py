"""The classifier: what a TCP connection not yet in the flow table is, and which transport follows it.

A new connection is followed when: its server port is 135 (`port135`); the EPM announced its server
address and port earlier in the run (`epm`, linked to the answer that did); a bind_ack named its port
(`sec_addr`); its first client bytes are a DCE/RPC bind or alter_context, or an RPC-over-HTTP channel
request (`heuristic`); or it carries a well-formed PDU of any type that the next PDU or an answer
confirms (`midstream`, see `analyzer.pipeline.midstream`). Connections to 445 and 139 carry SMB
(`analyzer.transports.ncacn_np`), to 593 RPC over HTTP v1. A connection to an RPC port that carries
no PDU is an attempt, not a conversation.

The transport of a followed connection is made on its first payload byte (`TcpConnection.start`):
a SYN flood builds TCP state only.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Protocol

from analyzer.book import Announcement
from analyzer.capture.decode import ACK, FIN, RST, SYN, Packet, Selector
from analyzer.dcerpc.constants import ALTER_CONTEXT, BIND
from analyzer.dcerpc.probe import co_bind_probe, co_probe, co_start
from analyzer.limits import Limits
from analyzer.model import (
    BY_HEURISTIC,
    BY_MIDSTREAM,
    BY_PORT135,
    BY_PORT593,
    BY_SMB,
    NCACN_HTTP,
    NCACN_IP_TCP,
    Flow,
)
from analyzer.pipeline.collector import Collector
from analyzer.pipeline.flow_table import Entry, FlowKey, FlowTable, Kept, SynOnly, Undecided
from analyzer.pipeline.learn import EndpointLearner
from analyzer.pipeline.midstream import Candidate
from analyzer.tcp.connection import Payload, TcpConnection
from analyzer.transports.ncacn_http import IN_METHOD, OUT_METHOD, HttpConnection, VirtualConnections, http_probe
from analyzer.transports.ncacn_ip_tcp import CoConnection
from analyzer.transports.ncacn_np import SMB_TRANSPORT, NpConnection, PipeTable

EPM_PORT = 135
HTTP_PORT = 593  # RPC over HTTP v1 ([MS-RPCH] 2.1.1)
# SMB over TCP and over the NetBIOS session service: their connections go to the SMB parser.
SMB_PORTS = frozenset({445, 139})
NETBIOS_PORT = 139
WELL_KNOWN = frozenset({EPM_PORT, HTTP_PORT, *SMB_PORTS})
_EPM_PORTS, _HTTP_PORTS = frozenset({EPM_PORT}), frozenset({HTTP_PORT})
_SYN_ACK_FIN_RST = SYN | ACK | FIN | RST
_TRANSPORTS = {"http": NCACN_HTTP, "smb": SMB_TRANSPORT}  # by kind; co is NCACN_IP_TCP
_new_tuple = tuple.__new__  # a NamedTuple from its fields without its own __new__ frame (one per SYN)
PROBE_BUDGET = 8  # payload segments probed for a bind before a flow is ignored

TCP_PROBE_FIRST = frozenset({5, 0x52})  # rpc_vers 5 of a bind; "R" of RPC_IN_DATA / RPC_OUT_DATA
_CO_PREFIX = (5, 0, (BIND, ALTER_CONTEXT))  # rpc_vers, rpc_vers_minor, ptype: what a first PDU starts with

# Decides whether a new TCP flow is followed, given the key of its first packet seen (in that
# packet's direction: a predicate that shards flows must treat both directions alike).
FlowFilter = Callable[[FlowKey], bool]


def rpc_start(data: bytes) -> bool | None:
    """Do a client's first payload bytes start a DCE/RPC conversation: a bind or alter_context
    offering a real transfer syntax, or an RPC-over-HTTP v2 channel request? None when there are too
    few bytes to tell and those there are fit."""
    if not data:
        return None
    if data[0] == 5:
        if len(data) >= 16:
            return co_bind_probe(data, 0, len(data))
        _vers, minor, ptypes = _CO_PREFIX
        fits = (len(data) < 2 or data[1] == minor) and (len(data) < 3 or data[2] in ptypes)
        return None if fits else False
    if data[0] == 0x52:
        if len(data) >= len(OUT_METHOD):
            return http_probe(data, 0, len(data))
        return None if IN_METHOD.startswith(data) or OUT_METHOD.startswith(data) else False
    return False


def tcp_probe(buf: bytes, start: int, end: int) -> bool:
    """The selector's probe: a payload on an unknown port that starts, or may start, a DCE/RPC
    conversation reaches the pipeline. The selection loop has already checked the first byte."""
    if end - start >= len(OUT_METHOD):
        return co_probe(buf, start, end) if buf[start] == 5 else http_probe(buf, start, end)
    return rpc_start(bytes(buf[start:end])) is not False


def ip_text(addr: bytes, _cache: dict[bytes, str] = {}) -> str:  # noqa: B006 - deliberate cache
    text = _cache.get(addr)
    if text is None:
        text = socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)
        if len(_cache) < 65536:
            _cache[addr] = text
    return text


def ip_texts(addrs: list[bytes]) -> list[str]:
    """`ip_text` of each address, made once per distinct address and read back without a Python call
    per row (a SYN flood's rows share a few addresses: one per attacker and one per server)."""
    text = {a: ip_text(a) for a in dict.fromkeys(addrs)}
    return list(map(text.__getitem__, addrs))


def _sides(key: FlowKey, server_ports: frozenset[int]) -> tuple[tuple[bytes, int], tuple[bytes, int]]:
    """(client, server) of a connection to one of `server_ports`."""
    src, sport, dst, dport = key
    return ((src, sport), (dst, dport)) if dport in server_ports else ((dst, dport), (src, sport))


class Host(Protocol):
    """What the classifier works in: one capture's conversations (`analyzer.pipeline.conversations`)."""

    limits: Limits
    selector: Selector
    table: FlowTable
    collector: Collector
    pipes: PipeTable
    vcs: VirtualConnections

    def next_stream(self) -> int: ...

    def put(self, key: FlowKey, entry: Entry) -> None: ...

    def forget(self, key: FlowKey, entry: Entry) -> None: ...

    def close(self, conn: TcpConnection, end: str, ts: int, tombstone: bool = True) -> None: ...

    def unconfirmed(self, cand: Candidate, frame: int) -> None: ...

    def hold_port(self, entry: Undecided | Candidate, port: int) -> None: ...


class Classifier:
    """Decides, for one capture's conversations, what each new TCP flow is."""

    def __init__(self, conv: Host, learner: EndpointLearner, follow: FlowFilter | None) -> None:
        self._conv = conv
        self._learner = learner
        self._follow = follow
        self._undecided_max = conv.limits.max_undecided_bytes
        self._makers: dict[str, Callable[[TcpConnection], Payload]] = {"http": self._http, "smb": self._smb}

    def new_tcp(self, key: FlowKey, pkt: Packet, frame: int, ts: int) -> None:
        """A packet of a connection not in the flow table: which transport follows it, if any."""
        if self._follow is not None and not self._follow(key):
            return
        _src, sport, _dst, dport = key
        if dport == EPM_PORT and pkt.flags & _SYN_ACK_FIN_RST == SYN:  # a client's SYN to the EPM (as `start` takes it)
            self._syn_only(key, pkt, frame, ts, "co", BY_PORT135, None)
        elif dport == EPM_PORT or sport == EPM_PORT:
            client, server = _sides(key, _EPM_PORTS)
            self.start(key, "co", BY_PORT135, client, server, None, [(pkt, frame, ts)])
        elif dport in SMB_PORTS or sport in SMB_PORTS:
            client, server = _sides(key, SMB_PORTS)
            self._start_smb(key, pkt, client, server, frame, ts)
        elif dport == HTTP_PORT or sport == HTTP_PORT:
            client, server = _sides(key, _HTTP_PORTS)
            self.start(key, "http", BY_PORT593, client, server, None, [(pkt, frame, ts)])
        elif not self._learned(key, pkt, frame, ts) and pkt.payload:
            self.judge(key, Undecided(ts), pkt, frame, ts)
        # else nothing to decide on until this flow shows payload

    def _learned(self, key: FlowKey, pkt: Packet, frame: int, ts: int) -> bool:
        """Follow a connection to an endpoint the run learned before it started, if it is one."""
        src, sport, dst, dport = key
        if not len(self._learner.book):
            return False
        fwd, rev = ((src, sport), (dst, dport)), ((dst, dport), (src, sport))
        ports = self._conv.selector.tcp_ports
        for transport, (c, srv) in (("tcp", fwd), ("tcp", rev), ("http", fwd), ("http", rev)):
            if srv[1] not in ports:
                continue
            found = self._learner.announced(transport, ip_text(srv[0]), srv[1], ip_text(c[0]), ts)
            if found is not None:
                by, announced = found
                self.start(key, "http" if transport == "http" else "co", by, c, srv, announced, [(pkt, frame, ts)])
                return True
        return False

    def judge(self, key: FlowKey, entry: Undecided, pkt: Packet, frame: int, ts: int) -> None:
        """One payload of a conversation not yet known to be DCE/RPC: start following it, keep
        accumulating its client's bytes, or count a failed probe. The entry is in the flow table
        unless this is the conversation's first payload."""
        if entry.client is not None:  # accumulating the start of a conversation cut into tiny segments
            self._accumulate(key, entry, pkt, frame, ts)
            return
        src, sport, _dst, dport = key
        conv = self._conv
        known = conv.table.holds(entry)
        entry.probes += 1
        verdict = rpc_start(pkt.payload)
        if verdict:
            if known:
                conv.forget(key, entry)
            self._start_heuristic((src, sport), [(pkt, frame, ts)], pkt.payload)
            return
        first = co_start(pkt.payload, 0, len(pkt.payload)) if verdict is False else None
        if first is not None:  # a well-formed PDU that is not a first one: joined late, to confirm
            if known:
                conv.forget(key, entry)
            self.candidate(key, Candidate(pkt, first, ts, conv.limits), pkt, frame, ts)
            return
        if verdict is None:  # too short to tell: accumulate, selecting the server's port meanwhile
            entry.client = (src, sport)
            entry.prefix = pkt.payload
            entry.packets = [(pkt, frame, ts)]
            if dport not in conv.selector.tcp_ports:
                conv.hold_port(entry, dport)
        if not known:
            conv.put(key, entry)

    def _accumulate(self, key: FlowKey, entry: Undecided, pkt: Packet, frame: int, ts: int) -> None:
        """One more packet of a conversation whose start is cut into tiny segments."""
        client = entry.client
        assert client is not None
        entry.packets.append((pkt, frame, ts))
        verdict: bool | None = None
        if (key[0], key[1]) == client:
            entry.prefix += pkt.payload
            verdict = rpc_start(entry.prefix)
        if verdict is None and (len(entry.prefix) > self._undecided_max or len(entry.packets) > self._undecided_max):
            self._conv.collector.violation(
                None, frame, "limits", "cap_undecided_bytes", f"{len(entry.prefix)} bytes, {len(entry.packets)} packets"
            )
            verdict = False
        if verdict is None:
            return
        self._conv.forget(key, entry)
        if verdict:
            self._start_heuristic(client, entry.packets, entry.prefix)
        else:
            entry.client, entry.packets, entry.probes = None, [], PROBE_BUDGET
            self._conv.put(key, entry)  # judged: ignored until it goes idle

    def keeps(self, entry: Undecided) -> bool:
        """Does an undecided flow keep a packet without payload (an ACK or FIN it will need)?"""
        return entry.client is not None and len(entry.packets) <= self._undecided_max

    def candidate(self, key: FlowKey, cand: Candidate, pkt: Packet, frame: int, ts: int) -> None:
        """One packet of a flow that may be a conversation joined late: follow it once confirmed,
        ignore it (and say so) once rejected. Its server port is selected while deciding, so the
        answers and continuation segments that no probe would pass reach it."""
        conv = self._conv
        verdict = cand.feed(pkt, frame, ts)
        if verdict is None:
            if not conv.table.holds(cand):
                conv.put(key, cand)
                port = cand.server[1]
                if port not in conv.selector.tcp_ports:
                    conv.hold_port(cand, port)
            return
        conv.forget(key, cand)
        if verdict:
            self.start(key, "co", BY_MIDSTREAM, cand.client, cand.server, None, cand.replay())
            return
        if cand.capped is not None:
            conv.collector.violation(None, frame, "limits", cand.capped, f"{len(cand.packets)} packets kept")
        conv.unconfirmed(cand, frame)
        ignored = Undecided(ts)
        ignored.probes = PROBE_BUDGET
        conv.put(key, ignored)  # judged: ignored until it goes idle

    def _start_heuristic(self, client: tuple[bytes, int], packets: Kept, start: bytes) -> None:
        """Follow a conversation its client's first bytes identified, replaying what was kept."""
        pkt = packets[0][0]
        server = (pkt.dst, pkt.dport) if (pkt.src, pkt.sport) == client else (pkt.src, pkt.sport)
        key = (pkt.src, pkt.sport, pkt.dst, pkt.dport)
        self.start(key, "co" if start[:1] == b"\x05" else "http", BY_HEURISTIC, client, server, None, packets)

    def start(
        self,
        key: FlowKey,
        kind: str,
        by: str,
        client: tuple[bytes, int],
        server: tuple[bytes, int],
        announced: Announcement | None,
        packets: Kept,
    ) -> None:
        """Follow a conversation (`kind` co, http or smb) from the packets kept for it. A connection
        seen so far as its client's SYN alone is kept as a `SynOnly` tuple until its next packet."""
        conv = self._conv
        pkt0, frame0, ts0 = packets[0]
        if len(packets) == 1 and pkt0.flags & _SYN_ACK_FIN_RST == SYN and (pkt0.src, pkt0.sport) == client:
            self._syn_only((pkt0.src, pkt0.sport, pkt0.dst, pkt0.dport), pkt0, frame0, ts0, kind, by, announced)
            return
        stream = -1 if kind == "smb" else conv.next_stream()  # an SMB connection is not a conversation (its pipes are)
        tcp = self._connection(stream, kind, by, client, server, announced, frame0, ts0)
        if by in (BY_HEURISTIC, BY_MIDSTREAM):
            conv.selector.tcp_ports.add(server[1])
        conv.put(key, tcp)
        for pkt, frame, ts in packets:
            tcp.packet(pkt, (pkt.src, pkt.sport) == client, frame, ts)
        if tcp.finished:
            conv.close(tcp, "rst" if tcp.reset else "fin", packets[-1][2])

    def _syn_only(
        self, key: FlowKey, pkt: Packet, frame: int, ts: int, kind: str, by: str, announced: Announcement | None
    ) -> None:
        """A connection to follow seen so far as its client's SYN alone (`key` its packet's): a
        `SynOnly` entry, with its stream number, until its next packet."""
        stream = -1 if kind == "smb" else self._conv.next_stream()
        _proto, _src, _dst, _sport, _dport, seq, ack, flags, payload = pkt
        fields = (key, seq, ack, flags, payload, frame, ts, stream, kind, by, announced)
        self._conv.put(key, _new_tuple(SynOnly, fields))

    def follow_syn(self, s: SynOnly) -> TcpConnection:
        """A `SynOnly` connection's next packet: follow it from its SYN, in its place in the table."""
        key, seq, _ack, _flags, payload, frame, ts, stream, kind, by, announced = s  # one step, not a field each
        c_addr, c_port, s_addr, s_port = key
        tcp = self._connection(stream, kind, by, (c_addr, c_port), (s_addr, s_port), announced, frame, ts)
        self._conv.table.replace(key, s, tcp)
        if payload:  # a SYN with data: the whole way
            tcp.packet(s.syn, True, frame, ts)
        else:  # its flags are SYN alone (`start` makes a SynOnly of no other)
            tcp.client_syn(seq, frame, ts)
        return tcp

    def flow(self, stream: int, kind: str, client: tuple[bytes, int], server: tuple[bytes, int], ts: int) -> Flow:
        transport = _TRANSPORTS.get(kind, NCACN_IP_TCP)
        c_ip, s_ip = ip_text(client[0]), ip_text(server[0])
        return Flow(self._conv.collector.capture, stream, transport, c_ip, client[1], s_ip, server[1], None, ts)

    def _connection(
        self,
        stream: int,
        kind: str,
        by: str,
        client: tuple[bytes, int],
        server: tuple[bytes, int],
        announced: Announcement | None,
        frame: int,
        ts: int,
    ) -> TcpConnection:
        make = self._makers.get(kind, self._co)
        flow = self.flow(stream, kind, client, server, ts)
        return TcpConnection(flow, client, by, self._conv.collector, self._conv.limits, frame, ts, make, announced)

    def _co(self, tcp: TcpConnection) -> Payload:
        return CoConnection(tcp.flow, tcp.identified_by, self._conv.collector, self._conv.limits, tcp.announced)

    def _http(self, tcp: TcpConnection) -> Payload:
        conv = self._conv
        return HttpConnection(tcp.flow, tcp.identified_by, conv.collector, conv.limits, tcp.announced, conv.vcs)

    def _smb(self, tcp: TcpConnection) -> Payload:
        conv = self._conv
        return NpConnection(tcp.flow, conv.collector, conv.limits, conv.pipes, tcp.flow.server_port == NETBIOS_PORT)

    def _start_smb(
        self, key: FlowKey, pkt: Packet, client: tuple[bytes, int], server: tuple[bytes, int], frame: int, ts: int
    ) -> None:
        """An SMB connection: its transport reads the SMB messages, whose pipes carry DCE/RPC."""
        self.start(key, "smb", BY_SMB, client, server, None, [(pkt, frame, ts)])
