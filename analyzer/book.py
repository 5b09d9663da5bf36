"""The endpoint book: what the run learned about which interface listens where.

One job: remember, per (transport, server address, port), the announcements the run saw — endpoint
mapper answers ([C706] Appendix L, ept_map / ept_lookup towers) and bind_ack secondary addresses
([C706] 12.6.4.4) — and answer two questions about them:
- `before`: was this endpoint announced before a connection started (the pipeline follows such a
  connection from its first packet and links it to the answer);
- `naming`: which interface does a conversation to this endpoint use, from an announcement made at
  any time in the run, earlier or later. Only an unambiguous answer counts: the answer given to the
  same client, else announcements that all name the same interface. Otherwise nothing: never a guess.

Bounded: at most `max_entries` endpoints (oldest forgotten first) and `PER_ENDPOINT` announcements each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from analyzer.bounded import BoundedDict

PER_ENDPOINT = 8  # announcements remembered per (transport, address, port)

SOURCE_EPM = "epm"
SOURCE_SEC_ADDR = "sec_addr"


@dataclass(frozen=True, slots=True)
class Announcement:
    """An endpoint the run learned: who announced it, when, for which interface."""

    capture: str
    frame: int
    ts: int
    client_ip: str | None
    interface_uuid: str | None
    if_major: int | None
    if_minor: int | None
    source: str  # epm | sec_addr


Endpoint = tuple[str, str, int]  # (transport: tcp | udp | http, server address, port)


class EndpointBook:
    """Announcements by endpoint, for the whole run (every file of it)."""

    def __init__(self, max_entries: int) -> None:
        self._book: BoundedDict[Endpoint, list[Announcement]] = BoundedDict(max_entries)
        self._ports: Counter[int] = Counter()  # how many endpoints have each port

    def __len__(self) -> int:
        return len(self._book)

    def __contains__(self, endpoint: Endpoint) -> bool:
        return endpoint in self._book

    def entries(self) -> list[tuple[Endpoint, list[Announcement]]]:
        """Every endpoint with its announcements, in the order they were first learned (a parallel
        run replays a session's book into the run's with `learn`)."""
        return [(e, list(a)) for e, a in self._book.items()]

    def has_port(self, port: int) -> bool:
        """Does any endpoint of any address use this port (the selector must keep it)?"""
        return self._ports[port] > 0

    def learn(self, endpoint: Endpoint, a: Announcement) -> Endpoint | None:
        """Remember an announcement; the endpoint forgotten to make room for it (the cap), if any."""
        forgotten = None
        known = self._book.get(endpoint)
        if known is None:
            known = []
            evicted = self._book.put(endpoint, known)
            self._ports[endpoint[2]] += 1
            if evicted is not None:
                forgotten = evicted[0]
                self._ports[forgotten[2]] -= 1
        known.append(a)
        del known[:-PER_ENDPOINT]
        return forgotten

    def before(self, endpoint: Endpoint, ts: int) -> list[Announcement]:
        """The announcements of this endpoint made at or before `ts`, oldest first."""
        return [a for a in self._book.get(endpoint, ()) if a.ts <= ts]

    def naming(self, endpoint: Endpoint, client_ip: str, ts: int) -> Announcement | None:
        """The announcement that names the interface of a conversation from `client_ip` to this
        endpoint starting at `ts`, whenever it was made: EPM answers first, then secondary addresses;
        within each, the one given to this client nearest in time, else the nearest of answers that
        all name the same interface. None when nothing is known or the answers disagree."""
        found = [a for a in self._book.get(endpoint, ()) if a.interface_uuid is not None]
        for source in (SOURCE_EPM, SOURCE_SEC_ADDR):
            these = [a for a in found if a.source == source]
            if not these:
                continue
            mine = [a for a in these if a.client_ip == client_ip]
            if not mine and len({(a.interface_uuid, a.if_major) for a in these}) > 1:
                continue  # different interfaces announced at this port: which one is unknowable
            return min(mine or these, key=lambda a: abs(a.ts - ts))
        return None
