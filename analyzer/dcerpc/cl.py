"""Connectionless DCE/RPC over UDP (ncadg_ip_udp): the call tracker ([C706] 10).

[C706] 10 describes the protocol machines this follows passively: a call is named by its activity
UUID and sequence number, not by a connection; requests and responses are fragmented by the
sender (fragnum, `frag` and `lastfrag` in flags1) and reassembled per call (`cl_fragments`); an
answer may come from another port than the request went to (PROFINET servers answer from an
ephemeral port) and a broadcast request may be answered by any host. A client that starts a new
sequence number on an activity has finished the previous call; an ack closes a call for good.
The PDUs themselves are `cl_pdu`'s.

`ClTracker` is sans-IO, one per capture file: datagrams in, `DatagramRecord` (one per PDU),
`CallRecord` (one per call) and `EndpointRecord` (ept_map / ept_lookup answers, [C706] Appendix I)
out through a `RecordSink`. Malformed PDUs and every cap hit become violations. Which stubs to
keep and what they mean is the injected `StubDecoder`'s business (analyzer.dcerpc.decoding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analyzer.bounded import BoundedDict
from analyzer.dcerpc.cl_call import Call, Half
from analyzer.dcerpc.cl_pdu import CL_FLAG_MAYBE, ClHeader, parse_cl_header
from analyzer.dcerpc.constants import ACK, CL_CANCEL, FACK, FAULT, PING, REJECT, REQUEST, RESPONSE
from analyzer.dcerpc.decoding import Decoded, NoDecoder, StubDecoder, Stubs
from analyzer.dcerpc.wire import Malformed
from analyzer.limits import Limits
from analyzer.model import CallRecord, DatagramRecord, Flow, RecordSink

SOURCE_HEADER = "header"  # a call's interface came from its own header
LAYER = "dcerpc_cl"

# Who sends which PDU type ([C706] 10): the rest go server -> client, except fack, which
# acknowledges fragments in either direction.
_FROM_CLIENT = frozenset({REQUEST, PING, ACK, CL_CANCEL})
_ANSWERS = frozenset({RESPONSE, FAULT, REJECT})

# A request, or an answer, seen again for a call that is already finished is a retransmission
# (the client lost the answer, or the capture holds both copies), unless this much capture time
# has passed: CL clients give up on a call within tens of seconds, so a repeat after that is a
# new call that happens to reuse the numbers (spliced test traces do).
_RETRY_WINDOW_NS = 60 * 1_000_000_000


@dataclass(slots=True)
class _Done:
    """What is remembered of a finished call, to recognise its retransmissions."""

    client: tuple[str, int] | None
    answered: bool
    ts: int


Key = tuple[str, int]


class ClTracker:
    """Connectionless DCE/RPC state of one capture file. Feed datagrams in capture order with
    `datagram()`, then `close()`.

    `flow_for(client_ip, client_port, server_ip, server_port)` names the conversation
    (transport ncadg_ip_udp) a PDU belongs to; the client is the side that sends requests, so
    an answer from another port than the request went to belongs to a conversation of its own,
    and the call it answers keeps the request's.
    """

    def __init__(
        self,
        sink: RecordSink,
        limits: Limits,
        flow_for: Callable[[str, int, str, int], Flow],
        *,
        decoder: StubDecoder | None = None,
    ) -> None:
        """`decoder`: the stub decoders the calls go to (`analyzer.stubs.stub_decoder(limits)`, one per
        capture file); without one, stubs are neither kept nor decoded."""
        self._sink = sink
        self._limits = limits
        self._flow_for = flow_for
        # Oldest out; even at a cap of 0 the call at hand is held, until the next.
        self._calls: BoundedDict[Key, Call] = BoundedDict(max(1, limits.max_pending_calls))  # request seen
        self._by_activity: dict[str, int] = {}  # activity -> seqnum of its call in _calls
        self._early: BoundedDict[Key, Call] = BoundedDict(max(1, limits.max_early_answers))  # answers first
        self._held = 0  # response stub bytes kept: counted up, recounted at the cap
        self._partial: BoundedDict[Key, None] = BoundedDict(max(1, limits.max_pending_fragments))  # incomplete
        self._done: BoundedDict[Key, _Done] = BoundedDict(limits.max_pending_calls)  # finished, for retransmissions
        self._decoder: StubDecoder = decoder if decoder is not None else NoDecoder()

    # -- input ------------------------------------------------------------------------------------

    def datagram(
        self, src_ip: str, src_port: int, dst_ip: str, dst_port: int, data: bytes, frame: int, ts: int
    ) -> None:
        """One UDP payload sent from (src_ip, src_port) to (dst_ip, dst_port)."""
        try:
            h = parse_cl_header(data)
        except Malformed as e:
            flow = self._flow_for(src_ip, src_port, dst_ip, dst_port)
            self._sink.violation(flow, frame, LAYER, e.what, e.detail)
            return
        key = (h.activity_uuid, h.seqnum)
        from_client = self._from_client(h, key, (src_ip, src_port), (dst_ip, dst_port))
        if from_client:
            flow = self._flow_for(src_ip, src_port, dst_ip, dst_port)
        else:
            flow = self._flow_for(dst_ip, dst_port, src_ip, src_port)
        status = h.status()
        # Which way the datagram went, which is not always its role: a response sent the way of its
        # request shares the request's conversation (the pipeline keys it by the pair).
        sent_by_client = (flow.client_ip, flow.client_port) == (src_ip, src_port)
        self._sink.datagram(_datagram_record(h, flow, frame, ts, sent_by_client, status))
        if h.ptype in (FAULT, REJECT) and status is None:
            self._sink.violation(flow, frame, LAYER, "short_fault_body", f"{h.body_len} bytes, the status needs 4")
        if h.ptype == REQUEST:
            self._request(h, key, flow, (src_ip, src_port), frame, ts)
        elif h.ptype in _ANSWERS:
            self._answer(h, key, flow, status, frame, ts)
        elif h.ptype == ACK:
            call = self._calls.get(key)
            if call is not None and call.req is not None and call.req.done:
                # The client acknowledged an answer: the call is over even if fragments of it
                # were not captured.
                self._finish(call)
        else:
            call = self._calls.get(key) or self._early.get(key)
            if call is not None:
                call.last_ts = ts

    def close(self) -> None:
        """End of the capture: calls still waiting are reported, unanswered or partly answered."""
        for call in list(self._calls.values()):
            self._finish(call)
        for call in list(self._early.values()):
            self._orphan(call)
        self._early.clear()
        self._partial.clear()
        self._done.clear()

    # -- direction ----------------------------------------------------------------------------------

    def _from_client(self, h: ClHeader, key: Key, src: tuple[str, int], dst: tuple[str, int]) -> bool:
        if h.ptype != FACK:
            return h.ptype in _FROM_CLIENT
        # A fack acknowledges fragments: the server's for a fragmented request, the client's for a
        # fragmented response. The client's address, where known, tells which.
        call = self._calls.get(key)
        client = call.client if call is not None else None
        if call is None:
            done = self._done.get(key)
            client = done.client if done is not None else None
        if client == src:
            return True
        if client == dst:
            return False
        return call is not None and call.req is not None and call.req.done

    # -- calls --------------------------------------------------------------------------------------

    def _request(self, h: ClHeader, key: Key, flow: Flow, src: tuple[str, int], frame: int, ts: int) -> None:
        call = self._calls.get(key)
        if call is not None and call.req is not None and call.req.done and ts - call.last_ts > _RETRY_WINDOW_NS:
            self._finish(call)  # silent for long: this is a new call reusing the numbers
            call = None
        if call is None:
            done = self._done.get(key)
            if done is not None:
                if ts - done.ts <= _RETRY_WINDOW_NS:
                    return  # a retransmission of a finished call
                del self._done[key]
            call = self._start(h, key, flow, src, frame, ts)
        call.last_ts = ts
        req = call.req
        if req is None:
            req = call.req = Half(frame, ts, h.little, keep=call.want.request)
        new, capped = req.add(h, frame, ts, self._limits.max_call_stub_bytes)
        if capped:
            self._sink.violation(flow, frame, LAYER, "cap_call_stub_bytes", f"{self._name(call)} request stub not kept")
        if new and h.opnum != call.opnum:
            self._sink.violation(
                flow,
                frame,
                LAYER,
                "fragment_mismatch",
                f"{self._name(call)} fragment {h.fragnum} has opnum {h.opnum}",
            )
        self._track_partial(call, key, flow, frame)
        if req.done and (call.answer_done or h.flags1 & CL_FLAG_MAYBE):
            # Answered already (an answer captured before the request), or a `maybe` call,
            # which gets no answer at all.
            self._finish(call)

    def _start(self, h: ClHeader, key: Key, flow: Flow, src: tuple[str, int], frame: int, ts: int) -> Call:
        # A client moves to a new sequence number only when its previous call on the activity is
        # over ([C706] 10): whatever is still waiting there is finished as it stands.
        prev = self._by_activity.get(h.activity_uuid)
        if prev is not None:
            self._finish(self._calls[(h.activity_uuid, prev)])
        early = self._early.pop(key, None)
        want = self._decoder.wants(h.interface_uuid, h.opnum)
        call = early if early is not None else Call(h, ts, want)
        call.flow = flow
        call.client = src
        call.interface, call.if_vers, call.opnum = h.interface_uuid, h.if_vers, h.opnum
        call.want = want
        call.object_uuid = h.object_or_none
        call.auth_proto = h.auth_proto or call.auth_proto
        evicted = self._calls.put(key, call)
        if evicted is not None:
            oldest = evicted[1]
            detail = f"{len(self._calls)} calls awaiting answers"
            self._sink.violation(oldest.flow or flow, frame, LAYER, "cap_pending_calls", detail)
            self._finish(oldest)
        self._by_activity[h.activity_uuid] = h.seqnum
        return call

    def _answer(self, h: ClHeader, key: Key, flow: Flow, status: int | None, frame: int, ts: int) -> None:
        call = self._calls.get(key)
        if call is None:
            done = self._done.get(key)
            if done is not None and ts - done.ts <= _RETRY_WINDOW_NS:
                if not done.answered:
                    self._sink.violation(
                        flow, frame, LAYER, "late_answer", f"{_key_text(key)} already reported unanswered"
                    )
                    done.answered = True
                return  # otherwise a duplicate of the answer already counted
            call = self._early.get(key)
            if call is None:
                call = Call(h, ts, self._decoder.wants(h.interface_uuid, h.opnum))
                gone = self._early.put(key, call)
                if gone is not None:
                    detail = f"{len(self._early)} answers wait for requests"
                    self._sink.violation(flow, frame, LAYER, "cap_early_answers", detail)
                    self._orphan(gone[1])
        call.last_ts = ts
        if h.ptype == RESPONSE:
            if call.fault is not None:
                return  # the call already ended in a fault
            resp = call.resp
            if resp is None:
                resp = call.resp = Half(frame, ts, h.little, call.want.response)
                call.resp_flow = flow
            cap, what = self._limits.max_call_stub_bytes, "cap_call_stub_bytes"
            if resp.parts is not None and not self._room(h.body_len):
                cap, what = 0, "cap_held_stub_bytes"  # all kept stubs together are at their cap
            _new, capped = resp.add(h, frame, ts, cap)
            if capped:
                self._sink.violation(flow, frame, LAYER, what, f"{self._name(call)} response stub not kept")
        else:
            if call.fault is not None:
                return
            call.fault = status if status is not None else 0
            call.fault_frame = frame
            call.fault_ts = ts
            call.resp_flow = flow
        self._track_partial(call, key, flow, frame)
        if call.answer_done and key in self._calls:
            self._finish(call)

    def _room(self, n: int) -> bool:
        """May n more stub bytes be kept (`Limits.max_held_stub_bytes`)? The running count only
        grows, so at the cap it is recounted from the calls still pending."""
        self._held += n
        if self._held <= self._limits.max_held_stub_bytes:
            return True
        self._held = n + sum(
            c.resp.kept
            for calls in (self._calls, self._early)
            for c in calls.values()
            if c.resp is not None and c.resp.parts is not None
        )
        return self._held <= self._limits.max_held_stub_bytes

    def _track_partial(self, call: Call, key: Key, flow: Flow, frame: int) -> None:
        """Bound the calls being reassembled: the oldest is given up when there are too many."""
        if not call.reassembling:
            self._partial.pop(key, None)
            return
        if key in self._partial:
            return
        gone = self._partial.put(key, None)
        if gone is not None:
            old_key = gone[0]
            self._sink.violation(
                flow,
                frame,
                LAYER,
                "cap_pending_fragments",
                f"{_key_text(old_key)} given up before its last fragment",
            )
            old = self._calls.get(old_key)
            if old is not None:
                self._finish(old)
            else:
                early = self._early.pop(old_key, None)
                if early is not None:
                    self._orphan(early)

    def _finish(self, call: Call) -> None:
        key = (call.activity, call.seqnum)
        self._calls.pop(key, None)
        if self._by_activity.get(call.activity) == call.seqnum:
            del self._by_activity[call.activity]
        self._partial.pop(key, None)
        req, resp = call.req, call.resp
        assert call.flow is not None and req is not None  # only calls whose request was seen get here
        done_ts = max(call.last_ts, req.ts)
        # Not reported when full: forgetting the oldest finished call only means that a repeat of
        # it, later still, would be taken for a new call.
        self._done.put(key, _Done(call.client, call.answered, done_ts))
        if call.fault is not None:
            resp_frame, resp_ts = call.fault_frame, call.fault_ts
        elif resp is not None:
            resp_frame, resp_ts = resp.frame, resp.ts
        else:
            resp_frame = resp_ts = None
        decoded = self._decode(call)
        self._sink.call(
            CallRecord(
                flow=call.flow,
                frame=req.frame,
                ts=req.ts,
                first_frame=req.first_frame,
                call_id=call.seqnum,
                ctx_id=0,
                interface_uuid=call.interface,
                if_major=call.if_vers & 0xFFFF,
                if_minor=call.if_vers >> 16,
                interface_source=SOURCE_HEADER,
                opnum=call.opnum,
                object_uuid=call.object_uuid,
                request_bytes=req.nbytes,
                request_fragments=req.count,
                response_frame=resp_frame,
                response_ts=resp_ts,
                response_bytes=resp.nbytes if resp is not None and call.fault is None else None,
                response_fragments=resp.count if resp is not None else (1 if call.fault is not None else None),
                fault_status=call.fault,
                answered=call.answered,
                auth_type=call.auth_proto,
                auth_level=None,
                auth_context_id=None,
                user=None,
                domain=None,
                workstation=None,
                encrypted=False,
                activity_uuid=call.activity,
                seqnum=call.seqnum,
                return_status=decoded.return_code if decoded else None,
                return_kind=decoded.return_kind if decoded else None,
                arguments=decoded.arguments if decoded else None,
                arguments_json=decoded.arguments_json if decoded else None,
            )
        )
        if decoded is not None:
            self._endpoints(call, decoded)

    def _orphan(self, call: Call) -> None:
        """An answer whose request never came: reported; EPM towers in it are still worth having."""
        key = (call.activity, call.seqnum)
        self._partial.pop(key, None)
        flow = call.resp_flow
        assert flow is not None
        frame = call.fault_frame if call.fault is not None else (call.resp.frame if call.resp else None)
        self._sink.violation(flow, frame, LAYER, "answer_without_request", _key_text(key))
        decoded = self._decode(call)
        if decoded is not None:
            self._endpoints(call, decoded)

    # -- stubs ----------------------------------------------------------------------------------------

    def _decode(self, call: Call) -> Decoded | None:
        """Hand the kept stubs of an unauthenticated call to the registry (an authenticated
        connectionless body may be sealed: it is left alone)."""
        if call.auth_proto:
            return None
        req, resp = call.req, call.resp
        answer = call.fault is None and resp is not None and resp.done
        kept = Stubs(
            ndr64=False,
            request=req.stub() if req is not None and req.done else None,
            request_little=req.little if req is not None else True,
            response=resp.stub() if answer and resp is not None else None,
            response_little=resp.little if resp is not None else True,
            response_tail=resp.tail if answer and resp is not None else None,
            object_uuid=call.object_uuid,
        )
        decoded = self._decoder.decode(call.interface, call.opnum, kept)
        if decoded is not None:
            for layer, what, detail in decoded.violations:
                if layer == "epm" and resp is not None and call.resp_flow is not None:
                    self._sink.violation(call.resp_flow, resp.frame, layer, what, detail)
                elif call.flow is not None or call.resp_flow is not None:
                    flow = call.flow or call.resp_flow
                    assert flow is not None
                    frame = req.frame if req is not None else (resp.frame if resp is not None else None)
                    self._sink.violation(flow, frame, layer, what, detail)
        return decoded

    def _endpoints(self, call: Call, decoded: Decoded) -> None:
        """The endpoints an answer announced, on the answer's own conversation: a broadcast
        request is answered by one server."""
        resp, flow = call.resp, call.resp_flow
        if resp is None or flow is None:
            return  # no response stub: nothing was announced
        request_frame = call.req.frame if call.req is not None else None
        for rec in decoded.endpoints(flow, resp.frame, resp.ts, call.seqnum, request_frame):
            self._sink.endpoint(rec)

    @staticmethod
    def _name(call: Call) -> str:
        return _key_text((call.activity, call.seqnum))


def _key_text(key: Key) -> str:
    return f"activity {key[0]} seqnum {key[1]}"


def _datagram_record(
    h: ClHeader, flow: Flow, frame: int, ts: int, from_client: bool, status: int | None
) -> DatagramRecord:
    """The record of one PDU: its header's fields (a record's field list)."""
    return DatagramRecord(
        flow=flow,
        frame=frame,
        ts=ts,
        from_client=from_client,
        ptype=h.ptype,
        flags1=h.flags1,
        flags2=h.flags2,
        little=h.little,
        char_ebcdic=h.char_ebcdic,
        serial=h.serial,
        object_uuid=h.object_or_none,
        interface_uuid=h.interface_uuid,
        if_major=h.if_major,
        if_minor=h.if_minor,
        activity_uuid=h.activity_uuid,
        server_boot=h.server_boot,
        seqnum=h.seqnum,
        opnum=h.opnum,
        fragnum=h.fragnum,
        body_len=h.body_len,
        auth_type=h.auth_proto or None,
        status=status,
    )
