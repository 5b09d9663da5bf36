"""lsarpc ([MS-LSAT] 3.1.4, [MS-LSAD] 3.1.4): name and SID lookups, LSA secrets, the policy handle.

LsarLookupSids* turn the SIDs an enumeration found into names (PsLoggedOn, SID brute force);
LsarOpenSecret / LsarRetrievePrivateData name the secret read ($MACHINE.ACC, DPAPI keys).
"""

from __future__ import annotations

from typing import Any

from analyzer.dcerpc.ndr_dtyp import SID, UNICODE_STRING, ustring_text
from analyzer.dcerpc.ndr_types import BYTES, HANDLE, U8, U16, U32, WSTR, Array, Enum, Ptr, Struct
from analyzer.stubs.registry import NTSTATUS, Values, family

F = family("12345778-1234-abcd-ef00-0123456789ab", "lsarpc", NTSTATUS)

_H = ("_handle", HANDLE)
SID_ENUM_BUFFER = Struct(("entries", U32), ("sid_info", Ptr(Array(Struct(("sid", Ptr(SID)))))))  # [MS-LSAT] 2.2.18
STRING = Struct(("length", U16), ("maximum_length", U16), ("buffer", Ptr(Array(U8, varying=True))))
QOS = Struct(("length", U32), ("impersonation_level", Enum()), ("context_tracking_mode", U8), ("effective_only", U8))
SECURITY_DESCRIPTOR = Struct(("length", U32), ("security_descriptor", Ptr(BYTES)))
OBJECT_ATTRIBUTES = Struct(  # LSAPR_OBJECT_ATTRIBUTES [MS-LSAD] 2.2.9
    ("length", U32),
    ("root_directory", Ptr(U8)),
    ("object_name", Ptr(STRING)),
    ("attributes", U32),
    ("security_descriptor", Ptr(SECURITY_DESCRIPTOR)),
    ("security_quality_of_service", Ptr(QOS)),
)
TRANSLATED_SIDS = Struct(
    ("entries", U32), ("sids", Ptr(Array(Struct(("use", Enum()), ("relative_id", U32), ("domain_index", U32)))))
)
TRANSLATED_NAME_EX = Struct(("use", Enum()), ("name", UNICODE_STRING), ("domain_index", U32), ("flags", U32))
TRANSLATED_NAMES_EX = Struct(("entries", U32), ("names", Ptr(Array(TRANSLATED_NAME_EX))))
TRANSLATED_NAME = Struct(("use", Enum()), ("name", UNICODE_STRING), ("domain_index", U32))  # [MS-LSAT] 2.2.19
TRANSLATED_NAMES = Struct(("entries", U32), ("names", Ptr(Array(TRANSLATED_NAME))))
TRUST_INFORMATION = Struct(("name", UNICODE_STRING), ("sid", Ptr(SID)))
REFERENCED_DOMAINS = Struct(("entries", U32), ("domains", Ptr(Array(TRUST_INFORMATION))), ("max_entries", U32))


def _sids(v: Values) -> None:
    buf = v.pop("sid_enum_buffer", None)
    info = buf.get("sid_info") if isinstance(buf, dict) else None
    if isinstance(info, list):
        v["sids"] = [x.get("sid") for x in info if isinstance(x, dict)]
        v["count"] = len(v["sids"])
    sent = v.pop("translated_names", None)  # the request's (empty) one; the answer's is out_
    names = v.pop("out_translated_names", sent)
    domains = v.pop("referenced_domains", None)
    doms = domains.get("domains") if isinstance(domains, dict) else None
    dom_names = [ustring_text(d.get("name")) for d in doms] if isinstance(doms, list) else []
    entries = names.get("names") if isinstance(names, dict) else None
    if isinstance(entries, list):
        out = []
        for e in entries:
            if not isinstance(e, dict):
                continue
            i = e.get("domain_index")
            dom = dom_names[i] if isinstance(i, int) and 0 <= i < len(dom_names) else None
            name = ustring_text(e.get("name"))
            out.append(f"{dom}\\{name}" if dom else name)
        v["names"] = out


def _names(v: Values) -> None:
    names = v.get("names")
    if isinstance(names, list):
        v["names"] = [ustring_text(n) for n in names]
    for k in ("translated_sids", "referenced_domains"):
        v.pop(k, None)


def _key(v: Values) -> None:
    if "key_name" in v:
        v["key_name"] = ustring_text(v["key_name"])


def _user(v: Values) -> None:
    for k in ("user_name", "domain_name", "out_user_name", "out_domain_name"):
        if k in v:
            v[k] = ustring_text(v[k])


def _secret(v: Values, _parent: str | None) -> Any:
    return ustring_text(v.get("key_name"))


