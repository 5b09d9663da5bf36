"""Tunnel headers: where the carried packet starts, and what it is.

Cloud traffic mirroring (AWS VPC Traffic Mirroring and Azure virtual network TAP: VXLAN; AWS Gateway
Load Balancer: Geneve), remote SPAN on network devices (GRE/ERSPAN) and WCCP redirection deliver the
monitored traffic inside a tunnel. Each function here reads one tunnel header in
`buf[off:end]` and returns `(kind, offset)`: `kind` is an ethertype (`ETH_IPV4`, `ETH_IPV6`) or
`ETH_FRAME` for a whole Ethernet frame at `offset`; `(0, off)` when the header is malformed or carries
something the analyzer does not decode (PPTP's PPP, GRE source routing). Nothing is sliced or built:
the decoder goes on reading the same buffer at the new offset.

- GRE: RFC 2784 with the key and sequence number extensions of RFC 2890; version 1 (PPTP, RFC 2637)
  carries PPP and is not followed.
- WCCP redirect (draft-wilson-wrec-wccp-v2, GRE protocol 0x883E): an optional 4-byte redirect header
  before the IPv4 packet; WCCPv1 puts the packet right after GRE, as Wireshark also tells them apart.
- ERSPAN (draft-foschiano-erspan): type I is GRE 0x88BE without a sequence number and no header; type II
  is 0x88BE with an 8-byte header; type III is 0x22EB with a 12-byte header and, when its O bit is set,
  an 8-byte platform-specific subheader. The mirrored frame is Ethernet (type III frame type 0) or an IP
  packet (type III frame type 2).
- VXLAN (RFC 7348, UDP 4789): 8 bytes, the I flag set, then Ethernet.
- Geneve (RFC 8926, UDP 6081): 8 bytes plus the options, version 0, then the protocol type's payload.
"""

from __future__ import annotations

PROTO_GRE = 47
UDP_VXLAN = 4789
UDP_GENEVE = 6081

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_FRAME = 0x6558  # Transparent Ethernet Bridging: an Ethernet frame follows

_GRE_WCCP = 0x883E
_GRE_ERSPAN_II = 0x88BE  # also type I, told apart by the sequence number bit
_GRE_ERSPAN_III = 0x22EB

_GRE_C = 0x8000
_GRE_R = 0x4000
_GRE_K = 0x2000
_GRE_S = 0x1000
_GRE_VERSION = 0x0007

Decap = tuple[int, int]
NOT_DECODED: Decap = (0, 0)


def gre(buf: bytes, off: int, end: int) -> Decap:
    """The packet a GRE header at `off` carries (RFC 2784, RFC 2890), with WCCP and ERSPAN unwrapped."""
    if off + 4 > end:
        return NOT_DECODED
    flags = (buf[off] << 8) | buf[off + 1]
    proto = (buf[off + 2] << 8) | buf[off + 3]
    if flags & _GRE_VERSION or flags & _GRE_R:
        return NOT_DECODED  # PPTP's enhanced GRE carries PPP; source routing is obsolete (RFC 1701)
    pay = off + 4 + (4 if flags & _GRE_C else 0) + (4 if flags & _GRE_K else 0) + (4 if flags & _GRE_S else 0)
    if pay > end:
        return NOT_DECODED
    if proto in (ETH_IPV4, ETH_IPV6, ETH_FRAME):
        return proto, pay
    if proto == _GRE_WCCP:
        return _wccp(buf, pay, end)
    if proto == _GRE_ERSPAN_II:
        if not flags & _GRE_S:
            return ETH_FRAME, pay  # ERSPAN type I: the mirrored frame right after GRE
        if pay + 8 > end or buf[pay] >> 4 != 1:
            return NOT_DECODED
        return ETH_FRAME, pay + 8
    if proto == _GRE_ERSPAN_III:
        return _erspan3(buf, pay, end)
    return NOT_DECODED


def _wccp(buf: bytes, off: int, end: int) -> Decap:
    """WCCP redirect: the 4-byte redirect header is there unless the packet starts right away."""
    if off < end and buf[off] >> 4 == 4:
        return ETH_IPV4, off  # WCCPv1: no redirect header
    if off + 4 + 20 > end:
        return NOT_DECODED
    return ETH_IPV4, off + 4


def _erspan3(buf: bytes, off: int, end: int) -> Decap:
    """ERSPAN type III: version 2, frame type in bits 10..14 of the third word, O bit last."""
    if off + 12 > end or buf[off] >> 4 != 2:
        return NOT_DECODED
    word = (buf[off + 10] << 8) | buf[off + 11]
    frame_type = (word >> 10) & 0x1F
    pay = off + 12 + (8 if word & 1 else 0)
    if pay > end:
        return NOT_DECODED
    if frame_type == 0:
        return ETH_FRAME, pay
    if frame_type == 2 and pay < end:
        version = buf[pay] >> 4
        return (ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else 0), pay
    return NOT_DECODED


def vxlan(buf: bytes, off: int, end: int) -> Decap:
    """VXLAN (RFC 7348 5): flags with the I bit (a valid VNI), 24 reserved bits, VNI, 8 reserved bits."""
    if off + 8 + 14 > end or not buf[off] & 0x08:
        return NOT_DECODED
    return ETH_FRAME, off + 8


def geneve(buf: bytes, off: int, end: int) -> Decap:
    """Geneve (RFC 8926 3.4): version 0, options length in 4-byte words, protocol type."""
    if off + 8 > end or buf[off] >> 6:
        return NOT_DECODED
    pay = off + 8 + ((buf[off] & 0x3F) << 2)
    proto = (buf[off + 2] << 8) | buf[off + 3]
    if pay > end or proto not in (ETH_IPV4, ETH_IPV6, ETH_FRAME):
        return NOT_DECODED
    return proto, pay
