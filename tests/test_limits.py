"""One vocabulary for caps ([analyzer.limits]): every cap a `Limits` field with a reporter, hitting
one is `cap_<field>`, and the caps that used to be silent or misnamed now say so."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import analyzer
from analyzer.limits import CAP_CODES, CAPTURE, CONNECTION, OUTPUT, THRESHOLD, TIMEOUT, Limits, cap_code, cap_fields
from tests.conftest import EPM, NDR, SAMPLES, Conversation, bind, bind_ack, request, run, write_pcap
from tests.epm_build import map_request

PACKAGE = Path(analyzer.__file__).parent


def _string_constants() -> set[str]:
    out: set[str] = set()
    for mod in PACKAGE.rglob("*.py"):
        if mod.name == "limits.py":
            continue
        tree = ast.parse(mod.read_text())
        slots = {
            id(c)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__slots__" for t in node.targets)
            for c in ast.walk(node.value)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in slots:
                out.add(node.value)
    return out


def test_every_limits_field_is_a_documented_cap_timeout_or_output_setting() -> None:
    doc = Limits.__doc__ or ""
    for f in fields(Limits):
        assert f.metadata.get("kind") in (CONNECTION, CAPTURE, TIMEOUT, OUTPUT, THRESHOLD), f.name
        assert f"{f.name}:" in doc, f"{f.name} has no line in the Limits docstring"
        assert (f.metadata["kind"] == TIMEOUT) == f.name.endswith("_timeout_s"), f.name


def test_every_cap_has_a_reporter() -> None:
    """Each cap's code is emitted somewhere outside limits.py: a cap nobody reports is silent."""
    strings = _string_constants()
    silent = sorted(code for code in cap_fields().values() if code not in strings)
    assert not silent, f"caps without a reporter: {silent}"


def test_no_cap_code_outside_the_vocabulary() -> None:
    strays = sorted(s for s in _string_constants() if s.startswith(("cap_", "smb_cap")) and s not in CAP_CODES)
    assert not strays, f"cap codes that are not Limits fields: {strays}"
    assert cap_code("max_tcp_flows") == "cap_tcp_flows" and "cap_smb_pending" in CAP_CODES


def _ooo(tmp_path: Path, limits: Limits) -> list[str]:
    """A client that sends segments past a hole which never fills."""
    c = Conversation(sport=135).handshake()
    c.send(True, bind(1, [(0, EPM, 3, [NDR])]))
    base = c.cseq
    packets = list(c.packets)
    for i in range(1, 6):  # bytes base .. base+9 never arrive
        packets.append(c.segment(True, b"x" * 10, seq=base + 10 * i))
    r = run([write_pcap(tmp_path / "ooo.pcap", packets)], limits=limits)
    (conn,) = r.connections
    return [v.what for v in r.violations if v.layer in ("tcp", "limits")] + [f"gaps={conn.gaps}"]


def test_an_out_of_order_buffer_given_up_is_a_cap_not_a_gap(tmp_path: Path) -> None:
    capped = _ooo(tmp_path, Limits(max_ooo_segments=2))
    assert capped[0] == "cap_ooo_segments" and "tcp_gap" not in capped and capped[-1] == "gaps=0"
    # Without the cap the same hole is given up at the end of the capture: a real gap.
    lost = _ooo(tmp_path, Limits())
    assert lost == ["tcp_gap", "gaps=1"]


def _epm_calls(tmp_path: Path, n: int, stub: int) -> Path:
    c = Conversation(sport=135).handshake()
    c.send(True, bind(1, [(0, EPM, 3, [NDR])]))
    c.send(False, bind_ack(1, [(0, 0, NDR)]))
    body = map_request(EPM, 3)
    for call_id in range(2, n + 2):
        c.send(True, request(call_id, 3, body + b"\0" * (stub - len(body))))
    return write_pcap(tmp_path / "epm.pcap", c.packets)


