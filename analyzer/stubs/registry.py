"""The registry of stub decoders: (interface, opnum, direction) -> declared parameters.

Grammar lives in the per-interface modules (one `Family` per interface, one `op()` declaration
per operation); this module is the policy the state machines call through the seam
`analyzer.dcerpc.decoding.StubDecoder` (`RegistryDecoder` is the object they are given): which
stubs to keep (`wants`), and what a finished, unsealed call's stubs say (`decode`): its decoded
arguments, its return value where the return type is known ([MS-RPCE] 2.2.5: the return value is
the last item of the response stub), and, for the endpoint mapper, the towers to learn endpoints
from (`Decoded.endpoints`).

Context handles ([C706] 14.3.12, ndr_context_handle) are named per association by `StubState`:
an operation that opens one (ROpenServiceW) records the name it was opened with, and an
operation that uses one (RStartServiceW) gets that name back as an argument.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.bounded import BoundedDict
from analyzer.dcerpc import epm
from analyzer.dcerpc.decoding import NOTHING, Stubs, Want
from analyzer.dcerpc.ndr import NdrReader
from analyzer.dcerpc.ndr_types import NdrType, Param
from analyzer.dcerpc.wire import Malformed
from analyzer.limits import CAP_CODES, DEFAULT_LIMITS, Limits
from analyzer.model import EndpointRecord, Flow
from analyzer.stubs.memo import MEMO
from analyzer.stubs.orpc import ORPCTHAT, ORPCTHIS

Declared = tuple[str, NdrType]
Values = dict[str, Any]
# A response read by hand (the endpoint mapper): stub reader -> (values, product, return code).
ResponseFn = Callable[[NdrReader], tuple[Values, Any, int | None]]
# An answer whose request was not captured (stub, little-endian, NDR64) -> (opnum, product) or None.
OrphanFn = Callable[[bytes, bool, bool], tuple[int, Any] | None]

WIN32 = "win32"  # DWORD / NET_API_STATUS / error_status_t holding a Win32 code ([MS-ERREF] 2.2)
NTSTATUS = "ntstatus"  # [MS-ERREF] 2.3
HRESULT = "hresult"  # [MS-ERREF] 2.1
RPC_STATUS = "rpc"  # error_status_t of the RPC runtime (nca_s_*, EPT_S_*): the registry's own ranking

# Not caps (they bound no state or work, only how decoded values are shown): output shaping.
_MAX_TEXT = 2048  # characters of one string kept in arguments_json
_MAX_SHOWN = 200  # characters of one value in the short `arguments` text
_MAX_LIST = 16  # list items shown in the short text


@dataclass(frozen=True, slots=True)
class Operation:
    """How to read one operation's stubs, and what of it matters."""

    interface: str
    opnum: int
    name: str
    request: tuple[Declared, ...] | None
    response: tuple[Declared, ...] | ResponseFn | None
    returns: str | None
    show: tuple[str, ...]
    orpc: bool
    derive: Callable[[Values], None] | None
    opens: Callable[[Values, str | None], Any] | None
    names: str | None
    learns: Callable[[Values], Iterable[tuple[str, str]]] | None = None
    want: Want = NOTHING  # what of its stubs to keep (from the declaration, see `wants`)
    # Its parameters compiled per (response, little-endian, NDR64): (name, reader) in wire order,
    # the ORPC header first for a DCOM interface. At most eight, made when first met.
    plans: dict[tuple[bool, bool, bool], tuple[tuple[str, Param], ...]] = field(default_factory=dict, compare=False)

    def plan(self, response: bool, little: bool, ndr64: bool) -> tuple[tuple[str, Param], ...]:
        """How to read one direction's stub: its parameters' compiled readers (`NdrType.param`)."""
        key = (response, little, ndr64)
        plan = self.plans.get(key)
        if plan is None:
            params = self.response if response else self.request
            assert isinstance(params, tuple)  # a hand-written response reader has no plan
            head = (("_orpcthat", ORPCTHAT) if response else ("_orpcthis", ORPCTHIS),) if self.orpc else ()
            plan = self.plans[key] = tuple((name, t.param(little, ndr64)) for name, t in head + params)
        return plan


