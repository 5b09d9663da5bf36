"""Community ID v1 (seed 0) on connections, binds and calls, against published vectors and tshark."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analyzer
from analyzer.report.flowid import community_id, community_ids, connection_uid, uids
from tests.conftest import SAMPLES


def test_published_vectors() -> None:
    """The Community ID spec's own examples (also in Suricata's and Elastic's tests), both directions."""
    for args in (
        ("tcp", "128.232.110.120", 34855, "66.35.250.204", 80),
        ("tcp", "66.35.250.204", 80, "128.232.110.120", 34855),
    ):
        assert community_id(*args) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert community_id("udp", "192.168.1.52", 54585, "8.8.8.8", 53) == "1:d/FP5EW3wiY1vCndhwleRRKHowQ="
    assert community_id("tcp", "not-an-address", 1, "10.0.0.1", 2) is None


_ADDRESSES = st.one_of(
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str), st.sampled_from(["10.0.0.1", "nope", ""])
)
_PORTS = st.one_of(st.integers(-2, 70000), st.sampled_from([0, 135, 65535]), st.none())


@given(st.sampled_from(["tcp", "udp"]), _ADDRESSES, _PORTS, _ADDRESSES, _PORTS)
def test_community_id_is_the_packages(proto: str, src: str, sport: int, dst: str, dport: int) -> None:
    """Our Community ID (written out for speed, see `flowid.community_id`) is the `communityid`
    package's, for any addresses and ports, including equal addresses, mixed families and bad input."""
    assert community_id.__wrapped__(proto, src, sport, dst, dport) == _package(proto, src, sport, dst, dport)
    assert community_id.__wrapped__(proto, src, sport, src, dport) == _package(proto, src, sport, src, dport)


def _package(proto: str, src: str, sport: int, dst: str, dport: int) -> str | None:
    import communityid

    make = communityid.FlowTuple.make_udp if proto == "udp" else communityid.FlowTuple.make_tcp
    try:
        value: str | None = communityid.CommunityID(seed=0, use_base64=True).calc(make(src, dst, sport, dport))
    except (ValueError, TypeError, communityid.FlowTupleError):
        value = None
    return value


_FLOWS = st.lists(
    st.tuples(
        st.sampled_from(["tcp", "udp", "sctp"]),
        _ADDRESSES,
        _PORTS,
        _ADDRESSES,
        _PORTS,
        st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 1_700_000_000_000_000_000]), st.none()),
    ),
    min_size=1,
    max_size=40,
)


@settings(deadline=None)
@given(_FLOWS)
def test_bulk_flow_ids_are_the_one_flow_ones(flows: list[tuple[str, str, int, str, int, int]]) -> None:
    """`uids` and `community_ids` (a chunk's distinct flows at once, for speed) give what
    `connection_uid` and `community_id` give each flow, None included, in order."""
    columns = [list(c) for c in zip(*flows, strict=True)]
    assert uids(*columns).to_pylist() == [connection_uid(*f) for f in flows]
    assert community_ids(*columns[:5]).to_pylist() == [community_id.__wrapped__(*f[:5]) for f in flows]


_TRANSPORTS = st.sampled_from(["ncacn_ip_tcp", "ncadg_ip_udp", "ncacn_np", "ncacn_http"])
_ARROW_FLOWS = st.lists(
    st.tuples(
        st.one_of(_TRANSPORTS, st.none()),
        st.one_of(_ADDRESSES, st.none(), st.sampled_from(["10.0.0.1\x00", "::ffff:1.2.3.4", "1.2.3.4 "])),
        st.one_of(st.integers(-(2**63), 2**63 - 1), _PORTS),
        st.one_of(_ADDRESSES, st.none(), st.text(max_size=70)),
        _PORTS,
        st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 1_700_000_000_000_000_000]), st.none()),
    ),
    max_size=40,
)


