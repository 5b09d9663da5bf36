"""The endpoint mapper: ept_map and ept_lookup stubs and protocol towers.

[C706] Appendix I (ept_ operations), Appendix L (protocol towers), [MS-RPCE] 2.2.1.2 (the tower
floors Windows uses) and 2.2.1.2.x for the protocol identifiers. The interface is
e1af8308-5d1f-11c9-91a4-08002b14a0fa v3.0; opnum 2 is ept_lookup, opnum 3 ept_map.

A tower is an octet string of floors: floor count (u16), then per floor a left-hand side
(length u16, protocol identifier byte + data) and a right-hand side (length u16, data). Tower
integers are little-endian except ports and IPv4 addresses, which are big-endian, whatever the
PDU's data representation says.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from analyzer.dcerpc.ndr import NdrReader
from analyzer.dcerpc.wire import Malformed, uuid_at
from analyzer.model import EndpointRecord, Flow

EPT_LOOKUP = 2
EPT_MAP = 3
EPM_OPERATIONS = {
    0: "ept_insert",
    1: "ept_delete",
    2: "ept_lookup",
    3: "ept_map",
    4: "ept_lookup_handle_free",
    5: "ept_inq_object",
    6: "ept_mgmt_delete",
}

# Floor protocol identifiers ([C706] Appendix I, [MS-RPCE] 2.2.1.2)
FLOOR_UUID = 0x0D
FLOOR_RPC_CL = 0x0A
FLOOR_RPC_CO = 0x0B
FLOOR_RPC_LOCAL = 0x0C  # ncalrpc towers ([MS-RPCE] 2.2.1.2.3)
FLOOR_TCP = 0x07
FLOOR_UDP = 0x08
FLOOR_IP = 0x09
FLOOR_NAMED_PIPE = 0x0F
FLOOR_LRPC = 0x10
FLOOR_NETBIOS = 0x11
FLOOR_NETBEUI = 0x12
FLOOR_SPX = 0x13
FLOOR_IPX = 0x14
FLOOR_APPLETALK_DSP = 0x16
FLOOR_APPLETALK_DDP = 0x17
FLOOR_VINES_SPP = 0x1A
FLOOR_VINES_IPC = 0x1B
FLOOR_STREETTALK = 0x1C
FLOOR_HTTP = 0x1F
FLOOR_UNIX_DS = 0x20

# (RPC protocol floor, transport floor) -> protocol sequence ([C706] Appendix I, [MS-RPCE] 2.1.1)
PROTSEQS = {
    (FLOOR_RPC_CO, FLOOR_TCP): "ncacn_ip_tcp",
    (FLOOR_RPC_CL, FLOOR_UDP): "ncadg_ip_udp",
    (FLOOR_RPC_CO, FLOOR_NAMED_PIPE): "ncacn_np",
    (FLOOR_RPC_CO, FLOOR_LRPC): "ncalrpc",
    (FLOOR_RPC_LOCAL, FLOOR_LRPC): "ncalrpc",
    (FLOOR_RPC_CO, FLOOR_HTTP): "ncacn_http",
    (FLOOR_RPC_CO, FLOOR_NETBIOS): "ncacn_nb_nb",
    (FLOOR_RPC_CO, FLOOR_NETBEUI): "ncacn_nb_nb",
    (FLOOR_RPC_CO, FLOOR_SPX): "ncacn_spx",
    (FLOOR_RPC_CL, FLOOR_IPX): "ncadg_ipx",
    (FLOOR_RPC_CO, FLOOR_APPLETALK_DSP): "ncacn_at_dsp",
    (FLOOR_RPC_CO, FLOOR_VINES_SPP): "ncacn_vns_spp",
    (FLOOR_RPC_CO, FLOOR_UNIX_DS): "ncacn_unix_stream",
}

# Not caps (they bound no state, and the work is bounded by the stub's own bytes: a floor takes at
# least 5 of them, an entry at least 4): counts no real answer comes near, so a tower or a response
# claiming more is malformed (`bad_tower`, `bad_tower_count` / `bad_entry_count`).
_MAX_FLOORS = 64
_MAX_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class Floor:
    protocol: int
    lhs: bytes  # after the protocol identifier byte
    rhs: bytes


@dataclass(frozen=True, slots=True)
class Tower:
    """A decoded protocol tower and what its floors say."""

    floors: tuple[Floor, ...]
    interface_uuid: str | None
    if_major: int | None
    if_minor: int | None
    transfer_syntax: str | None
    protocol: str | None
    port: int | None
    ip: str | None
    pipe: str | None
    endpoint: str | None
    netbios_name: str | None

    @property
    def floor_ids(self) -> str:
        return ",".join(f"{f.protocol:02x}" for f in self.floors)


@dataclass(frozen=True, slots=True)
class EpmEntry:
    object_uuid: str | None
    tower: Tower | None
    annotation: str | None


@dataclass(frozen=True, slots=True)
class EpmResponse:
    entries: tuple[EpmEntry, ...]
    status: int | None
    entry_handle: bytes


def handle_text(handle: bytes) -> str | None:
    """A context handle as text: its UUID part ([C706] ndr_context_handle), None for the nil handle."""
    if len(handle) < 20 or not any(handle):
        return None
    return uuid_at(handle, 4, True)


def _text(rhs: bytes) -> str:
    return rhs.split(b"\0", 1)[0].decode("latin-1")


# Towers parsed so far, by their octets: clients ask the endpoint mapper for the same few interfaces
# and servers answer with the same towers, so most are looked up rather than parsed (a Tower is
# immutable). Bounded: past the cap, or for a longer tower, new ones are parsed every time.
_TOWERS: dict[bytes, Tower] = {}
_TOWERS_MAX = 1024
_TOWER_KEPT_BYTES = 256


def parse_tower(octets: bytes) -> Tower:
    """Floors of a tower octet string ([C706] Appendix L)."""
    tower = _TOWERS.get(octets)
    if tower is None:
        tower = _parse_tower(octets)
        if len(_TOWERS) < _TOWERS_MAX and len(octets) <= _TOWER_KEPT_BYTES:
            _TOWERS[bytes(octets)] = tower
    return tower


def _parse_tower(octets: bytes) -> Tower:
    if len(octets) < 2:
        raise Malformed("short_tower", f"tower of {len(octets)} bytes")
    count = struct.unpack_from("<H", octets, 0)[0]
    if count > _MAX_FLOORS:
        raise Malformed("bad_tower", f"{count} floors")
    off = 2
    floors: list[Floor] = []
    for _ in range(count):
        if off + 2 > len(octets):
            raise Malformed("short_tower", f"floor {len(floors) + 1} of {count} is missing")
        lhs_len = struct.unpack_from("<H", octets, off)[0]
        off += 2
        if lhs_len < 1 or off + lhs_len + 2 > len(octets):
            raise Malformed("short_tower", f"floor {len(floors) + 1} left side of {lhs_len} bytes does not fit")
        lhs = octets[off : off + lhs_len]
        off += lhs_len
        rhs_len = struct.unpack_from("<H", octets, off)[0]
        off += 2
        if off + rhs_len > len(octets):
            raise Malformed("short_tower", f"floor {len(floors) + 1} right side of {rhs_len} bytes does not fit")
        floors.append(Floor(lhs[0], lhs[1:], octets[off : off + rhs_len]))
        off += rhs_len
    return _describe(tuple(floors))


def _uuid_floor(f: Floor | None) -> tuple[str, int, int] | None:
    if f is None or f.protocol != FLOOR_UUID or len(f.lhs) < 18:
        return None
    minor = struct.unpack_from("<H", f.rhs, 0)[0] if len(f.rhs) >= 2 else 0
    return uuid_at(f.lhs, 0, True), struct.unpack_from("<H", f.lhs, 16)[0], minor


def _describe(floors: tuple[Floor, ...]) -> Tower:
    """Read a tower by floor position, as [C706] Appendix L lays it out: 1 interface,
    2 transfer syntax, 3 RPC protocol, 4 transport endpoint (port, pipe, ncalrpc name),
    5 host (IPv4 address or NetBIOS name)."""

    def at(i: int) -> Floor | None:
        return floors[i] if i < len(floors) else None

    iface = _uuid_floor(at(0))
    syntax = _uuid_floor(at(1))
    rpc, where, host = at(2), at(3), at(4)
    protocol = port = ip = pipe = endpoint = netbios = None
    if rpc is not None and where is not None:
        protocol = PROTSEQS.get((rpc.protocol, where.protocol), f"unknown({rpc.protocol:02x},{where.protocol:02x})")
    if where is not None:
        if where.protocol in (FLOOR_TCP, FLOOR_UDP, FLOOR_HTTP) and len(where.rhs) >= 2:
            port = struct.unpack_from(">H", where.rhs, 0)[0]
            endpoint = str(port)
        elif where.protocol == FLOOR_NAMED_PIPE:
            pipe = endpoint = _text(where.rhs)
        elif where.protocol in (FLOOR_LRPC, FLOOR_NETBIOS, FLOOR_NETBEUI, FLOOR_UNIX_DS):
            endpoint = _text(where.rhs)
    if host is not None:
        if host.protocol == FLOOR_IP and len(host.rhs) >= 4:
            ip = ".".join(str(b) for b in host.rhs[:4])
        elif host.protocol in (FLOOR_NETBIOS, FLOOR_NETBEUI):
            netbios = _text(host.rhs)
    return Tower(
        floors,
        iface[0] if iface else None,
        iface[1] if iface else None,
        iface[2] if iface else None,
        syntax[0] if syntax else None,
        protocol,
        port,
        ip,
        pipe,
        endpoint,
        netbios,
    )


def _twr(r: NdrReader) -> Tower:
    """twr_t: conformance, tower_length, octets ([C706] Appendix I, twr_t)."""
    max_count = r.count("short_tower")
    length = r.u32("short_tower")
    if length > max_count:
        raise Malformed("bad_tower", f"tower_length {length} exceeds its conformance {max_count}")
    octets = r.raw(length, "short_tower")
    return parse_tower(octets)


def parse_map_request(stub: bytes, little: bool, ndr64: bool = False) -> tuple[str | None, Tower | None]:
    """ept_map request: (object uuid, map tower)."""
    r = NdrReader(stub, little, ndr64)
    obj = r.uuid() if r.pointer() else None
    tower = _twr(r) if r.pointer() else None
    return obj, tower


def _response_head(r: NdrReader, what: str, plural: str) -> tuple[bytes, int]:
    """Entry handle, then the count and the conformant-varying array header of the entries:
    (handle, number of entries on the wire)."""
    handle = r.context_handle()
    num = r.u32()
    _max = r.count()
    _offset = r.count()
    actual = r.count()
    if actual > _MAX_ENTRIES or actual > num + _MAX_ENTRIES:
        raise Malformed(f"bad_{what}_count", f"{actual} {plural}")
    return handle, actual


def parse_map_response(stub: bytes, little: bool, ndr64: bool = False) -> EpmResponse:
    """ept_map response: entry handle, num_towers, towers[], status."""
    r = NdrReader(stub, little, ndr64)
    handle, actual = _response_head(r, "tower", "towers")
    refs = [r.pointer() for _ in range(actual)]
    entries = []
    for ref in refs:
        entries.append(EpmEntry(None, _twr(r) if ref else None, None))
    status = r.u32("short_status") if r.off < len(stub) else None
    return EpmResponse(tuple(entries), status, handle)


def parse_lookup_response(stub: bytes, little: bool, ndr64: bool = False) -> EpmResponse:
    """ept_lookup response: entry handle, num_ents, ept_entry_t entries[], status."""
    r = NdrReader(stub, little, ndr64)
    handle, actual = _response_head(r, "entry", "entries")
    heads: list[tuple[str, int, str | None]] = []
    for _ in range(actual):
        obj = r.uuid()
        ref = r.pointer()
        _a_off = r.u32()
        a_len = r.u32()
        text = r.raw(a_len, "short_annotation")
        annotation = text.split(b"\0", 1)[0].decode("latin-1") or None
        heads.append((obj, ref, annotation))
    entries = []
    for obj, ref, annotation in heads:
        entries.append(EpmEntry(obj, _twr(r) if ref else None, annotation))
    status = r.u32("short_status") if r.off < len(stub) else None
    return EpmResponse(tuple(entries), status, handle)


def endpoint_records(
    parsed: EpmResponse, flow: Flow, frame: int, ts: int, call_id: int, opnum: int, request_frame: int | None
) -> list[EndpointRecord]:
    """One record per tower of a decoded response. A tower whose IP floor is 0.0.0.0 ("any address",
    [MS-RPCE] 2.2.1.2) points at the server that answered: the server of the answer's conversation."""
    out = []
    handle = handle_text(parsed.entry_handle)
    for i, entry in enumerate(parsed.entries):
        t = entry.tower
        host = announced = None
        if t is not None:
            announced = t.ip if t.ip is not None else t.netbios_name
            host = flow.server_ip if t.ip == "0.0.0.0" else announced
        out.append(
            EndpointRecord(
                flow=flow,
                frame=frame,
                ts=ts,
                call_id=call_id,
                epm_opnum=opnum,
                request_frame=request_frame,
                tower_index=i,
                object_uuid=entry.object_uuid,
                interface_uuid=t.interface_uuid if t else None,
                if_major=t.if_major if t else None,
                if_minor=t.if_minor if t else None,
                transfer_syntax=t.transfer_syntax if t else None,
                protocol=t.protocol if t else None,
                port=t.port if t else None,
                host=host,
                announced_host=announced,
                pipe=t.pipe if t else None,
                endpoint=t.endpoint if t else None,
                annotation=entry.annotation,
                floors=t.floor_ids if t else "",
                status=parsed.status,
                entry_handle=handle,
            )
        )
    return out
