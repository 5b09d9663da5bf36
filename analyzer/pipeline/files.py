"""The file loop: a capture's frames through the packet decoder to its conversations.

For one file (`add_file`, `add_reader`) or one session of files read as one stream (`add_session`,
see `analyzer.capture.session`): open the reader, make the capture's `Conversations`, pass every selected
packet to the conversation it belongs to (reporting, not raising, what goes wrong inside), sweep
idle connections every `_EXPIRE_EVERY` selected packets, close everything at the end, and write the
capture's `captures` row and its file-level violations (link types skipped, truncation, reader
notes, IP fragments given up).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from analyzer.bounded import no_collections
from analyzer.capture.decode import PROTO_TCP, PacketDecoder
from analyzer.capture.ipfrag import Defragmenter
from analyzer.capture.link import SUPPORTED_LINK_TYPES
from analyzer.capture.netmon import LINK_NONE
from analyzer.capture.prefilter import port_table
from analyzer.capture.reader import CaptureReader, RawFrame
from analyzer.capture.session import FrameMap, Member, SessionFrames
from analyzer.capture.source import display_name, open_capture
from analyzer.capture.syns import SynRun
from analyzer.errors import CaptureError
from analyzer.model import CaptureSummary, Violation
from analyzer.pipeline.conversations import Conversations
from analyzer.pipeline.flow_table import FlowKey
from analyzer.pipeline.syn_runs import KINDS, open_syns

if TYPE_CHECKING:
    from analyzer.pipeline.state import Run

_EXPIRE_EVERY = 4096  # selected packets between idle-expiry sweeps
LISTED_MAX = 16  # values named in one cell; a file with a million interfaces must not make a 400 KB cell

Tick = Callable[[int], None]  # bytes of the current file (or session) consumed so far


def listed(values: list[int], sep: str) -> str:
    """The first LISTED_MAX values sep-joined, then how many more there were."""
    head = sep.join(str(v) for v in values[:LISTED_MAX])
    more = len(values) - LISTED_MAX
    return f"{head}{sep}... ({more} more)" if more > 0 else head


class FileLoop:
    """Reads captures into a run's records, one capture at a time."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.conversations: Conversations | None = None  # of the capture being read
        # The TCP connections still followed when the last capture ended (before they were closed):
        # for a caller that cuts a capture into pieces and must know which flows cross a cut.
        self.open_at_end: list[FlowKey] = []
        self._selected = 0  # packets selected in the capture being read (SYNs of a run counted one by one)

    def add_file(self, path: str, name: str | None = None, progress: Tick | None = None) -> CaptureSummary:
        """Analyse one capture. A file that cannot be read gives a summary with `error` set."""
        name = name or display_name(path)
        try:
            reader = open_capture(path, name, self.run.limits, hashed=self.run.digests)
        except CaptureError as e:
            summary = CaptureSummary(name, path, None, "", 0, 0, None, None, False, e.reason)
            self.run.records.captures.append(summary)
            return summary
        summary = self.add_reader(reader, name, path, progress)
        self._digest(path, reader)
        return summary

    def _digest(self, path: str, reader: CaptureReader) -> None:
        """The file's SHA-256 into the records, if it was taken (read to the end, see `open_capture`)."""
        if reader.sha256 is not None:
            self.run.records.digests[path] = reader.sha256

    def add_reader(self, reader: CaptureReader, name: str, path: str, progress: Tick | None = None) -> CaptureSummary:
        """Analyse the frames of one reader (a file's, or any packet source's, see `analyzer.packets`)
        as one capture named `name`; the reader is closed at the end."""
        conv = self.conversations = Conversations(self.run, name)
        decoder = PacketDecoder(self.run.selector, Defragmenter(self.run.limits))
        error: str | None = None
        tick = None if progress is None else (lambda: progress(reader.position()))
        try:
            self._select(conv, decoder, reader, tick)
        except (OSError, zlib.error) as e:  # zlib.error: corrupt compressed data (found by fuzzing)
            error = f"read error after frame {reader.frames}: {e}"
        except EOFError:
            reader.truncated = reader.truncated or f"compressed file ends early, after frame {reader.frames}"
        finally:
            self.open_at_end = conv.open_keys()
            conv.close_all("capture_end")
            reader.close()
        if progress is not None:
            progress(reader.position())
        summary = self._summary(name, path, reader, decoder.first_ts, decoder.last_ts, error)
        self._defrag_notes(conv, decoder.defrag)
        self.run.records.captures.append(summary)
        return summary

    def add_session(self, members: list[Member], progress: Tick | None = None) -> list[CaptureSummary]:
        """Analyse the files of one capture session as one stream: nothing is closed at a file
        boundary. Records name the session's first file until `analyzer.capture.localise` maps their frames
        back to the file (and frame in it) where each fell."""
        fmap = FrameMap(members[0].name)
        source = SessionFrames(members, fmap, hashed=self.run.digests)
        conv = self.conversations = Conversations(self.run, fmap.session)
        decoder = PacketDecoder(self.run.selector, Defragmenter(self.run.limits))
        tick = None if progress is None else (lambda: progress(source.position()))
        try:
            self._select(conv, decoder, source, tick)  # its batches: the batched path
        finally:
            self.open_at_end = conv.open_keys()
            conv.close_all("capture_end")
            source.close()
        records = self.run.records
        records.frame_maps[fmap.session] = fmap
        out = []
        for i, m in enumerate(members):
            reader = source.readers.get(i)
            if reader is None:
                summary = CaptureSummary(m.name, m.path, None, "", 0, 0, None, None, False, source.errors.get(i))
            else:
                first, last, error = source.first_ts.get(i), source.last_ts.get(i), source.errors.get(i)
                summary = self._summary(m.name, m.path, reader, first, last, error)
                self._digest(m.path, reader)
            records.captures.append(summary)
            out.append(summary)
        self._defrag_notes(conv, decoder.defrag)
        return out

    def _select(
        self, conv: Conversations, decoder: PacketDecoder, frames: Iterable[RawFrame], tick: Callable[[], None] | None
    ) -> None:
        """The per-packet loop: every selected packet to its transport, internal errors reported; runs
        of plain SYNs to the well-known ports opened in bulk (`pipeline.syn_runs`), unless a filter
        decides which flows are followed."""
        strict = self.run.strict
        self._selected = 0
        if self.run.follow is None:
            decoder.syn_ports = port_table(KINDS)
            decoder.syn_sink = lambda run: self._syns(conv, run)
        tcp, udp, every = conv.tcp, conv.udp, _EXPIRE_EVERY  # looked up once, not per packet
        for frame, ts, pkt in decoder.select(frames, tick):
            try:
                if pkt.proto == PROTO_TCP:
                    tcp(pkt, frame, ts)
                else:
                    udp(pkt, frame, ts)
            except Exception as e:  # a bug, not bad input: report it and carry on
                if strict:
                    raise
                conv.collector.internal_error(frame, e)
            self._selected += 1
            if not self._selected % every:
                conv.expire(ts)

    def _syns(self, conv: Conversations, run: SynRun) -> int:
        """A run of plain SYNs: taken as the packets they are (counted, swept after the same ones),
        until the selector's ports change; how many were taken. The cyclic collector waits while a
        run is opened (see `analyzer.bounded.no_collections`)."""
        done = 0
        while done < len(run.frames):
            sweep_in = _EXPIRE_EVERY - self._selected % _EXPIRE_EVERY
            try:
                with no_collections():
                    took, changed = open_syns(conv, run, done, sweep_in, _EXPIRE_EVERY)
            except Exception as e:  # a bug: reported, and the rest of the run skipped
                if self.run.strict:
                    raise
                conv.collector.internal_error(run.frames[done], e)
                return len(run.frames)
            done += took
            self._selected += took
            if not self._selected % _EXPIRE_EVERY:  # the sweeps passed within closed nothing
                conv.expire(run.ts[done - 1])
            if changed:
                break
        return done

    def _summary(
        self, name: str, path: str, reader: CaptureReader, first_ts: int | None, last_ts: int | None, error: str | None
    ) -> CaptureSummary:
        """A file's captures row, and its file-level violations (link types skipped, truncation)."""
        violations = self.run.records.violations
        frame = reader.frames
        supported = {lt for lt in reader.link_types if lt in SUPPORTED_LINK_TYPES}
        unsupported = sorted(lt for lt in reader.link_types if lt not in SUPPORTED_LINK_TYPES and lt != LINK_NONE)
        if frame and not supported and unsupported and error is None:
            error = "unsupported link type " + listed(unsupported, ", ")
        elif unsupported:
            detail = f"frames of link type {listed(unsupported, ', ')} skipped"
            violations.append(Violation(name, None, None, "capture", "unsupported_link_type", detail))
        if reader.truncated:
            violations.append(Violation(name, None, None, "capture", "truncated", reader.truncated))
        for note_frame, layer, what, detail in reader.notes():  # timestamps out of range, the gzip guard
            violations.append(Violation(name, note_frame, None, layer, what, detail))
        return CaptureSummary(
            capture=name,
            path=path,
            format=reader.format,
            link_types=listed(sorted(reader.link_types), ","),
            frames=frame,
            bytes=reader.bytes_read,
            first_ts=first_ts,
            last_ts=last_ts,
            truncated=reader.truncated is not None,
            error=error,
        )

    def _defrag_notes(self, conv: Conversations, defrag: Defragmenter) -> None:
        """What IP reassembly gave up, reported once at the end of the capture (it has no sink)."""
        if defrag.dropped:
            conv.collector.violation(None, None, "ip", "ip_fragments_dropped", f"{defrag.dropped} incomplete datagrams")
        if defrag.capped:
            detail = (
                f"{defrag.capped} incomplete datagrams given up: {self.run.limits.max_ip_fragment_datagrams} pending"
            )
            conv.collector.counted(defrag.first_capped, "limits", "cap_ip_fragment_datagrams", detail, defrag.capped)
