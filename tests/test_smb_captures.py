"""The SMB parser over the real captures in ../shared/captures: the binds framed from the pipe data match the
tshark truth, and the captures the SMB issue names parse without violations.
"""

from __future__ import annotations

import csv
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from analyzer.limits import Limits
from analyzer.ntlm import NtlmIdentity
from analyzer.smb import PipeKey, SmbConnection

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CAPTURES = SHARED / "captures"


@dataclass
class _CaptureRun:
    names: dict[PipeKey, str] = field(default_factory=dict)
    binds: set[tuple[int, str, int, str, int, int, int, str]] = field(default_factory=set)
    bind_pipes: dict[tuple[int, str, int, str, int, int, int, str], str | None] = field(default_factory=dict)
    pipe_names: set[tuple[str, int, str, int, str]] = field(default_factory=set)
    violations: list[tuple[int, str, str]] = field(default_factory=list)
    streams: dict[tuple[PipeKey, bool, Any], Any] = field(default_factory=dict)
    conn: tuple[str, int, str, int] = ("", 0, "", 0)


class _CaptureEvents:
    """Frames DCE/RPC from pipe data per (key, direction), as the pipeline will."""

    def __init__(self, out: _CaptureRun) -> None:
        self.out = out

    def pipe_open(self, key: PipeKey, name: str, tree: str | None, frame: int, ts: int) -> None:
        self.out.names[key] = name
        c = self.out.conn
        self.out.pipe_names.add((c[0], c[1], c[2], c[3], name.lower()))

    def pipe_data(self, key: PipeKey, from_client: bool, data: bytes, frame: int, ts: int) -> None:
        from analyzer.dcerpc.pdu import Bind
        from analyzer.dcerpc.stream import CoStream

        out = self.out
        # SMB2 keys name a pipe across the channels of a session; SMB1 ones only within a connection.
        sk = (key, from_client, out.conn if key[0] == 1 else None)
        stream = out.streams.get(sk)
        if stream is None:

            def on_pdu(pdu: Any, done: int, ts: int, first: int) -> None:
                if from_client and isinstance(pdu, Bind):
                    conn = out.conn  # the connection whose data completed the PDU
                    for c in pdu.contexts:
                        k = (done, conn[0], conn[1], conn[2], conn[3], pdu.header.call_id, c.ctx_id, c.abstract.uuid)
                        out.binds.add(k)
                        out.bind_pipes[k] = out.names.get(key)

            stream = out.streams[sk] = CoStream(on_pdu, lambda f, w, d, n: None, Limits())
        stream.data(data, frame, ts)

    def pipe_close(self, key: PipeKey, frame: int, ts: int) -> None:
        pass

    def session_identity(self, dialect: int, session_id: int, identity: NtlmIdentity, frame: int) -> None:
        pass

    def encrypted(self, session_id: int, frame: int, ts: int) -> None:
        pass

    def violation(self, frame: int, what: str, detail: str) -> None:
        self.out.violations.append((frame, what, detail))


class _Sink:
    def __init__(
        self, out: _CaptureRun, smb: SmbConnection, from_client: bool, conn: tuple[str, int, str, int]
    ) -> None:
        self.out, self.smb, self.from_client, self.conn = out, smb, from_client, conn

    def data(self, data: bytes, frame: int, ts: int) -> None:
        self.out.conn = self.conn
        self.smb.data(self.from_client, data, frame, ts)

    def gap(self, missing: int, frame: int, ts: int) -> None:
        self.out.conn = self.conn
        self.smb.gap(self.from_client, missing, frame, ts)


def analyse_capture(path: Path) -> tuple[_CaptureRun, list[SmbConnection]]:
    """Every 445/139 connection of a capture through TcpHalf and SmbConnection."""
    from analyzer.capture import PacketDecoder, Selector, open_capture
    from analyzer.capture.decode import ACK, FIN, PROTO_TCP, SYN
    from analyzer.capture.ipfrag import Defragmenter
    from analyzer.tcp import TcpHalf

    out = _CaptureRun()
    events = _CaptureEvents(out)
    limits = Limits()
    selector = Selector()
    selector.tcp_ports.update({445, 139})
    decoder = PacketDecoder(selector, Defragmenter(limits))
    flows: dict[tuple[bytes, int, bytes, int], tuple[SmbConnection, TcpHalf, TcpHalf]] = {}
    frame = 0
    reader = open_capture(str(path))
    try:
        for ts, link, buf, start, end in reader:
            frame += 1
            pkt = decoder.decode(link, buf, start, end, frame, ts)
            if pkt is None or pkt.proto != PROTO_TCP:
                continue
            if pkt.dport in (445, 139):
                fk, from_client = (pkt.src, pkt.sport, pkt.dst, pkt.dport), True
            elif pkt.sport in (445, 139):
                fk, from_client = (pkt.dst, pkt.dport, pkt.src, pkt.sport), False
            else:
                continue
            flow = flows.get(fk)
            if flow is None:
                smb = SmbConnection(events, limits, netbios=fk[3] == 139)
                desc = (str(ipaddress.ip_address(fk[0])), fk[1], str(ipaddress.ip_address(fk[2])), fk[3])
                flow = flows[fk] = (
                    smb,
                    TcpHalf(_Sink(out, smb, True, desc), limits),
                    TcpHalf(_Sink(out, smb, False, desc), limits),
                )
            smb, c2s, s2c = flow
            half, other = (c2s, s2c) if from_client else (s2c, c2s)
            seq = pkt.seq
            if pkt.flags & SYN:
                half.syn(seq)
                seq = (seq + 1) & 0xFFFFFFFF
            if pkt.flags & ACK:
                other.peer_ack(pkt.ack, frame, ts)
            if pkt.payload or pkt.flags & FIN:
                half.segment(seq, pkt.payload, bool(pkt.flags & FIN), frame, ts)
    finally:
        reader.close()
    for smb, c2s, s2c in flows.values():
        c2s.flush(frame, 0)
        s2c.flush(frame, 0)
        smb.close()
    return out, [f[0] for f in flows.values()]


