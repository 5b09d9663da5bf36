"""RTS PDUs of RPC over HTTP v2 ([MS-RPCH] 2.2.3.6): decoded and named.

An RTS PDU (packet type 20) is a connection-oriented PDU whose body is a list of commands
([MS-RPCH] 2.2.3.5); the channels of a virtual connection are set up with them, and CONN/A1 (OUT)
and CONN/B1 (IN) carry the virtual connection cookie that joins the two TCP connections. Sans-IO.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from analyzer.dcerpc.pdu import OtherPdu
from analyzer.dcerpc.wire import Malformed, uuid_at

# RTS command types, [MS-RPCH] 2.2.3.5: type -> (name, fixed size of its body or -1 when variable)
RTS_COMMANDS: dict[int, tuple[str, int]] = {
    0: ("ReceiveWindowSize", 4),
    1: ("FlowControlAck", 24),
    2: ("ConnectionTimeout", 4),
    3: ("Cookie", 16),
    4: ("ChannelLifetime", 4),
    5: ("ClientKeepalive", 4),
    6: ("Version", 4),
    7: ("Empty", 0),
    8: ("Padding", -1),
    9: ("NegativeANCE", 0),
    10: ("ANCE", 0),
    11: ("ClientAddress", -1),
    12: ("AssociationGroupId", 16),
    13: ("Destination", 4),
    14: ("PingTrafficSentNotify", 4),
}

# RTS flags, [MS-RPCH] 2.2.3.6.1
RTS_FLAG_PING = 0x0001
RTS_FLAG_OTHER_CMD = 0x0002
RTS_FLAG_RECYCLE_CHANNEL = 0x0004
RTS_FLAG_IN_CHANNEL = 0x0008
RTS_FLAG_OUT_CHANNEL = 0x0010
RTS_FLAG_EOF = 0x0020
RTS_FLAG_ECHO = 0x0040

# (flags, command types) of the RTS PDUs by name, [MS-RPCH] 2.2.4. CONN/C1 (server to outbound proxy)
# and CONN/C2 (outbound proxy to client) have the same layout; between client and proxy, where
# captures are taken, it is C2. PDUs not listed are named by their commands.
_NAMES: dict[tuple[int, tuple[int, ...]], str] = {
    (0, (6, 3, 3, 0)): "CONN/A1",
    (RTS_FLAG_OUT_CHANNEL, (6, 3, 3, 4, 0)): "CONN/A2",
    (0, (2,)): "CONN/A3",
    (0, (6, 3, 3, 4, 5, 12)): "CONN/B1",
    (0, (6, 0, 2)): "CONN/C2",
    (RTS_FLAG_PING, ()): "Ping",
    (RTS_FLAG_OTHER_CMD, (5,)): "Keep-Alive",
    (RTS_FLAG_OTHER_CMD, (1,)): "FlowControlAck",
    (RTS_FLAG_OTHER_CMD, (13, 1)): "FlowControlAckWithDestination",
    (RTS_FLAG_OTHER_CMD, (14,)): "PingTrafficSentNotify",
    (RTS_FLAG_ECHO, ()): "Echo",
}


@dataclass(frozen=True, slots=True)
class RtsPdu:
    """An RTS PDU: its flags, command types in order, the cookies it carries, and its name."""

    flags: int
    commands: tuple[int, ...]
    cookies: tuple[str, ...]
    name: str


def rts_name(flags: int, commands: tuple[int, ...]) -> str:
    """The [MS-RPCH] 2.2.4 name of an RTS PDU, or a description of its commands when it has none."""
    name = _NAMES.get((flags, commands))
    if name is not None:
        return name
    if flags & RTS_FLAG_PING:
        return "Ping"
    return "RTS(" + ",".join(RTS_COMMANDS.get(c, (str(c), 0))[0] for c in commands) + ")"


def parse_rts(pdu: OtherPdu) -> RtsPdu:
    """Decode an RTS PDU ([MS-RPCH] 2.2.3.6.1: flags, command count, then the commands)."""
    data = pdu.raw
    e = "<" if pdu.header.little else ">"
    if len(data) < 20:
        raise Malformed("short_rts", f"{len(data)} bytes")
    flags, count = struct.unpack_from(e + "HH", data, 16)
    off = 20
    commands: list[int] = []
    cookies: list[str] = []
    for _ in range(count):
        if off + 4 > len(data):
            raise Malformed("short_rts", f"command {len(commands) + 1} of {count} missing")
        ctype = struct.unpack_from(e + "I", data, off)[0]
        off += 4
        if ctype not in RTS_COMMANDS:
            raise Malformed("bad_rts_command", f"command type {ctype}")
        size = RTS_COMMANDS[ctype][1]
        if ctype == 8:  # Padding: ConformanceCount, then that many bytes
            if off + 4 > len(data):
                raise Malformed("short_rts", "padding length missing")
            size = 4 + struct.unpack_from(e + "I", data, off)[0]
        elif ctype == 11:  # ClientAddress: AddressType (0 IPv4, 1 IPv6), address, 12 bytes padding
            if off + 4 > len(data):
                raise Malformed("short_rts", "client address type missing")
            size = 4 + (16 if struct.unpack_from(e + "I", data, off)[0] == 1 else 4) + 12
        if off + size > len(data):
            raise Malformed("short_rts", f"{RTS_COMMANDS[ctype][0]} runs past the PDU")
        if ctype in (3, 12):
            cookies.append(uuid_at(data, off, pdu.header.little))
        commands.append(ctype)
        off += size
    cmds = tuple(commands)
    return RtsPdu(flags, cmds, tuple(cookies), rts_name(flags, cmds))
