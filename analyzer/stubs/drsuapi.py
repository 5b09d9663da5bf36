"""drsuapi ([MS-DRSR] 4.1): directory replication. DRSGetNCChanges from a host that is not a
domain controller is DCSync; the EXOP says what was asked (EXOP_REPL_SECRETS: one account's
secrets), the naming context which partition."""

from __future__ import annotations

from typing import Any

from analyzer.dcerpc.ndr import NdrReader, decode_text
from analyzer.dcerpc.ndr_types import (
    ASTR,
    BYTES,
    GUID,
    HANDLE,
    U32,
    U64,
    WSTR,
    Array,
    Bytes,
    Custom,
    Ptr,
    Queue,
    Struct,
    Union,
)
from analyzer.stubs.registry import Values, family

F = family("e3514235-4b06-11d1-ab04-00c04fc2dcd2", "drsuapi")

# EXOP_REQ codes ([MS-DRSR] 5.48)
EXOPS = {0: "EXOP_NONE", 1: "EXOP_FSMO_REQ_ROLE", 2: "EXOP_FSMO_REQ_RID_ALLOC", 3: "EXOP_FSMO_RID_REQ_ROLE",
         4: "EXOP_FSMO_REQ_PDC", 5: "EXOP_FSMO_ABANDON_ROLE", 6: "EXOP_REPL_OBJ", 7: "EXOP_REPL_SECRETS"}  # fmt: skip


def _dsname(r: NdrReader, q: Queue) -> Any:
    """DSNAME ([MS-DRSR] 5.50): a conformant structure; its text is the DN, else its GUID."""
    _max = r.count("short_dsname")
    _struct_len = r.u32("short_dsname")
    sid_len = r.u32("short_dsname")
    guid = r.uuid("short_dsname")
    sid = r.raw(28, "short_dsname")[: min(sid_len, 28)]
    n = r.u32("short_dsname")
    r.budget(n + 1, 2, "bad_dsname")
    name = decode_text(r.raw(2 * (n + 1), "short_dsname"), True, r.little)
    return {"guid": guid, "sid": sid.hex() or None, "name": name}


DSNAME = Custom(_dsname, 4)
USN_VECTOR = Struct(("usn_high_obj_update", U64), ("usn_reserved", U64), ("usn_high_prop_update", U64))
UPTODATE_VECTOR = Struct(
    ("version", U32),
    ("reserved1", U32),
    ("num_cursors", U32),
    ("reserved2", U32),
    ("cursors", Array(Struct(("uuid_dsa", GUID), ("usn_high_prop_update", U64)))),
)
PARTIAL_ATTR_VECTOR = Struct(("version", U32), ("reserved1", U32), ("attrs_count", U32), ("attrs", Array(U32)))
PREFIX_TABLE = Struct(
    ("prefix_count", U32),
    ("entries", Ptr(Array(Struct(("ndx", U32), ("prefix", Struct(("length", U32), ("elements", Ptr(BYTES)))))))),
)
_V8 = (  # DRS_MSG_GETCHGREQ_V8 (4.1.10.2.6)
    ("destination_dsa", GUID),
    ("invocation_id_src", GUID),
    ("naming_context", Ptr(DSNAME)),
    ("usnvec_from", USN_VECTOR),
    ("uptodate_vec_dest", Ptr(UPTODATE_VECTOR)),
    ("flags", U32),
    ("max_objects", U32),
    ("max_bytes", U32),
    ("exop", U32),
    ("fsmo_info", U64),
    ("partial_attr_set", Ptr(PARTIAL_ATTR_VECTOR)),
    ("partial_attr_set_ex", Ptr(PARTIAL_ATTR_VECTOR)),
    ("prefix_table_dest", PREFIX_TABLE),
)
GETCHGREQ = Union(
    U32,
    {
        8: Struct(*_V8),
        10: Struct(*_V8, ("more_flags", U32)),
        11: Struct(*_V8, ("more_flags", U32), ("correlation_id", GUID)),
    },
)


def _changes(v: Values) -> None:
    req = v.pop("request", None)
    body = req.get("value") if isinstance(req, dict) else None
    if not isinstance(body, dict):
        return
    nc = body.get("naming_context")
    if isinstance(nc, dict):
        v["naming_context"] = nc.get("name") or nc.get("guid")
    exop = body.get("exop")
    v["exop"] = EXOPS.get(exop, str(exop)) if isinstance(exop, int) else None
    v["destination_dsa"] = body.get("destination_dsa")
    v["flags"] = f"0x{body['flags']:08x}" if isinstance(body.get("flags"), int) else None


