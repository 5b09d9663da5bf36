"""Resource limits: one object, documented defaults.

Memory is bounded by live flows, not by capture size. Every cap below, when hit, produces a
`Violation` record (`what` names the cap) and parsing carries on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps and timeouts of the reassembly and parsing layers.

    Attributes:
        max_tcp_flows: live TCP connections tracked at once; the least recently seen is evicted.
        tcp_idle_timeout_s: a connection silent this long (capture time) is closed and flushed.
        max_ooo_bytes: out-of-order bytes buffered per direction before the hole is declared lost.
        max_ooo_segments: out-of-order segments buffered per direction before the hole is declared lost.
        max_pdu_bytes: a DCE/RPC fragment longer than this is skipped (frag_length is 16 bits,
            so this only bites when lowered).
        max_call_stub_bytes: stub bytes kept per call and direction for the stub decoders
            (analyzer.stubs: EPM towers, operation arguments); a longer stub is counted but not
            kept (a `cap_call_stub_bytes` violation), and its call keeps only its return value.
        max_pending_calls: requests awaiting a response per association; oldest flushed first.
        max_pending_fragments: calls being reassembled from fragments per association and direction.
        max_ip_fragment_datagrams: IP datagrams being reassembled from fragments at once.
        ip_fragment_timeout_s: an incomplete IP datagram older than this is dropped.
        max_udp_flows: live connectionless (UDP) DCE/RPC conversations.
        max_learned_endpoints: endpoints learned from EPM answers and bind_ack secondary addresses.
        max_smb_pipes: named pipes tracked per SMB session (issue: one association per file id).
    """

    max_tcp_flows: int = 20_000
    tcp_idle_timeout_s: float = 600.0
    max_ooo_bytes: int = 1 << 20
    max_ooo_segments: int = 256
    max_pdu_bytes: int = 65_535
    max_call_stub_bytes: int = 1 << 20
    max_pending_calls: int = 1024
    max_pending_fragments: int = 64
    max_ip_fragment_datagrams: int = 1024
    ip_fragment_timeout_s: float = 60.0
    max_udp_flows: int = 20_000
    max_learned_endpoints: int = 100_000
    max_smb_pipes: int = 256


DEFAULT_LIMITS = Limits()
