"""Resource limits: one object, documented defaults, one vocabulary.

Memory is bounded by live flows, not by capture size. Every cap below is a field of `Limits`; when
one is hit, parsing carries on and a `Violation` is recorded whose `what` is `cap_code(field)`:
`cap_` and the field's name without its `max_` prefix (`max_tcp_flows` -> `cap_tcp_flows`). A cap
is reported once per cap and connection (or per capture, for the caps of run-wide tables), with the
number of times it was hit (see `violation_log.ViolationLog`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

# Field kinds, in each field's metadata.
CONNECTION = "connection"  # a cap on one connection's (or association's) state: reported per connection
CAPTURE = "capture"  # a cap on a table shared by every connection: reported once per capture
TIMEOUT = "timeout"  # not a cap: a time after which state is closed
OUTPUT = "output"  # not a cap: how the output is shaped
THRESHOLD = "threshold"  # not a cap: the point from which a cap is judged


def _cap(default: int, scope: str = CONNECTION) -> int:
    return field(default=default, metadata={"kind": scope})


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps and timeouts of the reassembly and parsing layers.

    Attributes:
        max_tcp_flows: live TCP connections tracked at once; the least recently seen is evicted.
        tcp_idle_timeout_s: a connection silent this long (capture time) is closed and flushed.
        max_ooo_bytes: out-of-order bytes buffered per direction before the hole is given up.
        max_ooo_segments: out-of-order segments buffered per direction before the hole is given up.
        max_pdu_bytes: a DCE/RPC fragment longer than this is skipped (frag_length is 16 bits,
            so this only bites when lowered).
        max_call_stub_bytes: stub bytes kept per call and direction for the stub decoders
            (analyzer.stubs: EPM towers, operation arguments); a longer stub is counted but not
            kept (a `cap_call_stub_bytes` violation), and its call keeps only its return value.
        max_held_stub_bytes: stub bytes kept for decoding by all the calls of one association (or
            connectionless conversation table) at once; a stub that would pass it is not kept.
        max_pending_calls: requests awaiting a response per association; oldest flushed first.
        max_pending_fragments: calls being reassembled from fragments per association and direction.
        max_early_answers: answers (bind_acks, responses, faults) waiting for a request captured
            after them, per association (or connectionless tracker); the oldest is given up.
        max_ip_fragment_datagrams: IP datagrams being reassembled from fragments at once.
        ip_fragment_timeout_s: an incomplete IP datagram older than this is dropped.
        max_udp_flows: live connectionless (UDP) DCE/RPC conversations.
        max_learned_endpoints: endpoints learned from EPM answers and bind_ack secondary addresses.
        max_smb_pipes: named pipes tracked per SMB session (issue: one association per file id).
        max_smb_open_pipes: named pipes open on one SMB connection, all sessions together.
        max_smb_message_bytes: an SMB control message (negotiate, session setup, tree connect,
            create, ...) is buffered whole only up to this size; far above what Windows sends.
        max_smb_pipe_message_bytes: pipe data of one SMB message (or held for one related CREATE).
        max_smb_pending: SMB requests awaiting their answer per connection (and dialect).
        max_smb_trees: tree connects remembered per connection.
        max_smb_candidates: files remembered as possible pipes (unknown tree, unfamiliar name).
        max_smb_not_pipes: files remembered as not being pipes.
        max_smb_sessions: sessions remembered as encrypted per connection.
        max_smb_created: SMB2 CREATE requests remembered for their answer, and pipes remembered as
            last written per session.
        max_smb_held_creates: related (compounded) CREATEs whose pipe data waits for their answer.
        max_gzip_ratio: decompressed bytes per compressed byte a .gz input may expand to once past
            `gzip_ratio_floor_bytes`; beyond, reading stops there (`cap_gzip_ratio`). So a .gz of n
            bytes yields at most max(floor, ratio * n) bytes: a decompression bomb costs at most the
            floor's worth of reading. Captures of traffic compress 2:1 to 20:1; only gigabytes of
            zero-filled payload (about 560:1 in 64 KB offload segments) come near.
        gzip_ratio_floor_bytes: decompressed bytes always allowed before the ratio is judged.
        max_undecided_bytes: client bytes, and packets, held to judge whether a TCP conversation
            whose first bytes are cut into tiny segments starts DCE/RPC; past it, it is not followed.
        max_midstream_packets: packets kept while a conversation joined in the middle awaits
            confirmation (analyzer.pipeline.midstream); past it, it is not followed.
        max_midstream_payloads: payload segments judged for that confirmation before giving up.
        max_pipes: SMB named pipes tracked at once in a capture, every connection and session
            together: an SMB2 handle outlives its TCP connection, so a pipe never closed waits here
            until the capture ends; past it, the oldest is closed (`evicted`).
        max_smb_pipe_channels: TCP connections remembered per pipe (SMB2 multichannel: a pipe may
            be written on several); the records of PDUs on more still name their own connection.
        max_smb_session_names: SMB sessions whose user (NTLM identity) and encryption are
            remembered across the connections of a capture; past it, the oldest is forgotten.
        max_virtual_connections: RPC-over-HTTP v2 virtual connections (cookies) tracked at once
            in a capture; past it, the oldest is closed.
        max_http_header_bytes: bytes of an RPC-over-HTTP request or response header buffered
            while looking for its end; past it, the bytes are passed on as they are.
        max_ndr_depth: pointers nested in one stub the stub decoders follow; deeper, the stub is
            given up (`cap_ndr_depth`) and what was read before is kept.
        max_ndr_elements: array elements (and string characters) one stub may claim in all, so a
            hostile count cannot make the decoders loop past what real stubs hold.
        max_ndr_string_chars: characters of one NDR string the stub decoders read.
        max_security_contexts: security contexts (auth_context_id) per association remembered with
            the user an NTLMSSP AUTHENTICATE named for them; oldest out.
        max_context_handles: context handles (and other names calls teach) remembered per
            association for the stub decoders, with the names they were opened with; oldest out.
        max_violations_listed: violations of one kind (other than caps) listed one by one per
            connection; the rest of that kind and connection become one row with their count.
    """

    max_tcp_flows: int = _cap(20_000, CAPTURE)
    tcp_idle_timeout_s: float = field(default=600.0, metadata={"kind": TIMEOUT})
    max_ooo_bytes: int = _cap(1 << 20)
    max_ooo_segments: int = _cap(256)
    max_pdu_bytes: int = _cap(65_535)
    max_call_stub_bytes: int = _cap(1 << 20)
    max_held_stub_bytes: int = _cap(8 << 20)
    max_pending_calls: int = _cap(1024)
    max_pending_fragments: int = _cap(64)
    max_early_answers: int = _cap(64)
    max_ip_fragment_datagrams: int = _cap(1024, CAPTURE)
    ip_fragment_timeout_s: float = field(default=60.0, metadata={"kind": TIMEOUT})
    max_udp_flows: int = _cap(20_000, CAPTURE)
    max_learned_endpoints: int = _cap(100_000, CAPTURE)
    max_smb_pipes: int = _cap(256)
    max_smb_open_pipes: int = _cap(4096)
    max_smb_message_bytes: int = _cap(64 * 1024)
    max_smb_pipe_message_bytes: int = _cap(8 * 1024 * 1024)
    max_smb_pending: int = _cap(4096)
    max_smb_trees: int = _cap(4096)
    max_smb_candidates: int = _cap(1024)
    max_smb_not_pipes: int = _cap(4096)
    max_smb_sessions: int = _cap(4096)
    max_smb_created: int = _cap(256)
    max_smb_held_creates: int = _cap(64)
    max_undecided_bytes: int = _cap(96)
    max_midstream_packets: int = _cap(64)
    max_midstream_payloads: int = _cap(16)
    max_http_header_bytes: int = _cap(16 * 1024)
    max_ndr_depth: int = _cap(24)
    max_ndr_elements: int = _cap(1 << 16)
    max_ndr_string_chars: int = _cap(1 << 15)
    max_security_contexts: int = _cap(1024)
    max_context_handles: int = _cap(4096)
    max_virtual_connections: int = _cap(20_000, CAPTURE)
    max_pipes: int = _cap(65_536, CAPTURE)
    max_smb_session_names: int = _cap(65_536, CAPTURE)
    max_smb_pipe_channels: int = _cap(64)
    max_violations_listed: int = field(default=100, metadata={"kind": OUTPUT})
    max_gzip_ratio: int = _cap(100, CAPTURE)
    gzip_ratio_floor_bytes: int = field(default=1 << 30, metadata={"kind": THRESHOLD})


DEFAULT_LIMITS = Limits()


def cap_code(name: str) -> str:
    """The violation code of a cap: `max_tcp_flows` -> `cap_tcp_flows`."""
    return "cap_" + name.removeprefix("max_")


def cap_fields(kind: str | None = None) -> dict[str, str]:
    """Cap field name -> its violation code, for every cap (or those of one scope)."""
    return {
        f.name: cap_code(f.name)
        for f in fields(Limits)
        if f.metadata["kind"] in (CONNECTION, CAPTURE) and (kind is None or f.metadata["kind"] == kind)
    }


CAP_CODES = frozenset(cap_fields().values())
"""Every `what` a cap produces."""

CAPTURE_CAP_CODES = frozenset(cap_fields(CAPTURE).values())
"""The caps of run-wide tables: one row per capture, whichever connection was evicted."""
