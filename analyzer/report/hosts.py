"""The per-host table: for each host as server and as client, folded from the base tables' chunks.

Connections make the hosts (a host is in a role when a connection has it there) and give their
conversations, ports, peers and times; binds add the context items and their answers, calls the
calls, faults and identities, endpoint-mapper towers the endpoints a server's mapper announced. Each
host keeps counts, first and last seen, and the distinct values of its lists (bounded by its peers,
ports, pipes and interfaces: what its row lists anyway), never a table (`report.fold`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyzer.records import Records
from analyzer.report.fold import Grouped, earliest, latest, table
from analyzer.report.lists import Listed, items, joined, port_ranges, put
from analyzer.report.passes import fold
from analyzer.report.source import Frames, Source
from analyzer.report.spooled import Spooled
from analyzer.report.tables import HOSTS, Tables
from analyzer.report.views.shape import REJECTED, spec

_DYNAMIC = 1024  # ports from here up are listed as ranges in dynamic_ports
# The host's listed columns of text, in the order `_Host.lists` holds them (ports and peers are apart).
_LISTED = ["captures", "transports", "pipes", "interfaces", "interface_uuids", "specs"]
_COUNTED = ["connections", "binds", "accepted", "rejected", "calls", "faults", "epm_endpoints"]


class _Host:
    """What one host in one role has added up so far. Its lists are held as `lists.Listed` (its one
    text, or a tuple of a few): a host mostly lists one value or a few, and ten sets a host were
    2 KiB of the 10.8 GB capture's 1,393 hosts' 5 MiB (traced, at the end of the pass)."""

    __slots__ = ("auth_levels", "counts", "empty_peer", "first", "last", "lists", "peers", "ports", "users")

    def __init__(self) -> None:
        self.counts = [0] * len(_COUNTED)
        self.first: int | None = None
        self.last: int | None = None
        self.lists: list[Listed] = [None] * len(_LISTED)
        self.peers: Listed = None  # every peer but empty text, and whether that was one (to count them)
        self.empty_peer = False
        self.ports: Listed = None  # as text
        self.auth_levels: Listed = None
        self.users: Listed = None

    def interface(self, name: str | None, uuid: str | None) -> None:
        """An interface it used: accepted in a bind or named by a call."""
        lists = self.lists
        lists[3] = put(lists[3], name)
        lists[4] = put(lists[4], uuid)
        if uuid is not None:
            lists[5] = put(lists[5], spec(uuid))


_Hosts = dict[tuple[str, str | None], _Host]
_CONNECTION_COLUMNS = ["server_ip", "client_ip", "capture", "transport", "server_port", "pipe_name"]


_BIND_COLUMNS = ["server_ip", "client_ip", "interface_name", "interface_uuid", "auth_level", "ack_result"]
_CALL_COLUMNS = [*_BIND_COLUMNS[:5], "user", "domain", "fault_code"]
_READS = {
    "binds": _BIND_COLUMNS,
    "calls": _CALL_COLUMNS,
    "endpoints": ["epm_server_ip"],
    "connections": [*_CONNECTION_COLUMNS, "first_ts", "last_ts"],
}


class Hosts:
    """The per-host table as a fold (`report.passes`). The binds, calls and endpoints come before the
    connections that make the hosts, so each (role, host) they name is added up as they go by, and
    kept at the end only when a connection has that host in that role (bounded by the hosts)."""

    def __init__(self) -> None:
        self.per: _Hosts = {}
        self.made: set[tuple[str, str | None]] = set()  # the (role, host) pairs connections made

    def wants(self, table: str) -> list[str] | None:
        return _READS.get(table)

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        """A chunk added up a group of rows alike at a time (`fold.Grouped`)."""
        if table == "connections":
            _connections(self.per, self.made, chunk)
        elif table == "binds":
            _binds(self.per, chunk)
        elif table == "calls":
            _calls(self.per, chunk)
        else:
            g = Grouped(chunk, ["epm_server_ip"])
            for n, server in zip(g.sizes(), g.values(["epm_server_ip"])[0], strict=True):
                _host(self.per, "server", server).counts[6] += n

    def done(self, source: Source) -> None:
        pass

    def result(self) -> pd.DataFrame:
        return _rows({key: host for key, host in self.per.items() if key in self.made})


def hosts_frame(source: Source) -> pd.DataFrame:
    """Per host and role: the services it offered (server) or negotiated (client).

    Connections give the conversations, ports, peers and times; binds the context items and their
    answers; calls the calls, faults and identities. Interfaces are those accepted in a bind or used
    by a call.
    """
    hosts = Hosts()
    fold(source, hosts)
    return hosts.result()


def _host(per: _Hosts, role: str, me: str | None) -> _Host:
    host = per.get((role, me))
    if host is None:
        host = per[(role, me)] = _Host()
    return host


def _binds(per: _Hosts, chunk: pd.DataFrame) -> None:
    g = Grouped(chunk, _BIND_COLUMNS)
    for n, (server, client, name, uuid, auth, ack) in zip(g.sizes(), g.rows(_BIND_COLUMNS), strict=True):
        for host in (_host(per, "server", server), _host(per, "client", client)):
            host.counts[1] += n
            host.counts[2] += n if ack == "acceptance" else 0
            host.counts[3] += n if ack in REJECTED else 0
            host.auth_levels = put(host.auth_levels, auth)
            if ack == "acceptance":
                host.interface(name, uuid)


def _calls(per: _Hosts, chunk: pd.DataFrame) -> None:
    keys = _CALL_COLUMNS[:-1]  # the fault is counted, not grouped by
    g = Grouped(chunk, keys)
    faults = g.counts(chunk["fault_code"].notna().to_numpy(dtype=bool))
    for n, f, (server, client, name, uuid, auth, user, domain) in zip(g.sizes(), faults, g.rows(keys), strict=True):
        who = user if domain is None else None if user is None else f"{domain}\\{user}"
        for host in (_host(per, "server", server), _host(per, "client", client)):
            host.counts[4] += n
            host.counts[5] += f
            host.auth_levels = put(host.auth_levels, auth)
            host.users = put(host.users, who)
            host.interface(name, uuid)


def _connections(per: _Hosts, made: set[tuple[str, str | None]], chunk: pd.DataFrame) -> None:
    """One chunk of connections into both of their hosts, a group of connections alike (but for
    their times) at a time."""
    g = Grouped(chunk, _CONNECTION_COLUMNS)
    groups = zip(g.sizes(), g.earliest("first_ts"), g.latest("last_ts"), g.rows(_CONNECTION_COLUMNS), strict=True)
    for n, first, last, (server, client, capture, transport, port, pipe) in groups:
        for role, me, peer in (("server", server, client), ("client", client, server)):
            if me is None:
                continue
            host = _host(per, role, me)
            made.add((role, me))
            host.counts[0] += n
            host.first, host.last = earliest(host.first, first), latest(host.last, last)
            lists = host.lists
            lists[0], lists[1], lists[2] = put(lists[0], capture), put(lists[1], transport), put(lists[2], pipe)
            host.ports = put(host.ports, port)
            if peer == "":
                host.empty_peer = True
            host.peers = put(host.peers, peer)


def _rows(per: _Hosts) -> pd.DataFrame:
    """The hosts' rows, by host then role."""
    data: dict[str, list[Any]] = {c: [] for c in HOSTS}
    for (role, me), host in sorted(per.items(), key=lambda item: (item[0][1], item[0][0])):
        data["host"].append(me)
        data["role"].append(role)
        for col, values in zip(_LISTED, host.lists, strict=True):
            data[col].append(joined(values))
        for col, n in zip(_COUNTED, host.counts, strict=True):
            data[col].append(n)
        data["ports"].append(joined(host.ports))
        data["peers"].append(joined(host.peers))
        data["peer_count"].append(len(items(host.peers)) + host.empty_peer)
        data["dynamic_ports"].append(port_ranges(p for p in map(int, items(host.ports)) if p >= _DYNAMIC))
        data["auth_levels"].append(joined(host.auth_levels))
        data["users"].append(joined(host.users))
        data["first_seen"].append(host.first)
        data["last_seen"].append(host.last)
    return table(HOSTS, data)


def build(records: Records) -> Tables:
    """All tables from the records of one run, each sorted by its `ORDER`."""
    b = Spooled(records)
    base = {t: b.table(t) for t in ("binds", "endpoints", "calls", "connections", "violations", "captures")}
    hosts = hosts_frame(Frames(base))
    return Tables(**base, hosts=hosts)
