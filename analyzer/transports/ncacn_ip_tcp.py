"""DCE/RPC connection-oriented PDUs straight on TCP ([MS-RPCE] 2.1.1.1 ncacn_ip_tcp).

`CoConnection` is the transport of one TCP connection: a `CoStream` framer per direction and the
`Association` both feed. It takes the reassembled bytes of either direction as events
(`data(from_client, ...)`, `gap(...)`, `close()`); each framed PDU goes straight to the association.
Also here, what the other stream transports share: the interface an EPM answer announced for the
server port (`epm_hint`), whether a conversation began before the capture (`began_before`), and
how a framer's complaints are reported (`framing_violation`).
"""

from __future__ import annotations

from functools import partial

from analyzer.book import Announcement
from analyzer.dcerpc.association import SOURCE_EPM, Association, InterfaceHint
from analyzer.dcerpc.constants import BIND
from analyzer.dcerpc.stream import CoStream
from analyzer.limits import Limits
from analyzer.model import Flow, RecordSink
from analyzer.stubs import stub_decoder
from analyzer.tcp import Receiver


def epm_hint(announced: Announcement | None) -> InterfaceHint | None:
    """The interface an EPM answer announced at the server port: what a call on a context whose
    bind was not captured probably used."""
    if announced is None or announced.interface_uuid is None:
        return None
    return InterfaceHint(announced.interface_uuid, announced.if_major, announced.if_minor, SOURCE_EPM)


def began_before(assoc: Association | None) -> bool | None:
    """An association whose first PDU was not a bind began before the capture ([C706] 12.6.4.3: a
    bind starts an association); None when it carried no PDU."""
    if assoc is None or assoc.first_ptype is None:
        return None
    return assoc.first_ptype != BIND


def framing_violation(
    sink: RecordSink, flow: Flow, from_client: bool, frame: int, what: str, detail: str, count: int = 1
) -> None:
    """A framer's complaint (`count` times over), said of the direction it came from."""
    sink.violation(flow, frame, "dcerpc", what, ("client: " if from_client else "server: ") + detail, count)


class CoConnection:
    """One ncacn_ip_tcp conversation: both framers and the association."""

    __slots__ = ("_streams", "assoc")

    def __init__(
        self, flow: Flow, identified_by: str, sink: RecordSink, limits: Limits, announced: Announcement | None
    ) -> None:
        self.assoc = Association(flow, identified_by, sink, limits, epm_hint(announced), decoder=stub_decoder(limits))
        pdu = self.assoc.pdu
        # Indexed by from_client (False 0, True 1): a tuple, built without a comprehension's call.
        self._streams = (
            CoStream(partial(pdu, False), partial(framing_violation, sink, flow, False), limits),
            CoStream(partial(pdu, True), partial(framing_violation, sink, flow, True), limits),
        )

    def data(self, from_client: bool, data: bytes, frame: int, ts: int) -> None:
        self._streams[from_client].data(data, frame, ts)

    def gap(self, from_client: bool, missing: int, frame: int, ts: int) -> None:
        self._streams[from_client].gap(missing, frame, ts)

    def receiver(self, from_client: bool) -> Receiver:
        return self._streams[from_client].data

    def close(self) -> None:
        self.assoc.close()
        server, client = self._streams
        client.detach()
        server.detach()

    def pdus(self) -> int:
        return self._streams[True].pdus + self._streams[False].pdus

    def detail(self) -> str | None:
        return None

    def midstream(self) -> bool | None:
        return began_before(self.assoc)