@dataclass(slots=True)
class Family:
    """One interface: its uuid, the return type most of its operations share, whether it is a
    DCOM interface (ORPCTHIS before the request, ORPCTHAT before the response, [MS-DCOM] 2.2.13)."""

    uuid: str
    name: str
    returns: str | None = WIN32
    orpc: bool = False
    void: frozenset[int] = frozenset()  # opnums that return nothing
    kinds: dict[int, str] = field(default_factory=dict)  # opnums whose return type differs
    prefix: str = "stub"  # the layer and code prefix of its violations
    orphan: OrphanFn | None = None  # how to read an answer alone (the endpoint mapper's towers)

    def op(
        self,
        opnum: int,
        name: str,
        request: Sequence[Declared] | None = None,
        response: Sequence[Declared] | ResponseFn | None = None,
        *,
        show: Sequence[str] = (),
        returns: str | None = "",
        derive: Callable[[Values], None] | None = None,
        opens: Callable[[Values, str | None], Any] | None = None,
        names: str | None = None,
        learns: Callable[[Values], Iterable[tuple[str, str]]] | None = None,
    ) -> Operation:
        """Declare one operation (request and response parameters in wire order, return value
        excluded) and register it."""
        resp = response if response is None or callable(response) else tuple(response)
        if returns == "":
            returns = None if opnum in self.void else self.kinds.get(opnum, self.returns)
        req = tuple(request) if request is not None else None
        want = Want(req is not None, resp is not None, returns is not None)
        op = Operation(
            self.uuid, opnum, name, req, resp, returns, tuple(show), self.orpc, derive, opens, names, learns, want
        )
        key = (self.uuid, opnum)
        if key in OPERATIONS:
            raise ValueError(f"{self.name} opnum {opnum} declared twice")
        OPERATIONS[key] = op
        return op


OPERATIONS: dict[tuple[str, int], Operation] = {}
FAMILIES: dict[str, Family] = {}


def family(
    uuid: str,
    name: str,
    returns: str | None = WIN32,
    orpc: bool = False,
    void: Sequence[int] = (),
    kinds: dict[int, str] | None = None,
    prefix: str = "stub",
) -> Family:
    """Declare an interface: the return type of its operations (`kinds` for those that differ,
    `void` for those without one)."""
    f = FAMILIES[uuid] = Family(uuid, name, returns, orpc, frozenset(void), kinds or {}, prefix)
    return f


def _returns(fam: Family | None, op: Operation | None, opnum: int) -> str | None:
    if op is not None:
        return op.returns
    if fam is None or opnum in fam.void:
        return None
    return fam.kinds.get(opnum, fam.returns)


_ANSWER_ONLY = Want(request=False, response=True, tail=True)  # an answer before its request
_TAIL_ONLY = Want(request=False, response=False, tail=True)  # an undeclared operation's return value


def wants(uuid: str | None, opnum: int) -> Want:
    op = OPERATIONS.get((uuid or "", opnum))
    if op is not None:
        return op.want
    return _TAIL_ONLY if _returns(FAMILIES.get(uuid or ""), None, opnum) else NOTHING


def wants_answer(uuid: str | None) -> Want:
    """An answer whose request is not seen yet: keep its stub when its interface has decoders
    (the opnum is in the request only)."""
    return _ANSWER_ONLY if (uuid or "") in FAMILIES else NOTHING


class StubState:
    """Per association: the names of the context handles its calls opened, and other names its
    calls taught (a SAMR RID's account name), at most `Limits.max_context_handles`, oldest out;
    and the limits its stubs are read under (`Limits.max_ndr_*`)."""

    __slots__ = ("_names", "consulted", "limits", "ndr_limits")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.ndr_limits = (limits.max_ndr_depth, limits.max_ndr_elements, limits.max_ndr_string_chars)
        self._names: BoundedDict[str, str] = BoundedDict(limits.max_context_handles)
        self.consulted = False  # set when a name is asked for or taught: a decode that did depends on it

    def name(self, handle: Any) -> str | None:
        self.consulted = True
        return self._names.get(handle) if isinstance(handle, str) else None

    def remember(self, handle: Any, name: str) -> bool:
        """Name a handle; True when that made the oldest name forgotten (the cap was hit)."""
        self.consulted = True
        if not isinstance(handle, str) or not handle.strip("0"):
            return False
        return self._names.put(handle, name) is not None

    def reader(self, stub: bytes, little: bool, ndr64: bool) -> NdrReader:
        """An NDR reader over one stub, bounded by the limits."""
        lim = self.limits
        return NdrReader(stub, little, ndr64, 0, lim.max_ndr_depth, lim.max_ndr_elements, lim.max_ndr_string_chars)


