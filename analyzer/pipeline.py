"""From capture files to records: the only place with state across connections.

It owns the packet selector (which ports and payloads the decoder lets through), the table of
live flows, and what the endpoint mapper taught: `(transport, server address, port) ->
announcement` from EPM answers and bind_ack secondary addresses (the `EndpointBook`). A new
connection is followed when: its server port is 135 (`port135`); the EPM announced its server address
and port earlier in the run (`epm`, linked to the answer that did); a bind_ack named its port
(`sec_addr`); its first client bytes are a DCE/RPC bind or alter_context (`heuristic`); or it carries
a well-formed PDU of any type that the next PDU or an answer confirms (`midstream`, see
`analyzer.midstream`). A connection to an RPC port that carries no PDU is an attempt, not a
conversation.

Flows live in a table keyed both ways by (address, port) pairs, with an LRU for idle expiry and
a cap; a closed flow leaves a tombstone that swallows its stragglers until a new SYN. At the end of
each capture every flow is closed, so records never wait for a later one; the files of one capture
session (a ring buffer, a split: `analyzer.session`) are one capture, read as one stream.
"""

from __future__ import annotations

import contextlib
import os
import socket
import traceback
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable

from analyzer.book import Announcement
from analyzer.bounded import fewer_collections
from analyzer.capture.decode import PROTO_TCP, SUPPORTED_LINK_TYPES, Packet, PacketDecoder, Selector
from analyzer.capture.ipfrag import Defragmenter
from analyzer.capture.netmon import LINK_NONE
from analyzer.capture.reader import CaptureReader, RawFrame
from analyzer.capture.source import display_name, expand_paths, open_capture
from analyzer.dcerpc.association import SOURCE_EPM, InterfaceHint
from analyzer.dcerpc.cl import ClTracker, cl_probe
from analyzer.dcerpc.constants import ALTER_CONTEXT, BIND
from analyzer.dcerpc.probe import co_bind_probe, co_probe, co_start
from analyzer.errors import CaptureError
from analyzer.flows import CoTcpFlow, EpmLink, HttpTcpFlow, TcpFlow, VirtualConnection
from analyzer.http import IN_METHOD, OUT_METHOD, http_probe
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.midstream import Candidate
from analyzer.model import (
    BY_EPM,
    BY_HEURISTIC,
    BY_MIDSTREAM,
    BY_PORT135,
    BY_PORT593,
    BY_SEC_ADDR,
    NCACN_HTTP,
    NCACN_IP_TCP,
    NCADG_IP_UDP,
    AttemptRecord,
    BindRecord,
    CallRecord,
    CaptureSummary,
    ConnectionRecord,
    DatagramRecord,
    EndpointRecord,
    Flow,
    Violation,
)
from analyzer.pipes import SMB_TRANSPORT, PipeTable, SmbTcpFlow
from analyzer.records import Records as Records  # re-exported: records spool to disk, violations aggregate
from analyzer.session import FrameMap, Member, SessionFrames, expand_globs, sessions

EPM_PORT = 135
HTTP_PORT = 593  # RPC over HTTP v1 ([MS-RPCH] 2.1.1)
# SMB over TCP and over the NetBIOS session service: their connections go to the SMB parser.
SMB_PORTS = frozenset({445, 139})
NETBIOS_PORT = 139
_WELL_KNOWN = frozenset({EPM_PORT, HTTP_PORT, *SMB_PORTS})
_PROBE_BUDGET = 8  # payload segments probed for a bind before a flow is ignored
_EXPIRE_EVERY = 4096  # selected packets between idle-expiry sweeps

# progress(bytes of the input consumed so far, files finished so far)
Progress = Callable[[int, int], None]


class _UdpConversation:
    """Counters of one connectionless conversation, for its connections.csv row."""

    __slots__ = (
        "by",
        "client_bytes",
        "first_frame",
        "first_ts",
        "flow",
        "last_frame",
        "last_ts",
        "packets",
        "server_bytes",
    )

    def __init__(self, flow: Flow, by: str) -> None:
        self.flow = flow
        self.by = by
        self.packets = self.client_bytes = self.server_bytes = 0
        self.first_frame = self.last_frame = self.first_ts = self.last_ts = 0

    def count(self, from_client: bool, size: int, frame: int, ts: int) -> None:
        if not self.packets:
            self.first_frame, self.first_ts = frame, ts
        self.packets += 1
        self.last_frame, self.last_ts = frame, ts
        if from_client:
            self.client_bytes += size
        else:
            self.server_bytes += size

    def record(self, end: str) -> ConnectionRecord:
        return ConnectionRecord(
            flow=self.flow,
            identified_by=self.by,
            first_frame=self.first_frame,
            first_ts=self.first_ts,
            last_frame=self.last_frame,
            last_ts=self.last_ts,
            epm_capture=None,
            epm_frame=None,
            epm_client_ip=None,
            epm_delay_s=None,
            packets=self.packets,
            client_bytes=self.client_bytes,
            server_bytes=self.server_bytes,
            pdus=self.packets,
            gaps=0,
            end=end,
        )


