"""Agreement with the Wireshark-derived truth of every capture in ../shared/captures.

Each capture is analysed through the public API (the tables users get), and compared record for
record with its truth files: what the truth has must be found, and nothing may be found that the
truth lacks, except the cases in tests/truth_exceptions.csv, each with its reason.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

import analyzer
from tests.conftest import CAPTURES, needs_shared
from tests.truth_compare import (
    EXCEPTIONS,
    capture_paths,
    compare_binds,
    compare_calls,
    compare_cl,
    compare_epm,
    load_exceptions,
    truth_name,
)

pytestmark = needs_shared

PATHS = capture_paths() if CAPTURES.is_dir() else []


@cache
def tables(path: Path) -> analyzer.AnalysisResult:
    from analyzer.api import from_records
    from analyzer.pipeline import Pipeline

    return from_records(Pipeline(strict=True, datagrams=True).run([str(path)]))  # datagrams: for the CL truth


def _rows(df: object) -> list[dict[str, object]]:
    return [{k: (None if v is None or v != v else v) for k, v in row.items()} for row in df.to_dict("records")]  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", PATHS, ids=[truth_name(p) for p in PATHS])
def test_binds_agree(path: Path) -> None:
    """Every bind context item on TCP and over SMB pipes (the truth's tcp, smb and smb2 rows)."""
    res = tables(path)
    assert not res.errors
    diff = compare_binds(truth_name(path), _rows(res.binds), {"ncacn_ip_tcp", "ncacn_np"})
    assert diff.ok, f"missing {diff.missing[:5]} extra {diff.extra[:5]} mismatched {diff.mismatched[:5]}"


@pytest.mark.parametrize("path", PATHS, ids=[truth_name(p) for p in PATHS])
def test_epm_towers_agree(path: Path) -> None:
    """Every EPM tower carrying a port, whatever the transport of the EPM conversation."""
    res = tables(path)
    diff = compare_epm(truth_name(path), _rows(res.endpoints), {"ncacn_ip_tcp", "ncadg_ip_udp", "ncacn_http"})
    assert diff.ok, f"missing {diff.missing[:5]} extra {diff.extra[:5]}"


@pytest.mark.parametrize("path", PATHS, ids=[truth_name(p) for p in PATHS])
def test_connectionless_pdus_agree(path: Path) -> None:
    """Every connectionless PDU over UDP (the truth's *.cl.csv rows), and nothing else."""
    res = tables(path)
    rows = []
    for d in res.records.datagrams:
        f = d.flow
        src, dst = ((f.client_ip, f.client_port), (f.server_ip, f.server_port))
        if not d.from_client:
            src, dst = dst, src
        rows.append(
            {
                "frame": d.frame,
                "src_ip": src[0],
                "src_port": src[1],
                "dst_ip": dst[0],
                "dst_port": dst[1],
                "ptype": d.ptype,
                "activity_uuid": d.activity_uuid,
                "seqnum": d.seqnum,
                "opnum": d.opnum,
            }
        )
    diff = compare_cl(truth_name(path), rows)
    assert diff.ok, f"missing {diff.missing[:5]} extra {diff.extra[:5]}"


@pytest.mark.parametrize("path", PATHS, ids=[truth_name(p) for p in PATHS])
def test_calls_agree(path: Path) -> None:
    """Every connection-oriented request tshark dissects on any TCP port or SMB pipe (the truth's
    *.calls.csv rows), at the frame completing it, and nothing else."""
    diff = compare_calls(truth_name(path), _rows(tables(path).calls))
    assert diff.ok, f"missing {diff.missing[:5]} extra {diff.extra[:5]}"


def test_calls_recall_and_precision() -> None:
    """Over all shared captures, excused differences included: recall and precision >= 99.9 %."""
    truth = ours = matched = 0
    for path in PATHS:
        diff = compare_calls(truth_name(path), _rows(tables(path).calls))
        truth, ours, matched = truth + diff.truth, ours + diff.ours, matched + diff.matched
    assert truth > 7000
    assert matched / truth >= 0.999, f"recall {matched}/{truth}"
    assert matched / ours >= 0.999, f"precision {matched}/{ours}"


def test_every_calls_exception_is_still_a_difference() -> None:
    """An excused call that now agrees (a fix landed) must leave the exceptions file."""
    listed = [e for e in load_exceptions() if e[1] == "calls"]
    excused = sum(compare_calls(truth_name(p), _rows(tables(p).calls)).excused for p in PATHS)
    assert excused == len(listed)


def test_every_capture_is_compared() -> None:
    assert len(PATHS) == 145
    assert all(p.exists() for p in PATHS)


def test_every_exception_names_a_capture_and_says_why() -> None:
    names = {truth_name(p) for p in PATHS}
    exceptions = load_exceptions()
    assert exceptions, EXCEPTIONS
    for capture, table, _key in exceptions:
        assert capture in names and table in ("binds", "binds_ack", "epm", "cl", "calls")


def test_no_parser_raised_on_any_capture() -> None:
    for path in PATHS:
        res = tables(path)
        internal = res.violations[res.violations["layer"] == "internal"]
        assert internal.empty, (path, internal.to_dict("records"))