def test_stub_bytes_kept_by_pending_calls_are_capped_per_association(tmp_path: Path) -> None:
    """EPM calls keep their stubs for decoding; unanswered, their sum is bounded, and reported once."""
    path = _epm_calls(tmp_path, n=12, stub=2000)
    r = run([path], limits=Limits(max_held_stub_bytes=5000))
    (v,) = [v for v in r.violations if v.what == "cap_held_stub_bytes"]
    assert v.count == 10 and v.stream == 0  # two stubs fit, the other ten are not kept
    assert len(r.calls) == 12  # the calls themselves are all there
    assert not [v for v in run([path]).violations if v.what.startswith("cap_")]


def test_learned_endpoints_cap_is_reported(tmp_path: Path) -> None:
    """bind_acks naming secondary addresses teach ports; past the cap the oldest is forgotten, said once."""
    packets = []
    for i in range(4):
        c = Conversation(cport=50000 + i, sport=135, t=1_700_000_000.0 + i).handshake()
        c.send(True, bind(1, [(0, EPM, 3, [NDR])]))
        c.send(False, bind_ack(1, [(0, 0, NDR)], sec_addr=str(49700 + i).encode() + b"\0"))
        packets += c.packets
    r = run([write_pcap(tmp_path / "learn.pcap", packets)], limits=Limits(max_learned_endpoints=2))
    (v,) = [v for v in r.violations if v.what == "cap_learned_endpoints"]
    assert v.count == 2 and v.stream is None


def test_data_quality_counts_caps_by_the_limits_vocabulary() -> None:
    """An SMB cap (once `smb_cap_*`, uncounted) is a cap hit like any other."""
    res = analyzer.analyze([SAMPLES / "smb2_pipes.pcap"], limits=Limits(max_smb_pipes=1))
    hits = res.violations.loc[res.violations["what"].isin(CAP_CODES), "occurrences"].sum()
    assert hits >= 1 and "cap_smb_pipes" in set(res.violations["what"])
    dq = res.data_quality
    assert dq.loc[dq["scope"] == "capture", "caps_hit"].sum() == hits


def test_readme_limits_section_lists_every_field_with_its_code() -> None:
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme.split("\n## Limits\n", 1)[1].split("\n## ", 1)[0]
    for f in fields(Limits):
        assert f"| `{f.name}` |" in section, f.name
        if f.metadata["kind"] in (CONNECTION, CAPTURE):
            assert f"`{cap_code(f.name)}`" in section, f.name


def test_answers_waiting_for_their_requests_are_capped(tmp_path: Path) -> None:
    """Responses whose requests are not in the capture wait, bounded; the oldest is given up, said."""
    from tests.conftest import response

    c = Conversation(sport=135).handshake()
    c.send(True, bind(1, [(0, EPM, 3, [NDR])]))
    c.send(False, bind_ack(1, [(0, 0, NDR)]))
    for call_id in range(2, 12):
        c.send(False, response(call_id, b"\0" * 8))
    r = run([write_pcap(tmp_path / "early.pcap", c.packets)], limits=Limits(max_early_answers=3))
    (v,) = [v for v in r.violations if v.what == "cap_early_answers"]
    assert v.count == 7 and v.stream == 0


def test_ip_fragment_cap_is_one_row_per_capture(tmp_path: Path) -> None:
    """First fragments of datagrams that never complete: past the cap the oldest is given up."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    packets = []
    for ident in range(1, 6):
        p = Ether() / IP(src="10.0.0.5", dst="10.0.0.10", id=ident, flags="MF", frag=0) / UDP(sport=1000, dport=135)
        p = p / (b"\x04" * 64)
        p.time = 1_700_000_000.0 + ident
        packets.append(p)
    r = run([write_pcap(tmp_path / "frag.pcap", packets)], limits=Limits(max_ip_fragment_datagrams=2))
    (v,) = [v for v in r.violations if v.what == "cap_ip_fragment_datagrams"]
    assert (v.count, v.stream, v.frame) == (3, None, 3)