@dataclass(slots=True)
class Decoded:
    """What a call's stubs said."""

    return_code: int | None = None
    return_kind: str | None = None
    arguments: str | None = None
    arguments_json: str | None = None
    product: Any = None  # the endpoint mapper's EpmResponse
    violations: list[tuple[str, str, str]] = field(default_factory=list)  # (layer, what, detail)
    opnum: int = -1  # the operation decoded (for an answer alone: the one it parsed as)

    def endpoints(
        self, flow: Flow, frame: int, ts: int, call_id: int, request_frame: int | None
    ) -> Iterable[EndpointRecord]:
        """The towers of an endpoint-mapper answer as endpoint records; none for other calls."""
        if not isinstance(self.product, epm.EpmResponse):
            return ()
        return epm.endpoint_records(self.product, flow, frame, ts, call_id, self.opnum, request_frame)


def decode(uuid: str | None, opnum: int, stubs: Stubs, state: StubState, strict: bool = False) -> Decoded | None:
    """Decode a finished, unsealed call. Never raises: malformed stubs become `violations` and
    what was read before the damage is kept. `strict` (tests, fuzzing) lets a decoder bug raise
    instead of becoming a `stub_decoder_error` violation."""
    op = OPERATIONS.get((uuid or "", opnum))
    fam = FAMILIES.get(uuid or "")
    if op is None and fam is None:
        return None
    out = Decoded(opnum=opnum)
    values: Values = {}
    try:
        if op is not None:
            _decode_op(op, stubs, state, values, out)
        returns = _returns(fam, op, opnum)
        if returns is not None and out.return_code is None and stubs.response_tail is not None:
            tail = stubs.response_tail
            if len(tail) >= 4:
                out.return_code = int.from_bytes(tail[-4:], "little" if stubs.response_little else "big")
                out.return_kind = returns
    except Exception as e:  # a decoder bug must not take the call row with it
        if strict:
            raise
        out.violations.append(("stub", "decoder_error", f"{type(e).__name__}: {e}"[:200]))
    if out.violations:
        prefix = fam.prefix if fam is not None else "stub"
        out.violations = [
            (
                prefix,
                what if what in CAP_CODES else f"{prefix}_{what}",
                f"{side}: {detail}" if prefix == "stub" else detail,
            )
            for side, what, detail in out.violations
        ]
    if values:
        out.arguments = short_text(values, op.show if op is not None else ())
        out.arguments_json = json_text(values)
    return out


def decode_answer(uuid: str | None, stubs: Stubs) -> Decoded | None:
    """An answer whose request never came, read by its family's `orphan` reader, if it has one;
    None when it has none, or the stub fits none of its readings."""
    fam = FAMILIES.get(uuid or "")
    if fam is None or fam.orphan is None or stubs.response is None:
        return None
    found = fam.orphan(stubs.response, stubs.response_little, stubs.ndr64)
    if found is None:
        return None
    return Decoded(product=found[1], opnum=found[0])


class RegistryDecoder:
    """The `StubDecoder` the state machines are given: the registry, and the `StubState` of the
    one association (or capture's connectionless calls) it serves."""

    __slots__ = ("_limits", "_state")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        # Made for the first call decoded: an association of binds alone (a bind flood's) has none.
        self._state: StubState | None = None

    # The module's functions themselves, no method around them: `wants` is asked once a call.
    wants = staticmethod(wants)
    wants_answer = staticmethod(wants_answer)

    def decode(self, uuid: str | None, opnum: int, stubs: Stubs) -> Decoded | None:
        """Through the memo (`analyzer.stubs.memo`): a result that read no handle names is kept."""
        state = self._state
        if state is None:
            state = self._state = StubState(self._limits)
        key, found = MEMO.find(state.ndr_limits, uuid, opnum, stubs)
        if found is not None:
            return found  # type: ignore[no-any-return]
        state.consulted = False
        out = decode(uuid, opnum, stubs, state)
        if key is not None and out is not None and not state.consulted:
            MEMO.keep(key, out)
        return out

    def decode_answer(self, uuid: str | None, stubs: Stubs) -> Decoded | None:
        return decode_answer(uuid, stubs)


