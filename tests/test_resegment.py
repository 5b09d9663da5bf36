"""Every stream parser fed whole and byte by byte gives the same records.

Each bundled TCP sample is rewritten so that every TCP payload byte travels in a segment of its own
(same sequence numbers, same times), then analysed again. TCP reassembly, DCE/RPC framing, SMB,
RPC over HTTP and the associations then see every PDU split at every possible point; the records must
not change, except for the frame numbers, which are the rewritten file's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analyzer.records import Records
from tests.conftest import SAMPLES, run, write_pcap

# Samples whose TCP segments can be cut freely (not IP-fragmented, not cut by the file's end).
CASES = [
    "epm_map_session.pcap",
    "epm_lookup_dump.pcap",
    "tcp_segmentation.pcap",
    "multifrag_calls.pcap",
    "smb2_pipes.pcap",
    "smb1_pipe.pcap",
    "netbios139.pcap",
    "rpc_http_v1.pcap",
    "rpc_http_v2.pcap",
    "vlan_qinq.pcap",
    "ipv6_session.pcap",
]


def byte_by_byte(path: Path, out: Path) -> Path:
    from scapy.layers.inet import TCP
    from scapy.packet import Raw
    from scapy.utils import rdpcap

    packets = []
    for pkt in rdpcap(str(path)):
        # The payload as bytes: scapy may have dissected it (its DCE/RPC layers bind port 135).
        data = bytes(pkt[TCP].payload) if TCP in pkt else b""
        if len(data) <= 1:
            packets.append(pkt)
            continue
        for i in range(len(data)):
            one = pkt.copy()
            one[TCP].remove_payload()
            one[TCP].seq = (pkt[TCP].seq + i) & 0xFFFFFFFF
            one = one / Raw(load=data[i : i + 1])
            for layer in ("IP", "IPv6", "TCP"):
                if layer in one:
                    for field in ("len", "plen", "chksum"):
                        if field in one[layer].fields:
                            del one[layer].fields[field]
            one.time = pkt.time
            packets.append(one)
    return write_pcap(out, packets)


def content(r: Records) -> dict[str, list[tuple[Any, ...]]]:
    """The records without frame numbers (the rewritten file has more frames)."""

    def flow(f: Any) -> tuple[Any, ...]:
        return (f.transport, f.client_ip, f.client_port, f.server_ip, f.server_port, f.pipe)

    return {
        "binds": sorted(
            (
                *flow(b.flow),
                b.pdu_type,
                b.call_id,
                b.ctx_id,
                b.interface_uuid,
                b.if_major,
                b.ack_result,
                b.ack_reason,
                b.sec_addr,
                b.auth_type,
                b.identified_by,
            )
            for b in r.binds
        ),
        "calls": sorted(
            (
                *flow(c.flow),
                c.call_id,
                c.opnum,
                c.interface_uuid,
                c.interface_source,
                c.request_bytes,
                c.request_fragments,
                c.response_bytes,
                c.fault_status,
                c.answered,
                c.user,
                c.encrypted,
            )
            for c in r.calls
        ),
        "endpoints": sorted(
            (
                *flow(e.flow),
                e.call_id,
                e.tower_index,
                e.interface_uuid,
                e.protocol,
                e.port,
                e.host,
                e.pipe,
                e.annotation,
            )
            for e in r.endpoints
        ),
    }


@pytest.mark.parametrize("name", CASES)
def test_byte_by_byte_gives_the_same_records(name: str, tmp_path: Path) -> None:
    whole = run([SAMPLES / name])
    split = run([byte_by_byte(SAMPLES / name, tmp_path / name)])
    a, b = content(whole), content(split)
    assert a["binds"] or a["calls"], "the sample has something to compare"
    assert b == a
