from typing import Any

from typing_extensions import Buffer

def build(
    buf: Buffer,
    at: Buffer,
    kind: Buffer,
    sport: Buffer,
    dport: Buffer,
    maybe: Buffer,
    pay: Buffer,
    stop: Buffer,
    start: Buffer,
    end: Buffer,
    ts: Buffer,
    frame0: int,
    tcp_table: Buffer,
    udp_table: Buffer,
    packet: type[tuple[Any, ...]],
    /,
) -> list[tuple[Any, ...]]: ...