_LOOKUP_SIDS_IN = [("sid_enum_buffer", SID_ENUM_BUFFER), ("translated_names", TRANSLATED_NAMES_EX)]
_LOOKUP_SIDS_OUT = [("referenced_domains", Ptr(REFERENCED_DOMAINS)), ("translated_names", TRANSLATED_NAMES_EX)]
_LOOKUP_SIDS1_IN = [("sid_enum_buffer", SID_ENUM_BUFFER), ("translated_names", TRANSLATED_NAMES)]
_LOOKUP_SIDS1_OUT = [("referenced_domains", Ptr(REFERENCED_DOMAINS)), ("translated_names", TRANSLATED_NAMES)]
_LOOKUP_NAMES_IN = [("count", U32), ("names", Array(UNICODE_STRING))]

F.op(0, "LsarClose", [_H], show=("object",), names="object")
F.op(
    6,
    "LsarOpenPolicy",
    [("system_name", Ptr(U16)), ("object_attributes", OBJECT_ATTRIBUTES), ("desired_access", U32)],
    [_H],
    show=("desired_access",),
)
F.op(7, "LsarQueryInformationPolicy", [_H, ("level", Enum())], show=("level",))
F.op(14, "LsarLookupNames", [_H, *_LOOKUP_NAMES_IN], show=("count", "names"), derive=_names)
F.op(15, "LsarLookupSids", [_H, *_LOOKUP_SIDS1_IN], _LOOKUP_SIDS1_OUT, show=("count", "sids", "names"), derive=_sids)
F.op(
    28,
    "LsarOpenSecret",
    [_H, ("key_name", UNICODE_STRING), ("desired_access", U32)],
    [_H],
    show=("key_name",),
    derive=_key,
    opens=_secret,
)
F.op(29, "LsarSetSecret", [_H], show=("key_name",), names="key_name")
F.op(30, "LsarQuerySecret", [_H], show=("key_name",), names="key_name")
F.op(
    42,
    "LsarStorePrivateData",
    [_H, ("key_name", UNICODE_STRING)],
    show=("key_name",),
    derive=_key,
)
F.op(43, "LsarRetrievePrivateData", [_H, ("key_name", UNICODE_STRING)], show=("key_name",), derive=_key)
F.op(
    44,
    "LsarOpenPolicy2",
    [("system_name", Ptr(WSTR)), ("object_attributes", OBJECT_ATTRIBUTES), ("desired_access", U32)],
    [_H],
    show=("system_name", "desired_access"),
)
F.op(
    45,
    "LsarGetUserName",
    [("system_name", Ptr(WSTR)), ("user_name", Ptr(UNICODE_STRING)), ("domain_name", Ptr(Ptr(UNICODE_STRING)))],
    [("user_name", Ptr(UNICODE_STRING)), ("domain_name", Ptr(Ptr(UNICODE_STRING)))],
    show=("system_name", "user_name", "out_user_name", "out_domain_name"),
    derive=_user,
)
F.op(46, "LsarQueryInformationPolicy2", [_H, ("level", Enum())], show=("level",))
F.op(57, "LsarLookupSids2", [_H, *_LOOKUP_SIDS_IN], _LOOKUP_SIDS_OUT, show=("count", "sids", "names"), derive=_sids)
F.op(58, "LsarLookupNames2", [_H, *_LOOKUP_NAMES_IN], show=("count", "names"), derive=_names)
F.op(68, "LsarLookupNames3", [_H, *_LOOKUP_NAMES_IN], show=("count", "names"), derive=_names)
F.op(76, "LsarLookupSids3", _LOOKUP_SIDS_IN, _LOOKUP_SIDS_OUT, show=("count", "sids", "names"), derive=_sids)
F.op(77, "LsarLookupNames4", _LOOKUP_NAMES_IN, show=("count", "names"), derive=_names)

# Enumerations and privileges ([MS-LSAD] 3.1.4).
_ENUM = [_H, ("enumeration_context", U32), ("prefered_maximum_length", U32)]
F.op(2, "LsarEnumeratePrivileges", _ENUM, show=("enumeration_context",))
F.op(11, "LsarEnumerateAccounts", _ENUM, show=("enumeration_context",))
F.op(13, "LsarEnumerateTrustedDomains", _ENUM, show=("enumeration_context",))
F.op(50, "LsarEnumerateTrustedDomainsEx", _ENUM, show=("enumeration_context",))
F.op(18, "LsarEnumeratePrivilegesAccount", [_H], show=("object",), names="object")
F.op(
    35,
    "LsarEnumerateAccountsWithUserRight",
    [_H, ("user_right", Ptr(UNICODE_STRING))],
    show=("user_right",),
    derive=lambda v: v.update(user_right=ustring_text(v.get("user_right"))),
)
F.op(36, "LsarEnumerateAccountRights", [_H, ("account_sid", SID)], show=("account_sid",))
F.op(
    31,
    "LsarLookupPrivilegeValue",
    [_H, ("name", UNICODE_STRING)],
    show=("name",),
    derive=lambda v: v.update(name=ustring_text(v.get("name"))),
)
F.op(32, "LsarLookupPrivilegeName", [_H, ("luid", Struct(("low", U32), ("high", U32)))], show=("luid",))
