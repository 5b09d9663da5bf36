"""The data-quality view: per capture and per connection, what the capture did not show."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyzer.limits import cap_fields
from analyzer.report.columns import BOOL, INT, STR
from analyzer.report.lists import joined
from analyzer.report.source import Source
from analyzer.report.views.shape import plural, records, shape, sorted_view

DATA_QUALITY: dict[str, str] = {
    "capture": STR,
    "stream": INT,
    "scope": STR,
    "transport": STR,
    "client_ip": STR,
    "client_port": INT,
    "server_ip": STR,
    "server_port": INT,
    "pipe_name": STR,
    "error": STR,
    "truncated": BOOL,
    "end": STR,
    "gaps": INT,
    "violations": INT,
    "violation_kinds": STR,
    "caps_hit": INT,
    "binds_unanswered": INT,
    "calls_without_bind": INT,
    "calls_unanswered": INT,
    "encrypted_calls": INT,
    "unknown_interfaces": INT,
    "summary": STR,
    "midstream": INT,
    "unfollowed": INT,
    "attempts": INT,
    "attempt_targets": STR,
}


# How a connection ended when its end was not in the capture (connectionless transports have no end).
_UNSEEN_END = {"idle": "expired idle", "evicted": "evicted by the flow cap", "capture_end": "open at capture end"}


def _conn_key(df: pd.DataFrame) -> pd.Series:
    """capture#stream: one text key per connection (stream numbers restart in every capture)."""
    key: pd.Series = df["capture"].astype("string") + "#" + df["stream"].astype("Int64").astype("string")
    return key


def _count_by(key: pd.Series, mask: pd.Series) -> pd.Series:
    counted: pd.Series = key[mask.fillna(False).astype(bool)].value_counts()
    return counted


def _summary(row: dict[str, Any]) -> str:
    parts = []
    if isinstance(row.get("error"), str):
        parts.append(f"unreadable: {row['error']}")
    if row.get("truncated") is True:
        parts.append("file truncated")
    end = row.get("end")
    if isinstance(end, str) and end in _UNSEEN_END and row.get("transport") != "ncadg_ip_udp":
        parts.append(_UNSEEN_END[end])
    for col, word, many in (
        ("gaps", "TCP gap", None),
        ("caps_hit", "cap hit", "caps hit"),
    ):
        if row[col]:
            parts.append(plural(row[col], word, many))
    if row["violations"]:
        parts.append(f"{plural(row['violations'], 'violation')} ({(row['violation_kinds'] or '').replace(';', ', ')})")
    for col, word, many in (
        ("binds_unanswered", "bind item unanswered", "bind items unanswered"),
        ("calls_without_bind", "call without its bind", "calls without their bind"),
        ("calls_unanswered", "call unanswered", "calls unanswered"),
        ("encrypted_calls", "encrypted call", None),
        ("unknown_interfaces", "bind or call on an unknown interface", "binds or calls on unknown interfaces"),
    ):
        if row[col]:
            parts.append(plural(row[col], word, many))
    parts.extend(_missed(row))
    return "; ".join(parts) if parts else "complete"


def _missed(row: dict[str, Any]) -> list[str]:
    """What issue 9 counts: conversations begun before the capture, flows that looked like DCE/RPC
    but could not be followed, connection attempts that never carried a PDU."""
    parts = []
    if row.get("midstream"):
        n = "" if row.get("scope") == "connection" else plural(row["midstream"], "conversation") + " "
        parts.append(f"{n}begun before the capture (midstream)")
    if row.get("unfollowed"):
        parts.append(f"{plural(row['unfollowed'], 'TCP flow')} like DCE/RPC not followed")
    if row.get("attempts"):
        targets = f" ({row['attempt_targets']})" if row.get("attempt_targets") else ""
        parts.append(f"{plural(row['attempts'], 'connection attempt')} without a PDU{targets}")
    return parts


_TARGETS_MAX = 8  # server:port pairs named per capture


def _attempt_targets(attempts: pd.DataFrame) -> pd.Series:
    """Per capture: the servers and ports attempted, most attempted first ("10.0.0.5:135 x3, ...")."""
    if attempts.empty:
        return pd.Series(dtype="string")
    target = attempts["server_ip"].astype("string") + ":" + attempts["server_port"].astype("string")
    counts = target.groupby(attempts["capture"]).value_counts()
    out: dict[str, str] = {}
    for cap, group in counts.groupby(level=0):
        items = [f"{t} x{n}" if n > 1 else str(t) for (_c, t), n in group.head(_TARGETS_MAX).items()]
        more = len(group) - _TARGETS_MAX
        out[str(cap)] = ", ".join(items) + (f", {more} more" if more > 0 else "")
    series: pd.Series = pd.Series(out, dtype="string")
    return series


