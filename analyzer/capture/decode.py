"""Raw frame -> TCP segment or UDP datagram, for the packets the RPC layers want, and only those.

Link layers: Ethernet (with 802.1Q / 802.1ad QinQ tags), Linux cooked SLL and SLL2, raw IPv4/IPv6,
BSD null/loopback (see `link`). Network: IPv4 (fragments reassembled, see `ipfrag`) and IPv6 (extension headers
skipped, fragments reassembled). Transport: TCP and UDP headers. Tunnels (see `tunnel`): GRE (plain,
WCCP redirect, ERSPAN I/II/III), VXLAN on UDP 4789 and Geneve on UDP 6081 are unwrapped and the packet
they carry is decoded like a bare one, with its own (inner) addresses; the outer headers only lead there.

This is the hot loop. Most packets of a capture belong to flows no RPC layer needs, so `select`
reads ports and a few payload bytes straight out of the frame buffer and drops them before
building anything. A `Packet` exists only for packets the `Selector` accepts:
- TCP or UDP packets with a port in `tcp_ports` / `udp_ports` (135, 445, ..., ports learned from
  the endpoint mapper): every such packet, with or without payload, so connection state is seen;
- other packets whose payload the selector's probe accepts (a DCE/RPC bind on an unknown port).
On batches, the packets of the common layout are built in C (`_packets.build`, see `_built`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from analyzer.capture import prefilter, syns, tunnel
from analyzer.capture.ipfrag import Defragmenter
from analyzer.capture.link import ETH_IPV4, ETH_IPV6, LINKTYPE_ETHERNET, VLAN_TAGS, ethernet, link_layer
from analyzer.capture.prefilter import Batch, PortSet
from analyzer.capture.reader import RawFrame

c_build: Callable[..., list[tuple[int, int, Packet] | prefilter.Row]] | None
try:
    from analyzer.capture._packets import build as c_build
except ImportError:  # not built (no compiler at install): `_built_here`, the same list
    c_build = None

PROTO_TCP = 6
PROTO_UDP = 17
PROTO_GRE = tunnel.PROTO_GRE

# TCP flags
FIN = 0x01
SYN = 0x02
RST = 0x04
ACK = 0x10

ETH_FRAME = tunnel.ETH_FRAME
# Tunnels inside tunnels are followed this deep; a hostile nest of headers stops here.
_MAX_TUNNEL_DEPTH = 4

_IPV6_EXT_HEADERS = frozenset({0, 43, 60, 51, 135, 139, 140})
_IPV6_FRAGMENT = 44

_u16 = struct.Struct(">H").unpack_from
_ports = struct.Struct(">HH").unpack_from
_tcp_seq_ack = struct.Struct(">II").unpack_from
# From an Ethernet frame: ethertype, IPv4 version/IHL, total length, flags/fragment offset, protocol,
# then (for a 20-byte IP header) TCP source and destination ports and data offset.
_eth_ipv4_tcp = struct.Struct("!12xHBxH2xHxB10xHH8xB").unpack_from


class Packet(NamedTuple):
    """A TCP segment or UDP datagram the RPC layers asked for. Addresses are packed bytes."""

    proto: int  # PROTO_TCP | PROTO_UDP
    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int  # TCP only (0 for UDP)
    ack: int  # TCP only
    flags: int  # TCP only
    payload: bytes


# probe(buf, start, end) -> bool: does the payload buf[start:end] start a conversation worth following?
Probe = Callable[[bytes, int, int], bool]


def _never(buf: bytes, start: int, end: int) -> bool:
    return False


class Selector:
    """What the RPC layers want: ports of known services and payload probes for everything else.

    The pipeline owns it and adds ports as it learns them (EPM answers, bind_ack secondary
    addresses); the decoder reads it for every packet.
    """

    def __init__(self) -> None:
        # Sets that count their changes: the batch prefilter looks again when one changes.
        self.tcp_ports: PortSet = PortSet()
        self.udp_ports: PortSet = PortSet()
        self.tcp_probe: Probe = _never
        self.udp_probe: Probe = _never
        # First payload bytes the TCP probe can accept: every other payload is rejected without a call.
        self.tcp_probe_first: frozenset[int] = frozenset()
        # The same for the UDP probe; by default every byte (the probe decides).
        self.udp_probe_first: frozenset[int] = frozenset(range(256))


class PacketDecoder:
    """Decodes raw frames for one capture file; keeps the IP fragment reassembly state of that file."""

    def __init__(self, selector: Selector, defragmenter: Defragmenter) -> None:
        self.selector = selector
        # The selector's own set, read directly in the hot path; the pipeline mutates it in place.
        self._tcp_ports = selector.tcp_ports
        self.defrag = defragmenter
        self._depth = 0  # tunnel headers unwrapped around the packet being decoded
        # Runs of plain SYNs to these ports (a 65,536-entry table) go to `syn_sink`, when one is set, instead
        # of being decoded one by one (see `capture.syns`); it says how many it took.
        self.syn_sink: Callable[[syns.SynRun], int] | None = None
        self.syn_ports = prefilter.port_table(())
        # What `select` saw.
        self.frames = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        # Shown every batch before it is filtered (a parallel run's census of the conversations,
        # `analyzer.parallel.units`): what the batch holds, not what the selector keeps.
        self.on_batch: Callable[[Batch], None] | None = None

    def select(
        self, records: Iterable[RawFrame], progress: Callable[[], None] | None = None
    ) -> Iterator[tuple[int, int, Packet]]:
        """(frame number, ts, packet) for every frame the selector wants: the hot loop.

        Most frames are Ethernet + IPv4 (no options, not a fragment) + TCP between ports nobody asked
        for: those are rejected here, inline, from a few bytes of the frame and without a call unless
        they carry payload for the probe. Everything else goes through `decode`. `first_ts` (the first
        known time) and `last_ts` (the last frame's, if known) are set as frames go by; `progress` is
        called every 65,536 frames.
        """
        batches = getattr(records, "batches", None)
        if batches is not None:  # a reader with a fast path (pcap, pcapng): its generator itself, no hop per packet
            shown = batches() if self.on_batch is None else _shown(batches(), self.on_batch)
            return self._select_batches(shown, progress)
        return self._select_frames(records, progress)

    def _select_frames(
        self, records: Iterable[RawFrame], progress: Callable[[], None] | None
    ) -> Iterator[tuple[int, int, Packet]]:
        """`select` frame by frame (a reader without batches: NetMon, a session, a bare iterator)."""
        ports = self._tcp_ports
        probe = self.selector.tcp_probe
        first_bytes = self.selector.tcp_probe_first
        decode = self.decode
        fields = _eth_ipv4_tcp
        frame = 0
        ts = 0
        first = True  # until the first frame with a known time (0 is unknown: capture.reader)
        for ts, link, buf, start, end in records:
            frame += 1
            if first:
                if ts:
                    self.first_ts = ts
                    first = False
            elif not frame & 0xFFFF and progress is not None:
                progress()
            # One unpack reads the Ethernet, IPv4 and TCP fields the decision needs (assuming no VLAN
            # tag and no IP options; the conditions check both); literals, not the module's names,
            # because a global lookup per packet costs more than the test.
            if link == 1 and end - start >= 54:
                etype, vhl, total, frag, proto, sport, dport, doff = fields(buf, start)
                if (
                    etype == 0x0800
                    and vhl == 0x45
                    and proto == 6
                    and not frag & 0x3FFF
                    and sport not in ports
                    and dport not in ports
                ):
                    stop = start + 14 + total if total >= 20 and start + 14 + total < end else end
                    pay = start + 34 + ((doff >> 4) << 2)
                    if pay >= stop or buf[pay] not in first_bytes or not probe(buf, pay, stop):
                        continue
            pkt = decode(link, buf, start, end, frame, ts)
            if pkt is not None:
                yield frame, ts, pkt
        self.frames = frame
        self.last_ts = ts or None

    def _select_batches(
        self, batches: Iterable[Batch], progress: Callable[[], None] | None
    ) -> Iterator[tuple[int, int, Packet]]:
        """`select` over batches (see `prefilter`): the same packets, numpy doing the dropping."""
        sel = self.selector
        tcp_ports, udp_ports = sel.tcp_ports, sel.udp_ports
        tcp_first = prefilter.table(sel.tcp_probe_first)
        udp_first = prefilter.table(sel.udp_probe_first)
        built = _built
        frames = last = 0
        versions = (tcp_ports.version, udp_ports.version)
        tcp_table, udp_table = prefilter.port_table(tcp_ports), prefilter.port_table(udp_ports)
        for batch in batches:
            f, base = prefilter.fields(batch, tcp_first, udp_first)
            frame0 = batch.frame0
            if self.first_ts is None:
                known = np.flatnonzero(batch.ts)
                if len(known):
                    self.first_ts = int(batch.ts[known[0]])
            frames = frame0 + len(batch.start)
            last = int(batch.ts[-1])
            if progress is not None and self.first_ts is not None and frame0 >> 16 != frames >> 16:
                progress()
            buf, link = batch.buf, batch.link
            n = frames - frame0
            since = 0
            while since < n:  # once, and again from the next frame whenever a port set changes
                if versions != (tcp_ports.version, udp_ports.version):
                    versions = (tcp_ports.version, udp_ports.version)
                    tcp_table, udp_table = prefilter.port_table(tcp_ports), prefilter.port_table(udp_ports)
                todo = prefilter.candidates(f, base, tcp_table, udp_table, since)
                since = n
                for at, bulk in self._stretches(batch, f, todo):
                    if bulk:  # plain SYNs, to the sink; the frames after the last it took are looked at again
                        since = self._to_sink(batch, at, versions, n)
                    else:
                        for lo in range(0, len(at), _CHUNK):  # a bounded number of packets made at once
                            for item in built(batch, f, at[lo : lo + _CHUNK], tcp_table, udp_table):
                                if len(item) == 3:  # a packet of the common layout with a port in its set
                                    yield item
                                    if versions != (tcp_ports.version, udp_ports.version):
                                        since = item[0] - frame0
                                        break
                                    continue
                                i, ts = item[0], item[9]
                                pkt = self._row(item, buf, link, frame0)
                                if pkt is None:
                                    continue
                                yield frame0 + i + 1, ts, pkt
                                if versions != (tcp_ports.version, udp_ports.version):
                                    since = i + 1
                                    break
                            if since < n:
                                break
                    if since < n:
                        break
        self.frames = frames
        self.last_ts = last or None

    def _row(self, row: prefilter.Row, buf: bytes, link: int, frame0: int) -> Packet | None:
        """The packet of a candidate `_built` left as its row, if the selector wants it: `decode`'s
        tests and packet for the common layout, without its calls, else `decode`."""
        i, kind, sport, dport, maybe, pay, stop, start, end, ts = row
        sel = self.selector
        if kind == 6:
            if sport not in sel.tcp_ports and dport not in sel.tcp_ports:
                if not maybe or not sel.tcp_probe(buf, pay, stop):
                    return None
            return _plain(6, buf, start, pay, stop, sport, dport)
        if kind == 17 and dport != tunnel.UDP_VXLAN and dport != tunnel.UDP_GENEVE:  # tunnels: see `_l4`
            if sport not in sel.udp_ports and dport not in sel.udp_ports:
                if not maybe or not sel.udp_probe(buf, pay, stop):
                    return None
            return _plain(17, buf, start, pay, stop, sport, dport)
        return self.decode(link, buf, start, end, frame0 + i + 1, ts)

    def _to_sink(self, batch: Batch, at: prefilter.Ints, versions: tuple[int, int], n: int) -> int:
        """Hand plain SYNs to the sink: where to look again from (`n`: nowhere, all taken and no port
        set changed)."""
        assert self.syn_sink is not None
        took = self.syn_sink(syns.syn_run(batch, at))
        assert took > 0, "a sink takes at least one SYN of a run"
        sel = self.selector
        if took < len(at) or versions != (sel.tcp_ports.version, sel.udp_ports.version):
            return int(at[took - 1]) + 1
        return n

    def _stretches(self, batch: Batch, f: prefilter.Fields, todo: prefilter.Ints) -> list[tuple[prefilter.Ints, bool]]:
        """`todo` cut into consecutive parts, each with whether it is a run of plain SYNs for `syn_sink`."""
        if self.syn_sink is None or len(todo) < syns.MIN_RUN:
            return [(todo, False)]
        out: list[tuple[prefilter.Ints, bool]] = []
        at = 0
        for lo, hi in syns.runs(syns.plain(batch, f, todo, self.syn_ports)):
            if lo > at:
                out.append((todo[at:lo], False))
            out.append((todo[lo:hi], True))
            at = hi
        if at < len(todo):
            out.append((todo[at:], False))
        return out

    def decode(self, link: int, buf: bytes, start: int, end: int, frame: int, ts: int) -> Packet | None:
        """The packet in buf[start:end] if the selector wants it, else None."""
        if link == LINKTYPE_ETHERNET:  # inline (see `link.ethernet`): most frames are Ethernet
            if end - start < 14:
                return None
            etype = (buf[start + 12] << 8) | buf[start + 13]
            ip = start + 14
            while etype in VLAN_TAGS and ip + 4 <= end:
                etype = (buf[ip + 2] << 8) | buf[ip + 3]
                ip += 4
        else:
            etype, ip = link_layer(link, buf, start, end)
        if etype == ETH_IPV4:
            return self._ipv4(buf, ip, end, frame, ts)
        if etype == ETH_IPV6:
            return self._ipv6(buf, ip, end, frame, ts)
        return None

    def _tunnelled(self, decap: tunnel.Decap, buf: bytes, end: int, frame: int, ts: int) -> Packet | None:
        """The packet a tunnel carries, decoded as if it had been captured bare (see `tunnel`)."""
        kind, off = decap
        if not kind or self._depth >= _MAX_TUNNEL_DEPTH:
            return None
        self._depth += 1
        try:
            if kind == ETH_FRAME:
                kind, off = ethernet(buf, off, end)
            if kind == ETH_IPV4:
                return self._ipv4(buf, off, end, frame, ts)
            if kind == ETH_IPV6:
                return self._ipv6(buf, off, end, frame, ts)
            return None
        finally:
            self._depth -= 1

    def _ipv4(self, buf: bytes, ip: int, end: int, frame: int, ts: int) -> Packet | None:
        if ip + 20 > end:
            return None
        vhl = buf[ip]
        ihl = (vhl & 15) << 2
        if vhl >> 4 != 4 or ihl < 20:
            return None
        total = _u16(buf, ip + 2)[0]
        # Ethernet pads short frames; TSO captures may say 0: trust the smaller plausible end.
        if total >= ihl and ip + total < end:
            end = ip + total
        proto = buf[ip + 9]
        if proto != PROTO_TCP and proto != PROTO_UDP and proto != PROTO_GRE:
            return None
        frag = _u16(buf, ip + 6)[0]
        if frag & 0x3FFF:  # more-fragments flag or a fragment offset: reassemble first
            payload = self.defrag.ipv4(buf[ip:end], ihl, frame, ts)
            if payload is None:
                return None
            if proto == PROTO_GRE:
                return self._tunnelled(tunnel.gre(payload, 0, len(payload)), payload, len(payload), frame, ts)
            return self._l4(proto, buf, ip + 12, 4, payload, 0, len(payload), frame, ts)
        if proto == PROTO_GRE:
            return self._tunnelled(tunnel.gre(buf, ip + ihl, end), buf, end, frame, ts)
        return self._l4(proto, buf, ip + 12, 4, buf, ip + ihl, end, frame, ts)

    def _ipv6(self, buf: bytes, ip: int, end: int, frame: int, ts: int) -> Packet | None:
        if ip + 40 > end or buf[ip] >> 4 != 6:
            return None
        plen = _u16(buf, ip + 4)[0]
        if plen and ip + 40 + plen < end:
            end = ip + 40 + plen
        nxt = buf[ip + 6]
        off = ip + 40
        while nxt in _IPV6_EXT_HEADERS and off + 8 <= end:
            hlen = (buf[off + 1] + 2) << 2 if nxt == 51 else (buf[off + 1] + 1) << 3
            nxt = buf[off]
            off += hlen
        if nxt == _IPV6_FRAGMENT and off + 8 <= end:
            result = self.defrag.ipv6(buf[ip : ip + 40], buf[off:end], frame, ts)
            if result is None:
                return None
            proto, payload = result
            if proto == PROTO_GRE:
                return self._tunnelled(tunnel.gre(payload, 0, len(payload)), payload, len(payload), frame, ts)
            if proto != PROTO_TCP and proto != PROTO_UDP:
                return None
            return self._l4(proto, buf, ip + 8, 16, payload, 0, len(payload), frame, ts)
        if nxt == PROTO_GRE:
            return self._tunnelled(tunnel.gre(buf, off, end), buf, end, frame, ts)
        if nxt != PROTO_TCP and nxt != PROTO_UDP:
            return None
        return self._l4(nxt, buf, ip + 8, 16, buf, off, end, frame, ts)

    def _l4(
        self, proto: int, abuf: bytes, aoff: int, alen: int, buf: bytes, l4: int, end: int, frame: int, ts: int
    ) -> Packet | None:
        """TCP/UDP header at buf[l4:end]; None unless the selector wants the packet.

        The source and destination addresses are the 2 * alen bytes at abuf[aoff:] (the IP header's
        address fields); they are sliced only for a selected packet.
        """
        sel = self.selector
        if l4 + 8 > end:
            return None
        sport, dport = _ports(buf, l4)
        if proto == PROTO_TCP:
            if l4 + 20 > end:
                return None
            pay = l4 + ((buf[l4 + 12] >> 4) << 2)
            if sport not in sel.tcp_ports and dport not in sel.tcp_ports:
                if pay >= end or not sel.tcp_probe(buf, pay, end):
                    return None
            seq, ack = _tcp_seq_ack(buf, l4 + 4)
            payload = buf[pay:end] if pay < end else b""
            flags = buf[l4 + 13]
        else:
            pay = l4 + 8
            if dport == tunnel.UDP_VXLAN or dport == tunnel.UDP_GENEVE:
                decap = tunnel.vxlan(buf, pay, end) if dport == tunnel.UDP_VXLAN else tunnel.geneve(buf, pay, end)
                if decap[0]:
                    return self._tunnelled(decap, buf, end, frame, ts)
            if sport not in sel.udp_ports and dport not in sel.udp_ports:
                if pay >= end or not sel.udp_probe(buf, pay, end):
                    return None
            seq = ack = flags = 0
            payload = buf[pay:end]
        src = abuf[aoff : aoff + alen]
        dst = abuf[aoff + alen : aoff + 2 * alen]
        return Packet(proto, src, dst, sport, dport, seq, ack, flags, payload)


def _shown(batches: Iterable[Batch], show: Callable[[Batch], None]) -> Iterator[Batch]:
    """The batches, each shown to `show` before the decoder filters it (`PacketDecoder.on_batch`)."""
    for batch in batches:
        show(batch)
        yield batch


_new_packet = tuple.__new__  # a Packet from its fields in one call, without the NamedTuple's own __new__ frame


def _plain(kind: int, buf: bytes, start: int, pay: int, stop: int, sport: int, dport: int) -> Packet | None:
    """What `decode` returns for a wanted frame of the batch prefilter's common layout (Ethernet,
    IPv4 with a 20-byte header, not a fragment; `kind` 6 TCP or 17 UDP, not to a tunnel port),
    built from the fields the batch read: `stop` is the end the IPv4 total length leaves."""
    if kind == PROTO_TCP:
        if start + 54 > stop:  # the TCP header does not fit in the IP datagram
            return None
        seq, ack = _tcp_seq_ack(buf, start + 38)
        payload = buf[pay:stop] if pay < stop else b""
        src, dst = buf[start + 26 : start + 30], buf[start + 30 : start + 34]
        return _new_packet(Packet, (PROTO_TCP, src, dst, sport, dport, seq, ack, buf[start + 47], payload))
    if start + 42 > stop:
        return None
    src, dst = buf[start + 26 : start + 30], buf[start + 30 : start + 34]
    return _new_packet(Packet, (PROTO_UDP, src, dst, sport, dport, 0, 0, 0, buf[pay:stop]))


Built = tuple[int, int, Packet]  # (frame, ts, packet)
_Table = npt.NDArray[np.bool_]  # prefilter.port_table: a byte per port
_CHUNK = 1024  # candidates made packets in one `_built` call: the packets waiting meanwhile stay few


def _built(
    batch: Batch, f: prefilter.Fields, at: prefilter.Ints, tcp_table: _Table, udp_table: _Table
) -> list[Built | prefilter.Row]:
    """For each candidate at `at`, in order: (frame, ts, packet) for a frame of the common layout,
    TCP or UDP (not to a tunnel port), with a port in its set as the tables say (what `_plain`
    makes of it; nothing when `_plain` gives None); its row (`prefilter.rows`) for any other, for
    the per-row tests. In C when built (`_packets.build`: a Python step per packet less, about a
    microsecond), else `_built_here`: the same list."""
    buf = batch.buf
    if c_build is None or type(buf) is not bytes or batch.link != LINKTYPE_ETHERNET:
        return _built_here(batch, f, at, tcp_table, udp_table)
    ints = (at, f.kind, f.sport, f.dport, f.pay, f.stop, batch.start, batch.end, batch.ts)
    i, kind, sport, dport, pay, stop, start, end, ts = (np.ascontiguousarray(c, dtype=np.int64).data for c in ints)
    maybe = np.ascontiguousarray(f.maybe, dtype=np.bool_).data
    tables = np.ascontiguousarray(tcp_table, dtype=np.bool_).data, np.ascontiguousarray(udp_table, dtype=np.bool_).data
    return c_build(buf, i, kind, sport, dport, maybe, pay, stop, start, end, ts, batch.frame0, *tables, Packet)


def _built_here(
    batch: Batch, f: prefilter.Fields, at: prefilter.Ints, tcp_table: _Table, udp_table: _Table
) -> list[Built | prefilter.Row]:
    """`_built` in Python."""
    out: list[Built | prefilter.Row] = []
    buf, frame0 = batch.buf, batch.frame0
    for row in prefilter.rows(batch, f, at):
        i, kind, sport, dport, _maybe, pay, stop, start, _end, ts = row
        if kind == 6:
            hit = tcp_table[sport] or tcp_table[dport]
        elif kind == 17 and dport != tunnel.UDP_VXLAN and dport != tunnel.UDP_GENEVE:
            hit = udp_table[sport] or udp_table[dport]
        else:
            hit = False
        if not hit:
            out.append(row)
        elif (pkt := _plain(kind, buf, start, pay, stop, sport, dport)) is not None:
            out.append((frame0 + i + 1, ts, pkt))
    return out
