"""Records: the product of the analysis, as dataclasses frozen to the type checker (see `record`).

Every record says where it came from (capture file, frame, timestamp, the `Flow` it belongs to).
Wire names for wire fields (`call_id`, `ctx_id`, `opnum`), plain names for derived ones.
UUIDs are lower-case canonical text. Missing values are `None`, never an empty string.
Names (interface, operation, status) are not stored here: the report layer looks them up in the
registry, so parsers never pay for it.

Timestamps are integer nanoseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # only the type checker reads it (typing has it from Python 3.11 on)

    def dataclass_transform(**_kwargs: Any) -> Callable[[_T], _T]:
        return lambda f: f


_T = TypeVar("_T")

# Transports, as the endpoint mapper and [MS-RPCE] 2.1.1 name them.
NCACN_IP_TCP = "ncacn_ip_tcp"
NCADG_IP_UDP = "ncadg_ip_udp"
NCACN_NP = "ncacn_np"
NCACN_HTTP = "ncacn_http"

# How a connection was recognised as DCE/RPC.
BY_PORT135 = "port135"
BY_EPM = "epm"
BY_SEC_ADDR = "sec_addr"
BY_HEURISTIC = "heuristic"
BY_PORT593 = "port593"  # RPC over HTTP v1's well-known port
BY_SMB = "smb"  # a named pipe opened over SMB
BY_MIDSTREAM = "midstream"  # joined late: a well-formed PDU confirmed by the next one or its answer


@dataclass_transform(frozen_default=True)
def record(cls: type[_T]) -> type[_T]:
    """A record class: a dataclass with slots, compared and hashed by its fields, and frozen to the
    type checker (mypy rejects an assignment to a field), but not at run time. A frozen dataclass
    sets each field through `object.__setattr__`, which made it six times dearer to build (3.4 us
    against 0.5 us for a Flow): one of the larger costs of a connection under a flood, where every
    connection, bind, call and PDU is a record."""
    return dataclass(slots=True, unsafe_hash=True)(cls)


@record
class Flow:
    """One transport conversation that carried DCE/RPC (a TCP connection, a pipe, a UDP pair).

    `stream` numbers the conversations of one capture from 0 in order of first appearance.
    """

    capture: str
    stream: int
    transport: str
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    pipe: str | None = None
    # When the transport connection opened (its first packet, ns): with the addresses it names the
    # connection for the deterministic Zeek-style `uid` (a pipe carries its SMB connection's).
    opened_ts: int = 0


@record
class BindRecord:
    """One presentation-context item of a bind or alter_context, with its answer ([C706] 12.6.4.3-6)."""

    flow: Flow
    frame: int
    ts: int
    pdu_type: str  # bind | alter_context
    call_id: int
    ctx_id: int
    interface_uuid: str
    if_major: int
    if_minor: int
    transfer_syntaxes: tuple[str, ...]  # uuids, in the order offered
    ack_result: str  # acceptance | user_rejection | provider_rejection | negotiate_ack | nak | none
    ack_reason: str | None
    ack_frame: int | None
    ack_transfer_syntax: str | None
    sec_addr: str | None
    max_xmit_frag: int
    max_recv_frag: int
    assoc_group: int
    ack_assoc_group: int | None
    auth_type: int | None
    auth_level: int | None
    identified_by: str


@record
class EndpointRecord:
    """One protocol tower in an endpoint-mapper response ([C706] Appendix L, [MS-RPCE] 2.2.1.2)."""

    flow: Flow
    frame: int
    ts: int
    call_id: int
    epm_opnum: int  # 2 ept_lookup | 3 ept_map
    request_frame: int | None
    tower_index: int
    object_uuid: str | None
    interface_uuid: str | None
    if_major: int | None
    if_minor: int | None
    transfer_syntax: str | None
    protocol: str | None  # ncacn_ip_tcp, ncadg_ip_udp, ncacn_np, ncalrpc, ncacn_http, ncacn_nb_tcp, ...
    port: int | None
    host: str | None  # IPv4 address (0.0.0.0 replaced by the server's), or NetBIOS name
    announced_host: str | None  # as on the wire
    pipe: str | None
    endpoint: str | None  # floor 4 as text: the port, pipe or ncalrpc endpoint
    annotation: str | None
    floors: str  # protocol ids of the floors, e.g. "0d,0d,0b,07,09"
    status: int | None
    entry_handle: str | None = None  # the response's context handle (an ept_lookup enumeration), None when nil


@record
class CallRecord:
    """One request and what answered it: response, fault or nothing ([C706] 12.6.4.9-11)."""

    flow: Flow
    frame: int  # frame completing the request (its last fragment)
    ts: int
    first_frame: int
    call_id: int
    ctx_id: int
    interface_uuid: str | None
    if_major: int | None
    if_minor: int | None
    interface_source: str  # bind | epm | pipe | header (connectionless) | unknown
    opnum: int
    object_uuid: str | None
    request_bytes: int  # stub bytes, all fragments
    request_fragments: int
    response_frame: int | None
    response_ts: int | None
    response_bytes: int | None
    response_fragments: int | None
    fault_status: int | None  # set when a fault answered
    answered: bool
    auth_type: int | None
    auth_level: int | None
    auth_context_id: int | None
    user: str | None
    domain: str | None
    workstation: str | None
    encrypted: bool  # packet-privacy: the stub is sealed
    activity_uuid: str | None = None  # connectionless only
    seqnum: int | None = None  # connectionless only
    return_status: int | None = None  # the operation's own return value, where its response was decoded
    return_kind: str | None = None  # its type: win32 | ntstatus | hresult | rpc (analyzer.stubs.registry)
    arguments: str | None = None  # the decisive decoded arguments, "name=value; ..." (analyzer.stubs)
    arguments_json: str | None = None  # every decoded request and response value, a JSON object


@record
class DatagramRecord:
    """One connectionless DCE/RPC PDU ([C706] 12.5.3.1), whatever its type: request, response,
    fault, ping, working, nocall, reject, ack, cl_cancel, fack, cancel_ack."""

    flow: Flow
    frame: int
    ts: int
    from_client: bool
    ptype: int
    flags1: int
    flags2: int
    little: bool  # data representation: True little-endian
    char_ebcdic: bool
    serial: int  # serial_hi << 8 | serial_lo
    object_uuid: str | None  # None when the nil UUID
    interface_uuid: str
    if_major: int
    if_minor: int
    activity_uuid: str
    server_boot: int
    seqnum: int
    opnum: int
    fragnum: int
    body_len: int
    auth_type: int | None
    status: int | None  # fault / reject status


@record
class ConnectionRecord:
    """One DCE/RPC transport conversation: how it was identified and what it carried."""

    flow: Flow
    identified_by: str
    first_frame: int
    first_ts: int
    last_frame: int
    last_ts: int
    packets: int
    client_bytes: int
    server_bytes: int
    pdus: int
    end: str  # fin | rst | idle | evicted | capture_end | close (a pipe's SMB CLOSE)
    gaps: int = 0  # holes in the TCP byte stream (a pipe or a UDP conversation has none of its own)
    # Only a TCP connection the endpoint mapper announced has these:
    epm_capture: str | None = None  # the capture holding the EPM response that announced this server port
    epm_frame: int | None = None  # that response's frame
    epm_client_ip: str | None = None
    epm_delay_s: float | None = None  # seconds from that answer to this connection's first packet
    detail: str | None = None  # what else is known: RPC-over-HTTP channel and RTS PDUs, SMB session, ...
    midstream: bool | None = None  # its first PDU was not a bind: the conversation began before the capture


@record
class Violation:
    """Something malformed, inconsistent or capped: reported, then parsing carries on."""

    capture: str
    frame: int | None
    stream: int | None
    layer: str  # capture | ip | tcp | udp | dcerpc | epm | smb | http | limits
    what: str  # short code, e.g. "bad_frag_length", "tcp_gap", "cap_ooo_bytes"
    detail: str  # of the first occurrence: a sample when the row stands for several
    # A row may stand for several occurrences of `what` on one connection (see `violation_log.ViolationLog`;
    # the table calls `count` `occurrences`, as DataFrame.count is taken):
    # how many, and the frames of the first and last (`frame` is the first).
    count: int = 1
    last_frame: int | None = None


@record
class AttemptRecord:
    """A TCP connection attempt to an RPC port that never became a DCE/RPC conversation: only a SYN
    (`syn_only`), answered by a reset (`rejected`), or closed without a PDU (`no_pdu`)."""

    capture: str
    frame: int  # the client's first SYN
    ts: int
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    outcome: str  # syn_only | rejected | no_pdu


@record
class CaptureSummary:
    """One input file: what was read and whether it was read to the end."""

    capture: str
    path: str
    format: str | None
    link_types: str
    frames: int
    bytes: int
    first_ts: int | None
    last_ts: int | None
    truncated: bool
    error: str | None


class RecordSink(Protocol):
    """Where the parsing layers put records as they are made (the pipeline's collector)."""

    def bind_row(self, row: tuple[Any, ...]) -> None:
        """A bind item as its row: `BindRecord`'s fields in order (an association's)."""
        ...

    def call(self, rec: CallRecord) -> None: ...

    def call_row(self, row: tuple[Any, ...]) -> None:
        """A call as its row: `CallRecord`'s fields in order (a connection-oriented call's)."""
        ...

    def endpoint(self, rec: EndpointRecord) -> None: ...

    def datagram(self, rec: DatagramRecord) -> None: ...

    def violation(self, flow: Flow, frame: int | None, layer: str, what: str, detail: str, count: int = 1) -> None: ...
