"""Capture files in, frames out: the only layer that knows file formats and link layers.

`open_capture(path)` sniffs the format (pcap, pcapng, NetMon 2.x, any of them gzip-compressed) and
returns a reader whose iteration yields raw frames as `(ts_ns, link_type, buf, start, end)`:
the frame is `buf[start:end]`, sliced by the consumer only if it wants it; `ts_ns` 0 is an unknown
time (out of range in the file: `reader.notes()` says so). Only regular files are opened (`source`);
gzip is undone incrementally and bounded (`gzipstream`). `PacketDecoder` turns a raw frame into a
`Packet` (TCP segment or UDP datagram), through any tunnel (`tunnel`), only when the selector wants it;
pcap and pcapng files come in batches (`batches()` of their readers) whose frames numpy drops
wholesale (`prefilter`), the same packets as frame by frame; the link layers are `link`. The
optional C parts (`_batch`, `_packets`) each have a Python twin.

It imports only errors and limits from the analyzer; it must not import tcp, dcerpc, stubs or anything
above them (the selector's probes and ports are handed in by the pipeline).
"""

from analyzer.capture.decode import Packet, PacketDecoder, Selector
from analyzer.capture.source import CaptureReader, expand_paths, open_capture

__all__ = ["CaptureReader", "Packet", "PacketDecoder", "Selector", "expand_paths", "open_capture"]
