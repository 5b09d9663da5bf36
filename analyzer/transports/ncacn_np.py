"""DCE/RPC over SMB named pipes (ncacn_np, [MS-RPCE] 2.1.1.2): one association per pipe handle.

`NpConnection` is the transport of a TCP connection on 445 or 139: its reassembled bytes go to the
SMB parser (`analyzer.smb`), whose events it receives itself (it is the `SmbEvents`); they name pipes
by (dialect, session, file id). The `PipeTable`, one per capture, joins those events across TCP
connections: with SMB2 multichannel a bind may leave on
one connection and its answer come back on another of the same session ([MS-SMB2] 3.2.4.1.7), so a
pipe is keyed by server address, session and file id, never by TCP connection. Each pipe frames the
bytes written to and read from it into PDUs (`CoStream`, one per direction) and feeds one
`Association`, as Zeek does; the records of each PDU carry the TCP connection it travelled on.

The SMB session's NTLM user is carried onto the calls of its pipes. A request on a pipe whose bind
was never seen names the pipe's well-known interface (`interface_source` = `pipe`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial

from analyzer import registry
from analyzer.bounded import BoundedDict
from analyzer.dcerpc.association import SOURCE_PIPE, Association, InterfaceHint
from analyzer.dcerpc.constants import BIND
from analyzer.dcerpc.pdu import CoPdu
from analyzer.dcerpc.stream import CoStream
from analyzer.limits import Limits
from analyzer.model import BY_SMB, NCACN_NP, ConnectionRecord, Flow, RecordSink
from analyzer.ntlm import NtlmIdentity
from analyzer.smb import SmbConnection
from analyzer.smb.events import PipeKey
from analyzer.stubs import stub_decoder
from analyzer.tcp import Receiver

_serials = itertools.count(1)
SMB_TRANSPORT = "smb"  # the transport of an SMB TCP connection's own Flow (never a table row)

# (server address, scope, pipe key). SMB2 session ids and file ids are the server's, valid on every
# channel of the session (scope 0); SMB1 Uids and FIDs are only unique within one connection
# ([MS-CIFS] 3.2.1.3), so their scope is the connection.
TableKey = tuple[str, int, PipeKey]
SessionKey = tuple[str, int, int, int]  # (server address, scope, dialect, session id)


def _session_of(k: TableKey) -> SessionKey:
    return k[0], k[1], k[2][0], k[2][1]


def table_key(via: NpConnection, key: PipeKey) -> TableKey:
    return via.flow.server_ip, (via.serial if key[0] == 1 else 0), key


def pipe_hint(name: str | None) -> InterfaceHint | None:
    """The interface a pipe is well known for ([MS-RPCE] 2.1.1.2 and the per-interface specs):
    the first the registry lists for it."""
    if not name:
        return None
    uuids = registry.pipe_interfaces(name)
    return InterfaceHint(uuids[0], None, None, SOURCE_PIPE) if uuids else None


class Pipe:
    """One pipe handle: its association, a framer per direction, and its conversation's counters.

    Not every pipe carries DCE/RPC (PsExec's PSEXESVC pipes carry a console, for one). A pipe becomes
    a DCE/RPC conversation, with a stream number, a connections.csv row and its violations, when the
    first PDU is framed from it; until then what its framers complain about is held back, and a pipe
    closed without one leaves no trace in the tables.
    """

    _HELD_VIOLATIONS = 16

    def __init__(
        self, table: PipeTable, key: TableKey, name: str | None, via: NpConnection, frame: int, ts: int
    ) -> None:
        self.table = table
        self.key = key
        self.name = name
        self.stream = -1  # numbered when the first PDU shows it carries DCE/RPC
        self.flows: dict[int, Flow] = {}
        self.via = via  # the TCP connection the current bytes arrived on
        self.assoc: Association | None = None
        self._held: list[tuple[int, str, str]] = []
        self._channels_capped = False
        self._streams = {
            side: CoStream(partial(self.pdu, side), partial(self._violation, side), table.limits)
            for side in (True, False)
        }
        self.first_frame = self.last_frame = frame
        self.first_ts = self.last_ts = ts
        self.client_bytes = 0
        self.server_bytes = 0
        self.messages = 0

    def _confirm(self) -> Association:
        """The first PDU: number the conversation, start the association, release held violations."""
        self.stream = self.table.next_stream()
        flow = self.flow_on(self.via)
        assoc = self.assoc = Association(
            flow,
            BY_SMB,
            self.table.sink,
            self.table.limits,
            pipe_hint(self.name),
            decoder=stub_decoder(self.table.limits),
        )
        who = self.table.identities.get(self.key[:2] + self.key[2][:2])
        if who is not None:
            assoc.transport_identity = who
        for frame, what, detail in self._held:
            self.table.sink.violation(flow, frame, "dcerpc", what, detail)
        self._held.clear()
        return assoc

    def flow_on(self, via: NpConnection) -> Flow:
        """This pipe's conversation as seen on one TCP connection (same stream, that connection's ports)."""
        flow = self.flows.get(via.serial)
        if flow is None:
            t = via.flow
            flow = Flow(
                capture=t.capture,
                stream=self.stream,
                transport=NCACN_NP,
                client_ip=t.client_ip,
                client_port=t.client_port,
                server_ip=t.server_ip,
                server_port=t.server_port,
                pipe=self.name,
                opened_ts=t.opened_ts,
            )
            if len(self.flows) < self.table.limits.max_smb_pipe_channels:
                self.flows[via.serial] = flow
            elif not self._channels_capped:  # said once; the Flow of each PDU on more is made afresh
                self._channels_capped = True
                detail = f"{len(self.flows)} TCP connections remembered for one pipe"
                self.table.sink.violation(flow, None, "limits", "cap_smb_pipe_channels", detail)
        return flow

    def data(self, via: NpConnection, from_client: bool, data: bytes, frame: int, ts: int) -> None:
        self.via = via
        self.messages += 1
        self.last_frame, self.last_ts = frame, ts
        if from_client:
            self.client_bytes += len(data)
        else:
            self.server_bytes += len(data)
        self._streams[from_client].data(data, frame, ts)

    def pdu(self, from_client: bool, pdu: CoPdu, frame: int, ts: int, first_frame: int) -> None:
        assoc = self.assoc or self._confirm()
        assoc.pdu(from_client, pdu, frame, ts, first_frame, self.flow_on(self.via))

    def _violation(self, from_client: bool, frame: int, what: str, detail: str, count: int = 1) -> None:
        detail = ("client: " if from_client else "server: ") + detail
        if self.assoc is not None:
            self.table.sink.violation(self.flow_on(self.via), frame, "dcerpc", what, detail, count)
        else:
            self._held.extend([(frame, what, detail)] * min(count, self._HELD_VIOLATIONS - len(self._held)))

    def close(self, end: str) -> ConnectionRecord | None:
        """End of the pipe: its connections.csv row, or None when it never carried DCE/RPC."""
        if self.assoc is None:
            return None
        self.assoc.close()
        dialect, session, fid = self.key[2]
        first = next(iter(self.flows.values()))
        return ConnectionRecord(
            flow=first,
            identified_by=BY_SMB,
            first_frame=self.first_frame,
            first_ts=self.first_ts,
            last_frame=self.last_frame,
            last_ts=self.last_ts,
            packets=self.messages,
            client_bytes=self.client_bytes,
            server_bytes=self.server_bytes,
            pdus=self._streams[True].pdus + self._streams[False].pdus,
            end=end,
            detail=f"SMB{dialect} session 0x{session:x} file id {fid.hex()}"
            + (f"; {len(self.flows)} TCP connections (multichannel)" if len(self.flows) > 1 else ""),
            midstream=self.assoc.first_ptype is not None and self.assoc.first_ptype != BIND,
        )


class PipeTable:
    """Every open pipe of a capture, keyed by (server address, dialect, session, file id)."""

    def __init__(self, sink: RecordSink, limits: Limits, next_stream: Callable[[], int]) -> None:
        self.sink = sink
        self.limits = limits
        self.next_stream = next_stream
        self.pipes: dict[TableKey, Pipe] = {}
        self._by_session: dict[SessionKey, dict[TableKey, None]] = {}  # the pipes of each session, oldest first
        # Per session: the user its session setup named, and whether it is encrypted (reported once).
        self.identities: BoundedDict[SessionKey, NtlmIdentity] = BoundedDict(limits.max_smb_session_names)
        self.encrypted: BoundedDict[tuple[str, int], None] = BoundedDict(limits.max_smb_session_names)
        self.closed: list[ConnectionRecord] = []

    def open(self, via: NpConnection, key: PipeKey, name: str | None, frame: int, ts: int) -> Pipe:
        k = table_key(via, key)
        old = self.pipes.get(k)
        if old is not None:  # a file id reused after a CLOSE we did not see
            self._closed(old, "reopened")
        session = self._by_session.setdefault(_session_of(k), {})
        if len(session) >= self.limits.max_smb_pipes:
            self.sink.violation(via.flow, frame, "limits", "cap_smb_pipes", f"{len(session)} pipes open in a session")
            self._closed(self._pop(next(iter(session))), "evicted")
        elif old is None and len(self.pipes) >= self.limits.max_pipes:
            # Handles outlive their TCP connection: pipes never closed pile up here, not per connection.
            self.sink.violation(via.flow, frame, "limits", "cap_pipes", f"{len(self.pipes)} pipes open in the capture")
            self._closed(self._pop(next(iter(self.pipes))), "evicted")
        pipe = self.pipes[k] = Pipe(self, k, name, via, frame, ts)
        self._by_session.setdefault(_session_of(k), {})[k] = None
        return pipe

    def _pop(self, k: TableKey) -> Pipe:
        session = self._by_session[_session_of(k)]
        del session[k]
        if not session:
            del self._by_session[_session_of(k)]
        return self.pipes.pop(k)

    def close(self, via: NpConnection, key: PipeKey, frame: int, ts: int) -> None:
        k = table_key(via, key)
        if k in self.pipes:
            pipe = self._pop(k)
            pipe.last_frame, pipe.last_ts = frame, ts
            self._closed(pipe, "close")

    def identity(self, via: NpConnection, dialect: int, session: int, who: NtlmIdentity) -> None:
        server, scope, _ = table_key(via, (dialect, session, b""))
        sk = (server, scope, dialect, session)
        if self.identities.put(sk, who) is not None:
            self.sink.violation(via.flow, None, "limits", "cap_smb_session_names", f"{len(self.identities)} sessions")
        for k in self._by_session.get(sk, ()):
            pipe = self.pipes[k]
            if pipe.assoc is not None:
                pipe.assoc.transport_identity = who

    def _closed(self, pipe: Pipe, end: str) -> None:
        record = pipe.close(end)
        if record is not None:
            self.closed.append(record)

    def close_all(self, end: str) -> list[ConnectionRecord]:
        for pipe in self.pipes.values():
            self._closed(pipe, end)
        self.pipes = {}
        self._by_session = {}
        out, self.closed = self.closed, []
        return out


class NpConnection:
    """The transport of one TCP connection carrying SMB (445, or 139 with the NetBIOS session
    service): the SMB parser, whose events it receives and passes to the pipe table with itself as
    the connection they came on. Not a DCE/RPC conversation itself: its pipes are."""

    # The TCP connection's bytes and holes go straight to the SMB parser, which takes the same events.
    data: Callable[[bool, bytes, int, int], None]
    gap: Callable[[bool, int, int, int], None]

    def __init__(self, flow: Flow, sink: RecordSink, limits: Limits, table: PipeTable, netbios: bool) -> None:
        self.flow = flow
        self.sink = sink
        self.table = table
        # Names this connection in the pipe table for as long as its pipes live (not id(): the
        # number of a freed object is reused, and SMB1 pipes outlive their connection's object).
        self.serial = next(_serials)
        self.smb = SmbConnection(self, limits, netbios)
        self.data = self.smb.data
        self.gap = self.smb.gap

    # -- the TCP connection's events ------------------------------------------------------------

    def receiver(self, from_client: bool) -> Receiver:
        return partial(self.smb.data, from_client)

    def close(self) -> None:
        self.smb.close()

    def pdus(self) -> int:
        return 0

    def detail(self) -> str | None:
        return None

    def midstream(self) -> bool | None:
        return None

    # -- the SMB parser's events (analyzer.smb.events.SmbEvents) --------------------------------

    def pipe_open(self, key: PipeKey, name: str, tree: str | None, frame: int, ts: int) -> None:
        self.table.open(self, key, name, frame, ts)

    def pipe_data(self, key: PipeKey, from_client: bool, data: bytes, frame: int, ts: int) -> None:
        pipe = self.table.pipes.get(table_key(self, key))
        if pipe is None:  # opened on another channel we did not see, or before the capture began
            pipe = self.table.open(self, key, None, frame, ts)
        pipe.data(self, from_client, data, frame, ts)

    def pipe_close(self, key: PipeKey, frame: int, ts: int) -> None:
        self.table.close(self, key, frame, ts)

    def session_identity(self, dialect: int, session_id: int, identity: NtlmIdentity, frame: int) -> None:
        self.table.identity(self, dialect, session_id, identity)

    def encrypted(self, session_id: int, frame: int, ts: int) -> None:
        k = (self.flow.server_ip, session_id)
        if k not in self.table.encrypted:
            if self.table.encrypted.put(k, None) is not None:
                n = len(self.table.encrypted)
                self.sink.violation(self.flow, frame, "limits", "cap_smb_session_names", f"{n} sessions")
            detail = f"session 0x{session_id:x} is encrypted: its pipes cannot be read"
            self.sink.violation(self.flow, frame, "smb", "smb3_encrypted", detail)

    def violation(self, frame: int, what: str, detail: str) -> None:
        self.sink.violation(self.flow, frame, "smb", what, detail)