F.op(
    0,
    "IDL_DRSBind",
    [("client_dsa_guid", Ptr(GUID)), ("client_extensions", Ptr(Struct(("cb", U32), ("rgb", BYTES))))],
    show=("client_dsa_guid",),
    derive=lambda v: v.pop("client_extensions", None),
)
F.op(1, "IDL_DRSUnbind", [("_handle", HANDLE)])
F.op(
    3,
    "IDL_DRSGetNCChanges",
    [("_handle", HANDLE), ("in_version", U32), ("request", GETCHGREQ)],
    show=("naming_context", "exop", "destination_dsa", "flags"),
    derive=_changes,
)
F.op(12, "IDL_DRSCrackNames", [("_handle", HANDLE), ("in_version", U32)], show=("in_version",))


# Replication topology and DC discovery (4.1.23, 4.1.26, 4.1.19, 4.1.20, 4.1.5): DCShadow adds a
# replica from a rogue DC and removes it again; DRSDomainControllerInfo lists the DCs.
_BODY = "_body"


def _flatten(v: Values) -> None:
    """Lift the version's structure of a DRS_MSG_* union into the values, DSNAMEs as their DN."""
    msg = v.pop(_BODY, None)
    body = msg.get("value") if isinstance(msg, dict) else None
    if isinstance(body, dict):
        for k, x in body.items():
            v[k] = x.get("name") or x.get("guid") if isinstance(x, dict) and "guid" in x else x
    v.pop("schedule", None)


_STR = Ptr(ASTR)
_SCHEDULE = Bytes(84)  # REPLTIMES: 84 bytes of 15-minute slots
F.op(
    2,
    "IDL_DRSReplicaSync",
    [
        ("_handle", HANDLE),
        ("version", U32),
        (
            _BODY,
            Union(
                U32,
                {
                    1: Struct(
                        ("naming_context", Ptr(DSNAME)),
                        ("source_dsa", GUID),
                        ("source_dsa_address", _STR),
                        ("options", U32),
                    )
                },
            ),
        ),
    ],
    show=("naming_context", "source_dsa", "source_dsa_address"),
    derive=_flatten,
)
F.op(
    4,
    "IDL_DRSUpdateRefs",
    [
        ("_handle", HANDLE),
        ("version", U32),
        (
            _BODY,
            Union(
                U32,
                {
                    1: Struct(
                        ("naming_context", Ptr(DSNAME)),
                        ("destination_dsa_address", _STR),
                        ("destination_dsa", GUID),
                        ("options", U32),
                    )
                },
            ),
        ),
    ],
    show=("naming_context", "destination_dsa_address", "destination_dsa"),
    derive=_flatten,
)
_ADD_V1 = Struct(
    ("naming_context", Ptr(DSNAME)), ("source_dsa_address", _STR), ("schedule", _SCHEDULE), ("options", U32)
)
_ADD_V2 = Struct(
    ("naming_context", Ptr(DSNAME)),
    ("source_dsa_dn", Ptr(DSNAME)),
    ("transport_dn", Ptr(DSNAME)),
    ("source_dsa_address", _STR),
    ("schedule", _SCHEDULE),
    ("options", U32),
)
F.op(
    5,
    "IDL_DRSReplicaAdd",
    [("_handle", HANDLE), ("version", U32), (_BODY, Union(U32, {1: _ADD_V1, 2: _ADD_V2}))],
    show=("naming_context", "source_dsa_address", "source_dsa_dn"),
    derive=_flatten,
)
F.op(
    6,
    "IDL_DRSReplicaDel",
    [
        ("_handle", HANDLE),
        ("version", U32),
        (
            _BODY,
            Union(U32, {1: Struct(("naming_context", Ptr(DSNAME)), ("source_dsa_address", _STR), ("options", U32))}),
        ),
    ],
    show=("naming_context", "source_dsa_address"),
    derive=_flatten,
)
F.op(
    16,
    "IDL_DRSDomainControllerInfo",
    [
        ("_handle", HANDLE),
        ("version", U32),
        (_BODY, Union(U32, {1: Struct(("domain", Ptr(WSTR)), ("info_level", U32))})),
    ],
    show=("domain", "info_level"),
    derive=_flatten,
)
