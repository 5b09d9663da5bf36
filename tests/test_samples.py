"""The bundled samples against their manifests: what the generator put on the wire, known by
construction (samples/expected/*.json, written by samples/make_samples.py with scapy).

For every sample: every recoverable bind, EPM tower, request and connectionless PDU of the manifest
is found with the same frame numbers and values, and nothing is found that the manifest lacks.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from analyzer.model import DatagramRecord
from analyzer.records import Records
from tests.conftest import ROOT, run

EXPECTED = ROOT / "samples" / "expected"
PCAPS = ROOT / "samples" / "pcaps"
MANIFESTS = sorted(EXPECTED.glob("*.json"))


def manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


@cache
def records(name: str) -> Records:
    return run([PCAPS / name], datagrams=True)  # the connectionless PDUs are checked too


def _pipe(name: str | None) -> str | None:
    """The analyzer names pipes canonically, \\PIPE\\name; the manifests by their bare name."""
    return None if name is None else "\\PIPE\\" + name.rsplit("\\", 1)[-1]


def _ids() -> list[str]:
    return [p.name[: -len(".json")] for p in MANIFESTS]


def test_every_sample_has_a_manifest() -> None:
    assert {p.name for p in PCAPS.iterdir()} == {p.name[: -len(".json")] for p in MANIFESTS}


@pytest.mark.parametrize("path", MANIFESTS, ids=_ids())
def test_frames_read(path: Path) -> None:
    m = manifest(path)
    (cap,) = records(m["file"]).captures
    assert cap.frames == m["frame_count"]
    assert cap.truncated == ("truncated" in m["file"])


@pytest.mark.parametrize("path", MANIFESTS, ids=_ids())
def test_binds(path: Path) -> None:
    m = manifest(path)
    want = {
        (
            b["frame"],
            b["client_ip"],
            b["client_port"],
            b["server_ip"],
            b["server_port"],
            b["transport"],
            _pipe(b["pipe"]),
            b["pdu_type"],
            b["call_id"],
            b["ctx_id"],
            b["if_uuid"],
            b["if_version"],
            b["ack_result"],
            b["ack_frame"],
        )
        for b in m["binds"]
        if b.get("recoverable", True)
    }
    got = {
        (
            b.frame,
            b.flow.client_ip,
            b.flow.client_port,
            b.flow.server_ip,
            b.flow.server_port,
            b.flow.transport,
            b.flow.pipe,
            b.pdu_type,
            b.call_id,
            b.ctx_id,
            b.interface_uuid,
            f"{b.if_major}.{b.if_minor}",
            b.ack_result,
            b.ack_frame,
        )
        for b in records(m["file"]).binds
    }
    assert got == want, f"missing {sorted(want - got)[:3]} extra {sorted(got - want)[:3]}"


@pytest.mark.parametrize("path", MANIFESTS, ids=_ids())
def test_epm_towers(path: Path) -> None:
    m = manifest(path)
    want = sorted(
        (
            t["frame"],
            t["call_id"],
            t["opnum"],
            t["tower_index"],
            t["if_uuid"],
            t["protocol"],
            t["port"],
            t["effective_host_ip"] or t["netbios_name"],
            t["pipe"],
            t["annotation"] or None,
        )
        for t in m["epm_towers"]
    )
    got = sorted(
        (
            e.frame,
            e.call_id,
            e.epm_opnum,
            e.tower_index,
            e.interface_uuid,
            e.protocol,
            e.port,
            e.host,
            e.pipe,
            e.annotation,
        )
        for e in records(m["file"]).endpoints
    )
    assert got == want


@pytest.mark.parametrize("path", MANIFESTS, ids=_ids())
def test_requests(path: Path) -> None:
    m = manifest(path)
    want = {}
    for r in m["requests"]:
        if not r.get("recoverable", True):
            continue
        answered = r["response_frame"] is not None and r.get("response_recoverable", True)
        want[
            (r["transport"], r["client_ip"], r["client_port"], r["server_ip"], r.get("activity_uuid"), r["call_id"])
        ] = (
            r["frame"],
            r["opnum"],
            r["if_uuid"],
            r["stub_len"],
            r["response_frame"] if answered else None,
            r["fault_status"],
            r["encrypted"],
            r.get("auth_user") or r.get("smb_user"),
        )
    got = {
        (c.flow.transport, c.flow.client_ip, c.flow.client_port, c.flow.server_ip, c.activity_uuid, c.call_id): (
            c.frame,
            c.opnum,
            c.interface_uuid,
            c.request_bytes,
            c.response_frame,
            c.fault_status,
            c.encrypted,
            c.user,
        )
        for c in records(m["file"]).calls
        if c.flow.transport != "ncadg_ip_udp"  # connectionless calls: see test_connectionless_calls
    }
    assert got == want


@pytest.mark.parametrize("path", [p for p in MANIFESTS if manifest(p)["cl_pdus"]], ids=lambda p: p.name)
def test_connectionless_calls(path: Path) -> None:
    """One call per (activity, sequence number) that sent a request; answered when a response,
    fault or reject with the same activity and sequence number came back."""
    m = manifest(path)
    answered = {(p["activity_uuid"], p["seqnum"]) for p in m["cl_pdus"] if p["ptype_num"] in (2, 3, 6)}
    want = {
        (p["activity_uuid"], p["seqnum"]): (p["opnum"], (p["activity_uuid"], p["seqnum"]) in answered)
        for p in m["cl_pdus"]
        if p["ptype_num"] == 0
    }
    got = {
        (c.activity_uuid, c.seqnum): (c.opnum, c.answered)
        for c in records(m["file"]).calls
        if c.flow.transport == "ncadg_ip_udp"
    }
    assert got == want


@pytest.mark.parametrize("path", MANIFESTS, ids=_ids())
def test_connectionless_pdus(path: Path) -> None:
    m = manifest(path)
    want = sorted(
        (
            p["frame"],
            p["src_ip"],
            p["src_port"],
            p["ptype_num"],
            p["activity_uuid"],
            p["seqnum"],
            p["fragnum"],
            p["opnum"],
            p["if_uuid"],
            p["drep"] == "little",
        )
        for p in m["cl_pdus"]
    )

    def src(d: DatagramRecord) -> tuple[str, int]:
        f = d.flow
        return (f.client_ip, f.client_port) if d.from_client else (f.server_ip, f.server_port)

    got = sorted(
        (d.frame, *src(d), d.ptype, d.activity_uuid, d.seqnum, d.fragnum, d.opnum, d.interface_uuid, d.little)
        for d in records(m["file"]).datagrams
    )
    assert got == want


@pytest.mark.parametrize("path", MANIFESTS, ids=_ids())
def test_ntlm_identities(path: Path) -> None:
    m = manifest(path)
    users = {a["user"] for a in m["ntlm_auth"]}
    seen = {c.user for c in records(m["file"]).calls if c.user}
    assert seen <= users
    if users and m["requests"]:
        assert seen, "an identity was on the wire and reached no call"
