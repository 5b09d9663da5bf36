"""Connectionless DCE/RPC over UDP ([C706] 12.5, [MS-RPCE] 2.1.1.3 ncadg_ip_udp).

`UdpTransport` is the UDP side of one capture: datagrams go to the connectionless tracker
(`analyzer.dcerpc.cl.ClTracker`, which pairs requests and answers by activity and sequence number
across ports), and each conversation the tracker names gets a stream number, a `Flow` and its
connections row (`UdpConversation`). Conversations are capped (`max_udp_flows`, oldest first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from analyzer.bounded import BoundedDict
from analyzer.dcerpc.cl import ClTracker
from analyzer.limits import Limits
from analyzer.model import BY_EPM, BY_HEURISTIC, BY_PORT135, NCADG_IP_UDP, ConnectionRecord, Flow, RecordSink
from analyzer.stubs import stub_decoder

EPM_PORT = 135

UdpKey = tuple[str, int, str, int]  # (client address, client port, server address, server port)


class UdpSink(RecordSink, Protocol):
    """The collector, as this transport needs it: records, and the connections rows."""

    capture: str

    def violation(
        self, flow: Flow | None, frame: int | None, layer: str, what: str, detail: str, count: int = 1
    ) -> None: ...

    def connection(self, rec: ConnectionRecord) -> None: ...


class UdpConversation:
    """Counters of one connectionless conversation, for its connections row."""

    __slots__ = (
        "by",
        "client_bytes",
        "first_frame",
        "first_ts",
        "flow",
        "last_frame",
        "last_ts",
        "packets",
        "server_bytes",
    )

    def __init__(self, flow: Flow, by: str) -> None:
        self.flow = flow
        self.by = by
        self.packets = self.client_bytes = self.server_bytes = 0
        self.first_frame = self.last_frame = self.first_ts = self.last_ts = 0

    def count(self, from_client: bool, size: int, frame: int, ts: int) -> None:
        if not self.packets:
            self.first_frame, self.first_ts = frame, ts
        self.packets += 1
        self.last_frame, self.last_ts = frame, ts
        if from_client:
            self.client_bytes += size
        else:
            self.server_bytes += size

    def record(self, end: str) -> ConnectionRecord:
        """The connections row (kept as one field list: the record's)."""
        return ConnectionRecord(
            flow=self.flow,
            identified_by=self.by,
            first_frame=self.first_frame,
            first_ts=self.first_ts,
            last_frame=self.last_frame,
            last_ts=self.last_ts,
            packets=self.packets,
            client_bytes=self.client_bytes,
            server_bytes=self.server_bytes,
            pdus=self.packets,
            end=end,
        )


class UdpTransport:
    """The connectionless conversations of one capture. `announced(address, port)` says whether the
    endpoint mapper named a UDP endpoint (the run's book); `next_stream` numbers conversations."""

    def __init__(
        self, sink: UdpSink, limits: Limits, announced: Callable[[str, int], bool], next_stream: Callable[[], int]
    ) -> None:
        self._sink = sink
        self._announced = announced
        self._next_stream = next_stream
        self._conversations: BoundedDict[UdpKey, UdpConversation] = BoundedDict(limits.max_udp_flows)
        self._ts = 0  # when a conversation the tracker starts now opened (its Flow's opened_ts)
        self._cl = ClTracker(sink, limits, self._flow, decoder=stub_decoder(limits))

    def datagram(self, src: str, sport: int, dst: str, dport: int, payload: bytes, frame: int, ts: int) -> None:
        """A datagram on UDP 135, on a port the EPM announced, or one that looks like CL DCE/RPC."""
        self._ts = ts
        self._cl.datagram(src, sport, dst, dport, payload, frame, ts)
        # The tracker named the conversation's flow (through _flow) if the datagram was DCE/RPC.
        conv = self._conversations.get((src, sport, dst, dport)) or self._conversations.get((dst, dport, src, sport))
        if conv is not None:
            f = conv.flow
            conv.count((f.client_ip, f.client_port) == (src, sport), len(payload), frame, ts)

    def _flow(self, client_ip: str, client_port: int, server_ip: str, server_port: int) -> Flow:
        """The Flow of a connectionless conversation (the tracker asks)."""
        key = (client_ip, client_port, server_ip, server_port)
        # A response sent the way of its request asks for the reversed pair: it is the same
        # conversation, not a new one that would carry no packet.
        convs = self._conversations
        conv = convs.get(key) or convs.get((server_ip, server_port, client_ip, client_port))
        if conv is not None:
            return conv.flow
        if server_port == EPM_PORT or client_port == EPM_PORT:
            by = BY_PORT135
        elif self._announced(server_ip, server_port):
            by = BY_EPM
        else:
            by = BY_HEURISTIC
        flow = Flow(
            self._sink.capture,
            self._next_stream(),
            NCADG_IP_UDP,
            client_ip,
            client_port,
            server_ip,
            server_port,
            opened_ts=self._ts,
        )
        conv = UdpConversation(flow, by)
        evicted = convs.put(key, conv)
        if evicted is not None:
            self._sink.violation(None, None, "limits", "cap_udp_flows", f"{len(convs)} UDP conversations")
            self._sink.connection(evicted[1].record("evicted"))
        return flow

    def close(self, end: str) -> None:
        """End of the capture: the tracker's pending calls, then every conversation's row."""
        self._cl.close()
        for conv in self._conversations.values():
            self._sink.connection(conv.record(end))
        self._conversations.clear()