def _truth_captures() -> list[tuple[Path, list[dict[str, str]]]]:
    truth = CAPTURES / "truth"
    out = []
    for f in sorted(truth.glob("*.binds.csv")):
        with f.open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["transport"] in ("smb", "smb2")]
        if not rows:
            continue
        name = f.name[: -len(".binds.csv")]
        path = CAPTURES / name.replace("__", "/")
        if not path.exists():  # a directory whose name contains "__"
            path = next(
                p
                for p in CAPTURES.rglob("*")
                if p.is_file() and p.relative_to(CAPTURES).as_posix().replace("/", "__") == name
            )
        out.append((path, rows))
    return out


def _bind_key(r: dict[str, str]) -> tuple[int, str, int, str, int, int, int, str]:
    return (
        int(r["frame"]),
        r["src_ip"],
        int(r["src_port"]),
        r["dst_ip"],
        int(r["dst_port"]),
        int(r["call_id"]),
        int(r["ctx_id"]),
        r["if_uuid"],
    )


needs_shared = pytest.mark.skipif(
    not (CAPTURES / "truth").is_dir(), reason="../shared/captures (reference captures with tshark truth) is not present"
)


# The pipe a bind_ack names is the server process's endpoint, which hosts several pipes.
_ENDPOINT_OF_PIPE = {
    "\\pipe\\samr": "\\pipe\\lsass",
    "\\pipe\\lsarpc": "\\pipe\\lsass",
    "\\pipe\\netlogon": "\\pipe\\lsass",
    "\\pipe\\protected_storage": "\\pipe\\lsass",
    "\\pipe\\svcctl": "\\pipe\\ntsvcs",
}


@pytest.mark.shared
@needs_shared
def test_real_captures_binds_over_smb_match_truth() -> None:
    """Every smb/smb2 bind row of the truth (frame, addresses, call_id, ctx_id, interface) is framed
    from our pipe_data, no other bind is, and the pipe we opened for it agrees with the endpoint the
    bind_ack names (\\PIPE\\name, or the process that serves it)."""
    found = total = extra = named = agree = 0
    missing: list[str] = []
    disagree: list[str] = []
    for path, rows in _truth_captures():
        out, conns = analyse_capture(path)
        want = {_bind_key(r) for r in rows}
        total += len(want)
        found += len(want & out.binds)
        extra += len(out.binds - want)
        missing += [f"{path.name}: {k}" for k in sorted(want - out.binds)]
        for r in rows:
            pipe = out.bind_pipes.get(_bind_key(r))
            endpoint = r["ack_sec_addr"].lower()
            if pipe is None or not endpoint:
                continue
            named += 1
            if endpoint in (pipe.lower(), _ENDPOINT_OF_PIPE.get(pipe.lower())):
                agree += 1
            else:
                disagree.append(f"{path.name} frame {r['frame']}: opened {pipe}, bind_ack says {endpoint}")
        assert all(c.peak_buffered < 96 * 1024 for c in conns)
    print(f"\nSMB truth bind rows framed from pipe data: {found}/{total}, extra {extra}")
    print(f"pipe names agreeing with the endpoint its bind_ack names: {agree}/{named}")
    assert not missing, missing[:20]
    assert extra == 0
    assert not disagree, disagree[:20]


@pytest.mark.shared
@needs_shared
@pytest.mark.parametrize(
    "rel",
    [
        "Pcaps/psexec_cmd.pcap",
        "Pcaps/impacket_psexec.pcap",
        "suricata-verify/tests/smb2-07/20171220_smb_psexec_add_user.pcap",
        "snort3_demo/tests/inspectors/dce_smb/ip0-tcp10-smb1-dce10.pcap",
        "PCAP-ATTACK/Lateral_Movement/LM_psexec_smb_dcerpc_epm_svcctl.pcapng",
    ],
)
def test_real_capture_pipes(rel: str) -> None:
    """The captures the issue names: they parse without violations and open the pipes tshark sees."""
    path = CAPTURES / rel
    if not path.exists():
        pytest.skip(f"{rel} is not in ../shared/captures")
    out, _ = analyse_capture(path)
    assert not [v for v in out.violations if v[1] not in ("smb_gap", "smb_resync", "smb_truncated")]
    if "smb1-dce10" in rel:
        assert {n[4] for n in out.pipe_names} and out.binds
    if "psexec_add_user" in rel or "impacket_psexec" in rel:
        assert "\\pipe\\svcctl" in {n[4] for n in out.pipe_names}
