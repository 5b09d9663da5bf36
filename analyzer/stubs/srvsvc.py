"""srvsvc ([MS-SRVS] 3.1.4) and wkssvc ([MS-WKST] 3.2.4): share, session and user enumeration.

The info level says what was asked: level 502 share information carries security descriptors,
level 10/502 sessions name the users logged on (the "session enumeration" of recon tools).
"""

from __future__ import annotations

from typing import Any

from analyzer.dcerpc.ndr_types import U8, U32, WSTR, Array, Ptr, Struct, Union
from analyzer.stubs.registry import Values, family

SRVSVC = family("4b324fc8-1670-01d3-1278-5a47bf6ee188", "srvsvc")
WKSSVC = family("6bffd098-a112-3610-9833-46c3f87e345a", "wkssvc")

_S = Ptr(WSTR)
SHARE_INFO_0 = Struct(("netname", _S))
SHARE_INFO_1 = Struct(("netname", _S), ("type", U32), ("remark", _S))
SHARE_INFO_2 = Struct(
    ("netname", _S),
    ("type", U32),
    ("remark", _S),
    ("permissions", U32),
    ("max_uses", U32),
    ("current_uses", U32),
    ("path", _S),
    ("passwd", _S),
)


def _container(info: Any) -> Ptr:
    """SHARE_INFO_n_CONTAINER and friends: EntriesRead, then a pointer to the array."""
    return Ptr(Struct(("entries_read", U32), ("buffer", Ptr(Array(info)))))


SHARE_INFO_501 = Struct(("netname", _S), ("type", U32), ("remark", _S), ("flags", U32))
SHARE_INFO_502 = Struct(*SHARE_INFO_2.fields, ("reserved", U32), ("security_descriptor", Ptr(Array(U8))))
SHARE_INFO_503 = Struct(  # 2.2.4.27
    *SHARE_INFO_2.fields,
    ("servername", _S),
    ("reserved", U32),
    ("security_descriptor", Ptr(Array(U8))),
)
SHARE_ENUM = Struct(
    ("level", U32),
    (
        "info",
        Union(
            U32,
            {
                0: _container(SHARE_INFO_0),
                1: _container(SHARE_INFO_1),
                2: _container(SHARE_INFO_2),
                501: _container(SHARE_INFO_501),
                502: _container(SHARE_INFO_502),
                503: _container(SHARE_INFO_503),
            },
        ),
    ),
)
SESSION_INFO_0 = Struct(("cname", _S))
SESSION_INFO_1 = Struct(  # 2.2.4.16
    ("cname", _S),
    ("username", _S),
    ("num_opens", U32),
    ("time", U32),
    ("idle_time", U32),
    ("user_flags", U32),
)
SESSION_INFO_2 = Struct(*SESSION_INFO_1.fields, ("cltype_name", _S))
SESSION_INFO_10 = Struct(("cname", _S), ("username", _S), ("time", U32), ("idle_time", U32))
SESSION_INFO_502 = Struct(*SESSION_INFO_2.fields, ("transport", _S))
SESSION_ENUM = Struct(
    ("level", U32),
    (
        "info",
        Union(
            U32,
            {
                0: _container(SESSION_INFO_0),
                1: _container(SESSION_INFO_1),
                2: _container(SESSION_INFO_2),
                10: _container(SESSION_INFO_10),
                502: _container(SESSION_INFO_502),
            },
        ),
    ),
)
WKSTA_USER_INFO_0 = Struct(("username", _S))
WKSTA_USER_INFO_1 = Struct(("username", _S), ("logon_domain", _S), ("oth_domains", _S), ("logon_server", _S))
WKSTA_USER_ENUM = Struct(
    ("level", U32),
    ("info", Union(U32, {0: _container(WKSTA_USER_INFO_0), 1: _container(WKSTA_USER_INFO_1)})),
)


def _entries(v: Values, key: str, field: str, out: str) -> None:
    """Flatten an enumeration container into the list of one field of its entries."""
    s = v.pop(key, None)
    if not isinstance(s, dict):
        return
    v.setdefault("level", s.get("level"))
    info = s.get("info")
    container = info.get("value") if isinstance(info, dict) else None
    entries = container.get("buffer") if isinstance(container, dict) else None
    if isinstance(entries, list) and entries:
        v[out] = [e.get(field) for e in entries if isinstance(e, dict)]


def _shares(v: Values) -> None:
    v.pop("info_struct", None)  # the request's container is empty
    _entries(v, "out_info_struct", "netname", "share_names")


