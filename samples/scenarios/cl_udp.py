"""cl_udp.pcap: connectionless DCE/RPC over UDP (samples/README.md)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ..wire.assoc import Channel
from ..wire.capture import Capture, save_pcap
from ..wire.cl import CL_FRAG, CL_IDEMPOTENT, CL_LASTFRAG, CL_NOFACK, ClEnd, cl_send, fack_body
from ..wire.epm import Tower, ept_map_request, ept_map_response, record_towers
from ..wire.ids import det_uuid, uuid_bytes


def pnio_args_req(blocks: bytes, le: bool) -> bytes:
    """PNIO NDR request arguments (IEC 61158-6-10): ArgsMaximum, ArgsLength, then a conformant varying byte
    array (MaximumCount, Offset, ActualCount) holding the big-endian PNIO blocks."""
    e = "<" if le else ">"
    return struct.pack(e + "IIIII", 16696, len(blocks), 16696, 0, len(blocks)) + blocks


def pnio_args_resp(blocks: bytes, le: bool) -> bytes:
    """PNIO NDR response arguments: PNIOStatus (4 bytes, 0 = OK), ArgsLength, the array header, the blocks."""
    e = "<" if le else ">"
    return b"\0\0\0\0" + struct.pack(e + "IIII", len(blocks), 16696, 0, len(blocks)) + blocks


def pnio_block(btype: int, body: bytes) -> bytes:
    """A PNIO block: BlockType, BlockLength (counting from the version bytes), BlockVersionHigh 1, Low 0."""
    return struct.pack(">HHBB", btype, len(body) + 2, 1, 0) + body


def ept_map_over_udp(cap: Capture) -> None:
    """ept_map over UDP 135, both sides little-endian, announcing two ncadg_ip_udp towers."""
    ws, srv = cap.h["ws01"], cap.h["srv01"]
    cli, epm = ClEnd(ws, 49800, True), ClEnd(srv, 135, True)
    a1 = det_uuid(cap.rng)
    req = ept_map_request(True, "msgsvc", proto="ncadg_ip_udp")
    towers = [
        Tower("msgsvc", "ncadg_ip_udp", port=49672, ip="10.0.0.10"),
        Tower("msgsvc", "ncadg_ip_udp", port=49672, ip="0.0.0.0"),
    ]
    rf = cl_send(cap, cli, epm, "request", act=a1, seq=0, iface="epmapper", opnum=3, body=req, flags1=CL_IDEMPOTENT)
    pf = cl_send(
        cap,
        epm,
        cli,
        "response",
        act=a1,
        seq=0,
        iface="epmapper",
        opnum=3,
        boot=0x65E1A000,
        body=ept_map_response(True, towers),
        flags1=CL_NOFACK,
    )
    ch = Channel()
    ch.transport, ch.client, ch.server, ch.cport, ch.sport = "ncadg_ip_udp", ws, srv, 49800, 135
    record_towers(cap, ch, pf, rf, 0, 3, towers)


@dataclass
class _Activity:
    """The PROFINET IO controller's activity with the device: who talks, the object and boot time, the AR."""

    cap: Capture
    ctl: ClEnd
    dev: ClEnd
    act: str
    ar_uuid: str
    obj: str = "dea00000-6c97-11d1-8271-00010002002a"
    boot: int = 0x00000003

    def send(self, src: ClEnd, dst: ClEnd, ptype: str, seq: int, **kw: Any) -> int:
        return cl_send(self.cap, src, dst, ptype, act=self.act, seq=seq, iface="pnio_device", obj=self.obj, **kw)