class _Tombstone:
    """A closed flow: swallows late packets (final ACKs, retransmitted FINs) until a new SYN."""

    __slots__ = ("client", "last_ts")

    def __init__(self, client: tuple[bytes, int], ts: int) -> None:
        self.client = client
        self.last_ts = ts


class _Undecided:
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
        self.packets: list[tuple[Packet, int, int]] = []
        self.held_port: int | None = None  # a server port selected while deciding


_Entry = TcpFlow | _Tombstone | _Undecided | Candidate
_FlowKey = tuple[bytes, int, bytes, int]


TCP_PROBE_FIRST = frozenset({5, 0x52})  # rpc_vers 5 of a bind; "R" of RPC_IN_DATA / RPC_OUT_DATA
_CO_PREFIX = (5, 0, (BIND, ALTER_CONTEXT))  # rpc_vers, rpc_vers_minor, ptype: what a first PDU starts with
_PREFIX_MAX = 96  # client bytes accumulated to judge a conversation that starts with tiny segments


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


def _attempt(conn: TcpFlow) -> AttemptRecord:
    """The attempts row of a connection to an RPC port that carried no PDU."""
    f = conn.flow
    if conn.client_bytes or conn.server_bytes or (conn.server_packets and not conn.reset):
        outcome = "no_pdu"
    else:
        outcome = "rejected" if conn.reset else "syn_only"
    return AttemptRecord(
        f.capture, conn.first_frame, conn.first_ts, f.client_ip, f.client_port, f.server_ip, f.server_port, outcome
    )


def ip_text(addr: bytes, _cache: dict[bytes, str] = {}) -> str:  # noqa: B006 - deliberate cache
    text = _cache.get(addr)
    if text is None:
        text = socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)
        if len(_cache) < 65536:
            _cache[addr] = text
    return text


LISTED_MAX = 16  # values named in one cell; a file with a million interfaces must not make a 400 KB cell


def listed(values: list[int], sep: str) -> str:
    """The first LISTED_MAX values sep-joined, then how many more there were."""
    head = sep.join(str(v) for v in values[:LISTED_MAX])
    more = len(values) - LISTED_MAX
    return f"{head}{sep}... ({more} more)" if more > 0 else head


