"""Flow identifiers other tools pivot on: a deterministic Zeek-style `uid` and the Community ID.

`uid` names one transport connection the way Zeek's `uid` does (a `C` and base62 text, the same for
every row of that connection: its binds, calls, and every pipe of one SMB connection). Zeek draws its
uids at random; ours is a hash of what identifies the connection, the transport protocol, both
addresses and ports, and when it opened, so the same capture always gives the same uids, and the same
traffic read from a renamed or merged file does too. It does not equal the uid Zeek itself would print.

`community_id` is the Community ID flow hash v1 (https://github.com/corelight/community-id-spec), seed
0 (the tests check it against the `communityid` package): the value Zeek's conn.log (with the
community-id package), Suricata's EVE and Elastic carry for the same flow, whichever side is named first.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from functools import lru_cache

from analyzer.model import NCADG_IP_UDP, Flow

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_UID_BITS = 96  # Zeek's uids are 96-bit values rendered in base62 too


_PAIRS = [a + b for a in _BASE62 for b in _BASE62]  # two digits at a time: half the divisions


def _base62(n: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 3844)
        out.append(_PAIRS[r])
    return "".join(reversed(out)).lstrip("0") or "0"


def transport_protocol(transport: str) -> str:
    """'udp' for connectionless DCE/RPC, 'tcp' for every connection-oriented transport."""
    return "udp" if transport == NCADG_IP_UDP else "tcp"


def connection_uid(proto: str, orig_h: str, orig_p: int, resp_h: str, resp_p: int, opened_ts: int) -> str:
    """The deterministic uid of one connection: C + base62 of a 96-bit SHA-256 prefix."""
    key = f"{proto}|{orig_h}|{orig_p}|{resp_h}|{resp_p}|{opened_ts}".encode()
    value = int.from_bytes(hashlib.sha256(key).digest()[: _UID_BITS // 8], "big")
    return "C" + _base62(value)


_PROTOCOLS = {"tcp": 6, "udp": 17}


def _packed(address: str) -> bytes | None:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, address)
        except (OSError, TypeError, ValueError):
            continue
    return None


@lru_cache(maxsize=4096)  # the flows of a chunk of table rows (report.tables.CHUNK_ROWS): a flood holds no more
def community_id(proto: str, src_ip: str, src_port: int, dst_ip: str, dst_port: int) -> str | None:
    """Community ID v1, seed 0, base64 ("1:..."); None for an address or port it cannot hash.

    The spec's hash, written out here: SHA-1 over the seed (2 bytes), both addresses in network order,
    the protocol, a zero byte and both ports, the smaller endpoint first (by address, then port). The
    `communityid` package computes the same (the tests compare the two) but took 180 us a flow, most
    of it formatting a log message it does not print: 9 of the 15 s of building a flood's 200,000
    binds and connections. This takes 3 us."""
    src, dst = _packed(src_ip), _packed(dst_ip)
    number = _PROTOCOLS.get(proto)
    if src is None or dst is None or number is None:
        return None
    try:
        sport, dport = int(src_port), int(dst_port)
    except (TypeError, ValueError):
        return None
    if not (0 <= sport <= 65535 and 0 <= dport <= 65535):
        return None
    if (dst, dport) < (src, sport):
        src, dst, sport, dport = dst, src, dport, sport
    data = b"\0\0" + src + dst + bytes((number, 0)) + struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


@lru_cache(maxsize=4096)  # as community_id's
def flow_ids(flow: Flow) -> tuple[str, str | None]:
    """(uid, community_id) of the connection a record travelled on."""
    proto = transport_protocol(flow.transport)
    uid = connection_uid(proto, flow.client_ip, flow.client_port, flow.server_ip, flow.server_port, flow.opened_ts)
    return uid, community_id(proto, flow.client_ip, flow.client_port, flow.server_ip, flow.server_port)
