"""The `Pipeline` facade over a run (`analyzer.pipeline.state.Run`: what lives across files).

`Pipeline` is the public face:
`Pipeline(limits, strict).run(paths, progress)` reads files, directories and globs, a capture
session of several files as one stream; `add_file`, `add_reader` and `add_session` read one
capture (see `analyzer.pipeline.files`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable

from analyzer.bounded import fewer_collections
from analyzer.capture.reader import CaptureReader
from analyzer.capture.session import Member, expand_globs, sessions
from analyzer.capture.source import expand_paths
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.model import CaptureSummary
from analyzer.pipeline.classify import FlowFilter
from analyzer.pipeline.files import FileLoop, Tick
from analyzer.pipeline.flow_table import FlowKey
from analyzer.pipeline.state import Run
from analyzer.records import Records

# progress(bytes of the input consumed so far, files finished so far)
Progress = Callable[[int, int], None]


class Pipeline:
    """Runs captures through the layers and collects records. Use `run()` or `add_file()`.
    `follow`, when given, decides which new TCP flows are followed (see `classify.FlowFilter`);
    `datagrams` spools a record per connectionless PDU (off: no table reads them, see `Records`);
    `digests` takes each input file's SHA-256 as it is read, into `records.digests` (for manifest.json)."""

    def __init__(
        self,
        limits: Limits = DEFAULT_LIMITS,
        strict: bool = False,
        follow: FlowFilter | None = None,
        datagrams: bool = False,
        digests: bool = False,
    ) -> None:
        self._run = Run(limits, strict, follow, datagrams, digests)
        self._files = FileLoop(self._run)

    @property
    def limits(self) -> Limits:
        return self._run.limits

    @property
    def records(self) -> Records:
        return self._run.records

    @records.setter
    def records(self, records: Records) -> None:  # analyzer.packets hands over a fresh one between packets
        self._run.records = records

    @property
    def open_at_end(self) -> list[FlowKey]:
        """The keys of the TCP connections still followed when the last capture ended."""
        return self._files.open_at_end

    @property
    def files(self) -> FileLoop:
        """The file loop (its `conversations` are those of the capture being read)."""
        return self._files

    def run(self, paths: Iterable[str], progress: Progress | None = None) -> Records:
        """Analyse files, directories and globs; files of one capture session (see
        `analyzer.capture.session`) are read as one stream. `progress` gets the bytes consumed so far."""
        files = [p for p, _explicit in expand_paths(expand_globs(paths))]
        done = index = 0
        with fewer_collections():  # flows leave cyclic garbage: see analyzer.bounded
            for members in sessions(files):
                step = None if progress is None else (lambda pos, base=done, i=index: progress(base + pos, i))
                if len(members) > 1:
                    self.add_session(members, progress=step)
                else:
                    self.add_file(members[0].path, progress=step)
                for m in members:
                    index += 1
                    with contextlib.suppress(OSError):
                        done += os.path.getsize(m.path)
                if progress is not None:
                    progress(done, index)
        return self.records

    def add_session(self, members: list[Member], progress: Tick | None = None) -> list[CaptureSummary]:
        return self._files.add_session(members, progress)

    def add_file(self, path: str, name: str | None = None, progress: Tick | None = None) -> CaptureSummary:
        return self._files.add_file(path, name, progress)

    def add_reader(self, reader: CaptureReader, name: str, path: str, progress: Tick | None = None) -> CaptureSummary:
        return self._files.add_reader(reader, name, path, progress)
