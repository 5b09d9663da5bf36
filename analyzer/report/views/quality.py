"""The data-quality view: per capture and per connection, what the capture did not show.

Folded from chunks (`report.fold`): binds, calls and violations first, into counters per connection
(capture and stream) that has something to count, and into per-capture violation counts, kinds and
attempted targets (bounded by the kinds and the server:port pairs seen); then the connections, one
chunk at a time, each becoming its row (with its counters and summary) in a typed frame of that chunk.
The connection rows are the view's output, so what is held is the output, the counters of the
connections that have any, and one chunk."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from analyzer.limits import cap_fields
from analyzer.report.columns import BOOL, INT, STR
from analyzer.report.fold import Grouped, columns, table, typed
from analyzer.report.lists import add, joined
from analyzer.report.passes import fold
from analyzer.report.source import Source
from analyzer.report.spill import Spill
from analyzer.report.views.attempt_counts import ATTEMPT_COLUMNS, attempt_counts
from analyzer.report.views.shape import plural

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

# Per-connection counters, in the order `_Counts` lists hold them.
_COUNTERS = [
    "binds_unanswered",
    "calls_without_bind",
    "calls_unanswered",
    "encrypted_calls",
    "caps_hit",
    "violations",
    "unknown_interfaces",
]
# What a capture row adds up from its connection rows (its violations and caps come from the table).
_SUMMED = ["binds_unanswered", "calls_without_bind", "calls_unanswered", "encrypted_calls", "unknown_interfaces"]
_SUMMED_ALSO = ["gaps", "midstream"]
_SUMMED_AT = [_COUNTERS.index(c) for c in _SUMMED]  # each summed counter's place among the counters
_Conn = tuple[str, int]
_Counts = dict[_Conn, list[int]]


def _counts(per: _Counts, capture: str | None, stream: int | None) -> list[int] | None:
    """The counters of a connection (made when first counted); None without a capture and stream."""
    if capture is None or stream is None:
        return None
    key = (capture, stream)
    counts = per.get(key)
    if counts is None:
        counts = per[key] = [0] * len(_COUNTERS)
    return counts


_BIND_COLUMNS = ["capture", "stream", "ack_result", "interface_name"]
_CALL_COLUMNS = ["capture", "stream", "interface_source", "status", "encrypted", "interface_name"]


def _binds(chunk: pd.DataFrame, per: _Counts) -> None:
    """Bind items nobody answered and unknown interfaces, per connection."""
    _count(chunk, per, {0: _text_is(chunk["ack_result"], "none"), 6: _unknown_names(chunk["interface_name"])})


def _calls(chunk: pd.DataFrame, per: _Counts) -> None:
    """Calls without their bind, unanswered or encrypted, and unknown interfaces, per connection."""
    # Connectionless calls name their interface in every header: they have no bind to miss.
    named = chunk["interface_source"].isin(["bind", "header"]).to_numpy(dtype=bool, na_value=False)
    flags = {
        1: ~named,
        2: chunk["status"].isna().to_numpy(dtype=bool),
        3: _true(chunk["encrypted"]),
        6: _unknown_names(chunk["interface_name"]),
    }
    _count(chunk, per, flags)


def _count(chunk: pd.DataFrame, per: _Counts, flags: dict[int, np.ndarray]) -> None:
    """Each row's flags (by counter: a bool per row) added to its connection's counters, column-wise:
    only the connections of rows with a flag get counters (a flood's chunk is one connection, or
    none has anything to count), and a row without capture or stream counts for none."""
    rows = np.logical_or.reduce(list(flags.values()))
    rows &= chunk["capture"].notna().to_numpy(dtype=bool) & chunk["stream"].notna().to_numpy(dtype=bool)
    if not rows.any():
        return
    codes, captures = pd.factorize(chunk["capture"].array[rows])
    streams = chunk["stream"].to_numpy(dtype=np.int64, na_value=0)[rows]
    added = np.column_stack([flag[rows] for flag in flags.values()]).astype(np.int64)
    if len(captures) == 1 and streams.min() == streams.max():  # one connection (a flood's chunk)
        keys, totals = np.array([[0, streams[0]]]), added.sum(axis=0, keepdims=True)
    else:
        keys, inverse = np.unique(np.column_stack([codes, streams]), axis=0, return_inverse=True)
        totals = np.zeros((len(keys), len(flags)), dtype=np.int64)
        np.add.at(totals, inverse.ravel(), added)
    for (code, stream), sums in zip(keys.tolist(), totals.tolist(), strict=True):
        counts = _counts(per, captures[code], stream)
        assert counts is not None
        for at, n in zip(flags, sums, strict=True):
            counts[at] += n


def _text_is(values: pd.Series, text: str) -> np.ndarray:
    """Where a text column holds `text` (missing: no)."""
    return (values == text).to_numpy(dtype=bool, na_value=False)


def _unknown_names(names: pd.Series) -> np.ndarray:
    """Where an interface name is a placeholder for an unknown one ("unknown-<uuid>")."""
    if not len(names):  # an empty column may have any dtype: no text for `.str`
        return np.zeros(0, dtype=bool)
    return names.str.startswith("unknown-").to_numpy(dtype=bool, na_value=False)


def _true(values: pd.Series) -> np.ndarray:
    """Where a boolean column is True (missing: no)."""
    return (values == True).to_numpy(dtype=bool, na_value=False)  # noqa: E712 (element-wise, NA-aware)


class _File:
    """What a capture's row counts beside its connections': its violations (a row may stand for
    several occurrences), caps hit, violation kinds, flows not followed, and connection attempts."""

    __slots__ = ("attempts", "caps", "kinds", "targets", "unfollowed", "violations")

    def __init__(self) -> None:
        self.violations = self.caps = self.unfollowed = self.attempts = 0
        self.kinds: set[str] = set()
        self.targets: Counter[tuple[str, int]] = Counter()


_VIOLATION_COLUMNS = ["capture", "stream", "what", "occurrences"]


def _violations(chunk: pd.DataFrame, per: _Counts, kinds: dict[_Conn, set[str]], files: dict[str, _File]) -> None:
    """Violations and caps hit (caps are the Limits fields' codes), per connection and per capture."""
    caps = set(cap_fields().values())
    for capture, stream, what, occurrences in zip(*columns(chunk, _VIOLATION_COLUMNS), strict=True):
        weight = 1 if occurrences is None else occurrences
        is_cap = what in caps
        counts = _counts(per, capture, stream)
        if counts is not None:
            counts[4] += weight if is_cap else 0
            counts[5] += weight
            add(kinds.setdefault((capture, stream), set()), what)
        if capture is not None:
            f = files.get(capture) or files.setdefault(capture, _File())
            f.violations += weight
            f.caps += weight if is_cap else 0
            f.unfollowed += weight if what == "unconfirmed_conversation" else 0
            add(f.kinds, what)


def _attempts(chunk: pd.DataFrame, files: dict[str, _File]) -> None:
    """Connection attempts per capture, and how often each server and port was attempted."""
    for (cap, ip, p), n in attempt_counts(chunk).items():
        if cap is None:
            continue
        f = files.get(cap) or files.setdefault(cap, _File())
        f.attempts += n
        if ip is not None and p is not None:
            f.targets[(ip, p)] += n


def _targets(targets: Counter[tuple[str, int]]) -> str | None:
    """The servers and ports attempted, most attempted first ("10.0.0.5:135 x3, ...")."""
    if not targets:
        return None
    ranked = targets.most_common()
    items = [f"{ip}:{port} x{n}" if n > 1 else f"{ip}:{port}" for (ip, port), n in ranked[:_TARGETS_MAX]]
    more = len(ranked) - _TARGETS_MAX
    return ", ".join(items) + (f", {more} more" if more > 0 else "")


class DataQuality:
    """The data-quality view as a fold (`report.passes`, whose order it counts on): the binds, calls
    and violations into counters per connection, then each chunk of connections into its rows as it
    goes by; the captures' rows at the end, when the attempts went by too."""

    def __init__(self) -> None:
        self.per: _Counts = {}
        self.kinds: dict[_Conn, set[str]] = {}
        self.files: dict[str, _File] = {}
        self.sums: dict[str, list[int]] = {}
        self.spilled = Spill()  # the connections' rows, on disk until written (`report.spill`)
        self.last: _Key | None = None  # the last connection row's sort key so far
        self.in_order = True  # whether the connections' rows came by capture, then stream
        self.captures: list[pd.DataFrame] = []

    def wants(self, table: str) -> list[str] | None:
        return _READS.get(table)

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        if table == "binds":
            _binds(chunk, self.per)
        elif table == "calls":
            _calls(chunk, self.per)
        elif table == "violations":
            _violations(chunk, self.per, self.kinds, self.files)
        elif table == "attempts":
            _attempts(chunk, self.files)
        elif table == "connections":
            self._spill(_connection_rows(chunk, self.per, self.kinds, self.sums))
        else:
            self.captures.append(chunk)

    def _spill(self, rows: pd.DataFrame) -> None:
        if len(rows):
            # The keys of its first and last rows, its own order tested column-wise (`_in_order`): a
            # key per row took a tuple of tuples each (a bind flood's rows).
            first, last = _keys(rows.iloc[[0, -1]])
            self.in_order = self.in_order and (self.last is None or self.last <= first) and _in_order(rows)
            self.last = last
        self.spilled.add(rows)

    def done(self, source: Source) -> None:
        self.per, self.kinds = {}, {}  # every connection went by: their counters are in its rows now

    def result(self) -> pd.DataFrame:
        """The view whole: the capture rows and the connection rows, by capture, then stream."""
        captures = _capture_rows(self.captures, self.files, self.sums)
        if captures.empty and not self.spilled.rows:
            return table(DATA_QUALITY, {})
        rows = pd.concat([captures, *self.spilled.frames()], ignore_index=True)
        if _in_order(rows):  # the capture rows, then the connections in their table's order: mostly
            return rows
        ordered: pd.DataFrame = rows.sort_values(
            ["capture", "stream"], kind="stable", na_position="first", ignore_index=True
        )
        return ordered

    def stream(self) -> pd.DataFrame | Iterator[pd.DataFrame]:
        """The rows of `result()`, for a writer: in its order, a piece at a time when there are
        connection rows (read back from the spill, each capture's row put just before its first
        connection's), so a flood's rows are never held whole; the frame itself when there are none,
        or when the connections did not come in order (no spooled run's do)."""
        if not self.in_order or not self.spilled.rows:
            return self.result()
        captures = _capture_rows(self.captures, self.files, self.sums)
        captures = captures.sort_values("capture", kind="stable", na_position="first", ignore_index=True)
        return _merged(captures, self.spilled.frames())


_Key = tuple[tuple[int, Any], tuple[int, Any]]  # (capture, stream), missing before any value


def _key(capture: str | None, stream: int | None) -> _Key:
    """A row's place in the view's order: by capture, then stream, missing first (as `result` sorts)."""
    return ((0, "") if capture is None else (1, capture), (0, 0) if stream is None else (1, stream))


def _keys(rows: pd.DataFrame) -> list[_Key]:
    """Each row's `_key`."""
    return list(map(_key, *columns(rows, ["capture", "stream"])))


class _Keys:
    """`_keys` of rows, each made when asked for: a bisection (`_merged`) asks for a few."""

    __slots__ = ("_captures", "_streams")

    def __init__(self, rows: pd.DataFrame) -> None:
        self._captures, self._streams = columns(rows, ["capture", "stream"])

    def __len__(self) -> int:
        return len(self._captures)

    def __getitem__(self, i: int) -> _Key:
        return _key(self._captures[i], self._streams[i])


def _merged(captures: pd.DataFrame, frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The capture rows (sorted) and the connection rows (in order, a frame at a time) as one stream in
    the order of a stable sort of the two, capture rows first: each capture row goes just before the
    first connection row not before it."""
    pending, at = _keys(captures), 0
    for frame in frames:
        keys, start = _Keys(frame), 0
        while at < len(pending) and (cut := bisect_left(keys, pending[at], lo=start)) < len(keys):
            yield from _nonempty(frame.iloc[start:cut], captures.iloc[at : at + 1])
            start, at = cut, at + 1
        yield from _nonempty(frame.iloc[start:])
    yield from _nonempty(captures.iloc[at:])


def _nonempty(*frames: pd.DataFrame) -> Iterator[pd.DataFrame]:
    yield from (f for f in frames if len(f))


def data_quality(source: Source) -> pd.DataFrame:
    """What the capture did not show, per capture and per connection.

    One row per capture (`scope` capture, stream empty) and one per DCE/RPC connection (`scope`
    connection): unreadable or truncated files, connections whose end was not seen, TCP gaps,
    violations by kind, caps hit, bind items nobody answered, calls whose interface did not come from
    a bind seen in the capture, calls nobody answered, encrypted stubs and unknown interfaces.
    `summary` says it in a few words ("complete" when nothing is missing), so a reader knows what the
    other tables cannot say.
    """
    view = DataQuality()
    fold(source, view)
    return view.result()


def _in_order(rows: pd.DataFrame) -> bool:
    """Whether the rows are already by capture, then stream, missing first (as the sort would put them)."""
    captures, _ = pd.factorize(rows["capture"], sort=True)  # a missing capture is -1: first
    streams = rows["stream"].to_numpy(dtype="int64", na_value=np.iinfo(np.int64).min)
    # compared, not subtracted: a missing stream's int64 minimum minus a stream overflows to a positive step
    later, same = captures[1:] > captures[:-1], captures[1:] == captures[:-1]
    return bool(np.all(later | (same & (streams[1:] >= streams[:-1]))))


# What a connection's row shows of it (the rest it gets from its counters).
_CONNECTION = ["capture", "stream", "transport", "client_ip", "client_port", "server_ip", "server_port"]
_CONNECTION_MORE = ["pipe_name", "end", "gaps", "midstream"]
_ALL_CONNECTION = [*_CONNECTION, *_CONNECTION_MORE]
_READS = {
    "binds": _BIND_COLUMNS,
    "calls": _CALL_COLUMNS,
    "violations": _VIOLATION_COLUMNS,
    "attempts": ATTEMPT_COLUMNS,
    "connections": _ALL_CONNECTION,
    "captures": ["capture", "error", "truncated"],
}


def _connection_rows(
    chunk: pd.DataFrame, per: _Counts, kinds: dict[_Conn, set[str]], sums: dict[str, list[int]]
) -> pd.DataFrame:
    """One chunk of connections as their rows; what each adds to its capture's row goes into `sums`.

    The connection's own columns pass through as the chunk's lists; per row only its counters, kinds
    and summary are made, the summary once per distinct combination of what it says in the chunk (a
    flood's connections mostly say the same)."""
    n = len(chunk)
    keys = list(zip(*columns(chunk, ["capture", "stream"]), strict=True))
    counted = np.zeros((len(_COUNTERS), n), dtype=np.int64)
    kinds_text = np.full(n, None, dtype=object)
    for i in [i for i, k in enumerate(keys) if k in per or k in kinds]:  # most of a flood's have nothing
        counted[:, i] = per.get(keys[i], 0)
        kinds_text[i] = joined(kinds.get(keys[i]))
    midstream = chunk["midstream"].to_numpy(dtype=bool, na_value=False).astype(np.int64)
    said = pd.DataFrame(
        {"transport": chunk["transport"].array, "end": chunk["end"].array, "gaps": chunk["gaps"].array}
        | {"midstream": midstream, "violation_kinds": kinds_text}
        | {c: counted[i] for i, c in enumerate(_COUNTERS)}
    )
    said_by = Grouped(said, list(said.columns))
    summaries = np.array([_connection_summary(w) for w in said_by.rows(list(said.columns))], dtype=object)
    out: dict[str, Any] = {c: chunk[c].array for c in _ALL_CONNECTION if c != "midstream"}
    out |= {"scope": np.full(n, "connection", dtype=object), "midstream": midstream, "violation_kinds": kinds_text}
    out |= {c: counted[i] for i, c in enumerate(_COUNTERS)} | {"summary": summaries[said_by.codes]}
    gaps = chunk["gaps"].to_numpy(dtype=np.int64, na_value=0)
    _add_sums(sums, chunk["capture"], [*(counted[at] for at in _SUMMED_AT), gaps, midstream])
    return typed(DATA_QUALITY, out, n)


def _connection_summary(what: tuple[Any, ...]) -> str:
    """The summary of a connection that says `what` (transport, end, gaps, midstream, kinds, counters)."""
    transport, end, gaps, midstream, kinds_text, *counts = what
    row = {"scope": "connection", "transport": transport, "end": end, "gaps": gaps, "midstream": midstream}
    row.update(zip(_COUNTERS, counts, strict=True), violation_kinds=kinds_text)
    return _summary(row)


def _add_sums(sums: dict[str, list[int]], capture: pd.Series, values: list[np.ndarray]) -> None:
    """What the chunk's connections add to their captures' rows (`values`: per summed column, a
    value per connection), column-wise per capture."""
    codes, captures = pd.factorize(capture, use_na_sentinel=True)
    known = codes >= 0
    for i, column in enumerate(values):
        added = np.zeros(len(captures), dtype=np.int64)
        np.add.at(added, codes[known], column[known])
        for cap, total in zip(captures, added.tolist(), strict=True):
            (sums.get(cap) or sums.setdefault(cap, [0] * 7))[i] += total


def _capture_rows(chunks: list[pd.DataFrame], files: dict[str, _File], sums: dict[str, list[int]]) -> pd.DataFrame:
    """One row per capture: its connections' counts added up, its violations (those of no connection
    too), the flows not followed and the connection attempts."""
    data: dict[str, list[Any]] = {c: [] for c in DATA_QUALITY}
    for chunk in chunks:
        for capture, error, truncated in zip(*columns(chunk, ["capture", "error", "truncated"]), strict=True):
            f = files.get(capture) or _File()
            row: dict[str, Any] = {"capture": capture, "error": error, "truncated": truncated, "scope": "capture"}
            row.update(zip([*_SUMMED, *_SUMMED_ALSO], sums.get(capture) or [0] * 7, strict=True))
            row.update(violations=f.violations, caps_hit=f.caps, violation_kinds=joined(f.kinds))
            row.update(unfollowed=f.unfollowed, attempts=f.attempts, attempt_targets=_targets(f.targets))
            row["summary"] = _summary(row)
            for col in data:
                data[col].append(row.get(col))
    return table(DATA_QUALITY, data)
