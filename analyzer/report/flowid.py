"""Flow identifiers other tools pivot on: a deterministic Zeek-style `uid` and the Community ID.

`uid` names one transport connection the way Zeek's `uid` does (a `C` and base62 text, the same for
every row of that connection: its binds, calls, and every pipe of one SMB connection). Zeek draws its
uids at random; ours is a hash of what identifies the connection, the transport protocol, both
addresses and ports, and when it opened, so the same capture always gives the same uids, and the same
traffic read from a renamed or merged file does too. It does not equal the uid Zeek itself would print.

`community_id` is the Community ID flow hash v1 (https://github.com/corelight/community-id-spec), seed
0 (the tests check it against the `communityid` package): the value Zeek's conn.log (with the
community-id package), Suricata's EVE and Elastic carry for the same flow, whichever side is named first.

`uids` and `community_ids` compute the same for many flows at once (the distinct flows of a chunk of
table rows, `report.vector.Batch.distinct_columns`): the hashes one flow at a time, the text made of
them for all together with numpy (base62) and one `b64encode` (base64). A flood's every connection is
a distinct flow, and row by row the calls and the text cost as much as the hashes: both ids of the
80,000 binds and connections rows of 40,000 connections took 0.56 s so, 0.26 s in bulk. The one-flow
functions stay the reference the tests hold the bulk ones to.

`uid_array` and `community_id_array` are what the tables call: the same ids of flows given as Arrow
arrays, computed in C from the arrays' buffers (analyzer/report/_flowid.c, OpenSSL's hashes, the
ids written as an Arrow string array: no Python object per flow) where that module is built, else
by `uids` and `community_ids`. In C both ids of those 80,000 rows take about 0.06 s, not 0.26 s.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from collections.abc import Sequence
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.model import NCADG_IP_UDP, Flow
from analyzer.report.buffers import number_buffers, text_buffers

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_UID_BITS = 96  # Zeek's uids are 96-bit values rendered in base62 too
_UID_DIGITS = 17  # base62 digits of a 96-bit value: 62**17 > 2**96


_PAIRS = [a + b for a in _BASE62 for b in _BASE62]  # two digits at a time: half the divisions
_PAIR_CODES = np.frombuffer("".join(_PAIRS).encode(), dtype="S2")  # the same, for numpy


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


def uids(
    protos: Sequence[str],
    orig_h: Sequence[str],
    orig_p: Sequence[int],
    resp_h: Sequence[str],
    resp_p: Sequence[int],
    opened_ts: Sequence[int],
) -> Any:
    """`connection_uid` of each flow given as columns, as an Arrow string array."""
    sha256 = hashlib.sha256
    cut = _UID_BITS // 8
    flows = zip(protos, orig_h, orig_p, resp_h, resp_p, opened_ts, strict=True)
    digests = b"".join([sha256(f"{p}|{a}|{b}|{c}|{d}|{t}".encode()).digest()[:cut] for p, a, b, c, d, t in flows])
    return pa.array(["C" + text for text in _base62_many(digests, cut)], type=pa.string())


def _base62_many(values: bytes, width: int) -> list[str]:
    """`_base62` of each big-endian number of `width` bytes (a multiple of 4) in `values`: long
    division of all of them at once by 62**2 (two digits a step, as `_base62`), on 32-bit limbs held
    in 64-bit integers (a remainder below 3844 shifted over a limb stays below 2**44)."""
    limbs = np.frombuffer(values, dtype=">u4").reshape(-1, width // 4).astype(np.uint64)
    places = -(-_UID_DIGITS // 2)
    pairs = np.empty((len(limbs), places), dtype=np.uint16)
    shift, base = np.uint64(32), np.uint64(3844)
    for place in range(places - 1, -1, -1):
        rest = np.zeros(len(limbs), dtype=np.uint64)
        for j in range(limbs.shape[1]):
            limbs[:, j], rest = np.divmod((rest << shift) | limbs[:, j], base)
        pairs[:, place] = rest
    text = _PAIR_CODES[pairs].tobytes().decode("ascii")
    step = 2 * places
    return [text[i : i + step].lstrip("0") or "0" for i in range(0, len(text), step)]


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
    ports = _ports(src_port, dst_port)
    if ports is None or not _in_range(*ports):
        return None
    sport, dport = ports
    if (dst, dport) < (src, sport):
        src, dst, sport, dport = dst, src, dport, sport
    data = b"\0\0" + src + dst + bytes((number, 0)) + struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


# A row whose Community ID is None: zeros in the base64 run, then made null. A real flow's digest of
# all zeros would be a SHA-1 preimage of zero, so no real row is taken for one.
_NO_DIGEST = bytes(20)
_NO_ID = "1:" + base64.b64encode(bytes(20)).decode("ascii")
# The hashed bytes of a flow whose addresses are of one family, in one step: seed, addresses, protocol, 0, ports.
_SAME_FAMILY = {n: struct.Struct(f"!2x{n}s{n}sBxHH").pack for n in (4, 16)}


def community_ids(
    protos: Sequence[str],
    src_ip: Sequence[str],
    src_port: Sequence[Any],
    dst_ip: Sequence[str],
    dst_port: Sequence[Any],
) -> Any:
    """`community_id` of each flow given as columns, as an Arrow string array (null where it is None).
    Each SHA-1 digest (20 bytes) is followed by a zero byte so that it is 28 base64 characters of its
    own in one `b64encode` of all of them: that byte's bits are the last character's alone, which
    becomes the "=" the 20 bytes would have ended with."""
    packed: dict[str, bytes | None] = {}
    sha1, pack = hashlib.sha1, struct.Struct("!HH").pack
    digests = []
    valid = True
    for proto, s_ip, s_port, d_ip, d_port in zip(protos, src_ip, src_port, dst_ip, dst_port, strict=True):
        src = packed[s_ip] if s_ip in packed else packed.setdefault(s_ip, _packed(s_ip))
        dst = packed[d_ip] if d_ip in packed else packed.setdefault(d_ip, _packed(d_ip))
        number = _PROTOCOLS.get(proto)
        ports = (s_port, d_port) if type(s_port) is int and type(d_port) is int else _ports(s_port, d_port)
        if src is None or dst is None or number is None or ports is None or not _in_range(*ports):
            digests.append(_NO_DIGEST)
            valid = False
            continue
        sport, dport = ports
        if dst < src or (dst == src and dport < sport):  # the smaller endpoint first, as `community_id`
            src, dst, sport, dport = dst, src, dport, sport
        same = _SAME_FAMILY.get(len(src)) if len(src) == len(dst) else None
        data = (
            same(src, dst, number, sport, dport)
            if same
            else b"\0\0" + src + dst + bytes((number, 0)) + pack(sport, dport)
        )
        digests.append(sha1(data).digest())
    text = base64.b64encode(b"\0".join(digests) + b"\0").decode("ascii")
    ids = pa.array(["1:" + text[i : i + 27] + "=" for i in range(0, len(text), 28)], type=pa.string())
    return ids if valid else pc.if_else(pc.equal(ids, _NO_ID), pa.scalar(None, pa.string()), ids)


def _in_range(sport: int, dport: int) -> bool:
    return 0 <= sport <= 65535 and 0 <= dport <= 65535


def _ports(src_port: Any, dst_port: Any) -> tuple[int, int] | None:
    """Both ports as integers (as `community_id` takes them), or None when one is not a number."""
    try:
        sport, dport = int(src_port), int(dst_port)
    except (TypeError, ValueError):
        return None
    return sport, dport


@lru_cache(maxsize=4096)  # as community_id's
def flow_ids(flow: Flow) -> tuple[str, str | None]:
    """(uid, community_id) of the connection a record travelled on."""
    proto = transport_protocol(flow.transport)
    uid = connection_uid(proto, flow.client_ip, flow.client_port, flow.server_ip, flow.server_port, flow.opened_ts)
    return uid, community_id(proto, flow.client_ip, flow.client_port, flow.server_ip, flow.server_port)


compiled: ModuleType | None
try:  # the compiled twin of the bulk functions (optional: setup.py builds it where it can)
    from analyzer.report import _flowid as compiled
except ImportError:  # not built (no compiler or no libcrypto at install): `uids`, `community_ids`
    compiled = None
IN_C = compiled is not None  # the ids of many flows computed in C (`uid_array`, `community_id_array`)


def _udp(transport: Any) -> np.ndarray:
    """Per row, 1 where the transport is connectionless (`transport_protocol`: udp), else 0."""
    return np.asarray(pc.equal(transport, NCADG_IP_UDP).fill_null(False).to_numpy(zero_copy_only=False), np.uint8)


def uid_array(transport: Any, client_ip: Any, client_port: Any, server_ip: Any, server_port: Any, opened: Any) -> Any:
    """`connection_uid` of each flow given as Arrow arrays (its transport, addresses, ports and
    opening), as an Arrow string array."""
    if not len(transport):
        return pa.array([], type=pa.string())
    if compiled is None:
        protos = [transport_protocol(t) for t in transport.to_pylist()]
        columns = (client_ip, client_port, server_ip, server_port, opened)
        return uids(protos, *(c.to_pylist() for c in columns))
    offsets, data = compiled.uids(
        _udp(transport),
        text_buffers(client_ip),
        number_buffers(client_port),
        text_buffers(server_ip),
        number_buffers(server_port),
        number_buffers(opened),
    )
    return pa.StringArray.from_buffers(len(transport), pa.py_buffer(offsets), pa.py_buffer(data))


def community_id_array(transport: Any, src_ip: Any, src_port: Any, dst_ip: Any, dst_port: Any) -> Any:
    """`community_id` of each flow given as Arrow arrays, as an Arrow string array (null where None)."""
    if not len(transport):
        return pa.array([], type=pa.string())
    if compiled is None:
        protos = [transport_protocol(t) for t in transport.to_pylist()]
        return community_ids(protos, *(c.to_pylist() for c in (src_ip, src_port, dst_ip, dst_port)))
    offsets, data, validity = compiled.community_ids(
        _udp(transport),
        text_buffers(src_ip),
        number_buffers(src_port),
        text_buffers(dst_ip),
        number_buffers(dst_port),
    )
    n = len(transport)
    made = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data), pa.py_buffer(validity))
    return made
