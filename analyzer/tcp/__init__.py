"""TCP: reassembly of each direction (`TcpHalf`: analyzer/tcp/_tcp.c where built, else its twin
`reassembly.TcpHalf`) and the handling of one connection (`connection.TcpConnection`: SYN, FIN,
RST, counters, the hand-over of reassembled bytes to the transport that reads them, and the
tombstone a closed connection leaves).

Owns everything between a decoded TCP segment and the in-order bytes of a direction. Sans-IO.
Must not import: `analyzer.dcerpc`, `analyzer.stubs`, `analyzer.smb`, `analyzer.transports`,
`analyzer.pipeline` or anything above them (the transport a connection feeds is given to it).
"""

from analyzer.tcp.reassembly import Receiver, StreamSink

try:  # a direction's reassembly in C (analyzer/tcp/_tcp.c): the same semantics, a frame per packet less
    from analyzer.tcp._tcp import TcpHalf
except ImportError:  # not built (no compiler at install): the Python twin, the same results
    from analyzer.tcp.reassembly import TcpHalf  # type: ignore[assignment]

__all__ = ["Receiver", "StreamSink", "TcpHalf"]
