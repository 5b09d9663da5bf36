"""tcp_segmentation.pcap: DCOM activation mangled at the TCP layer (samples/README.md)."""

from __future__ import annotations

import random
import struct
from typing import Any

from ..wire.assoc import Assoc, TcpChannel
from ..wire.capture import Capture, save_pcap
from ..wire.dcerpc import PTYPE, CtxItem
from ..wire.ids import NDR, det_uuid, uuid_bytes
from ..wire.ndr import Ndr
from ..wire.tcp import TcpFlow


def dcom_server_alive2_resp(host: str = "SRV01") -> bytes:
    """[MS-DCOM] 3.1.2.5.1.6 ServerAlive2 out: COMVERSION, [unique] DUALSTRINGARRAY (ncacn_ip_tcp binding +
    security bindings), reserved, error_status_t."""
    words = [0x0007] + [ord(c) for c in host] + [0, 0]
    sec_off = len(words)
    words += [0x000A, 0xFFFF, 0, 0x0010, 0xFFFF, 0, 0, 0]
    n = Ndr().u16(5).u16(7).ptr().u32(len(words)).u16(len(words)).u16(sec_off)
    for w in words:
        n.u16(w)
    return n.align(4).u32(0).u32(0).bytes()


def dcom_remote_create_instance(rng: random.Random) -> bytes:
    """[MS-DCOM] 3.1.2.5.2.3.2 RemoteCreateInstance in: ORPCTHIS, [unique] pUnkOuter (NULL),
    [unique] MInterfacePointer pActProperties {ulCntData, abData[] = an OBJREF_CUSTOM 'MEOW' blob}."""
    blob = (
        b"MEOW"
        + struct.pack("<I", 4)
        + uuid_bytes("000001a2-0000-0000-c000-000000000046")
        + uuid_bytes("00000338-0000-0000-c000-000000000046")
        + struct.pack("<II", 0, 0)
        + rng.randbytes(424)
    )
    n = Ndr().u16(5).u16(7).u32(0).u32(0).uuid(det_uuid(rng)).ptr(null=True)
    n.ptr(null=True).ptr().u32(len(blob)).u32(len(blob)).raw(blob)
    return n.align(4).bytes()


def dcom_remote_create_instance_resp(rng: random.Random) -> bytes:
    """RemoteCreateInstance out: ORPCTHAT, [unique] MInterfacePointer ppActProperties, HRESULT."""
    blob = (
        b"MEOW"
        + struct.pack("<I", 4)
        + uuid_bytes("000001a3-0000-0000-c000-000000000046")
        + uuid_bytes("00000338-0000-0000-c000-000000000046")
        + struct.pack("<II", 0, 0)
        + rng.randbytes(360)
    )
    n = Ndr().u32(0).ptr(null=True).ptr().u32(len(blob)).u32(len(blob)).raw(blob)
    return n.align(4).u32(0).bytes()