@pytest.mark.parametrize("in_c", [True, False])
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # set once, the same each input
@given(flows=_ARROW_FLOWS, start=st.integers(0, 5), repeat=st.integers(1, 3))
def test_flow_id_arrays_are_the_one_flow_ones(
    flows: list[tuple[str | None, str | None, int | None, str | None, int | None, int | None]],
    start: int,
    repeat: int,
    in_c: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`uid_array` and `community_id_array` (what the tables call: in C from Arrow buffers where
    analyzer/report/_flowid.c is built, else through the bulk Python) give what `connection_uid` and
    `community_id` give each flow, missing values and bad addresses included, for a sliced array
    too, and for runs of rows of one flow."""
    from analyzer.report import flowid

    if in_c and flowid.compiled is None:
        pytest.skip("analyzer/report/_flowid.c is not built")
    if not in_c:
        monkeypatch.setattr(flowid, "compiled", None)
    flows = [f for f in flows for _ in range(repeat)]  # runs of one flow: C copies a run's first id
    padding = [("ncacn_ip_tcp", "10.9.9.9", 1, "10.9.9.8", 2, 3)] * start  # sliced off: an array's offset
    types = [pa.string(), pa.string(), pa.int64(), pa.string(), pa.int64(), pa.int64()]
    columns = [pa.array([f[k] for f in padding + flows], type=t).slice(start) for k, t in enumerate(types)]
    protos = [flowid.transport_protocol(f[0]) for f in flows]  # type: ignore[arg-type]
    one: Any = connection_uid  # given None where a field is missing, as the records may hold
    assert flowid.uid_array(*columns).to_pylist() == [one(p, *f[1:]) for p, f in zip(protos, flows, strict=True)]
    assert flowid.community_id_array(*columns[:5]).to_pylist() == [
        community_id.__wrapped__(p, *f[1:5]) for p, f in zip(protos, flows, strict=True)
    ]


def test_flow_id_arrays_of_missing_columns() -> None:
    """A chunk whose flow fields are all missing (Arrow null arrays): the ids of None, in C too."""
    from analyzer.report import flowid

    nulls = [pa.nulls(3)] * 6
    assert flowid.uid_array(*nulls).to_pylist() == [connection_uid("tcp", None, None, None, None, None)] * 3  # type: ignore[arg-type]
    assert flowid.community_id_array(*nulls[:5]).to_pylist() == [None] * 3


def test_bulk_uid_digits() -> None:
    """The bulk base62 at its edges: a uid of every length, from the largest 96-bit value down."""
    from analyzer.report.flowid import _base62, _base62_many

    values = [0, 1, 61, 62, 3843, 3844, 2**32 - 1, 2**32, 2**64, 62**16 - 1, 62**16, 2**96 - 1]
    packed = b"".join(v.to_bytes(12, "big") for v in values)
    assert _base62_many(packed, 12) == [_base62(v) for v in values]


def test_uid_changes_with_what_names_the_connection() -> None:
    base = connection_uid("tcp", "10.0.0.1", 49700, "10.0.0.2", 135, 1)
    assert base == connection_uid("tcp", "10.0.0.1", 49700, "10.0.0.2", 135, 1)
    assert base != connection_uid("tcp", "10.0.0.1", 49701, "10.0.0.2", 135, 1)
    assert base != connection_uid("tcp", "10.0.0.1", 49700, "10.0.0.2", 135, 2), "port reuse later: another uid"
    assert base != connection_uid("udp", "10.0.0.1", 49700, "10.0.0.2", 135, 1)


def test_every_row_carries_its_flows_community_id() -> None:
    result = analyzer.analyze([SAMPLES])
    for table in (result.connections, result.binds, result.calls):
        assert table["community_id"].notna().all()
        for row in table[
            ["transport", "client_ip", "client_port", "server_ip", "server_port", "community_id"]
        ].itertuples():
            proto = "udp" if row.transport == "ncadg_ip_udp" else "tcp"
            assert row.community_id == community_id(
                proto, row.server_ip, row.server_port, row.client_ip, row.client_port
            )


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("name", ["smb2_pipes.pcap", "epm_map_session.pcap", "cl_udp.pcap", "ipv6_session.pcap"])
def test_same_community_id_as_tshark(name: str) -> None:
    """Wireshark's own Community ID implementation, an independent one, per packet 5-tuple."""
    path = SAMPLES / name
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-o",
            "communityid.do_base64:TRUE",
            "-o",
            "communityid.seed:0",
            "--enable-protocol",
            "communityid",
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            "tcp.srcport",
            "-e",
            "udp.srcport",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
            "-e",
            "tcp.dstport",
            "-e",
            "udp.dstport",
            "-e",
            "communityid",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    theirs: dict[frozenset[tuple[str, int]], str] = {}
    for line in out.splitlines():
        ip4s, ip6s, tsp, usp, ip4d, ip6d, tdp, udp, cid = line.split("\t")
        if not cid:
            continue
        src, dst = (ip4s or ip6s).split(",")[-1], (ip4d or ip6d).split(",")[-1]
        sport, dport = int((tsp or usp).split(",")[-1]), int((tdp or udp).split(",")[-1])
        theirs[frozenset({(src, sport), (dst, dport)})] = cid
    conns = analyzer.analyze(path).connections
    assert len(conns)
    for row in conns.itertuples():
        key = frozenset({(row.client_ip, row.client_port), (row.server_ip, row.server_port)})
        assert row.community_id == theirs[key]
