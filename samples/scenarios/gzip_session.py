"""gzip_session.pcap.gz: a gzip-compressed pcap (samples/README.md)."""

from __future__ import annotations

import gzip

from ..wire.capture import Capture, pcap_bytes, write_file, write_manifest
from ..wire.epm import Tower
from ..wire.tcp import TcpFlow
from .sessions import epm_map_exchange


def make_gzip_session() -> None:
    cap = Capture(
        "gzip_session.pcap.gz", "An EPM lookup in a gzip-compressed pcap (gzip header mtime 0, no file name).", seed=68
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49760, srv, 135)
    epm_map_exchange(
        cap, f, "IRemoteWinspool", [Tower("IRemoteWinspool", "ncacn_ip_tcp", port=49669, ip="10.0.0.10")], 0x6801
    )
    write_file(cap.file, gzip.compress(pcap_bytes(cap), compresslevel=9, mtime=0))
    write_manifest(
        cap, {"container": "pcap", "compression": "gzip", "linktype": 1, "ts_resolution": "us", "byte_order": "little"}
    )