def _sessions(v: Values) -> None:
    v.pop("info_struct", None)
    _entries(v, "out_info_struct", "cname", "clients")


def _users(v: Values) -> None:
    v.pop("info_struct", None)
    _entries(v, "out_info_struct", "username", "user_names")


def _level(v: Values) -> None:
    s = v.get("info_struct")
    if isinstance(s, dict):
        v["level"] = s.get("level")


def _and(*fns: Any) -> Any:
    def both(v: Values) -> None:
        for f in fns:
            f(v)

    return both


_RESUME = ("resume_handle", Ptr(U32))
SRVSVC.op(
    12,
    "NetrSessionEnum",
    [
        ("server_name", _S),
        ("client_name", _S),
        ("user_name", _S),
        ("info_struct", SESSION_ENUM),
        ("prefered_maximum_length", U32),
        _RESUME,
    ],
    [("info_struct", SESSION_ENUM), ("total_entries", U32)],
    show=("server_name", "level", "user_name", "clients"),
    derive=_and(_level, _sessions),
)
SRVSVC.op(
    15,
    "NetrShareEnum",
    [("server_name", _S), ("info_struct", SHARE_ENUM), ("prefered_maximum_length", U32), _RESUME],
    [("info_struct", SHARE_ENUM), ("total_entries", U32)],
    show=("server_name", "level", "share_names"),
    derive=_and(_level, _shares),
)
SRVSVC.op(
    16,
    "NetrShareGetInfo",
    [("server_name", _S), ("share_name", WSTR), ("level", U32)],
    show=("server_name", "share_name", "level"),
)
SRVSVC.op(21, "NetrServerGetInfo", [("server_name", _S), ("level", U32)], show=("server_name", "level"))
SRVSVC.op(
    36,
    "NetrShareEnumSticky",
    [("server_name", _S), ("info_struct", SHARE_ENUM), ("prefered_maximum_length", U32), _RESUME],
    show=("server_name", "level"),
    derive=_level,
)
WKSSVC.op(0, "NetrWkstaGetInfo", [("server_name", _S), ("level", U32)], show=("server_name", "level"))
WKSSVC.op(
    2,
    "NetrWkstaUserEnum",
    [("server_name", _S), ("info_struct", WKSTA_USER_ENUM), ("prefered_maximum_length", U32), _RESUME],
    [("info_struct", WKSTA_USER_ENUM), ("total_entries", U32)],
    show=("server_name", "level", "user_names"),
    derive=_and(_level, _users),
)

# More enumeration, share creation and the path canonicalisation of MS08-067 ([MS-SRVS] 3.1.4).
# The enumerations' InfoStruct starts with its Level, which is all the request says that matters.
SRVSVC.op(
    8,
    "NetrConnectionEnum",
    [("server_name", _S), ("qualifier", _S), ("level", U32)],
    show=("server_name", "qualifier", "level"),
)
SRVSVC.op(
    9,
    "NetrFileEnum",
    [("server_name", _S), ("base_path", _S), ("user_name", _S), ("level", U32)],
    show=("server_name", "base_path", "user_name", "level"),
)
SRVSVC.op(26, "NetrServerTransportEnum", [("server_name", _S), ("level", U32)], show=("server_name", "level"))
SRVSVC.op(28, "NetrRemoteTOD", [("server_name", _S)], show=("server_name",))
SRVSVC.op(55, "NetrServerAliasEnum", [("server_name", _S), ("level", U32)], show=("server_name", "level"))


def _share_add(v: Values) -> None:
    info = v.pop("info", None)
    body = info.get("value") if isinstance(info, dict) else None
    if isinstance(body, dict):
        v["share_name"] = body.get("netname")
        v["path"] = body.get("path")
        v["remark"] = body.get("remark")


SRVSVC.op(
    14,
    "NetrShareAdd",
    [("server_name", _S), ("level", U32), ("info", Union(U32, {2: Ptr(SHARE_INFO_2), 502: Ptr(SHARE_INFO_502)}))],
    show=("server_name", "share_name", "path", "level"),
    derive=_share_add,
)
SRVSVC.op(
    31,
    "NetprPathCanonicalize",
    [
        ("server_name", _S),
        ("path_name", WSTR),
        ("outbuf_len", U32),
        ("prefix", WSTR),
        ("path_type", U32),
        ("flags", U32),
    ],
    show=("path_name", "prefix"),
)
WKSSVC.op(5, "NetrWkstaTransportEnum", [("server_name", _S), ("level", U32)], show=("server_name", "level"))
