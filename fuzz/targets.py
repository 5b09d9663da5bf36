"""Fuzz targets, one per parser and one for the whole path, kept out of the fuzzing of the test run
(tests/test_fuzz_targets.py only checks each takes a capture).

Each target takes arbitrary bytes and must return normally: a parser may report violations, never
raise. Run them with `python fuzz/run.py TARGET|all [--seconds N]` (see run.py): with atheris
installed (`pip install -e '.[fuzz]'`) the run is coverage-guided over the instrumented package;
without it, the driver mutates the seeds at random. A crash saves the input under fuzz/crashes/.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

from analyzer import stubs
from analyzer.api import AnalysisResult
from analyzer.capture.decode import PacketDecoder, Selector
from analyzer.capture.ipfrag import Defragmenter
from analyzer.capture.netmon import NetmonReader
from analyzer.capture.pcap import PcapReader
from analyzer.capture.pcapng import PcapngReader
from analyzer.dcerpc import epm
from analyzer.dcerpc.association import Association
from analyzer.dcerpc.cl import ClTracker
from analyzer.dcerpc.decoding import Stubs
from analyzer.dcerpc.pdu import CoPdu
from analyzer.dcerpc.stream import CoStream
from analyzer.dcerpc.wire import Malformed
from analyzer.errors import CaptureError
from analyzer.limits import Limits
from analyzer.model import Flow
from analyzer.pipeline import Pipeline
from analyzer.smb import SmbConnection

LIMITS = Limits()
FLOW = Flow("fuzz", 0, "ncacn_ip_tcp", "10.0.0.1", 50000, "10.0.0.2", 135)


class _Sink:
    """Accepts every record and event; counts nothing."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def co_stream(data: bytes) -> None:
    """Both directions of a connection-oriented conversation, into an association."""
    assoc = Association(FLOW, "fuzz", _Sink(), LIMITS, decoder=stubs.stub_decoder(LIMITS))

    def on_pdu(from_client: bool) -> Callable[[CoPdu, int, int, int], None]:
        return lambda pdu, frame, ts, first: assoc.pdu(from_client, pdu, frame, ts, first)

    client = CoStream(on_pdu(True), lambda *a: None, LIMITS)
    server = CoStream(on_pdu(False), lambda *a: None, LIMITS)
    for i in range(0, len(data), 97):
        (client if (i // 97) % 2 == 0 else server).data(data[i : i + 97], i, i)
        if i % 5 == 3:
            client.gap(7, i, i)
    assoc.close()


def epm_stubs(data: bytes) -> None:
    for parse in (epm.parse_map_response, epm.parse_lookup_response, epm.parse_map_request):
        for little in (True, False):
            with contextlib.suppress(Malformed):
                parse(data, little)


_OPS = sorted(stubs.OPERATIONS)


def stub_decoders(data: bytes) -> None:
    """Every declared operation's decoders on arbitrary stubs: the first two bytes pick the
    operation and the byte order / NDR64 flags, the rest is the request and the response stub.
    A decoder may report violations; a bug (any other exception) raises here."""
    if len(data) < 2:
        return
    uuid, opnum = _OPS[data[0] % len(_OPS)]
    flags, body = data[1], data[2:]
    half = len(body) // 2
    kept = Stubs(
        ndr64=bool(flags & 1),
        request=body[:half],
        request_little=not flags & 2,
        response=body[half:],
        response_little=not flags & 4,
        response_tail=body[-4:],
    )
    stubs.decode(uuid, opnum, kept, stubs.StubState(), strict=True)


def smb(data: bytes) -> None:
    conn = SmbConnection(_Sink(), LIMITS)
    half = len(data) // 2
    conn.data(True, data[:half], 1, 1)
    conn.data(False, data[half:], 2, 2)
    conn.gap(True, 13, 3, 3)
    conn.data(True, data[half // 2 :], 4, 4)
    conn.close()


def connectionless(data: bytes) -> None:
    tracker = ClTracker(
        _Sink(),
        LIMITS,
        lambda ci, cp, si, sp: Flow("fuzz", 0, "ncadg_ip_udp", ci, cp, si, sp),
        decoder=stubs.stub_decoder(LIMITS),
    )
    for i in range(0, len(data), 120):
        tracker.datagram("10.0.0.1", 50000, "10.0.0.2", 135, data[i : i + 120], i, i)
    tracker.close()


def capture_readers(data: bytes) -> None:
    sel = Selector()
    sel.tcp_ports |= {135, 445}
    dec = PacketDecoder(sel, Defragmenter(LIMITS))
    for cls in (PcapReader, PcapngReader, NetmonReader):
        try:
            reader = cls(io.BytesIO(data), "fuzz")
        except CaptureError:
            continue
        try:
            for i, (ts, link, buf, start, end) in enumerate(reader, 1):
                dec.decode(link, buf, start, end, i, ts)
        except CaptureError:
            pass


def pipeline(data: bytes, _path: list[str] = []) -> None:  # noqa: B006 - one temp file for the run
    import tempfile

    if not _path:
        _path.append(tempfile.mkstemp(suffix=".pcap")[1])
    with open(_path[0], "wb") as fh:
        fh.write(data)
    Pipeline(strict=True).add_file(_path[0])


# The writers end_to_end rotates through, one an input: each costs 0.15 to 0.6 s a call (the HTML
# report's plots most), so writing all of them for every input left the target at about 60 executions
# in 40 s; one a call, chosen by the input's CRC so a crash replays with its writer, covers them all.
E2E_WRITERS = ("csv", "jsonl", "parquet", "parquet-partitioned", "zeek", "zeek-json", "html")


def end_to_end(data: bytes, _dirs: list[str] = []) -> None:  # noqa: B006 - one temp dir for the run
    """Bytes -> a capture file -> records -> every table and view -> one writer (of E2E_WRITERS, by the
    input's CRC), the run's summary and the per-host text: the path a user's file takes, where table
    building (timestamps, dtypes, names) can fail too."""
    import os
    import tempfile
    import zlib

    from analyzer.api import from_records

    if not _dirs:
        _dirs.append(tempfile.mkdtemp(prefix="fuzz-e2e-"))
    path = os.path.join(_dirs[0], "input.pcap")
    with open(path, "wb") as fh:
        fh.write(data)
    records = Pipeline(strict=True).run([path])
    result = from_records(records)
    writer = E2E_WRITERS[zlib.crc32(data) % len(E2E_WRITERS)]
    if writer == "html":
        result.html()
    elif writer == "parquet-partitioned":  # the layout of --scheduler runs: a dataset per table
        result.write(os.path.join(_dirs[0], writer), "parquet", partitioned=True)
    else:
        result.write(os.path.join(_dirs[0], writer), writer)
    _terminal_text_is_printable(result, writer)
    records.close()


def _terminal_text_is_printable(result: AnalysisResult, fmt: str) -> None:
    """What reaches a terminal (the run's summary, the per-host text) is printable line by line,
    whatever the wire held: an AssertionError, which the fuzzer counts as a find, otherwise."""
    from pathlib import Path

    from rich.console import Console

    from analyzer.report.summary import print_summary

    shown = io.StringIO()  # not a terminal: rich adds no escapes of its own, so any would be the data's
    print_summary(result, Path("out"), fmt, Console(file=shown, width=160, highlight=False))
    for text in (shown.getvalue(), result.hosts_text()):
        bad = next((line for line in text.split("\n") if not line.isprintable()), None)
        if bad is not None:
            raise AssertionError(f"terminal text not printable: {bad!r}")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "co_stream": co_stream,
    "epm": epm_stubs,
    "stubs": stub_decoders,
    "smb": smb,
    "cl": connectionless,
    "capture": capture_readers,
    "pipeline": pipeline,
    "end_to_end": end_to_end,
}
