"""The record collector: the sink every parsing layer of one capture writes into.

`Collector` is the `analyzer.model.RecordSink` of a capture: binds, calls, datagrams, endpoints,
violations, connection and attempt rows go to the run's `Records` (the spool). Two kinds of record
also teach the run where interfaces listen, and are passed on to the `EndpointLearner` after being
kept: an EPM answer's towers (`endpoint`) and an accepted bind_ack's secondary address (`bind`).
"""

from __future__ import annotations

import traceback
from typing import Any, Protocol

from analyzer.capture.syns import SynArrays, dotted
from analyzer.model import (
    CallRecord,
    ConnectionRecord,
    DatagramRecord,
    EndpointRecord,
    Flow,
    Violation,
)
from analyzer.pipeline.learn import EndpointLearner
from analyzer.records import Records


class HasRecords(Protocol):
    """Where the records go: the run (`analyzer.pipeline.state.Run`), whose `Records` a caller may
    swap between packets (`analyzer.packets` drains them)."""

    records: Records


class Collector:
    """The records of one capture (a file, or a session of files), named `capture`."""

    __slots__ = ("_learner", "_run", "capture")

    def __init__(self, run: HasRecords, capture: str, learner: EndpointLearner) -> None:
        self._run = run
        self._learner = learner
        self.capture = capture

    def bind_row(self, row: tuple[Any, ...]) -> None:
        """A bind item as its row (`co_bind.bind_rows`): spooled as the tuple it is."""
        self._run.records.binds.add_row(row)
        self._learner.bind_ack(self, row)

    def call(self, rec: CallRecord) -> None:
        self._run.records.calls.append(rec)

    def call_row(self, row: tuple[Any, ...]) -> None:
        self._run.records.calls.add_row(row)

    def datagram(self, rec: DatagramRecord) -> None:
        records = self._run.records
        if records.keep_datagrams:  # opt-in: no table reads them (see Records)
            records.datagrams.append(rec)

    def endpoint(self, rec: EndpointRecord) -> None:
        self._run.records.endpoints.append(rec)
        self._learner.epm_tower(self, rec)

    def connection(self, rec: ConnectionRecord) -> None:
        self._run.records.connections.append(rec)

    def connection_row(self, row: tuple[Any, ...]) -> None:
        """A connections row as a tuple of a `ConnectionRecord`'s fields (`TcpConnection.row`)."""
        self._run.records.connections.add_row(row)

    def attempt(
        self, frame: int, ts: int, client_ip: str, client_port: int, server_ip: str, server_port: int, outcome: str
    ) -> None:
        """An attempts row: the fields of an `AttemptRecord` after its capture, spooled as a tuple (a
        SYN flood makes a million of them)."""
        self._run.records.attempts.add(self.capture, frame, ts, client_ip, client_port, server_ip, server_port, outcome)

    def syn_only_attempts(self, syns: SynArrays) -> None:
        """The syn_only attempts rows of SYNs of a run (`capture.syns`), as one batch of columns made
        from its arrays (no Python value per row)."""
        import pyarrow as pa

        src, dst = dotted(syns.src_octets), dotted(syns.dst_octets)
        frames, ts, sport, dport = (pa.array(values) for values in (syns.frames, syns.ts, syns.sport, syns.dport))
        self.attempt_columns(frames, ts, src, sport, dst, dport)

    def attempt_columns(
        self,
        frames: list[int] | Any,
        ts: list[int] | Any,
        client_ip: Any,
        client_port: list[int] | Any,
        server_ip: Any,
        server_port: list[int] | Any,
    ) -> None:
        """syn_only attempts rows given as columns (of `attempt`'s fields: lists, or Arrow arrays),
        written as one batch."""
        n = len(frames)
        columns = [[self.capture] * n, frames, ts, client_ip, client_port, server_ip, server_port, ["syn_only"] * n]
        self._run.records.attempts.add_columns(columns)

    def cap_hits(self, stream: int, frames: list[int], what: str, detail: str) -> None:
        """A cap hit once per frame of `frames` (each as `stream_violation` would say it)."""
        log = self._run.records.violations
        log.cap_hits(self.capture, stream if stream >= 0 else None, "limits", what, frames, detail)

    def violation(
        self, flow: Flow | None, frame: int | None, layer: str, what: str, detail: str, count: int = 1
    ) -> None:
        """A violation of a conversation (its stream named), or of the capture when `flow` is None;
        `count` identical ones at once (a run of identical bad PDUs). `stream_violation` written out:
        a cap hit per PDU under a flood comes this way."""
        stream = None if flow is None or flow.stream < 0 else flow.stream
        self._run.records.violations.event(self.capture, stream, layer, what, frame, detail, count)

    def stream_violation(
        self, stream: int, frame: int | None, layer: str, what: str, detail: str, count: int = 1
    ) -> None:
        """A violation of the conversation numbered `stream` (-1: of none, the capture's)."""
        # Aggregated as it comes, no object made unless it is listed: a flood has one per packet or PDU.
        log = self._run.records.violations
        log.event(self.capture, stream if stream >= 0 else None, layer, what, frame, detail, count)

    def counted(self, frame: int | None, layer: str, what: str, detail: str, count: int) -> None:
        """A capture-level violation that stands for `count` occurrences."""
        self._run.records.violations.append(Violation(self.capture, frame, None, layer, what, detail, count=count))

    def internal_error(self, frame: int, e: Exception) -> None:
        """A bug, not bad input: said where, and the run carries on."""
        where = traceback.extract_tb(e.__traceback__)[-1]
        detail = f"{type(e).__name__}: {e} at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}"
        self.violation(None, frame, "internal", "internal_error", detail)
