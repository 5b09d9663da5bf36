"""samr ([MS-SAMR] 3.1.5): account enumeration and lookups, user creation and password resets.

Domain, user, group and alias handles are named (the domain's SID, "rid N"), so queries and
set-information calls on them say which account they touched.
"""

from __future__ import annotations

from typing import Any

from analyzer.dcerpc.ndr_dtyp import SID, UNICODE_STRING, ustring_text
from analyzer.dcerpc.ndr_types import HANDLE, U16, U32, WSTR, Array, Enum, Ptr, Struct
from analyzer.stubs.registry import NTSTATUS, Values, family

F = family("12345778-1234-abcd-ef00-0123456789ac", "samr", NTSTATUS)

ULONG_ARRAY = Struct(("count", U32), ("element", Ptr(Array(U32))))  # SAMPR_ULONG_ARRAY 2.2.7.4
RID_ENUMERATION = Struct(("relative_id", U32), ("name", UNICODE_STRING))  # SAMPR_RID_ENUMERATION 2.2.3.9
ENUMERATION_BUFFER = Struct(("entries_read", U32), ("buffer", Ptr(Array(RID_ENUMERATION))))  # 2.2.3.10
RETURNED_USTRING_ARRAY = Struct(("count", U32), ("element", Ptr(Array(UNICODE_STRING))))  # 2.2.7.5
_H = ("_handle", HANDLE)


def _texts(v: Any) -> list[Any]:
    return [ustring_text(x) for x in v] if isinstance(v, list) else []


def _enumerated(v: Values) -> None:
    """Names and RIDs of an enumeration answer."""
    buf = v.pop("buffer", None)
    entries = buf.get("buffer") if isinstance(buf, dict) else None
    if isinstance(entries, list):
        v["names"] = [ustring_text(e.get("name")) for e in entries if isinstance(e, dict)]
        v["rids"] = [e.get("relative_id") for e in entries if isinstance(e, dict)]


def _lookup_names(v: Values) -> None:
    v["names"] = _texts(v.pop("names_in", None))
    rids = v.pop("relative_ids", None)
    if isinstance(rids, dict):
        v["rids"] = rids.get("element")
    v.pop("use", None)


def _lookup_ids(v: Values) -> None:
    names = v.pop("names_out", None)
    if isinstance(names, dict):
        v["names"] = _texts(names.get("element"))
    v.pop("use", None)


def _name(v: Values) -> None:
    if "name" in v:
        v["name"] = ustring_text(v["name"])


def _members(v: Values) -> None:
    m = v.pop("members", None)
    if isinstance(m, dict):
        v["rids"] = m.get("members")
        v["count"] = m.get("member_count")


def _domain(v: Values, _parent: str | None) -> Any:
    return v.get("domain_sid")


def _rid(kind: str) -> Any:
    """A user/group/alias handle's name: the account name when a lookup or enumeration on this
    association taught it, else "user RID in DOMAIN-SID"."""

    def name(v: Values, parent: str | None) -> Any:
        rid = v.get("rid")
        if rid is None:
            return None
        recall = v.get("_recall")
        known = recall(f"{parent}|{rid}") if callable(recall) else None
        if known is not None:
            return f"{known} (rid {rid})"
        return f"{kind} {rid}" + (f" in {parent}" if parent else "")

    return name


def _rid_names(v: Values) -> list[tuple[str, str]]:
    """(domain|rid, account name) pairs of a lookup or enumeration answer, for `_rid`."""
    names, rids, domain = v.get("names"), v.get("rids"), v.get("domain")
    if not (isinstance(names, list) and isinstance(rids, list)) or domain is None:
        return []
    return [(f"{domain}|{r}", n) for n, r in zip(names, rids, strict=False) if isinstance(n, str) and n]


