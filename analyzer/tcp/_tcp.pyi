from collections.abc import Callable
from typing import Any

from analyzer.capture.decode import Packet
from analyzer.limits import Limits
from analyzer.tcp.reassembly import Receiver, StreamSink

class TcpHalf:
    deliver: Receiver
    started: bool
    finished: bool
    retransmitted: int
    gaps: int
    missing: int
    ooo_segments: int
    cap_hits: int
    @property
    def given_up(self) -> str | None: ...
    def __init__(self, sink: StreamSink, limits: Limits) -> None: ...
    def syn(self, seq: int, /) -> None: ...
    def segment(self, seq: int, payload: bytes, fin: bool, frame: int, ts: int, /) -> None: ...
    def peer_ack(self, ack: int, frame: int, ts: int, /) -> None: ...
    def flush(self, frame: int, ts: int, /) -> None: ...

class ConnectionCore:
    c2s: TcpHalf
    s2c: TcpHalf
    client: tuple[bytes, int]
    client_isn: int | None
    last_frame: int
    last_ts: int
    packets: int
    server_packets: int
    client_bytes: int
    server_bytes: int
    reset: bool
    @property
    def finished(self) -> bool: ...
    def packet(self, pkt: Packet, from_client: bool, frame: int, ts: int, /) -> None: ...
    def client_syn(self, seq: int, frame: int, ts: int, /) -> None: ...

class Follow:
    def __init__(
        self,
        lookup: Callable[[tuple[bytes, int, bytes, int]], object],
        touch: Callable[[int], None],
        connection: type[ConnectionCore],
        other: Callable[[tuple[bytes, int, bytes, int], Any, Packet, int, int], None],
        close: Callable[[Any, str, int], None],
    ) -> None: ...
    def __call__(self, pkt: Packet, frame: int, ts: int, /) -> None: ...
