"""rpc_http_v2.pcap: RPC over HTTP v2 through a proxy (samples/README.md)."""

from __future__ import annotations

import struct
from typing import Any

from ..wire.assoc import Assoc, Channel
from ..wire.capture import Capture, save_pcap
from ..wire.dcerpc import CtxItem
from ..wire.http import (
    RTS_ASSOCIATION_GROUP_ID,
    RTS_CHANNEL_LIFETIME,
    RTS_CLIENT_KEEPALIVE,
    RTS_CMD_NAME,
    RTS_CONNECTION_TIMEOUT,
    RTS_COOKIE,
    RTS_RECEIVE_WINDOW_SIZE,
    RTS_VERSION,
    rts_pdu,
)
from ..wire.ids import NDR, det_uuid, uuid_bytes
from ..wire.stubs import nspi_bind_req, nspi_bind_resp
from ..wire.tcp import TcpFlow


def http_head(method: str, length: int) -> bytes:
    """The client's RPC_IN_DATA / RPC_OUT_DATA request line and headers ([MS-RPCH] 2.1.2.1)."""
    return (
        f"{method} /rpc/rpcproxy.dll?srv01.corp.local:6004 HTTP/1.1\r\nAccept: application/rpc\r\n"
        "User-Agent: MSRPC\r\nHost: srv01.corp.local\r\n"
        f"Content-Length: {length}\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\n"
        "Pragma: no-cache\r\n\r\n"
    ).encode()


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


class RtsLog:
    """Sends RTS PDUs on a channel and records each in the manifest's `rts_pdus`."""

    def __init__(self, cap: Capture) -> None:
        self.rows: list[dict[str, Any]] = cap.man.data.setdefault("rts_pdus", [])

    def send(
        self,
        flow: TcpFlow,
        side: str,
        name: str,
        cmds: list[tuple[int, bytes]],
        prefix: bytes,
        channel: str,
    ) -> int:
        fr = flow.send(side, prefix + rts_pdu(0, cmds), f"{'HTTP header + ' if prefix else ''}RTS {name}")
        row = {"frame": fr, "name": name, "channel": channel, "flags": 0}
        self.rows.append({**row, "commands": [RTS_CMD_NAME[t] for t, _ in cmds], "client_port": flow.cport})
        return fr


def open_virtual_connection(cap: Capture, f_in: TcpFlow, f_out: TcpFlow, log: RtsLog) -> None:
    """CONN/A1 on the OUT channel, CONN/B1 on the IN channel, the proxy's CONN/A3 and CONN/C2
    ([MS-RPCH] 3.2.1.5.3.1-3.2.1.5.3.6)."""
    rng = cap.rng
    vconn, out_cookie, in_cookie, assoc = det_uuid(rng), det_uuid(rng), det_uuid(rng), det_uuid(rng)
    a1 = [
        (RTS_VERSION, u32(1)),
        (RTS_COOKIE, uuid_bytes(vconn)),
        (RTS_COOKIE, uuid_bytes(out_cookie)),
        (RTS_RECEIVE_WINDOW_SIZE, u32(0x10000)),
    ]
    log.send(f_out, "c", "CONN/A1", a1, http_head("RPC_OUT_DATA", 76), "out")
    b1 = [
        (RTS_VERSION, u32(1)),
        (RTS_COOKIE, uuid_bytes(vconn)),
        (RTS_COOKIE, uuid_bytes(in_cookie)),
        (RTS_CHANNEL_LIFETIME, u32(0x40000000)),
        (RTS_CLIENT_KEEPALIVE, u32(300000)),
        (RTS_ASSOCIATION_GROUP_ID, uuid_bytes(assoc)),
    ]
    log.send(f_in, "c", "CONN/B1", b1, http_head("RPC_IN_DATA", 1073741824), "in")
    f_in.ack("s")
    head = b"HTTP/1.1 200 Success\r\nContent-Type: application/rpc\r\nContent-Length: 1073741824\r\n\r\n"
    log.send(f_out, "s", "CONN/A3", [(RTS_CONNECTION_TIMEOUT, u32(120000))], head, "out")
    c2 = [(RTS_VERSION, u32(1)), (RTS_RECEIVE_WINDOW_SIZE, u32(0x10000)), (RTS_CONNECTION_TIMEOUT, u32(120000))]
    log.send(f_out, "s", "CONN/C2", c2, b"", "out")