class _Mangled:
    """The association on TCP 135 and the manifest's `tcp_events`, one method per trick."""

    def __init__(self, cap: Capture) -> None:
        ws, srv = cap.h["ws01"], cap.h["srv01"]
        self.cap = cap
        self.f = TcpFlow(cap, ws, 49720, srv, 135)
        self.f.handshake()
        self.a = Assoc(cap, TcpChannel(self.f), assoc_group=0x0000C0DE)
        self.ev: list[dict[str, Any]] = cap.man.data.setdefault("tcp_events", [])

    def event(self, frame: int | None, event: str, what: str) -> None:
        self.ev.append({"frame": frame, "event": event, "what": what})

    def segs(
        self,
        side: str,
        data: bytes,
        cuts: list[int],
        what: str,
        order: list[int] | None = None,
        lost: set[int] | None = None,
    ) -> list[int]:
        """Send `data` cut at `cuts`, in `order`, leaving out the pieces in `lost`; returns their frames."""
        f = self.f
        bounds = [0, *cuts, len(data)]
        pieces = [(bounds[i], data[bounds[i] : bounds[i + 1]]) for i in range(len(bounds) - 1)]
        base = f.pos[side]
        frames = [0] * len(pieces)
        for i in order or list(range(len(pieces))):
            off, chunk = pieces[i]
            if lost and i in lost:
                self.ev.append(
                    {
                        "frame": None,
                        "event": "lost segment (not in the capture, acknowledged by the peer)",
                        "direction": side,
                        "stream_offset": base + off,
                        "length": len(chunk),
                        "what": what,
                    }
                )
                continue
            frames[i] = f.segment(side, base + off, chunk, desc=f"{what} bytes {off}-{off + len(chunk)}")
        f.advance(side, len(data))
        return frames

    def bind_cut_in_header_and_retransmitted_ack(self) -> None:
        """1. bind cut inside the 16-byte common header (10 | 30 | rest); 2. bind_ack, then the same segment
        again (retransmission)."""
        f, a = self.f, self.a
        bind_items = [CtxItem(0, "IObjectExporter", [NDR]), CtxItem(1, "ISystemActivator", [NDR])]
        bind = a.bind_pdu(1, bind_items)
        fr = self.segs("c", bind, [10, 40], "bind")
        self.event(fr[0], "PDU split inside the 16-byte header", "bind call_id=1")
        f.ack("s")
        ack = a.ack_pdu(1, bind_items, sec_addr="135")
        base = f.pos["s"]
        af = f.segment("s", base, ack, desc="bind_ack")
        f.advance("s", len(ack))
        self.cap.wait(200)
        rt = f.segment("s", base, ack, desc="bind_ack (retransmission)")
        self.event(rt, "retransmission of an identical segment", "bind_ack call_id=1")
        a.record_bind(
            fr[-1],
            PTYPE["bind"],
            1,
            bind_items,
            af,
            PTYPE["bind_ack"],
            None,
            sec_addr="135",
            tshark_skip="tshark 4.0 does not take a TCP segment shorter than the 16-byte DCE/RPC header as "
            "the start of a PDU, so it never dissects this bind",
        )
        f.ack("c")

    def two_pdus_per_segment(self) -> None:
        """3. two requests in one segment, and their two responses in one segment."""
        f, a = self.f, self.a
        r2 = a.request_pdus(2, 0, 5, b"")
        r3 = a.request_pdus(3, 0, 1, Ndr().u64(0x0000BEEF00C0FFEE).bytes())
        rq = f.send("c", r2[0] + r3[0], desc="2 requests (call_id 2, 3)")
        self.event(rq, "two PDUs in one segment", "requests call_id=2,3")
        p2 = a.response_pdus(2, 0, dcom_server_alive2_resp())
        p3 = a.response_pdus(3, 0, Ndr().u32(0).bytes())
        rs = f.send("s", p2[0] + p3[0], desc="2 responses (call_id 2, 3)")
        self.event(rs, "two PDUs in one segment", "responses call_id=2,3")
        alive2 = len(dcom_server_alive2_resp())
        a.record_request(rq, 2, 0, 5, stub_len=0, resp_frame=rs, resp_stub_len=alive2, operation="ServerAlive2")
        a.record_request(rq, 3, 0, 1, stub_len=8, resp_frame=rs, resp_stub_len=4, operation="SimplePing")

    def overlapping_retransmission_then_reordered_answer(self) -> None:
        """4. a request in three segments; the peer acknowledges only the first, and the sender retransmits
        the other two as one segment (an overlapping, repacketised retransmission); 5. the response in two
        segments captured in the wrong order."""
        f, a, cap = self.f, self.a, self.cap
        stub4 = dcom_remote_create_instance(cap.rng)
        r4 = a.request_pdus(4, 1, 4, stub4)[0]
        base = f.pos["c"]
        f.segment("c", base, r4[:200], desc="request call_id=4 bytes 0-200", flags="A")
        fb = f.segment("c", base + 200, r4[200:450], desc="request call_id=4 bytes 200-450", flags="A")
        fr4 = f.segment("c", base + 450, r4[450:], desc=f"request call_id=4 bytes 450-{len(r4)}")
        f.packet("s", "A", f.seq("s"), f.seq("c", base + 200), desc="ACK (only the first segment)")
        cap.wait(300)
        frt = f.segment("c", base + 200, r4[200:], desc=f"request call_id=4 bytes 200-{len(r4)} (retransmission)")
        f.advance("c", len(r4))
        self.event(
            frt,
            f"overlapping retransmission: one segment re-sends bytes 200-{len(r4)} first sent in frames {fb} and {fr4}",
            "request call_id=4",
        )
        f.ack("s")
        stub4r = dcom_remote_create_instance_resp(cap.rng)
        p4 = a.response_pdus(4, 1, stub4r)[0]
        fo = self.segs("s", p4, [250], "response call_id=4", order=[1, 0])
        self.event(fo[1], "out of order: the second half of the PDU is captured first", "response call_id=4")
        self.event(fo[0], "out of order: the first half arrives last and completes the PDU", "response call_id=4")
        a.record_request(
            fr4,
            4,
            1,
            4,
            stub_len=len(stub4),
            resp_frame=fo[0],
            resp_stub_len=len(stub4r),
            operation="RemoteCreateInstance",
            response_tshark_skip="tshark 4.0 does not reassemble out-of-order segments by default "
            "(tcp.reassemble_out_of_order is off)",
        )
        f.ack("c")

    def alter_context_cut_after_header_and_a_call(self) -> None:
        """6. alter_context cut exactly after the common header; 7. an ordinary call."""
        f, a = self.f, self.a
        alter_items = [CtxItem(2, "IRemUnknown2", [NDR])]
        alt = a.bind_pdu(5, alter_items, PTYPE["alter_context"])
        fr = self.segs("c", alt, [16], "alter_context call_id=5")
        self.event(fr[0], "PDU split right after the 16-byte header", "alter_context call_id=5")
        af = f.send("s", a.ack_pdu(5, alter_items, PTYPE["alter_context"]), desc="alter_context_resp call_id=5")
        a.record_bind(
            fr[-1], PTYPE["alter_context"], 5, alter_items, af, PTYPE["alter_context_resp"], None, sec_addr=""
        )
        stub6 = Ndr().u64(0x1122334455667788).u16(3).u16(1).ptr().u32(1).u16(7).bytes()
        a.call(
            6,
            0,
            4,
            stub6,
            Ndr().ptr().u32(3).u16(3).u16(0).u16(7).u16(0).u16(0).align(4).u32(0).u32(0).bytes(),
            name="ResolveOxid2",
        )

    def lost_segment(self) -> None:
        """8. a segment missing from the capture: it holds the tail of call 7 and the head of call 8; the next
        segment holds the rest of call 8 and a complete call 9 (which starts mid-segment)."""
        f, a = self.f, self.a
        r7 = a.request_pdus(7, 0, 5, b"")[0]
        r8 = a.request_pdus(8, 0, 1, Ndr().u64(0x0000BEEF00C0FFEE).bytes())[0]
        r9 = a.request_pdus(
            9, 0, 2, Ndr().u64(0x0000BEEF00C0FFEE).u16(2).u16(0).u16(0).ptr(null=True).ptr(null=True).bytes()
        )[0]
        fr = self.segs("c", r7 + r8 + r9, [12, len(r7) + 20], "requests call_id=7,8,9", lost={1})
        f.ack("s", desc="ACK (covers the lost segment)")
        self.event(fr[2], "first segment after the gap: tail of call 8, then call 9 complete", "requests call_id=8,9")
        q7 = f.send("s", a.response_pdus(7, 0, dcom_server_alive2_resp())[0], desc="response call_id=7")
        q8 = f.send("s", a.response_pdus(8, 0, Ndr().u32(0).bytes())[0], desc="response call_id=8")
        q9 = f.send(
            "s",
            a.response_pdus(9, 0, Ndr().u64(0x0000BEEF00C0FFEE).u16(2).u16(0).align(4).u32(0).bytes())[0],
            desc="response call_id=9",
        )
        a.record_request(
            fr[0],
            7,
            0,
            5,
            stub_len=0,
            resp_frame=q7,
            resp_stub_len=len(dcom_server_alive2_resp()),
            recoverable=False,
            operation="ServerAlive2",
            lost="the PDU's last 12 bytes are in the lost segment",
        )
        a.record_request(
            fr[2],
            8,
            0,
            1,
            stub_len=8,
            resp_frame=q8,
            resp_stub_len=4,
            recoverable=False,
            operation="SimplePing",
            lost="the PDU's first 20 bytes are in the lost segment",
        )
        a.record_request(
            fr[2],
            9,
            0,
            2,
            stub_len=len(r9) - 24,
            resp_frame=q9,
            resp_stub_len=16,
            operation="ComplexPing",
            note="starts in the middle of the first segment after the gap: needs resynchronisation",
            tshark_skip="tshark does not look for a PDU header inside a segment that follows a gap",
        )


