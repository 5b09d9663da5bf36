"""The endpoint inventory: per server, what `portqry -e 135` or `rpcdump` would have listed, rebuilt
passively from endpoint-mapper answers and from the binds and calls seen.

Folded from the endpoints, binds and calls chunks (`report.fold`): each entry keeps its counts, first
and last seen, the first sighting's endpoint, port, pipe, capture and frame (the earliest by time,
capture and frame, as a stable sort would put it), and its listed values as sets: versions, names,
hosts, annotations and object UUIDs (bounded by what the towers naming the entry say), its EPM
servers, the EPM answers naming it (capture and frame: bounded by those answers) and its clients."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyzer.report.columns import INT, STR, TIME
from analyzer.report.fold import Grouped, columns, earliest, latest, sort_rows, table
from analyzer.report.lists import add, joined
from analyzer.report.passes import fold
from analyzer.report.source import Source
from analyzer.report.views.shape import is_ip, spec

ANNOUNCED_ONLY = "announced-only"
ANNOUNCED_AND_USED = "announced-and-used"
USED_WITHOUT_ANNOUNCEMENT = "used-without-announcement"
STATUSES = (ANNOUNCED_ONLY, ANNOUNCED_AND_USED, USED_WITHOUT_ANNOUNCEMENT)

ENDPOINT_INVENTORY: dict[str, str] = {
    "server": STR,
    "interface_uuid": STR,
    "interface_version": STR,
    "interface_name": STR,
    "spec": STR,
    "protocol": STR,
    "endpoint": STR,
    "port": INT,
    "pipe_name": STR,
    "host": STR,
    "string_binding": STR,
    "annotation": STR,
    "object_uuids": STR,
    "status": STR,
    "epm_servers": STR,
    "epm_frames": INT,
    "clients": STR,
    "client_count": INT,
    "binds": INT,
    "calls": INT,
    "first_seen": TIME,
    "last_seen": TIME,
    "first_capture": STR,
    "first_frame": INT,
}

_NIL_UUID = "00000000-0000-0000-0000-000000000000"
# The entry's listed columns, in the order `_Entry.lists` holds them.
_LISTED = ["interface_version", "interface_name", "host", "annotation", "object_uuids", "epm_servers"]
# The columns whose first sighting an entry keeps, in the order `_Entry.firsts` holds them.
_FIRSTS = ["endpoint", "port", "pipe_name", "first_capture", "first_frame"]


class _Entry:
    """One (server, interface UUID, protocol, endpoint) entry as far as it is folded."""

    __slots__ = ("announced", "binds", "calls", "clients", "epm_frames", "first", "firsts", "last", "lists", "since")

    def __init__(self) -> None:
        self.announced = False
        self.binds = self.calls = 0
        self.first: int | None = None
        self.last: int | None = None
        self.lists: tuple[set[str], ...] = tuple(set() for _ in _LISTED)
        self.clients: set[str] = set()
        self.epm_frames: set[tuple[str, int]] = set()
        # Per first-sighting column: its first non-missing value and where that row sorts.
        self.firsts: list[Any] = [None] * len(_FIRSTS)
        self.since: list[tuple[Any, ...] | None] = [None] * len(_FIRSTS)

    def sighting(
        self, ts: int | None, capture: str | None, frame: int | None, rank: int, values: tuple[Any, ...]
    ) -> None:
        """A row's time and the values of the first-sighting columns (endpoint, port, pipe, capture,
        frame): each kept when it is the earliest non-missing one. Ties are broken as a stable sort of
        the towers, then the bind items, then the calls would break them: by `rank`, the row's table
        (0 endpoints, 1 binds, 2 calls), then by the order rows of one table come in, so an equal place
        keeps the value already there."""
        self.first, self.last = earliest(self.first, ts), latest(self.last, ts)
        at = (ts is None, ts or 0, capture is None, capture or "", frame is None, frame or 0, rank)
        since, firsts = self.since, self.firsts
        for i, v in enumerate(values):
            if v is not None:
                now = since[i]
                if now is None or at < now:
                    since[i], firsts[i] = at, v


_Entries = dict[tuple[Any, ...], _Entry]


def _entry(per: _Entries, server: Any, uuid: Any, protocol: Any, endpoint: Any) -> _Entry:
    """The entry of a row. Pipe names are case-insensitive (\\PIPE\\lsass and \\pipe\\lsass are one
    pipe), and so is the endpoint of a row without a protocol."""
    if endpoint is not None and (protocol is None or protocol == "ncacn_np"):
        endpoint = endpoint.lower()
    key = (server, uuid, protocol, endpoint)
    e = per.get(key)
    if e is None:
        e = per[key] = _Entry()
    return e


_TOWER = ["host", "epm_server_ip", "interface_uuid", "interface_version", "interface_name", "protocol"]
_TOWER_MORE = ["endpoint", "port", "pipe_name", "annotation", "object_uuid", "capture", "frame", "ts"]
_USE = ["server_ip", "interface_uuid", "interface_version", "interface_name", "transport", "pipe_name"]
_USE_MORE = ["server_port", "client_ip", "capture", "frame", "ts"]
_READS = {
    "endpoints": [*_TOWER, *_TOWER_MORE],
    "binds": [*_USE, *_USE_MORE, "ack_result"],
    "calls": [*_USE, *_USE_MORE],
}
_RANK = {"endpoints": 0, "binds": 1, "calls": 2}  # how a stable sort of the three would break ties


class Inventory:
    """The endpoint inventory as a fold (`report.passes`): an `_Entry` per (server, interface UUID,
    protocol, endpoint), from the towers (announced) and the accepted bind items and calls (used)."""

    def __init__(self) -> None:
        self.per: _Entries = {}

    def wants(self, table: str) -> list[str] | None:
        return _READS.get(table)

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        if table == "endpoints":
            _announced(self.per, columns(chunk, _READS[table]))
        elif table == "binds":
            _used(self.per, 1, chunk[(chunk["ack_result"] == "acceptance").to_numpy(dtype=bool, na_value=False)])
        else:
            _used(self.per, 0, chunk[chunk["interface_uuid"].notna().to_numpy(dtype=bool)])

    def done(self, source: Source) -> None:
        pass

    def result(self) -> pd.DataFrame:
        return _entries(self.per) if self.per else table(ENDPOINT_INVENTORY, {})


def endpoint_inventory(source: Source) -> pd.DataFrame:
    """What each server's endpoint mapper offers and which of it was used: a passive `rpcdump`.

    One row per (server, interface UUID, protocol, endpoint). The server is the address the tower
    points to (the EPM's own address when the tower names none or a NetBIOS name); the endpoint is the
    port, the pipe (compared without regard to case, as SMB does) or the ncalrpc endpoint. An entry is
    "used" when a bind accepted it or a call used it on that server, transport and port or pipe.

    `status` answers "was the service only advertised, advertised and used, or used without anyone
    seeing it advertised" (the last is normal for the endpoint mapper itself and for well-known pipes,
    and worth a look on a dynamic port).
    """
    view = Inventory()
    fold(source, view)
    return view.result()


def _announced(per: _Entries, cols: list[list[Any]]) -> None:
    """Each tower naming an interface: where the endpoint mapper said it lives."""
    for host, epm, uuid, version, name, protocol, endpoint, port, pipe, annotation, obj, cap, frame, ts in zip(
        *cols, strict=True
    ):
        if uuid is None:
            continue
        server = host if is_ip(host) else epm
        e = _entry(per, server, uuid, protocol, endpoint)
        e.announced = True
        e.sighting(ts, cap, frame, 0, (endpoint, port, pipe, cap, frame))
        obj = None if obj == _NIL_UUID else obj
        for values, v in zip(
            e.lists, (version, name, server if host is None else host, annotation, obj, epm), strict=True
        ):
            add(values, v)
        if cap is not None and frame is not None:
            e.epm_frames.add((cap, frame))


_ALIKE = [*_USE, *_USE_MORE[:-2]]  # what the rows of a group share: all but their frame and time


def _used(per: _Entries, is_bind: int, chunk: pd.DataFrame) -> None:
    """Accepted bind items (`is_bind` 1) or calls on a known interface (0): where each was used, on
    the pipe for ncacn_np, on the server port otherwise. A group of rows alike (`fold.Grouped`) at a
    time: its first sighting is its earliest row (rows of one frame that tie are of one connection,
    so they name the same endpoint, port and pipe) and its last seen its latest time."""
    if chunk.empty:
        return
    # A row without a frame is a first sighting of all but its frame: such rows are grouped apart.
    g = Grouped(chunk, _ALIKE if chunk["frame"].notna().all() else [*_ALIKE, "frame"])
    firsts = g.earliest_rows("ts", "frame")
    frames, times = columns(firsts, ["frame", "ts"])
    for n, row, frame, ts, last in zip(g.sizes(), g.rows(_ALIKE), frames, times, g.latest("ts"), strict=True):
        server, uuid, version, name, transport, pipe, port, client, cap = row
        on_pipe = transport == "ncacn_np"
        endpoint = pipe if on_pipe else None if port is None else str(port)
        e = _entry(per, server, uuid, transport, endpoint)
        e.binds += n * is_bind
        e.calls += n * (1 - is_bind)
        # A port is a port only where the transport is known and is not a pipe.
        port = None if transport is None or on_pipe else port
        e.sighting(ts, cap, frame, 2 - is_bind, (endpoint, port, pipe, cap, frame))
        e.last = latest(e.last, last)
        add(e.lists[0], version)
        add(e.lists[1], name)
        if client is not None:
            e.clients.add(client)


def _entries(per: _Entries) -> pd.DataFrame:
    """The entries' rows, each with its status and string binding, in the inventory's order."""
    data: dict[str, list[Any]] = {c: [] for c in ENDPOINT_INVENTORY}
    for (server, uuid, protocol, _endpoint), e in per.items():
        for col, v in (("server", server), ("interface_uuid", uuid), ("protocol", protocol)):
            data[col].append(v)
        for col, v in zip(_FIRSTS, e.firsts, strict=True):
            data[col].append(v)
        for col, values in zip(_LISTED, e.lists, strict=True):
            data[col].append(joined(values))
        # The host a tower named (a NetBIOS name, say) wins over the address a client reached.
        host = data["host"][-1] = server if data["host"][-1] is None else data["host"][-1]
        used = e.binds + e.calls > 0
        status = ANNOUNCED_ONLY if not used else ANNOUNCED_AND_USED if e.announced else USED_WITHOUT_ANNOUNCEMENT
        data["status"].append(status)
        data["spec"].append(spec(uuid) if isinstance(uuid, str) else None)
        data["string_binding"].append(_string_binding(protocol, host, data["endpoint"][-1]))
        data["epm_frames"].append(len(e.epm_frames))
        data["clients"].append(joined({c for c in e.clients if c}))
        data["client_count"].append(len(e.clients))
        for col, v in (("binds", e.binds), ("calls", e.calls), ("first_seen", e.first), ("last_seen", e.last)):
            data[col].append(v)
    order = ["server", "protocol", "port", "endpoint", "interface_name", "interface_uuid"]
    return table(ENDPOINT_INVENTORY, sort_rows(data, order))


def _string_binding(protocol: object, host: object, endpoint: object) -> str | None:
    """What rpcdump prints: protocol:host[endpoint] (ncacn_np hosts with their leading \\\\)."""
    if not isinstance(protocol, str):
        return None
    h = host.split(";")[0] if isinstance(host, str) and protocol != "ncalrpc" else ""
    if protocol == "ncacn_np" and h and not h.startswith("\\\\"):
        h = "\\\\" + h
    e = endpoint if isinstance(endpoint, str) else ""
    return f"{protocol}:{h}[{e}]"


LOCAL_PROTOCOL = "ncalrpc"


def network_endpoints(inventory: pd.DataFrame, include_local: bool = False) -> pd.DataFrame:
    """The inventory without `ncalrpc` entries unless include_local: local (LRPC) endpoints an endpoint
    mapper lists are not reachable from the network, and on an `rpcdump` they are most of the rows
    (302 of 334 on one). What the text and HTML renderings show by default; `--all` shows them."""
    if include_local or inventory.empty:
        return inventory
    kept: pd.DataFrame = inventory[inventory["protocol"].ne(LOCAL_PROTOCOL).fillna(True)].reset_index(drop=True)
    return kept
