"""TCP connections (RFC 793) with handshake, MSS-sized segments, retransmissions, gaps, IPv4 fragments, FIN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scapy.layers.inet import IP, TCP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, PadN
from scapy.packet import Packet, Raw

from .capture import Capture, Host
from .link import link_ether


class TcpFlow:
    """One TCP connection between a client and a server (RFC 793): handshake, data, ACKs, FIN close.

    Sequence numbers are tracked per direction ('c' = client to server, 's' = server to client).
    `send` cuts data into MSS-sized segments; `segment` emits one segment at an arbitrary stream offset
    without moving the send pointer (for retransmissions, overlaps and reordering); `skip` advances the
    send pointer as if a segment had been sent but not captured.
    """

    def __init__(
        self,
        cap: Capture,
        client: Host,
        cport: int,
        server: Host,
        sport: int,
        link: Callable[[Packet, Host, Host], bytes] = link_ether,
        mss: int = 1460,
        ip6: bool = False,
        ext_hdr: bool = False,
        iface: int = 0,
    ) -> None:
        self.cap, self.client, self.server, self.cport, self.sport = cap, client, server, cport, sport
        self.link, self.mss, self.ip6, self.ext_hdr, self.iface = link, mss, ip6, ext_hdr, iface
        self.isn = {"c": cap.rng.getrandbits(32), "s": cap.rng.getrandbits(32)}
        self.pos = {"c": 0, "s": 0}  # bytes sent so far in each direction
        self.fin = {"c": False, "s": False}
        self.win = {"c": 1026, "s": 8212}  # scaled windows, as Windows shows them

    def ends(self, side: str) -> tuple[Host, int, Host, int]:
        if side == "c":
            return self.client, self.cport, self.server, self.sport
        return self.server, self.sport, self.client, self.cport

    @staticmethod
    def other(side: str) -> str:
        return "s" if side == "c" else "c"

    def seq(self, side: str, offset: int | None = None) -> int:
        return (self.isn[side] + 1 + (self.pos[side] if offset is None else offset)) & 0xFFFFFFFF

    def ack_value(self, side: str) -> int:
        o = self.other(side)
        return (self.isn[o] + 1 + self.pos[o] + (1 if self.fin[o] else 0)) & 0xFFFFFFFF

    def packet(
        self,
        side: str,
        flags: str,
        seq: int,
        ack: int | None,
        payload: bytes = b"",
        options: list[Any] | None = None,
        desc: str = "",
        emit: bool = True,
        block: str = "epb",
    ) -> int:
        src, sp, dst, dp = self.ends(side)
        tcp = TCP(sport=sp, dport=dp, seq=seq, ack=ack or 0, flags=flags, window=self.win[side], options=options or [])
        l3: Packet
        if self.ip6:
            l3 = IPv6(src=src.ip6, dst=dst.ip6, hlim=src.ttl)
            if self.ext_hdr and side == "c":
                l3 = l3 / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00\x00\x00\x00")])
            l3 = l3 / tcp
        else:
            l3 = IP(src=src.ip, dst=dst.ip, id=src.next_ipid(), flags="DF", ttl=src.ttl) / tcp
        if payload:
            l3 = l3 / Raw(payload)
        data = self.link(l3, src, dst)
        if not emit:
            return 0
        text = f"{src.ip}:{sp} > {dst.ip}:{dp} [{flags}] len={len(payload)}"
        if desc:
            text += " " + desc
        return self.cap.add(data, text, iface=self.iface, block=block)

    def handshake(self) -> None:
        opts = [("MSS", self.mss), ("NOP", None), ("WScale", 8), ("NOP", None), ("NOP", None), ("SAckOK", b"")]
        self.win = {"c": 64240, "s": 65535}
        self.packet("c", "S", self.isn["c"], None, options=opts, desc="SYN")
        self.packet("s", "SA", self.isn["s"], self.seq("c"), options=opts, desc="SYN-ACK")
        self.win = {"c": 1026, "s": 8212}
        self.packet("c", "A", self.seq("c"), self.seq("s"), desc="ACK")

    def send(self, side: str, data: bytes, desc: str = "", mss: int | None = None) -> int:
        """Send `data` as MSS-sized segments (PSH on the last); returns the frame of the last segment."""
        mss = mss or self.mss
        last = 0
        chunks = [data[i : i + mss] for i in range(0, len(data), mss)] or [b""]
        for i, chunk in enumerate(chunks):
            flags = "PA" if i == len(chunks) - 1 else "A"
            last = self.packet(side, flags, self.seq(side), self.ack_value(side), chunk, desc=desc)
            self.pos[side] += len(chunk)
        if len(chunks) > 1:
            self.ack(self.other(side))
        return last

    def segment(self, side: str, offset: int, data: bytes, desc: str = "", flags: str = "PA") -> int:
        """One segment at stream offset `offset` of direction `side`; the send pointer is not moved."""
        return self.packet(side, flags, self.seq(side, offset), self.ack_value(side), data, desc=desc)

    def send_ip_fragments(self, side: str, data: bytes, fragsize: int, order: list[int], desc: str = "") -> list[int]:
        """One TCP segment in an IPv4 datagram cut into fragments (RFC 791) of `fragsize` payload bytes,
        emitted in `order`; returns the frame of each fragment in fragment order."""
        src, sp, dst, dp = self.ends(side)
        tcp = TCP(sport=sp, dport=dp, seq=self.seq(side), ack=self.ack_value(side), flags="PA", window=self.win[side])
        whole = IP(bytes(IP(src=src.ip, dst=dst.ip, id=src.next_ipid(), ttl=src.ttl) / tcp / Raw(data)))
        frags = fragment(whole, fragsize)
        frames = {}
        for i in order:
            fr = frags[i]
            frames[i] = self.cap.add(
                self.link(fr, src, dst),
                f"{src.ip}:{sp} > {dst.ip}:{dp} IP fragment {i + 1}/{len(frags)} offset={fr.frag * 8} {desc}",
                iface=self.iface,
            )
        self.pos[side] += len(data)
        return [frames[i] for i in range(len(frags))]

    def advance(self, side: str, n: int) -> None:
        self.pos[side] += n

    def ack(self, side: str, desc: str = "ACK") -> int:
        return self.packet(side, "A", self.seq(side), self.ack_value(side), desc=desc)

    def close(self, first: str = "c") -> None:
        second = self.other(first)
        self.packet(first, "FA", self.seq(first), self.ack_value(first), desc="FIN")
        self.fin[first] = True
        self.packet(second, "FA", self.seq(second), self.ack_value(second), desc="FIN")
        self.fin[second] = True
        self.packet(first, "A", (self.seq(first) + 1) & 0xFFFFFFFF, self.ack_value(first), desc="ACK")
