"""netlogon ([MS-NRPC] 3.5.4): the secure channel set-up that ZeroLogon (CVE-2020-1472) abuses.

An all-zero client challenge and credential with AES negotiated is the ZeroLogon signature: one in
256 attempts succeeds, and the success is NetrServerAuthenticate3 returning STATUS_SUCCESS.
NetrServerPasswordSet2 with an all-zero encrypted password is the follow-up that resets the
machine account ([MS-NRPC] 3.5.4.4.5).
"""

from __future__ import annotations

from analyzer.dcerpc.ndr_dtyp import UNICODE_STRING, ustring_text
from analyzer.dcerpc.ndr_types import U8, U16, U32, WSTR, Array, Bytes, Enum, Ptr, Struct, Union
from analyzer.stubs.registry import NTSTATUS, WIN32, Values, family

# Operations returning NET_API_STATUS rather than NTSTATUS ([MS-NRPC] 3.5.4 and 3.4.5).
_NET_API = (0, 1, 11, 12, 13, 14, 18, 20, 23, 24, 25, 27, 28, 33, 34, 35, 36, 37, 38, 40, 41, 43)
F = family("12345678-1234-abcd-ef00-01234567cffb", "netlogon", NTSTATUS, kinds=dict.fromkeys(_NET_API, WIN32))

CREDENTIAL = Bytes(8)  # NETLOGON_CREDENTIAL ([MS-NRPC] 2.2.1.3.4)
AUTHENTICATOR = Struct(("credential", CREDENTIAL), ("timestamp", U32))  # 2.2.1.1.5
TRUST_PASSWORD = Bytes(516, 4)  # NL_TRUST_PASSWORD: 512 bytes of buffer and a length ([MS-NRPC] 2.2.1.3.7)

# NETLOGON_SECURE_CHANNEL_TYPE ([MS-NRPC] 2.2.1.3.13)
CHANNELS = {
    0: "NullSecureChannel",
    1: "MsvApSecureChannel",
    2: "WorkstationSecureChannel",
    3: "TrustedDnsDomainSecureChannel",
    4: "TrustedDomainSecureChannel",
    5: "UasServerSecureChannel",
    6: "ServerSecureChannel",
    7: "CdcServerSecureChannel",
}


def _zero(hexed: object) -> bool | None:
    return (not hexed.strip("0")) if isinstance(hexed, str) else None


def _challenge(v: Values) -> None:
    v["client_challenge_zero"] = _zero(v.get("client_challenge"))


def _channel(v: Values) -> None:
    ch = v.get("secure_channel_type")
    if isinstance(ch, int):
        v["secure_channel_type"] = CHANNELS.get(ch, str(ch))
    v.pop("authenticator", None)


def _authenticate(v: Values) -> None:
    v["client_credential_zero"] = _zero(v.get("client_credential"))
    _channel(v)
    for k in ("negotiate_flags", "out_negotiate_flags"):
        if isinstance(v.get(k), int):
            v[k] = f"0x{v[k]:08x}"


def _password_set(v: Values) -> None:
    _channel(v)
    # The encrypted NL_TRUST_PASSWORD: all zero when the client sent an all-zero ciphertext.
    v["password_zero"] = _zero(v.pop("clear_new_password", None))


_AUTH_IN = [
    ("primary_name", Ptr(WSTR)),
    ("account_name", WSTR),
    ("secure_channel_type", Enum()),
    ("computer_name", WSTR),
    ("client_credential", CREDENTIAL),
    ("negotiate_flags", U32),
]
_AUTH_SHOW = ("account_name", "computer_name", "secure_channel_type", "client_credential_zero", "negotiate_flags")

F.op(
    4,
    "NetrServerReqChallenge",
    [("primary_name", Ptr(WSTR)), ("computer_name", WSTR), ("client_challenge", CREDENTIAL)],
    [("server_challenge", CREDENTIAL)],
    show=("computer_name", "client_challenge_zero"),
    derive=_challenge,
)
F.op(
    5,
    "NetrServerAuthenticate",
    _AUTH_IN[:5],
    [("server_credential", CREDENTIAL)],
    show=_AUTH_SHOW,
    derive=_authenticate,
)
F.op(
    15,
    "NetrServerAuthenticate2",
    _AUTH_IN,
    [("server_credential", CREDENTIAL), ("negotiate_flags", U32)],
    show=_AUTH_SHOW,
    derive=_authenticate,
)
F.op(
    26,
    "NetrServerAuthenticate3",
    _AUTH_IN,
    [("server_credential", CREDENTIAL), ("negotiate_flags", U32), ("account_rid", U32)],
    show=(*_AUTH_SHOW, "account_rid"),
    derive=_authenticate,
)
F.op(
    30,
    "NetrServerPasswordSet2",
    [
        ("primary_name", Ptr(WSTR)),
        ("account_name", WSTR),
        ("secure_channel_type", Enum()),
        ("computer_name", WSTR),
        ("authenticator", AUTHENTICATOR),
        ("clear_new_password", TRUST_PASSWORD),
    ],
    show=("account_name", "computer_name", "password_zero"),
    derive=_password_set,
)
F.op(
    40,
    "DsrEnumerateDomainTrusts",
    [("server_name", Ptr(WSTR)), ("flags", U32)],
    show=("server_name", "flags"),
)
F.op(
    34,
    "DsrGetDcNameEx2",
    [
        ("computer_name", Ptr(WSTR)),
        ("account_name", Ptr(WSTR)),
        ("allowable_account_control_bits", U32),
        ("domain_name", Ptr(WSTR)),
    ],
    show=("computer_name", "account_name", "domain_name"),
)

