"""Link layers: which link types the decoder reads, and where the network header of a frame starts.

Ethernet II (with 802.1Q / 802.1ad QinQ tags), Linux cooked SLL and SLL2, raw IPv4/IPv6 and BSD
null/loopback ([link types](https://www.tcpdump.org/linktypes.html)). `analyzer.capture.decode`
reads Ethernet inline (most frames are Ethernet) and every other type through `link_layer`.
"""

from __future__ import annotations

import struct

# Link types (https://www.tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_RAW_OPENBSD = 14
LINKTYPE_RAW_ALT = 12
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
SUPPORTED_LINK_TYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        LINKTYPE_RAW_OPENBSD,
        LINKTYPE_RAW_ALT,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    }
)

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
# BSD address families for IPv6 differ between systems (FreeBSD 28, OpenBSD/NetBSD 24, macOS 30).
_AF_INET = 2
_AF_INET6 = (10, 24, 28, 30)

_u16 = struct.Struct(">H").unpack_from


def link_layer(link: int, buf: bytes, start: int, end: int) -> tuple[int, int]:
    """(ethertype, offset of the network header) of a frame of a link type other than Ethernet; (0, start)
    for a frame too short or of an unsupported type."""
    if link in (LINKTYPE_RAW, LINKTYPE_RAW_ALT, LINKTYPE_RAW_OPENBSD, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if start >= end:
            return 0, start
        version = buf[start] >> 4
        return (ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else 0), start
    if link == LINKTYPE_LINUX_SLL:
        if end - start < 16:
            return 0, start
        return _u16(buf, start + 14)[0], start + 16
    if link == LINKTYPE_LINUX_SLL2:
        if end - start < 20:
            return 0, start
        return _u16(buf, start)[0], start + 20
    if link in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if end - start < 4:
            return 0, start
        # NULL stores the family in the writer's byte order, LOOP in network order: try both.
        fam = int.from_bytes(buf[start : start + 4], "little")
        if fam > 0xFFFF:
            fam = int.from_bytes(buf[start : start + 4], "big")
        if fam == _AF_INET:
            return ETH_IPV4, start + 4
        if fam in _AF_INET6:
            return ETH_IPV6, start + 4
        return 0, start
    return 0, start


def ethernet(buf: bytes, start: int, end: int) -> tuple[int, int]:
    """(ethertype, offset of the network header) of an Ethernet II frame, past any 802.1Q/802.1ad tags."""
    if end - start < 14:
        return 0, start
    etype = (buf[start + 12] << 8) | buf[start + 13]
    ip = start + 14
    while etype in VLAN_TAGS and ip + 4 <= end:
        etype = (buf[ip + 2] << 8) | buf[ip + 3]
        ip += 4
    return etype, ip
