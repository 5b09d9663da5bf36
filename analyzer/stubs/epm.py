"""The endpoint mapper (e1af8308-5d1f-11c9-91a4-08002b14a0fa, [C706] Appendix I): ept_lookup and
ept_map. The towers of their answers are what the analyzer learns endpoints from; the tower
grammar itself is `analyzer.dcerpc.epm`."""

from __future__ import annotations

from typing import Any

from analyzer.dcerpc import epm
from analyzer.dcerpc.constants import EPM_UUID
from analyzer.dcerpc.ndr import NdrReader
from analyzer.dcerpc.ndr_types import GUID, HANDLE, U16, U32, Custom, NdrType, Ptr, Queue, Struct
from analyzer.dcerpc.wire import Malformed
from analyzer.stubs.registry import Values, family

# [C706] Appendix I: inquiry types of ept_lookup
INQUIRY = {0: "rpc_c_ep_all_elts", 1: "rpc_c_ep_match_by_if", 2: "rpc_c_ep_match_by_obj", 3: "rpc_c_ep_match_by_both"}

F = family(EPM_UUID, "epmapper", None, prefix="epm")


def _tower(r: NdrReader, q: Queue) -> Any:
    """twr_t pointee: the interface the tower asks for."""
    t = epm._twr(r)
    return {"interface_uuid": t.interface_uuid, "if_major": t.if_major, "protocol": t.protocol}


TOWER: NdrType = Custom(_tower, 4)
IF_ID = Struct(("uuid", GUID), ("vers_major", U16), ("vers_minor", U16))


def _answer(parse: Any) -> Any:
    def read(r: NdrReader) -> tuple[Values, Any, int | None]:
        parsed: epm.EpmResponse = parse(r.data, r.little, r.ndr64)
        return {"towers": len(parsed.entries)}, parsed, parsed.status

    return read


def _inquiry(v: Values) -> None:
    if isinstance(v.get("inquiry_type"), int):
        v["inquiry"] = INQUIRY.get(v["inquiry_type"], str(v["inquiry_type"]))
    tower = v.get("map_tower")
    if isinstance(tower, dict):
        v["interface_uuid"] = tower.get("interface_uuid")


F.op(
    epm.EPT_LOOKUP,
    "ept_lookup",
    [
        ("inquiry_type", U32),
        ("object", Ptr(GUID)),
        ("interface_id", Ptr(IF_ID)),
        ("vers_option", U32),
        ("_handle", HANDLE),
        ("max_ents", U32),
    ],
    _answer(epm.parse_lookup_response),
    show=("inquiry", "max_ents", "towers"),
    returns=None,
    derive=_inquiry,
)
F.op(
    epm.EPT_MAP,
    "ept_map",
    [("object", Ptr(GUID)), ("map_tower", Ptr(TOWER)), ("_handle", HANDLE), ("max_towers", U32)],
    _answer(epm.parse_map_response),
    show=("interface_uuid", "towers"),
    returns=None,
    derive=_inquiry,
)


def orphan_answer(stub: bytes, little: bool, ndr64: bool) -> tuple[int, epm.EpmResponse] | None:
    """An endpoint-mapper answer whose request was not captured: whichever of ept_map and
    ept_lookup it parses as, with that opnum; None when neither."""
    for opnum, parse in ((epm.EPT_MAP, epm.parse_map_response), (epm.EPT_LOOKUP, epm.parse_lookup_response)):
        try:
            return opnum, parse(stub, little, ndr64)
        except Malformed:
            continue
    return None


F.orphan = orphan_answer  # its towers are worth having even without the request
