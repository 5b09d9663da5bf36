"""RPC over HTTP ([MS-RPCH] 2.1-2.2): the ncacn_http banner and RTS PDUs."""

from __future__ import annotations

import struct

from .dcerpc import PTYPE, co_pdu

BANNER = b"ncacn_http/1.0"


RTS_RECEIVE_WINDOW_SIZE, RTS_CONNECTION_TIMEOUT, RTS_COOKIE, RTS_CHANNEL_LIFETIME = 0, 2, 3, 4
RTS_CLIENT_KEEPALIVE, RTS_VERSION, RTS_ASSOCIATION_GROUP_ID = 5, 6, 12
RTS_CMD_NAME = {
    0: "ReceiveWindowSize",
    2: "ConnectionTimeout",
    3: "Cookie",
    4: "ChannelLifetime",
    5: "ClientKeepalive",
    6: "Version",
    12: "AssociationGroupId",
}


def rts_pdu(flags: int, commands: list[tuple[int, bytes]]) -> bytes:
    """An RTS PDU ([MS-RPCH] 2.2.3.6.1): CO common header with PTYPE 20 (rts), pfc_flags first|last,
    call_id 0, then Flags u16, NumberOfCommands u16 and the commands (CommandType u32 + body)."""
    body = struct.pack("<HH", flags, len(commands)) + b"".join(struct.pack("<I", t) + v for t, v in commands)
    return co_pdu(PTYPE["rts"], 0, body)
