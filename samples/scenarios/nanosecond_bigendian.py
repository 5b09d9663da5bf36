"""nanosecond_bigendian.pcap: big-endian nanosecond pcap (samples/README.md)."""

from __future__ import annotations

from ..wire.capture import Capture, save_pcap
from ..wire.stubs import scmr_open_scmanager
from ..wire.tcp import TcpFlow
from .sessions import simple_session


def make_nanosecond_bigendian() -> None:
    cap = Capture(
        "nanosecond_bigendian.pcap",
        "A svcctl session in a pcap file written big-endian with "
        "nanosecond timestamps (magic a1b23c4d stored as bytes a1 b2 3c 4d).",
        seed=67,
        ts_resolution="ns",
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49759, srv, 49667)
    req, resp, _h = scmr_open_scmanager()
    simple_session(cap, f, "svcctl", 15, req, resp, "ROpenSCManagerW", 0x6701)
    save_pcap(cap, big_endian=True, nano=True)
