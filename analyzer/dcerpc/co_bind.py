"""The rows of a bind or alter_context: one per presentation-context item, with its answer
([C706] 12.6.4.3-6, [MS-RPCE] 2.2.2.4-5 and 2.2.2.14 for bind-time feature negotiation).

A bind_ack answers each item in the same position (acceptance, user or provider rejection with
a reason, or negotiate_ack whose reason field carries the accepted feature bits); a bind_nak
rejects the whole bind; no answer at all leaves every item `none`.
"""

from __future__ import annotations

from typing import Any

from analyzer.dcerpc.constants import (
    ACK_RESULTS,
    ALTER_CONTEXT,
    BIND_NAK_REASONS,
    BTFN_FEATURES,
    PROVIDER_REASONS,
)
from analyzer.dcerpc.pdu import Bind, BindAck, BindNak
from analyzer.model import Flow

_ACCEPTANCE = ACK_RESULTS[0]


def _answer(ack: BindAck | BindNak | None, i: int) -> tuple[str, str | None, str | None]:
    """(result, reason, accepted transfer syntax) of the i-th context item."""
    if isinstance(ack, BindNak):
        return "nak", BIND_NAK_REASONS.get(ack.provider_reject_reason, str(ack.provider_reject_reason)), None
    if ack is None or i >= len(ack.results):
        return "none", None, None
    r = ack.results[i]
    if r.result == 0:  # the usual answer: nothing to look up
        return _ACCEPTANCE, None, r.transfer_syntax.uuid
    reason: str | None = None
    if r.result == 3:  # negotiate_ack: the reason field carries the accepted feature bits
        reason = "|".join(n for bit, n in BTFN_FEATURES.items() if r.reason & bit) or None
    elif r.result != 0:
        reason = PROVIDER_REASONS.get(r.reason, str(r.reason))
    return ACK_RESULTS.get(r.result, str(r.result)), reason, r.transfer_syntax.uuid


def bind_rows(
    bind: Bind,
    frame: int,
    ts: int,
    flow: Flow,
    ack: BindAck | BindNak | None,
    ack_frame: int | None,
    identified_by: str,
) -> list[tuple[Any, ...]]:
    """One row per context item of `bind`, answered by `ack` (None: no answer was seen), each a
    `BindRecord`'s fields in order: what the binds spool takes (`RecordSink.bind_row`), no record
    object made (a bind flood makes one per connection). A list, not a generator: most binds offer
    one item, and a generator cost a fifth of making its row."""
    pdu_type = "alter_context" if bind.header.ptype == ALTER_CONTEXT else "bind"
    auth_type = bind.auth.auth_type if bind.auth else None
    auth_level = bind.auth.auth_level if bind.auth else None
    sec_addr = ack.sec_addr if isinstance(ack, BindAck) else None
    ack_group = ack.assoc_group_id if isinstance(ack, BindAck) else None
    h = bind.header
    # In `BindRecord`'s field order.
    out: list[tuple[Any, ...]] = []
    for i, item in enumerate(bind.contexts):
        result, reason, accepted_syntax = _answer(ack, i)
        abstract = item.abstract
        transfers = item.transfers
        # One transfer syntax is the usual offer: its tuple without a comprehension's call.
        uuids = (transfers[0].uuid,) if len(transfers) == 1 else tuple([t.uuid for t in transfers])
        row = (
            flow,
            frame,
            ts,
            pdu_type,
            h.call_id,
            item.ctx_id,
            abstract.uuid,
            abstract.major,
            abstract.minor,
            uuids,
            result,
            reason,
            ack_frame,
            accepted_syntax,
            sec_addr,
            bind.max_xmit_frag,
            bind.max_recv_frag,
            bind.assoc_group_id,
            ack_group,
            auth_type,
            auth_level,
            identified_by,
        )
        out.append(row)
    return out
