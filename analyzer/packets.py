"""Any packet source as a capture: an iterable of frames, or frames fed one at a time.

`PacketSource` turns an iterable into the reader the pipeline reads files with, so the records are
those `analyze()` gives for the same frames in a file. An item may be:
- `(timestamp, frame_bytes)`: what `dpkt.pcap.Reader` and `dpkt.pcapng.Reader` yield (and most libpcap
  bindings); `(timestamp, frame_bytes, link_type)` sets the link type per frame;
- `(frame_bytes, metadata)`: what scapy's `RawPcapReader` (metadata `sec`, `usec`) and
  `RawPcapNgReader` (`tshigh`, `tslow`, `tsresol`, `linktype`) yield.
Timestamps: float or `Decimal` seconds (a float carries about a microsecond's precision: its shortest
decimal form is taken, which is exact for microsecond captures), or integer nanoseconds (an integer
below 10^11 is read as seconds).

`PacketFeed` is the incremental form for long-running use: `feed(ts, frame)` as packets arrive,
`drain()` for the records completed so far (a conversation's records appear when it completes, as
Zeek's logs do), `records()` to finish. It runs the same pipeline in a worker thread fed through a
bounded queue, so a slow analysis holds back the feeder rather than growing memory.
"""

from __future__ import annotations

import inspect
import io
import queue
import threading
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from analyzer.capture.reader import CaptureReader, RawFrame
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.pipeline import Pipeline
from analyzer.records import Records

FORMAT = "packets"  # the captures table's `format` for a packet source
_NS = 1_000_000_000
_MAX_TS = 2**63  # nanoseconds a table's time column holds
_SECONDS_BELOW = 10**11  # an integer timestamp below this is seconds, else nanoseconds


def to_ns(ts: Any) -> int:
    """A timestamp as integer nanoseconds since the epoch (see the module docstring for the forms)."""
    if isinstance(ts, bool):
        raise TypeError("a timestamp cannot be a bool")
    if isinstance(ts, int):
        return ts * _NS if abs(ts) < _SECONDS_BELOW else ts
    if isinstance(ts, Decimal):
        return int(ts * _NS)
    if isinstance(ts, float):
        return int(Decimal(repr(ts)) * _NS)
    return int(Decimal(str(ts)) * _NS)


def frame_item(item: Any, link_type: int, nano: bool = False) -> tuple[int, int, bytes]:
    """(ts_ns, link_type, frame bytes) of one item of a packet source; `nano`: scapy's metadata
    `usec` holds nanoseconds (its reader's `nano`, for a nanosecond pcap)."""
    first, second = item[0], item[1]
    if isinstance(first, bytes | bytearray | memoryview):  # scapy's raw readers: (data, metadata)
        meta = second
        if hasattr(meta, "tshigh"):
            if meta.tshigh is None:  # a simple packet block has no timestamp (pcapng 4.4): 0, as the file reader
                return 0, int(getattr(meta, "linktype", link_type)), bytes(first)
            ticks = (int(meta.tshigh) << 32) | int(meta.tslow)
            resol = int(getattr(meta, "tsresol", 1_000_000) or 1_000_000)
            return ticks * _NS // resol, int(getattr(meta, "linktype", link_type)), bytes(first)
        return int(meta.sec) * _NS + int(meta.usec) * (1 if nano else 1000), link_type, bytes(first)
    link = int(item[2]) if len(item) > 2 and item[2] is not None else link_type
    return to_ns(first), link, bytes(second)


class PacketSource(CaptureReader):
    """A reader over an iterable of frames (see the module docstring)."""

    format = FORMAT

    def __init__(self, packets: Iterable[Any], name: str, link_type: int = 1) -> None:
        super().__init__(io.BytesIO(), name)
        self._packets = packets
        self._link_type = link_type
        self._nano = bool(getattr(packets, "nano", False))  # scapy's RawPcapReader on a nanosecond pcap

    def __iter__(self) -> Iterator[RawFrame]:
        link_types = self.link_types
        for item in self._packets:
            try:
                ts, link, buf = frame_item(item, self._link_type, self._nano)
            except (TypeError, ValueError, IndexError, AttributeError, ArithmeticError) as e:
                self.truncated = f"packet {self.frames + 1} is not (timestamp, frame bytes): {type(e).__name__}"
                return
            if not 0 <= ts < _MAX_TS:
                self.truncated = f"packet {self.frames + 1} has a timestamp out of range ({ts} ns)"
                return
            self.frames += 1
            self.bytes_read += len(buf)
            link_types.add(link)
            yield ts, link, buf, 0, len(buf)

    def position(self) -> int:
        return self.bytes_read


def analyze_packets_records(
    packets: Iterable[Any], link_type: int = 1, name: str = "packets", limits: Limits = DEFAULT_LIMITS
) -> Records:
    """The records of a packet source, as `Pipeline.run` gives them for a file."""
    pipeline = Pipeline(limits)
    pipeline.add_reader(PacketSource(packets, name, link_type), name, name)
    return pipeline.records


_STOP = object()


class _Drain:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.records: Records | None = None


class PacketFeed:
    """Feed frames one at a time; the same records as analysing them from a file."""

    def __init__(
        self, link_type: int = 1, name: str = "live", limits: Limits = DEFAULT_LIMITS, backlog: int = 10_000
    ) -> None:
        self.name = name
        self.link_type = link_type
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=backlog)
        self._pipeline = Pipeline(limits)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"rpc-analyzer feed {name}", daemon=True)
        self._thread.start()

    def _items(self) -> Iterator[Any]:
        """What the worker's reader reads: fed frames, with drain requests served between them."""
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, _Drain):
                item.records = _swap(self._pipeline)
                item.done.set()
                continue
            yield item

    def _run(self) -> None:
        try:
            self._pipeline.add_reader(PacketSource(self._items(), self.name, self.link_type), self.name, self.name)
        except BaseException as e:  # reported to the caller of records()
            self._error = e

    def feed(self, ts: Any, frame: bytes, link_type: int | None = None) -> None:
        """One frame and its timestamp (forms as for `PacketSource`)."""
        if self._closed:
            raise RuntimeError("records() was called: this feed is finished")
        while True:
            try:
                self._queue.put((ts, frame, link_type), timeout=0.5)
                return
            except queue.Full:  # backpressure: wait for the worker, unless it has stopped
                if not self._thread.is_alive():
                    raise RuntimeError("the analysis thread stopped") from self._error

    def drain(self) -> Records:
        """The records completed since the last drain (conversations still open go on)."""
        if self._closed:
            return Records()
        request = _Drain()
        self._queue.put(request)
        while not request.done.wait(0.5):
            if not self._thread.is_alive():
                return Records()
        return request.records if request.records is not None else Records()

    def records(self) -> Records:
        """Finish: close every conversation, and return every record not drained before."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._pipeline.records


# Run-wide state a Records may carry besides its record lists (what the run learned about endpoints,
# frame maps of multi-file sessions, whether datagrams are spooled): the next interval's Records shares it.
_SHARED_STATE = ("book", "frame_maps", "keep_datagrams")


def _swap(pipeline: Pipeline) -> Records:
    """Hand the pipeline a fresh Records and return the one it filled (the records completed so far);
    run-wide state is carried over. Called between packets, on the worker thread."""
    old = pipeline.records
    cls: Any = type(old)
    new: Records = cls(pipeline.limits) if "limits" in inspect.signature(cls).parameters else cls()
    for name in _SHARED_STATE:
        if hasattr(old, name):
            setattr(new, name, getattr(old, name))
    pipeline.records = new
    return old