_SERVER = Ptr(WSTR)
F.op(0, "SamrConnect", [("server_name", Ptr(U16)), ("desired_access", U32)], [_H], show=("desired_access",))
F.op(1, "SamrCloseHandle", [_H], show=("object",), names="object")
F.op(
    5,
    "SamrLookupDomainInSamServer",
    [_H, ("name", UNICODE_STRING)],
    [("domain_sid", Ptr(SID))],
    show=("name", "domain_sid"),
    derive=_name,
)
F.op(
    6,
    "SamrEnumerateDomainsInSamServer",
    [_H, ("enumeration_context", U32), ("prefered_maximum_length", U32)],
    [("enumeration_context", U32), ("buffer", Ptr(ENUMERATION_BUFFER)), ("count", U32)],
    show=("count", "names"),
    derive=_enumerated,
)
F.op(7, "SamrOpenDomain", [_H, ("desired_access", U32), ("domain_sid", SID)], [_H], show=("domain_sid",), opens=_domain)
F.op(8, "SamrQueryInformationDomain", [_H, ("level", Enum())], show=("domain", "level"), names="domain")
F.op(
    12,
    "SamrCreateUserInDomain",
    [_H, ("user_name", UNICODE_STRING), ("desired_access", U32)],
    [_H, ("rid", U32)],
    show=("domain", "user_name", "rid"),
    derive=lambda v: v.update(user_name=ustring_text(v.get("user_name"))),
    names="domain",
)
F.op(
    13,
    "SamrEnumerateUsersInDomain",
    [_H, ("enumeration_context", U32), ("user_account_control", U32), ("prefered_maximum_length", U32)],
    [("enumeration_context", U32), ("buffer", Ptr(ENUMERATION_BUFFER)), ("count", U32)],
    show=("domain", "count", "names"),
    derive=_enumerated,
    names="domain",
    learns=_rid_names,
)
F.op(
    15,
    "SamrEnumerateAliasesInDomain",
    [_H, ("enumeration_context", U32), ("prefered_maximum_length", U32)],
    [("enumeration_context", U32), ("buffer", Ptr(ENUMERATION_BUFFER)), ("count", U32)],
    show=("domain", "count", "names"),
    derive=_enumerated,
    names="domain",
)
F.op(
    11,
    "SamrEnumerateGroupsInDomain",
    [_H, ("enumeration_context", U32), ("prefered_maximum_length", U32)],
    [("enumeration_context", U32), ("buffer", Ptr(ENUMERATION_BUFFER)), ("count", U32)],
    show=("domain", "count", "names"),
    derive=_enumerated,
    names="domain",
)
F.op(
    17,
    "SamrLookupNamesInDomain",
    [_H, ("count", U32), ("names_in", Array(UNICODE_STRING, varying=True))],
    [("relative_ids", ULONG_ARRAY), ("use", ULONG_ARRAY)],
    show=("domain", "count", "names", "rids"),
    derive=_lookup_names,
    names="domain",
    learns=_rid_names,
)
F.op(
    18,
    "SamrLookupIdsInDomain",
    [_H, ("count", U32), ("rids", Array(U32, varying=True))],
    [("names_out", RETURNED_USTRING_ARRAY), ("use", ULONG_ARRAY)],
    show=("domain", "count", "rids", "names"),
    derive=_lookup_ids,
    names="domain",
    learns=_rid_names,
)
F.op(19, "SamrOpenGroup", [_H, ("desired_access", U32), ("rid", U32)], [_H], show=("rid",), opens=_rid("group"))
F.op(20, "SamrQueryInformationGroup", [_H, ("level", Enum())], show=("group", "level"), names="group")
F.op(
    25,
    "SamrGetMembersInGroup",
    [_H],
    [("members", Ptr(Struct(("member_count", U32), ("members", Ptr(Array(U32))), ("attributes", Ptr(Array(U32))))))],
    show=("group", "count", "rids"),
    derive=_members,
    names="group",
)
F.op(27, "SamrOpenAlias", [_H, ("desired_access", U32), ("rid", U32)], [_H], show=("rid",), opens=_rid("alias"))
F.op(34, "SamrOpenUser", [_H, ("desired_access", U32), ("rid", U32)], [_H], show=("rid",), opens=_rid("user"))
F.op(36, "SamrQueryInformationUser", [_H, ("level", Enum())], show=("user", "level"), names="user")
F.op(37, "SamrSetInformationUser", [_H, ("level", Enum())], show=("user", "level"), names="user")
F.op(39, "SamrGetGroupsForUser", [_H], show=("user",), names="user")
F.op(47, "SamrQueryInformationUser2", [_H, ("level", Enum())], show=("user", "level"), names="user")
F.op(
    50,
    "SamrCreateUser2InDomain",
    [_H, ("user_name", UNICODE_STRING), ("account_type", U32), ("desired_access", U32)],
    [_H, ("granted_access", U32), ("rid", U32)],
    show=("domain", "user_name", "account_type", "rid"),
    derive=lambda v: v.update(user_name=ustring_text(v.get("user_name"))),
    names="domain",
)
F.op(57, "SamrConnect2", [("server_name", _SERVER), ("desired_access", U32)], [_H], show=("server_name",))
F.op(58, "SamrSetInformationUser2", [_H, ("level", Enum())], show=("user", "level"), names="user")
F.op(
    62,
    "SamrConnect4",
    [("server_name", _SERVER), ("client_revision", U32), ("desired_access", U32)],
    [_H],
    show=("server_name",),
)
F.op(64, "SamrConnect5", [("server_name", _SERVER), ("desired_access", U32)], show=("server_name",))
F.op(65, "SamrRidToSid", [_H, ("rid", U32)], [("sid", Ptr(SID))], show=("rid", "sid"))

# More queries ([MS-SAMR] 3.1.5): on the handle they name.
F.op(
    3,
    "SamrQuerySecurityObject",
    [_H, ("security_information", U32)],
    show=("object", "security_information"),
    names="object",
)
F.op(28, "SamrQueryInformationAlias", [_H, ("level", Enum())], show=("alias", "level"), names="alias")
F.op(33, "SamrGetMembersInAlias", [_H], show=("alias",), names="alias")
F.op(44, "SamrGetUserDomainPasswordInformation", [_H], show=("user",), names="user")
F.op(46, "SamrQueryInformationDomain2", [_H, ("level", Enum())], show=("domain", "level"), names="domain")
_DISPLAY = [_H, ("display_class", Enum()), ("index", U32), ("entry_count", U32), ("prefered_maximum_length", U32)]
for _opnum, _display in (
    (40, "SamrQueryDisplayInformation"),
    (48, "SamrQueryDisplayInformation2"),
    (51, "SamrQueryDisplayInformation3"),
):
    F.op(_opnum, _display, _DISPLAY, show=("domain", "display_class", "index", "entry_count"), names="domain")

PSID_ARRAY = Struct(("count", U32), ("sids", Ptr(Array(Struct(("sid", Ptr(SID)))))))  # SAMPR_PSID_ARRAY 2.2.3.6


def _alias_sids(v: Values) -> None:
    arr = v.pop("sid_array", None)
    sids = arr.get("sids") if isinstance(arr, dict) else None
    if isinstance(sids, list):
        v["sids"] = [x.get("sid") for x in sids if isinstance(x, dict)]
        v["count"] = len(v["sids"])


F.op(
    16,
    "SamrGetAliasMembership",
    [_H, ("sid_array", PSID_ARRAY)],
    show=("domain", "count", "sids"),
    names="domain",
    derive=_alias_sids,
)
