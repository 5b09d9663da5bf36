"""What rules need to know besides one row: the rows of each source in one shape, and which hosts act as
domain controllers, learnt from the traffic itself.

Domain controllers (per capture): hosts that answer drsuapi or netlogon (an accepted bind or an answered
call as server), hosts whose endpoint mapper announces drsuapi or netlogon, hosts the connection-attempt
table shows contacted on Kerberos (TCP 88; the analyzer keeps RPC conversations only, so Kerberos
traffic itself is not seen), and drsuapi clients that authenticate as a computer account (`NAME$`) or
with the Kerberos provider itself (auth type 16), as domain controllers replicating do (DCSync tools,
impacket and mimikatz, negotiate with SPNEGO or use NTLM; a tool that chose auth type 16 would pass as
a DC). That separates DC-to-DC replication from DCSync (DRSGetNCChanges from a host that is not a DC).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyzer.findings.conditions import missing_series
from analyzer.findings.rules import SOURCES
from analyzer.report.zeek_names import PIPE_COLUMN

DC_INTERFACES = ("drsuapi", "netlogon")
KERBEROS_PORT = 88
REPLICATION_AUTH = "kerberos"  # [MS-RPCE] 2.2.1.1.7 RPC_C_AUTHN_GSS_KERBEROS, as DCs replicate
# The columns every source offers to rules and findings (missing where the source has no such thing).
COMMON = ("capture", "frame", "ts", "client_ip", "server_ip", "interface_name", "operation", "identity", "arguments")


def identity(df: pd.DataFrame) -> pd.Series:
    """DOMAIN\\user of each row (the user alone without a domain); missing without a user."""
    if "user" not in df.columns:
        return missing_series(df)
    user: pd.Series = df["user"].astype("string")
    if "domain" not in df.columns:
        return user
    dom: pd.Series = df["domain"].astype("string")
    out: pd.Series = user.where(dom.isna(), dom + "\\" + user)
    return out


def domain_controllers(
    calls: pd.DataFrame, binds: pd.DataFrame, endpoints: pd.DataFrame, attempts: pd.DataFrame | None
) -> set[tuple[str, str]]:
    """(capture, ip) of every host the traffic shows acting as a domain controller."""
    dcs: set[tuple[str, str]] = set()

    def add(df: pd.DataFrame, col: str) -> None:
        dcs.update(zip(df["capture"].tolist(), df[col].tolist(), strict=True))

    c = calls[calls["interface_name"].isin(DC_INTERFACES)]
    add(c[c["status"].notna()], "server_ip")
    drs = c["interface_name"] == "drsuapi"
    machine = c["user"].astype("string").str.endswith("$", na=False) & drs
    add(c[machine], "client_ip")
    # replication between DCs binds with the Kerberos provider itself (auth type 16); tools and members
    # negotiate (SPNEGO) or use NTLM
    add(c[drs & (c["auth_type"] == REPLICATION_AUTH)], "client_ip")
    b = binds[binds["interface_name"].isin(DC_INTERFACES)]
    add(b[b["ack_result"] == "acceptance"], "server_ip")
    add(endpoints[endpoints["interface_name"].isin(DC_INTERFACES)], "epm_server_ip")
    if attempts is not None and not attempts.empty and "server_port" in attempts.columns:
        add(attempts[attempts["server_port"] == KERBEROS_PORT], "server_ip")
    return {(cap, ip) for cap, ip in dcs if isinstance(ip, str)}


@dataclass
class Context:
    """The rows of every source, shaped for rules, and the domain controllers."""

    sources: dict[str, pd.DataFrame]
    dcs: set[tuple[str, str]]


def _role(df: pd.DataFrame, col: str, dcs: set[tuple[str, str]]) -> pd.Series:
    """`dc` where (capture, df[col]) is a domain controller, else `host`; column-wise (a million
    attempts would otherwise be two million Python strings here)."""
    is_dc = pd.Series(False, index=df.index)
    if col in df.columns:
        by_capture: dict[str, list[str]] = {}
        for cap, ip in dcs:
            by_capture.setdefault(cap, []).append(ip)
        for cap, ips in by_capture.items():
            is_dc |= (df["capture"] == cap).fillna(False).astype(bool) & df[col].isin(ips)
    role: pd.Series = pd.Series(np.where(is_dc.to_numpy(dtype=bool), "dc", "host"), index=df.index, dtype="string")
    return role


def _shaped(df: pd.DataFrame, dcs: set[tuple[str, str]]) -> pd.DataFrame:
    # shallow: copy-on-write (pandas 3) keeps the table itself as it is, and a million-row source is
    # not copied to add five columns
    out = df.copy(deep=False)
    out["identity"] = identity(out)
    for col in COMMON:
        if col not in out.columns:
            out[col] = pd.Series(pd.NA, index=out.index, dtype="string")
    out["client_role"] = _role(out, "client_ip", dcs)
    out["server_role"] = _role(out, "server_ip", dcs)
    shaped: pd.DataFrame = out.reset_index(drop=True)
    return shaped


def build_context(
    calls: pd.DataFrame,
    binds: pd.DataFrame,
    endpoints: pd.DataFrame,
    connections: pd.DataFrame,
    violations: pd.DataFrame,
    attempts: pd.DataFrame | None = None,
) -> Context:
    """Every source in one shape: calls and binds as they are; endpoints with the EPM server as
    server_ip and the EPM operation as operation; violations with their connection's addresses."""
    dcs = domain_controllers(calls, binds, endpoints, attempts)
    eps = endpoints.rename(columns={"epm_server_ip": "server_ip"}).assign(operation=endpoints["epm_operation"])
    where = connections[["capture", "stream", "client_ip", "server_ip", "server_port", PIPE_COLUMN, "first_ts"]]
    # a violation has no time of its own: its connection's start places it in a burst
    viol = violations.merge(where.rename(columns={"first_ts": "ts"}), on=["capture", "stream"], how="left")
    att = attempts if attempts is not None else pd.DataFrame(columns=["capture", "frame", "ts"])
    if "ts" in att.columns and not att.empty:
        att = att.assign(ts=pd.to_datetime(att["ts"], utc=True))
    frames = {"calls": calls, "binds": binds, "endpoints": eps, "attempts": att, "violations": viol}
    assert set(frames) == set(SOURCES)
    return Context({name: _shaped(df, dcs) for name, df in frames.items()}, dcs)