# Pass-through logon ([MS-NRPC] 3.5.4.5.1): who is being authenticated, from which workstation.
IDENTITY = Struct(  # NETLOGON_LOGON_IDENTITY_INFO 2.2.1.4.15
    ("logon_domain_name", UNICODE_STRING),
    ("parameter_control", U32),
    ("reserved", Bytes(8, 4)),
    ("user_name", UNICODE_STRING),
    ("workstation", UNICODE_STRING),
)
_OWF = Bytes(16)
INTERACTIVE = Struct(("identity", IDENTITY), ("lm_owf_password", _OWF), ("nt_owf_password", _OWF))  # 2.2.1.4.3
STRING = Struct(("length", U16), ("maximum_length", U16), ("buffer", Ptr(Array(U8, varying=True))))
NETWORK = Struct(  # NETLOGON_NETWORK_INFO 2.2.1.4.4
    ("identity", IDENTITY),
    ("lm_challenge", Bytes(8)),
    ("nt_challenge_response", STRING),
    ("lm_challenge_response", STRING),
)
GENERIC = Struct(
    ("identity", IDENTITY), ("package_name", UNICODE_STRING), ("data_length", U32), ("data", Ptr(Array(U8)))
)
LOGON_LEVEL = Union(  # NETLOGON_LEVEL 2.2.1.4.6, by NETLOGON_LOGON_INFO_CLASS
    Enum(),
    {
        1: Ptr(INTERACTIVE),
        2: Ptr(NETWORK),
        3: Ptr(INTERACTIVE),
        4: Ptr(GENERIC),
        5: Ptr(INTERACTIVE),
        6: Ptr(NETWORK),
        7: Ptr(INTERACTIVE),
    },
)
LOGON_LEVELS = {
    1: "Interactive",
    2: "Network",
    3: "Service",
    4: "Generic",
    5: "InteractiveTransitive",
    6: "NetworkTransitive",
    7: "ServiceTransitive",
}


def _logon(v: Values) -> None:
    info = v.pop("logon_information", None)
    body = info.get("value") if isinstance(info, dict) else None
    ident = body.get("identity") if isinstance(body, dict) else None
    if isinstance(ident, dict):
        v["logon_domain"] = ustring_text(ident.get("logon_domain_name"))
        v["user_name"] = ustring_text(ident.get("user_name"))
        v["workstation"] = ustring_text(ident.get("workstation"))
    level = v.get("logon_level")
    if isinstance(level, int):
        v["logon_level"] = LOGON_LEVELS.get(level, str(level))
    for k in ("authenticator", "return_authenticator"):
        v.pop(k, None)


_SAM_LOGON = [
    ("logon_server", Ptr(WSTR)),
    ("computer_name", Ptr(WSTR)),
    ("authenticator", Ptr(AUTHENTICATOR)),
    ("return_authenticator", Ptr(AUTHENTICATOR)),
    ("logon_level", Enum()),
    ("logon_information", LOGON_LEVEL),
]
_SAM_SHOW = ("logon_level", "logon_domain", "user_name", "workstation", "computer_name")
F.op(2, "NetrLogonSamLogon", _SAM_LOGON, show=_SAM_SHOW, derive=_logon)
F.op(
    39,
    "NetrLogonSamLogonEx",
    [
        ("logon_server", Ptr(WSTR)),
        ("computer_name", Ptr(WSTR)),
        ("logon_level", Enum()),
        ("logon_information", LOGON_LEVEL),
    ],
    show=_SAM_SHOW,
    derive=_logon,
)
F.op(45, "NetrLogonSamLogonWithFlags", _SAM_LOGON, show=_SAM_SHOW, derive=_logon)
_CHANNEL_IN = [
    ("primary_name", Ptr(WSTR)),
    ("account_name", WSTR),
    ("secure_channel_type", Enum()),
    ("computer_name", WSTR),
    ("authenticator", AUTHENTICATOR),
]
F.op(
    6,
    "NetrServerPasswordSet",
    [*_CHANNEL_IN, ("uas_new_password", Bytes(16))],
    show=("account_name", "computer_name", "secure_channel_type"),
    derive=_channel,
)
F.op(
    31,
    "NetrServerPasswordGet",
    _CHANNEL_IN,
    show=("account_name", "computer_name", "secure_channel_type"),
    derive=_channel,
)
F.op(
    42,
    "NetrServerTrustPasswordsGet",
    _CHANNEL_IN,
    show=("account_name", "computer_name", "secure_channel_type"),
    derive=_channel,
)
F.op(36, "NetrEnumerateTrustedDomainsEx", [("server_name", Ptr(WSTR))], show=("server_name",))