def pnio_connect(cap: Capture) -> _Activity:
    """Controller (hmi, little-endian) -> device (plc, big-endian) on UDP 34964: a Connect request in three
    fragments with a fack after the first, ping / working, the response, ack."""
    hmi, plc, rng = cap.h["hmi"], cap.h["plc"], cap.rng
    a = _Activity(cap, ClEnd(hmi, 49801, True), ClEnd(plc, 34964, False), det_uuid(rng), det_uuid(rng))
    ar = pnio_block(
        0x0101,
        struct.pack(">H", 6)
        + uuid_bytes(a.ar_uuid, False)
        + struct.pack(">H", 1)
        + bytes.fromhex(hmi.mac.replace(":", ""))
        + uuid_bytes(det_uuid(rng), False)
        + struct.pack(">IHHH", 0x131, 100, 34964, 4)
        + b"hmi1",
    )
    alarm = pnio_block(0x0103, struct.pack(">HHIHHHHHH", 1, 0x8892, 0, 100, 3, 1, 200, 0xC000, 0xA000))
    vendor = pnio_block(0x0108, struct.pack(">HI", 0x0101, 0) + rng.randbytes(400))
    stub = pnio_args_req(ar + alarm + vendor, True)
    parts = [stub[i : i + 200] for i in range(0, len(stub), 200)]
    assert len(parts) == 3
    for i, part in enumerate(parts):
        flags = CL_FRAG | (CL_LASTFRAG if i == len(parts) - 1 else 0) | (CL_NOFACK if i == 1 else 0)
        a.send(a.ctl, a.dev, "request", 0, body=part, flags1=flags, fragnum=i, note="Connect", call_stub_len=len(stub))
        if i == 0:
            a.send(a.dev, a.ctl, "fack", 0, fragnum=0, boot=a.boot, body=fack_body(False, 0))
    cap.wait(100)
    a.send(a.ctl, a.dev, "ping", 0, flags1=CL_IDEMPOTENT)
    a.send(a.dev, a.ctl, "working", 0, boot=a.boot)
    cap.wait(50)
    resp = pnio_args_resp(
        pnio_block(
            0x8101,
            struct.pack(">H", 6)
            + uuid_bytes(a.ar_uuid, False)
            + struct.pack(">H", 1)
            + bytes.fromhex(plc.mac.replace(":", ""))
            + struct.pack(">H", 34964),
        )
        + pnio_block(0x8103, struct.pack(">HHH", 1, 1, 200)),
        False,
    )
    a.send(a.dev, a.ctl, "response", 0, boot=a.boot, body=resp, flags1=CL_NOFACK, note="Connect")
    a.send(a.ctl, a.dev, "ack", 0, boot=a.boot)
    return a


def device_calls_back(cap: Capture, ar_uuid: str) -> None:
    """The device calls the controller back (the device is the client now: a big-endian request)."""
    hmi, plc = cap.h["hmi"], cap.h["plc"]
    a3 = det_uuid(cap.rng)
    obj_c = "dea00000-6c97-11d1-8271-00010003002a"
    ctrl = b"\0\0" + uuid_bytes(ar_uuid, False) + struct.pack(">HHHH", 1, 0, 0x0002, 0)
    rdy = pnio_args_req(pnio_block(0x0112, ctrl), False)
    dev_c, ctl_s = ClEnd(plc, 49152, False), ClEnd(hmi, 34964, True)
    common: dict[str, Any] = {"act": a3, "seq": 0, "iface": "pnio_controller", "obj": obj_c}
    cl_send(cap, dev_c, ctl_s, "request", **common, opnum=4, body=rdy, note="Control (ApplicationReady)")
    answer = pnio_args_resp(pnio_block(0x8112, ctrl[:-4] + struct.pack(">HH", 0x0008, 0)), True)
    cl_send(cap, ctl_s, dev_c, "response", **common, opnum=4, boot=0x65E19F00, flags1=CL_NOFACK, body=answer)
    cl_send(cap, dev_c, ctl_s, "ack", **common, boot=0x65E19F00)


def read_after_nocall(a: _Activity) -> None:
    """The second call of the controller's activity: the device answers a ping with nocall, and the request
    is sent again."""
    hdr = struct.pack(">H", 1) + uuid_bytes(a.ar_uuid, False) + struct.pack(">IHHHHI", 0, 0, 1, 0, 0xAFF0, 4096)
    rd = pnio_args_req(pnio_block(0x0009, hdr + b"\0" * 24), True)
    im0 = pnio_block(0x0020, struct.pack(">H", 0x002A) + b"6ES7 151-8AB01-0AB0" + b"PLC1-SERIAL-0001" + b"\0" * 23)
    a.send(a.ctl, a.dev, "request", 1, opnum=2, body=rd, boot=a.boot, note="Read")
    a.cap.wait(300)
    a.send(a.ctl, a.dev, "ping", 1, boot=a.boot, flags1=CL_IDEMPOTENT)
    a.send(a.dev, a.ctl, "nocall", 1, boot=a.boot)
    a.send(a.ctl, a.dev, "request", 1, opnum=2, body=rd, boot=a.boot, serial=1, note="Read (retransmission)")
    body = pnio_args_resp(pnio_block(0x8009, hdr[:-4] + struct.pack(">IHH", 64, 0, 0) + b"\0" * 20) + im0, False)
    a.send(a.dev, a.ctl, "response", 1, opnum=2, boot=a.boot, flags1=CL_NOFACK, body=body, note="Read")
    a.send(a.ctl, a.dev, "ack", 1, boot=a.boot)


def make_cl_udp() -> None:
    cap = Capture(
        "cl_udp.pcap",
        "Connectionless DCE/RPC (ncadg_ip_udp, protocol version 4): an ept_map over UDP 135, then "
        "PROFINET-style calls on UDP 34964 between a little-endian controller and a big-endian device: "
        "a three-fragment request with a fack, ping/working, response, ack, a call the device does not "
        "know (nocall) and its retransmission, and a call in the other direction.",
        seed=8,
    )
    ept_map_over_udp(cap)
    a = pnio_connect(cap)
    device_calls_back(cap, a.ar_uuid)
    read_after_nocall(a)
    save_pcap(cap)