class Pipeline:
    """Runs captures through the layers and collects records. Use `run()` or `add_file()`."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS, strict: bool = False) -> None:
        self.limits = limits
        self.strict = strict  # re-raise internal errors (tests) instead of reporting them
        self.records = Records(limits)
        self.book = self.records.book
        self.selector = Selector()
        self.selector.tcp_ports |= {EPM_PORT, HTTP_PORT, *SMB_PORTS}
        self.selector.tcp_probe = tcp_probe
        self.selector.tcp_probe_first = TCP_PROBE_FIRST
        self.selector.udp_ports.add(EPM_PORT)
        self.selector.udp_probe = cl_probe
        self._capture = ""
        self._flows: dict[_FlowKey, _Entry] = {}
        self._lru: OrderedDict[int, tuple[_FlowKey, _Entry]] = OrderedDict()
        self._streams = 0
        self._vcs: dict[str, VirtualConnection] = {}
        self._pipes = PipeTable(self, limits, self._next_stream)
        self._cl = ClTracker(self, limits, self._udp_flow)
        self._udp_flows: dict[tuple[str, int, str, int], _UdpConversation] = {}
        self._udp_ts = 0
        self.unfollowed = 0  # TCP flows that looked like DCE/RPC but were not confirmed

    # -- running --------------------------------------------------------------------------------

    def run(self, paths: Iterable[str], progress: Progress | None = None) -> Records:
        """Analyse files, directories and globs; files of one capture session (see
        `analyzer.session`) are read as one stream. `progress` gets the bytes consumed so far."""
        files = [p for p, _explicit in expand_paths(expand_globs(paths))]
        done = index = 0
        with fewer_collections():  # flows leave cyclic garbage: see analyzer.bounded
            for members in sessions(files):
                step = None if progress is None else (lambda pos, base=done, i=index: progress(base + pos, i))
                if len(members) > 1:
                    self.add_session(members, progress=step)
                else:
                    self.add_file(members[0].path, progress=step)
                for m in members:
                    index += 1
                    with contextlib.suppress(OSError):
                        done += os.path.getsize(m.path)
                if progress is not None:
                    progress(done, index)
        return self.records

    def add_session(self, members: list[Member], progress: Callable[[int], None] | None = None) -> list[CaptureSummary]:
        """Analyse the files of one capture session as one stream: nothing is closed at a file
        boundary. Records name the session's first file until `analyzer.localise` maps their frames
        back to the file (and frame in it) where each fell."""
        fmap = FrameMap(members[0].name)
        source = SessionFrames(members, fmap)
        self._begin(fmap.session)
        decoder = PacketDecoder(self.selector, Defragmenter(self.limits))
        tick = None if progress is None else (lambda: progress(source.position()))
        try:
            self._select(decoder, iter(source), tick)
        finally:
            self._close_all("capture_end")
            source.close()
        self.records.frame_maps[fmap.session] = fmap
        out = []
        for i, m in enumerate(members):
            reader = source.readers.get(i)
            if reader is None:
                summary = CaptureSummary(m.name, m.path, None, "", 0, 0, None, None, False, source.errors.get(i))
            else:
                summary = self._summary(
                    m.name, m.path, reader, source.first_ts.get(i), source.last_ts.get(i), source.errors.get(i)
                )
            self.records.captures.append(summary)
            out.append(summary)
        if decoder.defrag.dropped:
            self._violation(None, None, "ip", "ip_fragments_dropped", f"{decoder.defrag.dropped} incomplete datagrams")
        self._report_caps(decoder.defrag)
        return out

    def _begin(self, capture: str) -> None:
        """Fresh per-capture state: a file, or a session of files."""
        self._capture = capture
        self._flows = {}
        self._lru = OrderedDict()
        self._streams = 0
        self._vcs = {}
        self._pipes = PipeTable(self, self.limits, self._next_stream)
        self._cl = ClTracker(self, self.limits, self._udp_flow)
        self._udp_flows = {}

    def _select(self, decoder: PacketDecoder, frames: Iterable[RawFrame], tick: Callable[[], None] | None) -> None:
        """The per-packet loop: every selected packet to its transport, internal errors reported."""
        for selected, (frame, ts, pkt) in enumerate(decoder.select(frames, tick), 1):
            try:
                if pkt.proto == PROTO_TCP:
                    self._tcp(pkt, frame, ts)
                else:
                    self._udp(pkt, frame, ts)
            except Exception as e:  # a bug, not bad input: report it and carry on
                if self.strict:
                    raise
                self._internal_error(frame, e)
            if not selected % _EXPIRE_EVERY:
                self._expire(ts)

    def add_file(
        self, path: str, name: str | None = None, progress: Callable[[int], None] | None = None
    ) -> CaptureSummary:
        """Analyse one capture. A file that cannot be read gives a summary with `error` set."""
        name = name or display_name(path)
        try:
            reader = open_capture(path, name, self.limits)
        except CaptureError as e:
            summary = CaptureSummary(name, path, None, "", 0, 0, None, None, False, e.reason)
            self.records.captures.append(summary)
            return summary
        return self.add_reader(reader, name, path, progress)

    def add_reader(
        self, reader: CaptureReader, name: str, path: str, progress: Callable[[int], None] | None = None
    ) -> CaptureSummary:
        """Analyse the frames of one reader (a file's, or any packet source's, see `analyzer.packets`)
        as one capture named `name`; the reader is closed at the end."""
        self._begin(name)
        decoder = PacketDecoder(self.selector, Defragmenter(self.limits))
        error: str | None = None
        tick = None if progress is None else (lambda: progress(reader.position()))
        try:
            self._select(decoder, reader, tick)
        except (OSError, zlib.error) as e:  # zlib.error: corrupt compressed data (found by fuzzing)
            error = f"read error after frame {reader.frames}: {e}"
        except EOFError:
            reader.truncated = reader.truncated or f"compressed file ends early, after frame {reader.frames}"
        finally:
            self._close_all("capture_end")
            reader.close()
        if progress is not None:
            progress(reader.position())
        summary = self._summary(name, path, reader, decoder.first_ts, decoder.last_ts, error)
        if decoder.defrag.dropped:
            self._violation(None, None, "ip", "ip_fragments_dropped", f"{decoder.defrag.dropped} incomplete datagrams")
        self._report_caps(decoder.defrag)
        self.records.captures.append(summary)
        return summary

    def _summary(
        self, name: str, path: str, reader: CaptureReader, first_ts: int | None, last_ts: int | None, error: str | None
    ) -> CaptureSummary:
        """A file's captures row, and its file-level violations (link types skipped, truncation)."""
        frame = reader.frames
        supported = {lt for lt in reader.link_types if lt in SUPPORTED_LINK_TYPES}
        unsupported = sorted(lt for lt in reader.link_types if lt not in SUPPORTED_LINK_TYPES and lt != LINK_NONE)
        if frame and not supported and unsupported and error is None:
            error = "unsupported link type " + listed(unsupported, ", ")
        elif unsupported:
            detail = f"frames of link type {listed(unsupported, ', ')} skipped"
            self.records.violations.append(Violation(name, None, None, "capture", "unsupported_link_type", detail))
        if reader.truncated:
            self.records.violations.append(Violation(name, None, None, "capture", "truncated", reader.truncated))
        for note_frame, layer, what, detail in reader.notes():  # timestamps out of range, the gzip guard
            self.records.violations.append(Violation(name, note_frame, None, layer, what, detail))
        return CaptureSummary(
            capture=name,
            path=path,
            format=reader.format,
            link_types=listed(sorted(reader.link_types), ","),
            frames=frame,
            bytes=reader.bytes_read,
            first_ts=first_ts,
            last_ts=last_ts,
            truncated=reader.truncated is not None,
            error=error,
        )

    # -- TCP ------------------------------------------------------------------------------------

    def _tcp(self, pkt: Packet, frame: int, ts: int) -> None:
        key = (pkt.src, pkt.sport, pkt.dst, pkt.dport)
        entry = self._flows.get(key)
        if entry is not None:
            if isinstance(entry, TcpFlow):
                from_client = (pkt.src, pkt.sport) == entry.client
                if not (from_client and entry.is_new_connection(pkt)):
                    entry.packet(pkt, from_client, frame, ts)
                    self._lru.move_to_end(id(entry))
                    if entry.finished:
                        self._close(entry, "rst" if entry.reset else "fin", ts)
                    return
                self._close(entry, "rst" if entry.reset else "fin", ts)
            elif isinstance(entry, Candidate):
                self._candidate(key, entry, pkt, frame, ts)
                return
            elif isinstance(entry, _Tombstone):
                entry.last_ts = ts
                syn_from_client = (pkt.src, pkt.sport) == entry.client and pkt.flags & 0x12 == 0x02
                if not syn_from_client:
                    return
                self._forget(key, entry)
            else:
                entry.last_ts = ts
                if pkt.payload and (entry.client is not None or entry.probes < _PROBE_BUDGET):
                    self._judge(key, entry, pkt, frame, ts)
                elif entry.client is not None and len(entry.packets) <= _PREFIX_MAX:
                    entry.packets.append((pkt, frame, ts))  # an ACK or FIN the flow will need
                return
        self._new_tcp(key, pkt, frame, ts)

    def _new_tcp(self, key: _FlowKey, pkt: Packet, frame: int, ts: int) -> None:
        """Decide whether a connection not yet in the table is DCE/RPC, who its client is, and which
        flow class follows it."""
        src, sport, dst, dport = key
        fwd, rev = ((src, sport), (dst, dport)), ((dst, dport), (src, sport))
        link: EpmLink | None = None
        kind = "co"
        if dport == EPM_PORT or sport == EPM_PORT:
            by = BY_PORT135
            client, server = fwd if dport == EPM_PORT else rev
        elif dport in SMB_PORTS or sport in SMB_PORTS:
            client, server = fwd if dport in SMB_PORTS else rev
            self._new_smb(key, pkt, client, server, frame, ts)
            return
        elif dport == HTTP_PORT or sport == HTTP_PORT:
            by, kind = BY_PORT593, "http"
            client, server = fwd if dport == HTTP_PORT else rev
        else:
            found = None
            for transport, (c, srv) in (("tcp", fwd), ("tcp", rev), ("http", fwd), ("http", rev)):
                found = self._lookup_learned(transport, srv[0], srv[1], c[0], ts)
                if found is not None:
                    client, server = c, srv
                    kind = "http" if transport == "http" else "co"
                    break
            if found is None:
                if pkt.payload:
                    self._judge(key, _Undecided(ts), pkt, frame, ts)
                return  # nothing to decide on until this flow shows payload
            by, link = found
        self._start_flow(key, kind, by, client, server, link, [(pkt, frame, ts)])

    def _judge(self, key: _FlowKey, entry: _Undecided, pkt: Packet, frame: int, ts: int) -> None:
        """One payload of a conversation not yet known to be DCE/RPC: start following it, keep
        accumulating its client's bytes, or count a failed probe. The entry is in the flow table
        unless this is the conversation's first payload."""
        src, sport, _dst, dport = key
        known = id(entry) in self._lru
        if entry.client is not None:  # accumulating the start of a conversation cut into tiny segments
            entry.packets.append((pkt, frame, ts))
            verdict: bool | None = None
            if (src, sport) == entry.client:
                entry.prefix += pkt.payload
                verdict = rpc_start(entry.prefix)
            if verdict is None and (len(entry.prefix) > _PREFIX_MAX or len(entry.packets) > _PREFIX_MAX):
                verdict = False
            if verdict is None:
                return
            self._forget(key, entry)
            if verdict:
                self._start_heuristic(entry.client, entry.packets, entry.prefix)
            else:
                entry.client, entry.packets, entry.probes = None, [], _PROBE_BUDGET
                self._remember(key, entry)  # judged: ignored until it goes idle
            return
        entry.probes += 1
        verdict = rpc_start(pkt.payload)
        if verdict:
            if known:
                self._forget(key, entry)
            self._start_heuristic((src, sport), [(pkt, frame, ts)], pkt.payload)
            return
        first = co_start(pkt.payload, 0, len(pkt.payload)) if verdict is False else None
        if first is not None:  # a well-formed PDU that is not a first one: joined late, to confirm
            if known:
                self._forget(key, entry)
            self._candidate(key, Candidate(pkt, first, ts), pkt, frame, ts)
            return
        if verdict is None:  # too short to tell: accumulate, selecting the server's port meanwhile
            entry.client = (src, sport)
            entry.prefix = pkt.payload
            entry.packets = [(pkt, frame, ts)]
            if dport not in self.selector.tcp_ports:
                entry.held_port = dport
                self.selector.tcp_ports.add(dport)
        if not known:
            self._remember(key, entry)

    def _candidate(self, key: _FlowKey, cand: Candidate, pkt: Packet, frame: int, ts: int) -> None:
        """One packet of a flow that may be a conversation joined late: follow it once confirmed,
        ignore it (and say so) once rejected. Its server port is selected while deciding, so the
        answers and continuation segments that no probe would pass reach it."""
        verdict = cand.feed(pkt, frame, ts)
        if verdict is None:
            if id(cand) not in self._lru:
                self._remember(key, cand)
                port = cand.server[1]
                if port not in self.selector.tcp_ports:
                    cand.held_port = port
                    self.selector.tcp_ports.add(port)
            return
        self._forget(key, cand)
        if verdict:
            client, server = cand.client, cand.server
            self._start_flow(key, "co", BY_MIDSTREAM, client, server, None, cand.replay())
            return
        self._unconfirmed(cand, frame)
        ignored = _Undecided(ts)
        ignored.probes = _PROBE_BUDGET
        self._remember(key, ignored)  # judged: ignored until it goes idle

    def _unconfirmed(self, cand: Candidate, frame: int) -> None:
        """Count, and report, a flow that looked like DCE/RPC but could not be followed."""
        c, s = cand.client, cand.server
        self.unfollowed += 1
        self._violation(
            None,
            frame,
            "dcerpc",
            "unconfirmed_conversation",
            f"{ip_text(c[0])}:{c[1]} -> {ip_text(s[0])}:{s[1]}: a DCE/RPC header not confirmed by the "
            "next PDU or an answer; not followed",
        )

    def _start_heuristic(self, client: tuple[bytes, int], packets: list[tuple[Packet, int, int]], start: bytes) -> None:
        """Follow a conversation its client's first bytes identified, replaying what was kept."""
        pkt = packets[0][0]
        server = (pkt.dst, pkt.dport) if (pkt.src, pkt.sport) == client else (pkt.src, pkt.sport)
        key = (pkt.src, pkt.sport, pkt.dst, pkt.dport)
        self._start_flow(key, "co" if start[:1] == b"\x05" else "http", BY_HEURISTIC, client, server, None, packets)

    def _start_flow(
        self,
        key: _FlowKey,
        kind: str,
        by: str,
        client: tuple[bytes, int],
        server: tuple[bytes, int],
        link: EpmLink | None,
        packets: list[tuple[Packet, int, int]],
    ) -> None:
        _pkt0, frame0, ts0 = packets[0]
        flow = Flow(
            capture=self._capture,
            stream=self._next_stream(),
            transport=NCACN_HTTP if kind == "http" else NCACN_IP_TCP,
            client_ip=ip_text(client[0]),
            client_port=client[1],
            server_ip=ip_text(server[0]),
            server_port=server[1],
            opened_ts=ts0,
        )
        conn: TcpFlow
        if kind == "http":
            conn = HttpTcpFlow(flow, client, by, self, self.limits, frame0, ts0, link, self._virtual_connection)
        else:
            conn = CoTcpFlow(flow, client, by, self, self.limits, frame0, ts0, link)
        if by in (BY_HEURISTIC, BY_MIDSTREAM):
            self.selector.tcp_ports.add(server[1])
        self._remember(key, conn)
        for pkt, frame, ts in packets:
            conn.packet(pkt, (pkt.src, pkt.sport) == client, frame, ts)
        if conn.finished:
            self._close(conn, "rst" if conn.reset else "fin", packets[-1][2])

    def _new_smb(
        self, key: _FlowKey, pkt: Packet, client: tuple[bytes, int], server: tuple[bytes, int], frame: int, ts: int
    ) -> None:
        """An SMB connection: not a DCE/RPC conversation itself (its pipes are), so no stream number."""
        flow = Flow(
            self._capture, -1, SMB_TRANSPORT, ip_text(client[0]), client[1], ip_text(server[0]), server[1], None, ts
        )
        conn = SmbTcpFlow(flow, client, self, self.limits, frame, ts, self._pipes, server[1] == NETBIOS_PORT)
        self._remember(key, conn)
        conn.packet(pkt, (key[0], key[1]) == client, frame, ts)
        if conn.finished:
            self._close(conn, "rst" if conn.reset else "fin", ts)

    def _next_stream(self) -> int:
        n = self._streams
        self._streams += 1
        return n

    def _virtual_connection(self, cookie: str, channel: HttpTcpFlow) -> VirtualConnection:
        vc = self._vcs.get(cookie)
        if vc is None:
            vc = self._vcs[cookie] = VirtualConnection(cookie)
        vc.channels.append(channel)
        return vc

    def _lookup_learned(
        self, transport: str, addr: bytes, port: int, client: bytes, ts: int
    ) -> tuple[str, EpmLink | None] | None:
        """(identified_by, EPM link) if the run learned this server address and port before `ts`:
        an answer can only lead to a connection that starts after it."""
        if not len(self.book) or port not in self.selector.tcp_ports:
            return None
        found = self.book.before((transport, ip_text(addr), port), ts)
        if not found:
            return None
        client_ip = ip_text(client)
        epm = [a for a in found if a.source == BY_EPM]
        if not epm:
            return BY_SEC_ADDR, None
        # The answer given to this client, else the latest answer to anyone.
        mine = [a for a in epm if a.client_ip == client_ip]
        a = (mine or epm)[-1]
        hint = None
        if a.interface_uuid is not None:
            hint = InterfaceHint(a.interface_uuid, a.if_major, a.if_minor, SOURCE_EPM)
        return BY_EPM, EpmLink(a.capture, a.frame, a.ts, a.client_ip or "", hint)

    def _remember(self, key: _FlowKey, entry: _Entry) -> None:
        src, sport, dst, dport = key
        self._flows[key] = entry
        self._flows[(dst, dport, src, sport)] = entry
        self._lru[id(entry)] = (key, entry)
        if len(self._lru) > self.limits.max_tcp_flows:
            _id, (old_key, old) = next(iter(self._lru.items()))
            if isinstance(old, TcpFlow):
                self._violation(old.flow, old.last_frame, "limits", "cap_tcp_flows", f"{len(self._lru)} live flows")
                self._close(old, "evicted", old.last_ts, tombstone=False)
            else:
                self._forget(old_key, old)
                if isinstance(old, Candidate):
                    self._unconfirmed(old, old.packets[-1][1])

    def _forget(self, key: _FlowKey, entry: _Entry) -> None:
        src, sport, dst, dport = key
        for k in (key, (dst, dport, src, sport)):
            if self._flows.get(k) is entry:
                del self._flows[k]
        self._lru.pop(id(entry), None)
        if isinstance(entry, _Undecided | Candidate) and entry.held_port is not None:
            port, entry.held_port = entry.held_port, None
            self._release_port(port)

    def _close(self, conn: TcpFlow, end: str, ts: int, tombstone: bool = True) -> None:
        key, _e = self._lru.get(id(conn), (None, None))
        record = conn.close(end)
        if isinstance(conn, SmbTcpFlow):  # not a conversation itself; a scan of 445 or 139 is attempts
            if conn.client_isn is not None and not (conn.client_bytes or conn.server_bytes):
                self.records.attempts.append(_attempt(conn))
        elif record.pdus:
            self.records.connections.append(record)
        elif conn.client_isn is not None:  # a SYN, a reset or an empty connection: an attempt
            self.records.attempts.append(_attempt(conn))
        # else the tail of a connection begun before the capture (FIN, ACKs) that carried no PDU: nothing
        self.records.connections.extend(self._pipes.closed)
        self._pipes.closed.clear()
        if isinstance(conn, HttpTcpFlow) and conn.vc is not None:
            vc = conn.vc
            if vc.assoc is not None and all(c.closed for c in vc.channels):
                vc.assoc.close()
                self._vcs.pop(vc.cookie, None)
        if conn.identified_by in (BY_HEURISTIC, BY_MIDSTREAM):
            self._release_port(conn.flow.server_port)
        if key is not None:
            self._forget(key, conn)
            if tombstone:
                self._remember(key, _Tombstone(conn.client, ts))

    def _release_port(self, port: int) -> None:
        """Stop selecting a port a heuristic connection or an undecided one held, unless something
        else still needs it."""
        if port in _WELL_KNOWN or self.book.has_port(port):
            return
        for _k, e in self._lru.values():
            if (
                isinstance(e, TcpFlow)
                and e.identified_by in (BY_HEURISTIC, BY_MIDSTREAM)
                and e.flow.server_port == port
            ):
                return
            if isinstance(e, _Undecided | Candidate) and e.held_port == port:
                return
        self.selector.tcp_ports.discard(port)

    def _expire(self, now: int) -> None:
        horizon = now - int(self.limits.tcp_idle_timeout_s * 1_000_000_000)
        lru = self._lru
        while lru:
            _id, (key, entry) = next(iter(lru.items()))
            if entry.last_ts >= horizon:
                break
            if isinstance(entry, TcpFlow):
                self._close(entry, "idle", entry.last_ts, tombstone=False)
            else:
                self._forget(key, entry)
                if isinstance(entry, Candidate):
                    self._unconfirmed(entry, entry.packets[-1][1])

    def _close_all(self, end: str) -> None:
        for key, entry in list(self._lru.values()):
            if isinstance(entry, TcpFlow):
                self._close(entry, end, entry.last_ts, tombstone=False)
            elif isinstance(entry, Candidate):
                self._forget(key, entry)
                self._unconfirmed(entry, entry.packets[-1][1])
        for vc in self._vcs.values():
            if vc.assoc is not None:
                vc.assoc.close()
        self._vcs = {}
        self.records.connections.extend(self._pipes.close_all(end))
        self._cl.close()
        self.records.connections.extend(c.record(end) for c in self._udp_flows.values())
        self._udp_flows = {}
        self._flows = {}
        self._lru = OrderedDict()

    # -- UDP ------------------------------------------------------------------------------------

    def _udp(self, pkt: Packet, frame: int, ts: int) -> None:
        """A datagram on UDP 135, on a port the EPM announced, or one that looks like CL DCE/RPC."""
        src, dst = ip_text(pkt.src), ip_text(pkt.dst)
        self._udp_ts = ts  # when a conversation the tracker starts now opened (its Flow's opened_ts)
        self._cl.datagram(src, pkt.sport, dst, pkt.dport, pkt.payload, frame, ts)
        # The tracker created the conversation's flow (through _udp_flow) if the datagram was DCE/RPC.
        conv = self._udp_flows.get((src, pkt.sport, dst, pkt.dport)) or self._udp_flows.get(
            (dst, pkt.dport, src, pkt.sport)
        )
        if conv is not None:
            f = conv.flow
            conv.count((f.client_ip, f.client_port) == (src, pkt.sport), len(pkt.payload), frame, ts)

    def _udp_flow(self, client_ip: str, client_port: int, server_ip: str, server_port: int) -> Flow:
        """The Flow of a connectionless conversation (the CL tracker asks; streams are numbered here)."""
        key = (client_ip, client_port, server_ip, server_port)
        # A response sent the way of its request asks for the reversed pair: it is the same
        # conversation, not a new one that would carry no packet.
        conv = self._udp_flows.get(key) or self._udp_flows.get((server_ip, server_port, client_ip, client_port))
        if conv is None:
            if len(self._udp_flows) >= self.limits.max_udp_flows:
                self._violation(None, None, "limits", "cap_udp_flows", f"{len(self._udp_flows)} UDP conversations")
                oldest = next(iter(self._udp_flows))
                self.records.connections.append(self._udp_flows.pop(oldest).record("evicted"))
            if server_port == EPM_PORT or client_port == EPM_PORT:
                by = BY_PORT135
            elif ("udp", server_ip, server_port) in self.book:
                by = BY_EPM
            else:
                by = BY_HEURISTIC
            flow = Flow(
                self._capture,
                self._next_stream(),
                NCADG_IP_UDP,
                client_ip,
                client_port,
                server_ip,
                server_port,
                opened_ts=self._udp_ts,
            )
            conv = self._udp_flows[key] = _UdpConversation(flow, by)
        return conv.flow

    # -- learning -------------------------------------------------------------------------------

    def _learn(self, transport: str, ip: str, port: int, a: Announcement) -> None:
        forgotten = self.book.learn((transport, ip, port), a)
        if forgotten is not None:
            _t, old_ip, old_port = forgotten
            self._violation(None, a.frame, "limits", "cap_learned_endpoints", f"{old_ip}:{old_port} forgotten")
        if transport in ("tcp", "http"):
            self.selector.tcp_ports.add(port)
        else:
            self.selector.udp_ports.add(port)

    # -- RecordSink -----------------------------------------------------------------------------

    def bind(self, rec: BindRecord) -> None:
        self.records.binds.append(rec)
        addr = rec.sec_addr
        if addr and addr.isdigit() and rec.flow.transport == NCACN_IP_TCP and rec.ack_result == "acceptance":
            port = int(addr)
            if 0 < port < 65536 and (
                port != rec.flow.server_port or ("tcp", rec.flow.server_ip, port) not in self.book
            ):
                self._learn(
                    "tcp",
                    rec.flow.server_ip,
                    port,
                    Announcement(
                        self._capture,
                        rec.ack_frame or rec.frame,
                        rec.ts,
                        rec.flow.client_ip,
                        rec.interface_uuid,
                        rec.if_major,
                        rec.if_minor,
                        BY_SEC_ADDR,
                    ),
                )

    def call(self, rec: CallRecord) -> None:
        self.records.calls.append(rec)

    def datagram(self, rec: DatagramRecord) -> None:
        self.records.datagrams.append(rec)

    def endpoint(self, rec: EndpointRecord) -> None:
        self.records.endpoints.append(rec)
        if rec.port is None or rec.host is None or not rec.port:
            return
        transport = {"ncacn_ip_tcp": "tcp", "ncadg_ip_udp": "udp", "ncacn_http": "http"}.get(rec.protocol or "")
        if transport is None:
            return
        self._learn(
            transport,
            rec.host,
            rec.port,
            Announcement(
                self._capture,
                rec.frame,
                rec.ts,
                rec.flow.client_ip,
                rec.interface_uuid,
                rec.if_major,
                rec.if_minor,
                BY_EPM,
            ),
        )

    def violation(self, flow: Flow, frame: int | None, layer: str, what: str, detail: str) -> None:
        self._violation(flow, frame, layer, what, detail)

    def _violation(self, flow: Flow | None, frame: int | None, layer: str, what: str, detail: str) -> None:
        stream = flow.stream if flow is not None and flow.stream >= 0 else None
        self.records.violations.append(Violation(self._capture, frame, stream, layer, what, detail))

    def _report_caps(self, defrag: Defragmenter) -> None:
        """Caps counted by a layer without a sink, reported once at the end of the file."""
        if defrag.capped:
            detail = f"{defrag.capped} incomplete datagrams given up: {self.limits.max_ip_fragment_datagrams} pending"
            self.records.violations.append(
                Violation(
                    self._capture,
                    defrag.first_capped,
                    None,
                    "limits",
                    "cap_ip_fragment_datagrams",
                    detail,
                    count=defrag.capped,
                )
            )

    def _internal_error(self, frame: int, e: Exception) -> None:
        where = traceback.extract_tb(e.__traceback__)[-1]
        self._violation(
            None,
            frame,
            "internal",
            "internal_error",
            f"{type(e).__name__}: {e} at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}",
        )
