"""The connectionless tracker and probe against the reference captures: every datagram as the
truth (tshark) lists it, and the probe firing exactly on the truth's datagrams."""

from __future__ import annotations

import csv
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from analyzer.dcerpc.cl import ClTracker
from analyzer.dcerpc.cl_pdu import cl_probe
from analyzer.dcerpc.constants import (
    FAULT,
    REJECT,
    RESPONSE,
)
from analyzer.limits import Limits
from analyzer.model import DatagramRecord, Flow
from analyzer.stubs import stub_decoder
from tests.cl_build import (
    NIL,
    Sink,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CAPTURES = SHARED / "captures"
TRUTH = CAPTURES / "truth"
needs_shared = pytest.mark.skipif(
    not TRUTH.is_dir(), reason=f"reference captures not found at {CAPTURES} (clone ../shared beside the repo)"
)


# -- the reference captures ---------------------------------------------------------------------------


def _truth_files() -> list[Path]:
    # Without ../shared, one placeholder that `needs_shared` skips with its reason.
    return sorted(TRUTH.glob("*.cl.csv")) if TRUTH.is_dir() else [TRUTH / "absent.cl.csv"]


def _capture_of(truth: Path) -> Path:
    return CAPTURES / truth.name[: -len(".cl.csv")].replace("__", "/")


def _udp_payloads(path: Path, probe: Any) -> list[tuple[int, int, str, int, str, int, bytes]]:
    """(frame, ts, src, sport, dst, dport, payload) of the UDP datagrams the decoder selects, with
    ports 135 and 34964 known and `probe` for the others, as the pipeline is to use it."""
    from analyzer.capture import PacketDecoder, Selector, open_capture
    from analyzer.capture.ipfrag import Defragmenter

    sel = Selector()
    sel.udp_ports.update({135, 34964})
    sel.udp_probe = probe
    decoder = PacketDecoder(sel, Defragmenter(Limits()))
    out = []
    reader = open_capture(str(path))
    try:
        for frame, (ts, link, buf, start, end) in enumerate(reader, 1):
            p = decoder.decode(link, buf, start, end, frame, ts)
            if p is None or p.proto != 17:
                continue
            fam = socket.AF_INET if len(p.src) == 4 else socket.AF_INET6
            src, dst = socket.inet_ntop(fam, p.src), socket.inet_ntop(fam, p.dst)
            out.append((frame, ts, src, p.sport, dst, p.dport, bytes(p.payload)))
    finally:
        reader.close()
    return out


Row = tuple[int, str, int, str, int, int, str, int, int, str, str, int, int, str, int, int]


def _truth_rows(truth: Path) -> Counter[Row]:
    with truth.open(newline="") as fh:
        return Counter(
            (
                int(r["frame"]),
                r["src_ip"],
                int(r["src_port"]),
                r["dst_ip"],
                int(r["dst_port"]),
                int(r["pkt_type"]),
                r["if_uuid"].lower(),
                int(r["if_ver"]),
                int(r["opnum"]),
                r["object_uuid"].lower(),
                r["activity_uuid"].lower(),
                int(r["seqnum"]),
                int(r["frag_num"]),
                r["flags1"].lower(),
                int(r["drep_byteorder"]),
                int(r["drep_char"]),
            )
            for r in csv.DictReader(fh)
        )


def _our_row(d: DatagramRecord) -> Row:
    f = d.flow
    client, server = (f.client_ip, f.client_port), (f.server_ip, f.server_port)
    src, dst = (client, server) if d.from_client else (server, client)
    return (
        d.frame,
        *src,
        *dst,
        d.ptype,
        d.interface_uuid,
        d.if_major | d.if_minor << 16,
        d.opnum,
        d.object_uuid or NIL,
        d.activity_uuid,
        d.seqnum,
        d.fragnum,
        f"0x{d.flags1:02x}",
        int(d.little),
        int(d.char_ebcdic),
    )


@needs_shared
@pytest.mark.shared
@pytest.mark.parametrize("truth", _truth_files(), ids=lambda p: p.name)
def test_agrees_with_the_truth(truth: Path) -> None:
    """Every PDU tshark saw is one of our datagram records, field for field, and nothing else is;
    every answer tshark saw answered one of our calls (or its request is not in the capture)."""
    sink = Sink()
    flows: dict[tuple[str, int, str, int], Flow] = {}

    def numbered(ci: str, cp: int, si: str, sp: int) -> Flow:
        key = (ci, cp, si, sp)
        if key not in flows:
            flows[key] = Flow(truth.name, len(flows), "ncadg_ip_udp", ci, cp, si, sp)
        return flows[key]

    tracker = ClTracker(sink, Limits(), numbered, decoder=stub_decoder())
    for frame, ts, src, sport, dst, dport, payload in _udp_payloads(_capture_of(truth), cl_probe):
        tracker.datagram(src, sport, dst, dport, payload, frame, ts)
    tracker.close()
    expected = _truth_rows(truth)
    ours = Counter(_our_row(d) for d in sink.datagrams)
    assert ours - expected == Counter(), "records the truth does not have"
    assert expected - ours == Counter(), "truth rows we did not produce"
    assert not [v for v in sink.violations if v[3] != "answer_without_request"]
    answered = {(c.activity_uuid, c.seqnum) for c in sink.calls if c.answered}
    orphans = {v[4] for v in sink.violations}
    for row in expected:
        if row[5] in (RESPONSE, FAULT, REJECT):
            assert (row[10], row[11]) in answered or f"activity {row[10]} seqnum {row[11]}" in orphans


@needs_shared
@pytest.mark.shared
def test_probe_fires_exactly_on_the_truth_across_all_captures() -> None:
    """Over every UDP payload of every reference capture (DNS, NetBIOS, SSDP, LLMNR, mDNS, QUIC,
    CLDAP, Kerberos, DHCP, NTP, PROFINET ...), the probe fires on the connectionless PDUs tshark
    found and on nothing else."""
    index = CAPTURES / "index.csv"
    if not index.exists():
        pytest.skip(f"{index} is missing")
    with index.open(newline="") as fh:
        paths = [CAPTURES / r["local_path"] for r in csv.DictReader(fh)]
    seen = 0
    for path in paths:
        truth = TRUTH / (path.relative_to(CAPTURES).as_posix().replace("/", "__") + ".cl.csv")
        frames = {row[0] for row in _truth_rows(truth)} if truth.exists() else set()
        try:
            payloads = _udp_payloads(path, lambda buf, start, end: True)
        except Exception as e:  # an unreadable capture is the capture layer's business
            if type(e).__name__ != "CaptureError":
                raise
            continue
        fired = {frame for frame, _ts, _s, _sp, _d, _dp, p in payloads if cl_probe(p, 0, len(p))}
        assert fired == frames, path
        seen += len(payloads)
    assert seen > 10_000
