"""Shared fixtures: where ../shared is, and a scapy-built TCP conversation to write captures with.

scapy is the encoder here, independent of the analyzer's decoder, so a test that builds bytes with
it and reads them back checks the parser against someone else's reading of the specs.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from analyzer.pipeline import Pipeline
from analyzer.records import Records

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CAPTURES = SHARED / "captures"
SAMPLES = ROOT / "samples" / "pcaps"

needs_shared = pytest.mark.skipif(
    not CAPTURES.is_dir(),
    reason=f"reference captures not found at {CAPTURES} (clone ../shared beside the repo)",
)

NDR = "8a885d04-1ceb-11c9-9fe8-08002b104860"
NDR64 = "71710533-beba-4937-8319-b5dbef9ccc36"
BTFN = "6cb71c2c-9812-4540-0300-000000000000"
EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
SVCCTL = "367abb81-9844-35f1-ad32-98f038001003"
SAMR = "12345778-1234-abcd-ef00-0123456789ac"


def run(paths: list[str] | list[Path], **kw: Any) -> Records:
    """Analyse with internal errors re-raised: a test must see a bug, not a violation row."""
    return Pipeline(strict=True, **kw).run([str(p) for p in paths])


@dataclass
class Conversation:
    """A TCP connection written as scapy packets: handshake, data both ways with correct
    sequence and acknowledgement numbers, and a close. `packets` is what goes into the pcap."""

    client: str = "10.0.0.5"
    server: str = "10.0.0.10"
    cport: int = 49700
    sport: int = 135
    t: float = 1_700_000_000.0
    cseq: int = 1000
    sseq: int = 5000
    packets: list[Any] = field(default_factory=list)
    ipv6: bool = False

    def _ip(self, from_client: bool) -> Any:
        from scapy.layers.inet import IP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether

        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        ip = IPv6(src=src, dst=dst) if self.ipv6 else IP(src=src, dst=dst)
        return Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02") / ip

    def segment(self, from_client: bool, payload: bytes = b"", flags: str = "PA", seq: int | None = None) -> Any:
        from scapy.layers.inet import TCP

        sport, dport = (self.cport, self.sport) if from_client else (self.sport, self.cport)
        mine = self.cseq if from_client else self.sseq
        theirs = self.sseq if from_client else self.cseq
        pkt = self._ip(from_client) / TCP(
            sport=sport, dport=dport, flags=flags, seq=mine if seq is None else seq, ack=theirs
        )
        if payload:
            pkt = pkt / payload
        self.t += 0.001
        pkt.time = self.t
        return pkt

    def handshake(self) -> Conversation:
        syn = self.segment(True, flags="S")
        syn["TCP"].ack = 0
        self.packets.append(syn)
        self.cseq += 1
        self.packets.append(self.segment(False, flags="SA"))
        self.sseq += 1
        self.packets.append(self.segment(True, flags="A"))
        return self

    def send(self, from_client: bool, payload: bytes, chunks: int = 1) -> Conversation:
        """Send payload in `chunks` segments of about equal size."""
        size = max(1, -(-len(payload) // chunks))
        for i in range(0, len(payload), size):
            part = payload[i : i + size]
            self.packets.append(self.segment(from_client, part))
            if from_client:
                self.cseq += len(part)
            else:
                self.sseq += len(part)
        return self

    def close(self) -> Conversation:
        self.packets.append(self.segment(True, flags="FA"))
        self.cseq += 1
        self.packets.append(self.segment(False, flags="FA"))
        self.sseq += 1
        self.packets.append(self.segment(True, flags="A"))
        return self

    def write(self, path: Path) -> Path:
        from scapy.utils import wrpcap

        wrpcap(str(path), self.packets)
        return path


def write_pcap(path: Path, packets: list[Any]) -> Path:
    from scapy.utils import wrpcap

    wrpcap(str(path), packets)
    return path


# -- DCE/RPC PDUs built with scapy ---------------------------------------------------------------


def U(text: str) -> uuid.UUID:
    return uuid.UUID(text)


def bind(call_id: int, items: list[tuple[int, str, int, list[str]]], alter: bool = False, **hdr: Any) -> bytes:
    """A bind (or alter_context) with context items (ctx_id, interface uuid, major, transfer syntaxes)."""
    from scapy.layers.dcerpc import (
        DceRpc5,
        DceRpc5AbstractSyntax,
        DceRpc5AlterContext,
        DceRpc5Bind,
        DceRpc5Context,
        DceRpc5TransferSyntax,
    )

    ctx = [
        DceRpc5Context(
            cont_id=cid,
            abstract_syntax=DceRpc5AbstractSyntax(if_uuid=U(iface), if_version=major),
            transfer_syntaxes=[DceRpc5TransferSyntax(if_uuid=U(t), if_version=2 if t == NDR else 1) for t in ts],
        )
        for cid, iface, major, ts in items
    ]
    body = (DceRpc5AlterContext if alter else DceRpc5Bind)(max_xmit_frag=5840, max_recv_frag=5840, context_elem=ctx)
    return bytes(DceRpc5(call_id=call_id, **hdr) / body)


def bind_ack(
    call_id: int,
    results: list[tuple[int, int, str]],
    sec_addr: bytes = b"135\x00",
    alter: bool = False,
    **hdr: Any,
) -> bytes:
    """A bind_ack (or alter_context_resp) with results (result, reason, transfer syntax)."""
    from scapy.layers.dcerpc import (
        DceRpc5,
        DceRpc5AlterContextResp,
        DceRpc5BindAck,
        DceRpc5PortAny,
        DceRpc5Result,
        DceRpc5TransferSyntax,
    )

    res = [
        DceRpc5Result(result=r, reason=why, transfer_syntax=DceRpc5TransferSyntax(if_uuid=U(t), if_version=2))
        for r, why, t in results
    ]
    cls = DceRpc5AlterContextResp if alter else DceRpc5BindAck
    return bytes(DceRpc5(call_id=call_id, **hdr) / cls(sec_addr=DceRpc5PortAny(port_spec=sec_addr), results=res))


def request(call_id: int, opnum: int, stub: bytes, ctx_id: int = 0, flags: int = 3, **hdr: Any) -> bytes:
    from scapy.layers.dcerpc import DceRpc5, DceRpc5Request

    return bytes(
        DceRpc5(call_id=call_id, pfc_flags=flags, **hdr)
        / DceRpc5Request(opnum=opnum, cont_id=ctx_id, alloc_hint=len(stub))
        / stub
    )


def response(call_id: int, stub: bytes, ctx_id: int = 0, flags: int = 3, **hdr: Any) -> bytes:
    from scapy.layers.dcerpc import DceRpc5, DceRpc5Response

    return bytes(
        DceRpc5(call_id=call_id, pfc_flags=flags, **hdr) / DceRpc5Response(cont_id=ctx_id, alloc_hint=len(stub)) / stub
    )


def fault(call_id: int, status: int, **hdr: Any) -> bytes:
    from scapy.layers.dcerpc import DceRpc5, DceRpc5Fault

    return bytes(DceRpc5(call_id=call_id, **hdr) / DceRpc5Fault(status=status))


def split_points(data: bytes, rnd: random.Random, n: int) -> Iterator[bytes]:
    """data cut at n random points."""
    cuts = sorted(rnd.sample(range(1, len(data)), min(n, len(data) - 1))) if len(data) > 1 else []
    prev = 0
    for c in [*cuts, len(data)]:
        yield data[prev:c]
        prev = c


# -- golden files ----------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.csv from the current analyzer instead of comparing with them",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was asked to regenerate the golden files (review them as a diff)."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="module")
def cut_in_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """epm_map_session.pcap in two independent files: the EPM answer (frames 1-12),
    then the connection to the port it announced (13-). Used by tests/test_multicore.py and
    test_parallel_merge.py."""
    if shutil.which("editcap") is None:
        pytest.skip("editcap not installed")
    out = tmp_path_factory.mktemp("cut")
    src = str(SAMPLES / "epm_map_session.pcap")
    subprocess.run(["editcap", "-r", src, str(out / "announce.pcap"), "1-12"], check=True)
    subprocess.run(["editcap", "-r", src, str(out / "use.pcap"), "13-1000"], check=True)
    return out
