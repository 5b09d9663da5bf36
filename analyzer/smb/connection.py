"""One TCP connection carrying SMB (445 direct TCP, or 139 NetBIOS session service), sans-IO.

`SmbConnection.data(from_client, bytes, frame, ts)` takes the reassembled bytes of either direction
in capture order, `gap()` the bytes TCP reassembly declared lost; named-pipe events come out through
the `SmbEvents` given at construction. Both directions share the pipe table and the SMB1 and SMB2
request tables (answers are matched to requests of the same connection); the dialect of each
message is read from its magic, so a connection that negotiates from SMB1 to SMB2 needs nothing
special. No I/O, no clocks: frames and timestamps are passed through.
"""

from __future__ import annotations

from analyzer.limits import Limits
from analyzer.smb.events import SmbEvents
from analyzer.smb.reader import Reader
from analyzer.smb.smb1 import Smb1Handler
from analyzer.smb.smb2 import Smb2Handler
from analyzer.smb.state import Context


class SmbConnection:
    """One TCP connection carrying SMB. netbios=True for port 139 (session service with session request).

    Counters, read by the tests (no table shows them): `bulk_bytes` (passed over without being
    buffered), `skipped_bytes` (dropped while resynchronising), `gap_bytes`, `pipes_opened`,
    `pipe_bytes`, `encrypted_messages`, `compressed_messages`, and `peak_buffered`, the most bytes
    either direction ever held at once.
    """

    __slots__ = ("_client", "_ctx", "_server", "netbios")

    def __init__(self, events: SmbEvents, limits: Limits, netbios: bool = False) -> None:
        self._ctx = Context(events, limits)
        smb1 = Smb1Handler(self._ctx)
        smb2 = Smb2Handler(self._ctx)
        self._client = Reader(self._ctx, True, smb1, smb2)
        self._server = Reader(self._ctx, False, smb1, smb2)
        # Framing is the same on both ports (the session-service header is read either way);
        # the flag only records which service the connection was classified as.
        self.netbios = netbios

    def data(self, from_client: bool, data: bytes, frame: int, ts: int) -> None:
        """Reassembled TCP bytes of one direction, in order."""
        if data:
            if type(data) is not bytes:
                data = bytes(data)  # a memoryview or bytearray: the resync scan concatenates bytes
            (self._client if from_client else self._server).data(data, frame, ts)

    def gap(self, from_client: bool, missing: int, frame: int, ts: int) -> None:
        """`missing` bytes of one direction were lost: resynchronise."""
        (self._client if from_client else self._server).gap(missing, frame, ts)

    def close(self) -> None:
        """The connection ended: report what was left unparsed. Open pipes are not closed here:
        an SMB2 handle outlives a channel, and the consumer decides when a session is over."""
        self._client.close()
        self._server.close()

    @property
    def bulk_bytes(self) -> int:
        return self._ctx.bulk_bytes

    @property
    def skipped_bytes(self) -> int:
        return self._ctx.skipped_bytes

    @property
    def gap_bytes(self) -> int:
        return self._ctx.gap_bytes

    @property
    def pipes_opened(self) -> int:
        return self._ctx.pipes_opened

    @property
    def pipe_bytes(self) -> int:
        return self._ctx.pipe_bytes

    @property
    def encrypted_messages(self) -> int:
        return self._ctx.encrypted_messages

    @property
    def compressed_messages(self) -> int:
        return self._ctx.compressed_messages

    @property
    def peak_buffered(self) -> int:
        return self._ctx.peak_buffered