def data_quality(source: Source) -> pd.DataFrame:
    """What the capture did not show, per capture and per connection.

    One row per capture (`scope` capture, stream empty) and one per DCE/RPC connection (`scope`
    connection): unreadable or truncated files, connections whose end was not seen, TCP gaps,
    violations by kind, caps hit, bind items nobody answered, calls whose interface did not come from
    a bind seen in the capture, calls nobody answered, encrypted stubs and unknown interfaces.
    `summary` says it in a few words ("complete" when nothing is missing), so a reader knows what the
    other tables cannot say.
    """
    captures, connections, violations = (
        source.frame("captures"),
        source.frame("connections"),
        source.frame("violations"),
    )
    binds, calls, attempts = source.frame("binds"), source.frame("calls"), source.frame("attempts")
    if captures.empty and connections.empty:
        return shape(pd.DataFrame(), DATA_QUALITY)
    bk, ck, vk = _conn_key(binds), _conn_key(calls), _conn_key(violations)
    # A violations row may stand for several occurrences (its count); caps are the Limits fields' codes.
    is_cap = violations["what"].isin(list(cap_fields().values())).fillna(False).astype(bool)
    weight = violations["occurrences"].fillna(1).astype("int64")
    per: dict[str, pd.Series] = {
        "binds_unanswered": _count_by(bk, binds["ack_result"] == "none"),
        # Connectionless calls name their interface in every header: they have no bind to miss.
        "calls_without_bind": _count_by(ck, ~calls["interface_source"].isin(["bind", "header"])),
        "calls_unanswered": _count_by(ck, calls["status"].isna()),
        "encrypted_calls": _count_by(ck, calls["encrypted"]),
        "caps_hit": weight[is_cap & vk.notna()].groupby(vk[is_cap & vk.notna()]).sum(),
        "violations": weight[vk.notna()].groupby(vk[vk.notna()]).sum(),
        "unknown_interfaces": pd.concat(
            [
                bk[binds["interface_name"].str.startswith("unknown-").fillna(False).astype(bool)],
                ck[calls["interface_name"].str.startswith("unknown-").fillna(False).astype(bool)],
            ]
        ).value_counts(),
    }
    # The connection columns the view shows (its own counts are made below): a copy of only those.
    conn = connections[[c for c in connections.columns if c in DATA_QUALITY]].assign(scope="connection")
    if "midstream" in conn:
        conn["midstream"] = conn["midstream"].fillna(False).astype("int64")
    key = _conn_key(conn)
    for col, counts in per.items():
        conn[col] = key.map(counts).fillna(0).astype("int64")
    kinds = violations.assign(key=vk).dropna(subset=["key"])
    conn["violation_kinds"] = key.map(joined(kinds, ["key"], "what"))

    counted = [*per, "gaps", *(["midstream"] if "midstream" in conn else [])]
    cap = _capture_rows(captures, conn, counted, violations, weight, is_cap, attempts)

    rows = shape(pd.concat([df for df in (cap, conn) if not df.empty], ignore_index=True), DATA_QUALITY)
    rows["summary"] = pd.array([_summary(r) for r in records(rows)], dtype="string")
    return shape(sorted_view(rows, ["capture", "stream"]), DATA_QUALITY)


def _capture_rows(
    captures: pd.DataFrame,
    conn: pd.DataFrame,
    counted: list[str],
    violations: pd.DataFrame,
    weight: pd.Series,
    is_cap: pd.Series,
    attempts: pd.DataFrame | None,
) -> pd.DataFrame:
    """One row per capture: its connections' counts added up, plus the file-level violations of no
    connection, the flows not followed and the connection attempts."""
    # A capture's counts add up its connections', plus the file-level violations of no connection.
    by_cap = conn.groupby("capture")[counted].sum()
    cap: pd.DataFrame = captures[["capture", "error", "truncated"]].assign(scope="capture")
    for col in counted:
        cap[col] = cap["capture"].map(by_cap[col]).fillna(0).astype("int64")
    cap["violations"] = cap["capture"].map(weight.groupby(violations["capture"]).sum()).fillna(0).astype("int64")
    cap["caps_hit"] = (
        cap["capture"].map(weight[is_cap].groupby(violations["capture"][is_cap]).sum()).fillna(0).astype("int64")
    )
    cap["violation_kinds"] = cap["capture"].map(joined(violations, ["capture"], "what"))
    unconfirmed = violations["what"] == "unconfirmed_conversation"
    unfollowed = weight[unconfirmed].groupby(violations.loc[unconfirmed, "capture"]).sum()
    cap["unfollowed"] = cap["capture"].map(unfollowed).fillna(0).astype("int64")
    if attempts is not None:
        cap["attempts"] = cap["capture"].map(attempts.groupby("capture").size()).fillna(0).astype("int64")
        cap["attempt_targets"] = cap["capture"].map(_attempt_targets(attempts))
    return cap