class HttpV2Channel(Channel):
    """PDUs from the client go in the IN channel's request body, PDUs from the server in the OUT channel's
    response body ([MS-RPCH] 3.2.1.5.3.x)."""

    transport = "ncacn_http"

    def __init__(self, f_in: TcpFlow, f_out: TcpFlow) -> None:
        self.f_in, self.f_out = f_in, f_out
        self.client, self.server, self.cport, self.sport = f_in.client, f_in.server, f_in.cport, 80

    def endpoint(self) -> dict[str, Any]:
        d = super().endpoint()
        d.update(
            rpc_http_version=2,
            in_channel_client_port=self.f_in.cport,
            out_channel_client_port=self.f_out.cport,
            rpc_proxy_target="srv01.corp.local:6004",
        )
        return d

    def c2s(self, pdu: bytes, desc: str) -> int:
        return self.f_in.send("c", pdu, desc + " (IN channel)")

    def s2c(self, pdu: bytes, desc: str) -> int:
        return self.f_out.send("s", pdu, desc + " (OUT channel)")


def make_rpc_http_v2() -> None:
    cap = Capture(
        "rpc_http_v2.pcap",
        "RPC over HTTP version 2 ([MS-RPCH] 3.2) through an RPC proxy on TCP 80: an RPC_OUT_DATA request "
        "(OUT channel) with CONN/A1, an RPC_IN_DATA request (IN channel) with CONN/B1, the proxy's "
        "HTTP 200 with CONN/A3 and CONN/C2, then bind and request inside the IN channel and bind_ack "
        "and response inside the OUT channel.",
        seed=92,
    )
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    rng = cap.rng
    f_out = TcpFlow(cap, ws, 49792, srv, 80)
    f_in = TcpFlow(cap, ws, 49791, srv, 80)
    f_in.handshake()
    f_out.handshake()
    log = RtsLog(cap)
    open_virtual_connection(cap, f_in, f_out, log)
    a = Assoc(cap, HttpV2Channel(f_in, f_out), assoc_group=0x9201)
    a.extra["tshark_skip"] = (
        "tshark 4.0 dissects only the first RTS PDU of an RPC_IN_DATA/RPC_OUT_DATA body (in the "
        "frame with the HTTP header); later PDUs in the channel are 'HTTP Continuation'"
    )
    a.bind(1, [CtxItem(0, "nspi", [NDR])], sec_addr="6004")
    a.call(2, 0, 0, nspi_bind_req(rng), nspi_bind_resp(rng, "6f2a1b3c-4d5e-4f60-8172-8394a5b6c7d8"), name="NspiBind")
    f_out.ack("c")
    f_in.ack("s")
    f_in.close()
    f_out.close()
    for r in log.rows:
        if r["name"] == "CONN/C2":
            r["tshark_skip"] = "second PDU of the OUT channel's response body: tshark shows 'HTTP Continuation'"
    cap.man.note(
        "tshark 4.0 dissects CONN/A1, CONN/B1 and CONN/A3 (each in the frame carrying its HTTP header) but "
        "not CONN/C2 nor the bind, bind_ack, request and response that follow inside the IN and OUT channel "
        "bodies: those rows are marked tshark_skip and are known by construction only."
    )
    cap.man.note(
        "the bind travels in the IN channel (client port 49791) and its bind_ack in the OUT channel (client "
        "port 49792): a pairing by reversed TCP connection, as truth.py does, cannot match them."
    )
    save_pcap(cap)
