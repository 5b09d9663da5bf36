"""Framing one direction of a connection-oriented DCE/RPC byte stream into PDUs ([C706] 12.6.3).

Sans-IO: `data()` and `gap()` take what TCP reassembly (or an SMB pipe) delivers; complete PDUs
go to a callback with the frame that completed them (the latest frame among their bytes) and the
frame where they started. A PDU is framed by frag_length in the byte order of its data
representation. At the start of a stream and after a gap the framer looks for the next plausible
header and reports the bytes it skipped; a malformed body is reported and the next PDU parsed.
A run of malformed PDUs in one segment that differ at most in call_id (a flood) is judged once and
reported as one violation with its count (`wire.co_run`): the same rows as judging each alone.
"""

from __future__ import annotations

from collections.abc import Callable

from analyzer.dcerpc.constants import CO_HEADER_LEN
from analyzer.dcerpc.pdu import CoPdu, parse_co_pdu
from analyzer.dcerpc.pdu import plausible_co_header as plausible_here
from analyzer.dcerpc.wire import Malformed, co_run
from analyzer.limits import Limits

try:  # the header test in C (analyzer/dcerpc/_framing.c): a call where Python took about 36 bytecodes
    from analyzer.dcerpc._framing import plausible_co_header
except ImportError:  # not built (no compiler at install): the Python twin, the same answers
    plausible_co_header = plausible_here

# (pdu, frame completing it, its timestamp, frame where it started)
PduCallback = Callable[[CoPdu, int, int, int], None]
# (frame, what, detail, how many identical ones)
ViolationCallback = Callable[[int, str, str, int], None]


def _ignore(*_args: object) -> None:
    """The callback of a detached stream."""