def make_tcp_segmentation() -> None:
    cap = Capture(
        "tcp_segmentation.pcap",
        "DCOM activation on TCP 135 whose PDUs are cut, repeated, reordered and partly lost at the TCP "
        "layer: what a reassembler must survive.",
        seed=3,
    )
    m = _Mangled(cap)
    m.bind_cut_in_header_and_retransmitted_ack()
    m.two_pdus_per_segment()
    m.overlapping_retransmission_then_reordered_answer()
    m.alter_context_cut_after_header_and_a_call()
    m.lost_segment()
    # 9. after the gap, ordinary traffic again
    m.a.call(10, 0, 5, b"", dcom_server_alive2_resp(), name="ServerAlive2")
    m.f.close()
    cap.man["lost_bytes"] = [e for e in m.ev if e["frame"] is None]
    cap.man.note(
        "the bind (call 1) is cut after 10 bytes, inside the common header: tshark 4.0 does not recognise "
        "a DCE/RPC PDU in a segment shorter than 16 bytes and never dissects the bind (its bind_ack it does)."
    )
    cap.man.note(
        "tshark 4.0 with default preferences (tcp.reassemble_out_of_order off) does not reassemble the "
        "out-of-order response of call 4 (marked response_tshark_skip); with that preference on it stalls "
        "for good at the lost segment instead and loses every later client PDU."
    )
    cap.man.note(
        "call 9 starts in the middle of the first segment after the lost one: tshark does not find it "
        "(it only tries a PDU at the start of a segment after a gap), an analyzer that resynchronises does."
    )
    save_pcap(cap)
