"""The role rules' rows get client_role and server_role (`findings.context.with_roles`): `dc` where
the row's (capture, ip) is a domain controller's, else `host`; a missing capture or address is a
host. Checked against the reading by capture it replaced (one pandas test per capture holding a
domain controller), on built rows: missing values in both columns, Arrow and Python text."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.findings.context import ROLES, with_roles

CAPTURES = ["a.pcap", "b.pcap", None]
IPS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", None]


def _by_capture(df: pd.DataFrame, dcs: set[tuple[str, str]]) -> pd.DataFrame:
    """The reading before: per capture, its rows whose address is one of its domain controllers."""
    out = df.copy(deep=False)
    by_capture: dict[str, list[str]] = {}
    for cap, ip in dcs:
        by_capture.setdefault(cap, []).append(ip)
    for role, col in zip(ROLES, ("client_ip", "server_ip"), strict=True):
        is_dc = pd.Series(False, index=df.index)
        for cap, ips in by_capture.items():
            is_dc |= (df["capture"] == cap).fillna(False).astype(bool) & df[col].isin(ips)
        out[role] = pd.Series(np.where(is_dc.to_numpy(dtype=bool), "dc", "host"), index=df.index, dtype="string")
    return out


@st.composite
def rows(draw: Any) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
    n = draw(st.integers(0, 30))
    picked = [draw(st.tuples(*(st.sampled_from(v) for v in (CAPTURES, IPS, IPS)))) for _ in range(n)]
    cap, client, server = (list(c) for c in zip(*picked, strict=True)) if picked else ([], [], [])
    kind = draw(st.sampled_from(["string[pyarrow]", "string[python]", "object"]))
    df = pd.DataFrame({"capture": cap, "client_ip": client, "server_ip": server}, dtype=kind)
    df.index = pd.RangeIndex(5, 5 + n)  # a slice of a chunk: its index kept
    known = [(c, i) for c in CAPTURES if c for i in IPS if i]
    dcs = set(draw(st.lists(st.sampled_from(known), max_size=5)))
    return df, dcs


@settings(max_examples=150, deadline=None)
@given(case=rows())
def test_roles_are_those_the_reading_by_capture_gave(case: tuple[pd.DataFrame, set[tuple[str, str]]]) -> None:
    df, dcs = case
    got, want = with_roles(df, dcs), _by_capture(df, dcs)
    pd.testing.assert_frame_equal(got, want)


def test_a_domain_controller_is_one_of_its_capture() -> None:
    df = pd.DataFrame({"capture": ["a", "b", None], "client_ip": ["10.0.0.1"] * 3, "server_ip": ["x", "y", "z"]})
    got = with_roles(df, {("a", "10.0.0.1")})
    assert got["client_role"].tolist() == ["dc", "host", "host"]
    assert got["server_role"].tolist() == ["host", "host", "host"]
