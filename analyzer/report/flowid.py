"""Flow identifiers other tools pivot on: a deterministic Zeek-style `uid` and the Community ID.

`uid` names one transport connection the way Zeek's `uid` does (a `C` and base62 text, the same for
every row of that connection: its binds, calls, and every pipe of one SMB connection). Zeek draws its
uids at random; ours is a hash of what identifies the connection, the transport protocol, both
addresses and ports, and when it opened, so the same capture always gives the same uids, and the same
traffic read from a renamed or merged file does too. It does not equal the uid Zeek itself would print.

`community_id` is the Community ID flow hash v1 (https://github.com/corelight/community-id-spec), seed
0, computed by the `communityid` package: the value Zeek's conn.log (with the community-id package),
Suricata's EVE and Elastic carry for the same flow, whichever side is named first.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from analyzer.model import NCADG_IP_UDP, Flow

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_UID_BITS = 96  # Zeek's uids are 96-bit values rendered in base62 too


def _base62(n: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_BASE62[r])
    return "".join(reversed(out)) or "0"


def transport_protocol(transport: str) -> str:
    """'udp' for connectionless DCE/RPC, 'tcp' for every connection-oriented transport."""
    return "udp" if transport == NCADG_IP_UDP else "tcp"


def connection_uid(proto: str, orig_h: str, orig_p: int, resp_h: str, resp_p: int, opened_ts: int) -> str:
    """The deterministic uid of one connection: C + base62 of a 96-bit SHA-256 prefix."""
    key = f"{proto}|{orig_h}|{orig_p}|{resp_h}|{resp_p}|{opened_ts}".encode()
    value = int.from_bytes(hashlib.sha256(key).digest()[: _UID_BITS // 8], "big")
    return "C" + _base62(value)


@lru_cache(maxsize=8192)  # the flows of a chunk of table rows (report.tables.CHUNK_ROWS): a flood holds no more
def community_id(proto: str, src_ip: str, src_port: int, dst_ip: str, dst_port: int) -> str | None:
    """Community ID v1, seed 0, base64 ("1:..."); None for an address the package rejects."""
    import communityid

    global _hasher
    if _hasher is None:
        _hasher = communityid.CommunityID(seed=0, use_base64=True)
    make = communityid.FlowTuple.make_udp if proto == "udp" else communityid.FlowTuple.make_tcp
    try:
        value: str = _hasher.calc(make(src_ip, dst_ip, src_port, dst_port))
    except (ValueError, TypeError, communityid.FlowTupleError):
        return None
    return value


_hasher: Any = None


@lru_cache(maxsize=8192)  # as community_id's
def flow_ids(flow: Flow) -> tuple[str, str | None]:
    """(uid, community_id) of the connection a record travelled on."""
    proto = transport_protocol(flow.transport)
    uid = connection_uid(proto, flow.client_ip, flow.client_port, flow.server_ip, flow.server_port, flow.opened_ts)
    return uid, community_id(proto, flow.client_ip, flow.client_port, flow.server_ip, flow.server_port)