class CoStream:
    """Frames one direction. `pdus` counts PDUs framed (the connections table's `pdus`)."""

    __slots__ = ("_buf", "_chunks", "_limits", "_on_pdu", "_on_violation", "_synced", "pdus")

    def __init__(self, on_pdu: PduCallback, on_violation: ViolationCallback, limits: Limits) -> None:
        self._on_pdu: PduCallback = on_pdu
        self._on_violation: ViolationCallback = on_violation
        self._limits = limits
        self._buf = bytearray()
        # (end offset in _buf, frame, ts) of every chunk whose bytes are still buffered
        self._chunks: list[tuple[int, int, int]] = []
        self._synced = False
        self.pdus = 0

    def detach(self) -> None:
        """Its connection is closed: drop the callbacks into it (they make a reference cycle)."""
        self._on_pdu = _ignore
        self._on_violation = _ignore

    def data(self, data: bytes, frame: int, ts: int) -> None:
        if not data:
            return
        if not self._synced and not self._buf:
            self._synced = self._starts(data)
        elif self._synced and self._buf:
            data = self._complete(data, frame, ts)
        if self._synced and not self._buf:
            data = self._whole(data, frame, ts)
            if not data:
                return
        self._buf += data
        self._chunks.append((len(self._buf), frame, ts))
        self._parse(frame)

    @staticmethod
    def _starts(data: bytes) -> bool:
        """Whether `_resync` would find a header at data[0], so skip nothing (a connection's first
        segment): a plausible header, confirmed by the next one when that is in `data` too."""
        frag_len = plausible_co_header(data)
        return bool(frag_len) and (frag_len + CO_HEADER_LEN > len(data) or bool(plausible_co_header(data, frag_len)))

    def _complete(self, data: bytes, frame: int, ts: int) -> bytes:
        """In step with the start of a PDU buffered: when `data` holds the rest of it, that PDU is
        parsed as `_parse` would parse it and the bytes after it returned, for `_whole`; otherwise
        (its header is not yet whole, or bad, or the PDU goes on) `data` as it is, for `_parse`."""
        buf = self._buf
        head = (
            bytes(buf[:CO_HEADER_LEN]) if len(buf) >= CO_HEADER_LEN else bytes(buf) + data[: CO_HEADER_LEN - len(buf)]
        )
        frag_len = plausible_co_header(head)
        rest = frag_len - len(buf)
        if not frag_len or frag_len > self._limits.max_pdu_bytes or not 0 < rest <= len(data):
            return data
        buf += data[:rest]
        self._chunks.append((len(buf), frame, ts))
        self._parse(frame)
        return data[rest:]

    def _whole(self, data: bytes, frame: int, ts: int) -> bytes:
        """The common case, nothing buffered and in step: the PDUs that lie whole in `data` are
        parsed straight from it, as `_parse` would parse them (each completed by this frame);
        returns the rest (the start of a PDU, or what `_parse` must judge).

        A malformed PDU followed by copies of itself, call_id aside (a flood), is judged once: the
        run is one violation event standing for all of them (`wire.co_run`), as many PDUs framed."""
        pos, n, cap = 0, len(data), self._limits.max_pdu_bytes
        while n - pos >= CO_HEADER_LEN:
            frag_len = plausible_co_header(data, pos)
            if not frag_len or frag_len > cap or n - pos < frag_len:
                break  # a bad header, the cap, a PDU that goes on: `_parse` deals with it
            raw = data if frag_len == n and type(data) is bytes else bytes(data[pos : pos + frag_len])
            pos += frag_len
            try:
                pdu = parse_co_pdu(raw)
            except Malformed as e:
                run = 1 + co_run(data, pos, frag_len)  # the same bytes but call_id: the same verdict
                pos += (run - 1) * frag_len
                self.pdus += run
                self._on_violation(frame, e.what, e.detail, run)
                continue
            self.pdus += 1
            self._on_pdu(pdu, frame, ts, frame)
        return data[pos:] if pos else data

    def _emit(self, raw: bytes, frame: int, ts: int, first_frame: int) -> None:
        """One framed PDU, completed by `frame`: parsed and handed on, or a violation."""
        self.pdus += 1
        try:
            pdu = parse_co_pdu(raw)
        except Malformed as e:
            self._on_violation(frame, e.what, e.detail, 1)
            return
        self._on_pdu(pdu, frame, ts, first_frame)

    def gap(self, missing: int, frame: int, ts: int) -> None:
        """Bytes were lost: whatever was buffered cannot be completed."""
        if self._buf:
            self._on_violation(
                frame, "pdu_lost_in_gap", f"{len(self._buf)} buffered bytes of an incomplete PDU dropped", 1
            )
            self._consume(len(self._buf))
        self._synced = False

    def _consume(self, n: int) -> tuple[int, int, int]:
        """Drop n bytes from the buffer; (latest frame, its ts, first frame) among their chunks."""
        best_frame = -1
        best_ts = 0
        first_frame = -1
        chunks = self._chunks
        keep = len(chunks)
        start = 0
        for i, (end, frame, ts) in enumerate(chunks):
            if start >= n:
                keep = i
                break
            if first_frame < 0:
                first_frame = frame
            if frame > best_frame:
                best_frame, best_ts = frame, ts
            if end > n:
                keep = i  # this chunk straddles the cut: its tail stays buffered
                break
            start = end
        del self._buf[:n]
        self._chunks = [(end - n, f, t) for end, f, t in chunks[keep:]]
        return best_frame, best_ts, first_frame

    def _resync(self, frame: int) -> bool:
        """Find the next plausible header; drop what precedes it. False if none is buffered yet."""
        buf = self._buf
        pos = 0
        while True:
            pos = buf.find(5, pos)
            if pos < 0 or len(buf) - pos < CO_HEADER_LEN:
                break
            frag_len = plausible_co_header(buf, pos)
            if frag_len:
                nxt = pos + frag_len
                # Confirm with the following header when it is already buffered.
                if nxt + CO_HEADER_LEN > len(buf) or plausible_co_header(buf, nxt):
                    if pos:
                        self._on_violation(frame, "resync", f"skipped {pos} bytes to the next DCE/RPC header", 1)
                        self._consume(pos)
                    self._synced = True
                    return True
            pos += 1
        # Keep the tail that could start a header; drop the rest.
        drop = len(buf) - (CO_HEADER_LEN - 1) if pos < 0 else pos
        if drop > 0:
            self._on_violation(frame, "resync", f"skipped {drop} bytes with no DCE/RPC header", 1)
            self._consume(drop)
        return False

    def _parse(self, frame: int) -> None:
        buf = self._buf
        while len(buf) >= CO_HEADER_LEN:
            if not self._synced and not self._resync(frame):
                return
            if len(buf) < CO_HEADER_LEN:
                return
            frag_len = plausible_co_header(buf, 0)
            if not frag_len:
                self._on_violation(frame, "bad_header", f"implausible DCE/RPC header {bytes(buf[:16]).hex()}", 1)
                self._synced = False
                continue
            if frag_len > self._limits.max_pdu_bytes:
                self._on_violation(frame, "cap_pdu_bytes", f"frag_length {frag_len} over the cap", 1)
                self._synced = False
                self._consume(1)
                continue
            if len(buf) < frag_len:
                return
            raw = bytes(buf[:frag_len])
            self._emit(raw, *self._consume(frag_len))