def _decode_op(op: Operation, stubs: Stubs, state: StubState, values: Values, out: Decoded) -> None:
    if op.request is not None and stubs.request:  # an empty stub is nothing to decode
        r = state.reader(stubs.request, stubs.request_little, stubs.ndr64)
        _read(r, op.plan(False, stubs.request_little, stubs.ndr64), values, out, "request")
    if op.names is not None and op.names not in values:
        name = state.name(values.get("_handle"))
        if name is not None:
            values[op.names] = name
    response: Values = {}
    if op.response is not None and stubs.response:
        r = state.reader(stubs.response, stubs.response_little, stubs.ndr64)
        if callable(op.response):
            try:
                response, out.product, out.return_code = op.response(r)
                out.return_kind = RPC_STATUS if out.return_code is not None else None
            except Malformed as e:
                out.violations.append(("response", e.what, e.detail))
        else:
            _read(r, op.plan(True, stubs.response_little, stubs.ndr64), response, out, "response")
    # What earlier calls taught (see `learns`) and the object the call is on, for `opens`,
    # `derive` and `learns`; both leave the values before they are shown.
    values["_recall"] = state.name
    values["_object"] = stubs.object_uuid
    if op.opens is not None and "_handle" in response:
        name = op.opens(values, state.name(values.get("_handle")))
        if isinstance(name, str) and name:
            _remember(state, response["_handle"], name, out)
    for k, v in response.items():
        values[k if k not in values else f"out_{k}"] = v
    if op.derive is not None:
        op.derive(values)
    if op.learns is not None:
        for key, name in op.learns(values):
            _remember(state, key, name, out)
    del values["_recall"], values["_object"]


def _remember(state: StubState, key: Any, name: str, out: Decoded) -> None:
    if state.remember(key, name):
        detail = f"{state.limits.max_context_handles} names held: the oldest forgotten"
        out.violations.append(("response", "cap_context_handles", detail))


def _read(r: NdrReader, plan: Sequence[tuple[str, Param]], into: Values, out: Decoded, direction: str) -> None:
    try:
        for name, param in plan:
            into[name] = param(r)
    except Malformed as e:
        out.violations.append((direction, e.what, e.detail))


# -- presentation --------------------------------------------------------------------------------

_UNSAFE = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}
_UNSAFE.update({c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F]})


def safe_text(s: str, limit: int, cell: bool = True) -> str:
    """Wire text made harmless for terminals and spreadsheets: control and bidi characters
    escaped, length capped with a mark; when the text starts a cell (`cell`), a leading formula
    character is quoted."""
    if len(s) > limit:
        s = s[:limit] + f"...[+{len(s) - limit} chars]"
    s = s.translate(_UNSAFE)
    if cell and s[:1] in ("=", "+", "-", "@"):
        s = "'" + s
    return s


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        items = [_show(x) for x in v[:_MAX_LIST]]
        more = f",...(+{len(v) - _MAX_LIST})" if len(v) > _MAX_LIST else ""
        return ",".join(items) + more
    if isinstance(v, dict):
        return ",".join(f"{k}:{_show(x)}" for k, x in v.items() if not k.startswith("_"))
    return str(v)


def short_text(values: Values, keys: Sequence[str]) -> str | None:
    """`name=value; ...` of the decisive arguments that were decoded."""
    parts = []
    for k in keys:
        v = values.get(k)
        if v is None or (not v and isinstance(v, str | list | dict)):  # nothing decoded to show
            continue
        parts.append(f"{k}={safe_text(_show(v), _MAX_SHOWN, cell=False)}")
    return "; ".join(parts) or None  # starts with a key: never a formula


_PLAIN = frozenset({int, bool, float, type(None)})  # values that are never capped: not looked into


def _capped(v: Any) -> Any:
    if isinstance(v, str):
        return v if len(v) <= _MAX_TEXT else v[:_MAX_TEXT] + f"...[+{len(v) - _MAX_TEXT} chars]"
    if isinstance(v, dict):
        return {k: x if type(x) in _PLAIN else _capped(x) for k, x in v.items() if k[:1] != "_"}
    if isinstance(v, list):
        return [x if type(x) in _PLAIN else _capped(x) for x in v]
    return v


def json_text(values: Values) -> str:
    """Every decoded value (context handles and ORPC headers left out), as ASCII JSON."""
    return _JSON(_capped(values))


def _json_encoder() -> Callable[[Any], str]:
    """`json.dumps(v, ensure_ascii=True, separators=(",", ":"))`, made once. `JSONEncoder.encode`
    builds its C encoder again at every call, half the cost of encoding a call's few values; this
    one is built once, without the circular-reference check (decoded values are trees, their depth
    bounded by `max_ndr_depth`). Without the C accelerator, the standard encoder."""
    standard = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return standard.encode
    encode = make(None, standard.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
    return lambda v: "".join(encode(v, 0))


_JSON = _json_encoder()
