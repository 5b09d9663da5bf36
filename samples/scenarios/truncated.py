"""truncated.pcap: a capture whose last record is cut short (samples/README.md)."""

from __future__ import annotations

from ..wire.capture import Capture, pcap_bytes, write_file, write_manifest
from ..wire.ndr import Ndr
from ..wire.stubs import TSCH_HIGHEST
from ..wire.tcp import TcpFlow
from .sessions import simple_session


def make_truncated() -> None:
    cap = Capture(
        "truncated.pcap",
        "A capture whose last record is cut in half (the record header promises "
        "more bytes than the file holds): the reader must keep what came before and warn.",
        seed=69,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    f = TcpFlow(cap, ws, 49761, srv, 49670)
    op, req, resp, name = TSCH_HIGHEST
    a = simple_session(cap, f, "atsvc_tsch", op, req, resp, name, 0x6901, close=False)
    resp2 = Ndr().u32(0x00010006).u32(0).bytes()
    _rq, rs = a.call(3, 0, 0, b"", resp2, name=name)
    data = pcap_bytes(cap)
    last = len(cap.frames[-1].data)
    data = data[: len(data) - last // 2]  # keep the record header and the first half of the frame
    write_file(cap.file, data)
    row = cap.man["requests"][-1]
    row.update(
        response_frame=None,
        response_stub_len=None,
        response_fragments=None,
        response_recoverable=False,
        response_note=f"frame {rs} (the response) is the truncated last record",
    )
    cap.frames[-1].desc += " (truncated record: only the first half is in the file)"
    cap.man.note(
        "tshark stops at the cut record with an error ('cut short in the middle of a packet') and shows "
        "the frames before it."
    )
    fmt = {"container": "pcap", "linktype": 1, "ts_resolution": "us", "byte_order": "little"}
    fmt.update(truncated_record=rs, truncated_record_bytes_present=last - last // 2, truncated_record_incl_len=last)
    write_manifest(cap, fmt, frame_count=rs - 1)
