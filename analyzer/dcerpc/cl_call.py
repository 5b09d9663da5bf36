"""One connectionless call in progress ([C706] 10): its two halves, reassembled from fragments.

A call is named by (activity UUID, sequence number). The sender fragments a request or response;
each fragment names its number (fragnum) and says whether more follow (`frag` and `lastfrag` in
flags1). Fragments may come out of order, twice (retransmissions), or not at all; a half is done
when every number up to the last one came. The tracker (`cl.ClTracker`) decides which call a PDU
belongs to and when a call is over.
"""

from __future__ import annotations

from analyzer.dcerpc.cl_pdu import CL_FLAG_FRAG, CL_FLAG_LASTFRAG, ClHeader
from analyzer.dcerpc.decoding import Want
from analyzer.model import Flow


class Half:
    """One direction of a call (request or response): which fragments came, how many bytes.

    Fragment numbers are 16 bits, so the set of those seen is a bitmap of at most 8 KiB whatever
    the sender does; retransmitted fragments are counted once.
    """

    __slots__ = (
        "bits",
        "count",
        "done",
        "first_frame",
        "frame",
        "kept",
        "last",
        "little",
        "nbytes",
        "parts",
        "tail",
        "tail_frag",
        "ts",
    )

    def __init__(self, frame: int, ts: int, little: bool, keep: bool) -> None:
        self.bits = bytearray()
        self.count = 0
        self.nbytes = 0
        self.last: int | None = None
        self.done = False
        self.first_frame = frame
        self.frame = frame
        self.ts = ts
        self.little = little
        self.parts: dict[int, bytes] | None = {} if keep else None
        self.kept = 0
        self.tail = b""  # the last bytes of the last fragment: the return value ([MS-RPCE] 2.2.5)
        self.tail_frag = -1

    def add(self, h: ClHeader, frame: int, ts: int, cap: int) -> tuple[bool, bool]:
        """Add one fragment: (was it new, did the stub cap drop the kept bytes)."""
        n = h.fragnum
        byte, bit = n >> 3, 1 << (n & 7)
        if byte < len(self.bits) and self.bits[byte] & bit:
            return False, False
        if byte >= len(self.bits):
            self.bits.extend(bytes(byte + 1 - len(self.bits)))
        self.bits[byte] |= bit
        self.count += 1
        self.nbytes += h.body_len
        if not self.done:  # the frame that completed the half stays its frame
            self.frame = frame
            self.ts = ts
        if n > self.tail_frag:
            self.tail, self.tail_frag = h.body[-4:], n
        capped = False
        if self.parts is not None:
            if self.kept + h.body_len <= cap:
                self.parts[n] = h.body
                self.kept += h.body_len
            else:
                self.parts = None
                capped = True
        if not h.flags1 & CL_FLAG_FRAG:
            self.done = True  # a whole PDU: nothing to wait for
        else:
            if h.flags1 & CL_FLAG_LASTFRAG:
                self.last = n
            if self.last is not None and self.count > self.last and self._have_all(self.last):
                self.done = True
        return True, capped

    def _have_all(self, last: int) -> bool:
        full, rest = (last + 1) >> 3, (last + 1) & 7
        if any(b != 0xFF for b in self.bits[:full]):
            return False
        mask = (1 << rest) - 1
        return not rest or self.bits[full] & mask == mask

    def stub(self) -> bytes | None:
        if self.parts is None:
            return None
        return b"".join(self.parts[k] for k in sorted(self.parts))


class Call:
    """A call in progress, named by (activity, seqnum)."""

    __slots__ = (
        "activity",
        "auth_proto",
        "client",
        "fault",
        "fault_frame",
        "fault_ts",
        "flow",
        "if_vers",
        "interface",
        "last_ts",
        "object_uuid",
        "opnum",
        "req",
        "resp",
        "resp_flow",
        "seqnum",
        "want",
    )

    def __init__(self, h: ClHeader, ts: int, want: Want) -> None:
        self.activity = h.activity_uuid
        self.seqnum = h.seqnum
        self.interface = h.interface_uuid
        self.if_vers = h.if_vers
        self.opnum = h.opnum
        self.object_uuid = h.object_or_none
        self.auth_proto = h.auth_proto or None
        self.flow: Flow | None = None  # the request's conversation
        self.client: tuple[str, int] | None = None
        self.req: Half | None = None
        self.resp: Half | None = None
        self.resp_flow: Flow | None = None
        self.fault: int | None = None
        self.fault_frame: int | None = None
        self.fault_ts: int | None = None
        self.last_ts = ts
        self.want = want  # every CL PDU names interface and opnum: the decoders' wish is known at once

    @property
    def answered(self) -> bool:
        return self.fault is not None or self.resp is not None

    @property
    def answer_done(self) -> bool:
        return self.fault is not None or (self.resp is not None and self.resp.done)

    @property
    def reassembling(self) -> bool:
        # A whole (unfragmented) PDU completes its half at once, so "not done" means fragments missing.
        return any(h is not None and not h.done for h in (self.req, self.resp))
