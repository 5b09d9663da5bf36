"""What rules need to know besides one row: each source's rows in one shape, and which hosts act as
domain controllers, learnt from the traffic itself. Both are made a chunk at a time (`report.source`).

Domain controllers (per capture): hosts that answer drsuapi or netlogon (an accepted bind or an answered
call as server), hosts whose endpoint mapper announces drsuapi or netlogon, hosts the connection-attempt
table shows contacted on Kerberos (TCP 88; the analyzer keeps RPC conversations only, so Kerberos
traffic itself is not seen), and drsuapi clients that authenticate as a computer account (`NAME$`) or
with the Kerberos provider itself (auth type 16), as domain controllers replicating do (DCSync tools,
impacket and mimikatz, negotiate with SPNEGO or use NTLM; a tool that chose auth type 16 would pass as
a DC). That separates DC-to-DC replication from DCSync (DRSGetNCChanges from a host that is not a DC).
`DomainControllers` holds the (capture, ip) pairs only: bounded by hosts, not by rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyzer.findings.conditions import missing_series
from analyzer.report.fold import cells
from analyzer.report.zeek_names import PIPE_COLUMN

DC_INTERFACES = ("drsuapi", "netlogon")
KERBEROS_PORT = 88
REPLICATION_AUTH = "kerberos"  # [MS-RPCE] 2.2.1.1.7 RPC_C_AUTHN_GSS_KERBEROS, as DCs replicate
# The columns every rule reads from its source (read as missing where the source has no such thing).
COMMON = ("capture", "frame", "ts", "client_ip", "server_ip", "interface_name", "operation", "identity", "arguments")
WHERE = ("capture", "frame", "ts", "client_ip", "server_ip")
ROLES = ("client_role", "server_role")  # computed once the domain controllers are known
# Each DC clue: the table, the columns it reads.
DC_COLUMNS: dict[str, tuple[str, ...]] = {
    "calls": ("capture", "interface_name", "status", "user", "auth_type", "client_ip", "server_ip"),
    "binds": ("capture", "interface_name", "ack_result", "server_ip"),
    "endpoints": ("capture", "interface_name", "epm_server_ip"),
    "attempts": ("capture", "server_port", "server_ip"),
}
# Where the shaped sources' columns come from, when not from a column of the same name.
RENAMED = {"endpoints": {"server_ip": "epm_server_ip", "operation": "epm_operation"}}
# The violations' addresses and time are their connection's (a violation has no time of its own: its
# connection's start places it in a burst).
CONNECTION_COLUMNS = ("client_ip", "server_ip", "server_port", PIPE_COLUMN, "first_ts")
JOINED = {"client_ip", "server_ip", "server_port", PIPE_COLUMN, "ts"}


def identity(df: pd.DataFrame) -> pd.Series:
    """DOMAIN\\user of each row (the user alone without a domain); missing without a user."""
    if "user" not in df.columns:
        return missing_series(df)
    user: pd.Series = df["user"].astype("string")
    if "domain" not in df.columns:
        return user
    dom: pd.Series = df["domain"].astype("string")
    # No domain, or no user, in the whole chunk (unauthenticated calls, a flood's): the user column
    # is the answer already, without the text arithmetic over every row.
    if dom.isna().all() or user.isna().all():
        return user
    out: pd.Series = user.where(dom.isna(), dom + "\\" + user)
    return out


class DomainControllers:
    """(capture, ip) of every host the traffic shows acting as a domain controller, added a chunk of
    a table at a time (`add`); `pairs` once every table went by."""

    def __init__(self) -> None:
        self.pairs: set[tuple[str, str]] = set()

    def _take(self, df: pd.DataFrame, col: str) -> None:
        self.pairs.update(
            (cap, ip) for cap, ip in zip(df["capture"].tolist(), df[col].tolist(), strict=True) if isinstance(ip, str)
        )

    def add(self, table: str, df: pd.DataFrame) -> None:
        """The clues in one chunk of `table` (its DC_COLUMNS at least)."""
        if table == "attempts":
            if "server_port" in df.columns:
                kerberos = (df["server_port"] == KERBEROS_PORT).to_numpy(dtype=bool, na_value=False)
                if kerberos.any():
                    self._take(df[kerberos], "server_ip")
            return
        dc = df["interface_name"].isin(DC_INTERFACES).to_numpy(dtype=bool)
        if not dc.any():
            return
        c = df[dc]
        if table == "endpoints":
            self._take(c, "epm_server_ip")
        elif table == "binds":
            self._take(c[c["ack_result"] == "acceptance"], "server_ip")
        else:
            self._take(c[c["status"].notna()], "server_ip")
            drs = c["interface_name"] == "drsuapi"
            machine = c["user"].astype("string").str.endswith("$", na=False) & drs
            self._take(c[machine], "client_ip")
            # replication between DCs binds with the Kerberos provider itself (auth type 16); tools and
            # members negotiate (SPNEGO) or use NTLM
            self._take(c[drs & (c["auth_type"] == REPLICATION_AUTH).fillna(False).astype(bool)], "client_ip")


def with_roles(df: pd.DataFrame, dcs: set[tuple[str, str]]) -> pd.DataFrame:
    """df with client_role and server_role: `dc` where (capture, ip) is a domain controller, else
    `host`; column-wise (a million rows would otherwise be two million Python strings here)."""
    out: pd.DataFrame = df.copy(deep=False)
    captures = cells(df, "capture") if dcs else []
    for role, col in zip(ROLES, ("client_ip", "server_ip"), strict=True):
        # Each row's (capture, ip) looked up in the set (missing as None: in no pair). A test per
        # capture holding a domain controller, in pandas, cost 0.3 ms each: 29 ms for the 15 rows
        # of ../shared/captures' role rules, against 0.1 ms.
        if dcs:
            pairs = zip(captures, cells(df, col), strict=True)
            is_dc = np.fromiter((pair in dcs for pair in pairs), dtype=bool, count=len(df))
        else:
            is_dc = np.zeros(len(df), dtype=bool)
        out[role] = pd.Series(np.where(is_dc, "dc", "host"), index=df.index, dtype="string")
    return out


def shaped(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """One chunk of a source in the rules' shape: endpoints with the EPM server as server_ip and the EPM
    operation as operation, attempts with their time as a time, `identity` where there is a user.
    Violations come joined with their connections already."""
    out = df.copy(deep=False)  # shallow: copy-on-write keeps the chunk itself as it is
    if table == "endpoints":
        out = out.rename(columns={"epm_server_ip": "server_ip"})
        if "epm_operation" in out.columns:
            out["operation"] = out["epm_operation"]
    elif table == "attempts" and "ts" in out.columns and not isinstance(out["ts"].dtype, pd.DatetimeTZDtype):
        out["ts"] = pd.to_datetime(out["ts"], utc=True)
    if "user" in out.columns:
        out["identity"] = identity(out)
    # Where each row is; the other COMMON columns a source lacks read as missing (`field_series`).
    for col in WHERE:
        if col not in out.columns:
            out[col] = pd.Series(pd.NA, index=out.index, dtype="string")
    reset: pd.DataFrame = out.reset_index(drop=True)
    return reset
