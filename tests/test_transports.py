"""The transports' own state ([analyzer.transports]): the capture's pipe table and its caps."""

from __future__ import annotations

from typing import Any

from analyzer.limits import Limits
from analyzer.model import Flow
from analyzer.ntlm import NtlmIdentity
from analyzer.transports.ncacn_np import NpConnection, PipeTable


class _Sink:
    def __init__(self) -> None:
        self.violations: list[tuple[str, str]] = []

    def violation(self, flow: Flow, frame: int | None, layer: str, what: str, detail: str, count: int = 1) -> None:
        self.violations.extend([(what, detail)] * count)

    def __getattr__(self, name: str) -> Any:  # bind, call, endpoint, datagram: nothing comes here
        raise AssertionError(name)


def _table(limits: Limits) -> tuple[PipeTable, NpConnection, _Sink]:
    sink = _Sink()
    streams = iter(range(1000))
    table = PipeTable(sink, limits, lambda: next(streams))  # type: ignore[arg-type]
    flow = Flow("t", -1, "smb", "10.0.0.1", 50000, "10.0.0.2", 445)
    return table, NpConnection(flow, sink, limits, table, False), sink  # type: ignore[arg-type]


def test_pipes_are_capped_per_session_and_per_capture() -> None:
    table, via, sink = _table(Limits(max_smb_pipes=2, max_pipes=3))
    for fid in range(3):  # a third pipe in session 1 evicts its oldest
        table.open(via, (2, 1, bytes([fid]) * 16), "lsarpc", fid, 0)
    assert [k[2][2][0] for k in table.pipes] == [1, 2]
    assert [w for w, _d in sink.violations] == ["cap_smb_pipes"]
    table.open(via, (2, 2, b"\x09" * 16), "samr", 9, 0)  # three pipes in the capture: at the cap
    table.open(via, (2, 3, b"\x0a" * 16), "samr", 10, 0)  # a fourth, in another session: the oldest goes
    assert [w for w, _d in sink.violations] == ["cap_smb_pipes", "cap_pipes"]
    assert sorted((k[2][1], k[2][2][0]) for k in table.pipes) == [(1, 2), (2, 9), (3, 10)]
    table.close(via, (2, 1, b"\x02" * 16), 11, 0)
    assert len(table.pipes) == 2 and not table.close_all("capture_end")  # no PDU: no rows


def test_session_identities_reach_the_pipes_of_their_session_and_are_capped() -> None:
    table, via, sink = _table(Limits(max_smb_session_names=1))
    table.open(via, (2, 7, b"\x01" * 16), "lsarpc", 1, 0)
    alice, bob = NtlmIdentity("alice", "D", None), NtlmIdentity("bob", "D", None)
    table.identity(via, 2, 7, alice)
    table.identity(via, 2, 8, bob)  # a second session: the first one's name is forgotten
    assert list(table.identities.values()) == [bob]
    assert [w for w, _d in sink.violations] == ["cap_smb_session_names"]


class _Channel:
    """What the virtual connection table reads of an HttpConnection."""

    def __init__(self, kind: str) -> None:
        self.channel = kind
        self.closed = False
        self.vc: Any = None
        self.flow = Flow("t", 0, "ncacn_http", "10.0.0.1", 50000, "10.0.0.2", 80)


def test_a_cookie_reused_by_many_connections_keeps_only_what_is_open() -> None:
    from analyzer.transports.ncacn_http import VirtualConnections

    sink = _Sink()
    vcs = VirtualConnections(sink, Limits(max_virtual_connections=2))  # type: ignore[arg-type]
    first_in = None
    for i in range(100):
        ch = _Channel("in" if i % 2 else "out")
        ch.vc = vcs.join("cookie", ch)  # type: ignore[arg-type]
        first_in = first_in or (ch if ch.channel == "in" else None)
        ch.closed = True
        vcs.channel_closed(ch)  # type: ignore[arg-type]
    assert ch.vc.channels == [first_in]  # the first IN channel names the association, when one is made
    for cookie in ("b", "c"):
        vcs.join(cookie, _Channel("in"))  # type: ignore[arg-type]
    assert [w for w, _d in sink.violations] == ["cap_virtual_connections"]


def test_a_pipe_written_on_many_connections_remembers_a_bounded_number() -> None:
    table, via, sink = _table(Limits(max_smb_pipe_channels=2))
    pipe = table.open(via, (2, 1, b"\x01" * 16), "lsarpc", 1, 0)
    pipe.stream = 0
    vias = [via] + [
        NpConnection(Flow("t", -1, "smb", "10.0.0.1", 50001 + i, "10.0.0.2", 445), sink, Limits(), table, False)
        for i in range(3)
    ]  # type: ignore[arg-type]
    flows = [pipe.flow_on(v) for v in vias]
    assert [f.client_port for f in flows] == [50000, 50001, 50002, 50003]  # each PDU names its connection
    assert len(pipe.flows) == 2 and [w for w, _d in sink.violations] == ["cap_smb_pipe_channels"]


def test_an_http_header_without_its_end_is_capped_and_passed_on() -> None:
    from analyzer.transports.ncacn_http import HttpPreamble

    class Next:
        def __init__(self) -> None:
            self.data_seen = b""

        def data(self, data: bytes, frame: int, ts: int) -> None:
            self.data_seen += data

        def gap(self, missing: int, frame: int, ts: int) -> None:
            raise AssertionError

    capped: list[tuple[int, str, str]] = []
    nxt = Next()
    pre = HttpPreamble(nxt, Limits(max_http_header_bytes=32), lambda *a: capped.append(a))
    pre.data(b"RPC_IN_DATA /rpc/rpcproxy.dll?x HTTP/1.1\r\n", 1, 0)  # 42 bytes, no blank line yet
    assert pre.kind == "unknown" and nxt.data_seen.startswith(b"RPC_IN_DATA")
    assert [(f, w) for f, w, _d in capped] == [(1, "cap_http_header_bytes")]
    wide = HttpPreamble(Next(), Limits(), lambda *a: capped.append(a))
    wide.data(b"RPC_IN_DATA /rpc/rpcproxy.dll?x HTTP/1.1\r\n", 1, 0)
    assert wide.kind is None and len(capped) == 1  # under the default it waits for the header's end
