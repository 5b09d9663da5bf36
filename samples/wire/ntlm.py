"""NTLMSSP ([MS-NLMP] 2.2.1) and SPNEGO ([RFC 4178], [MS-SPNG]) tokens, built with scapy."""

from __future__ import annotations

import random
import struct
from typing import Any

from scapy.layers.gssapi import GSSAPI_BLOB
from scapy.layers.ntlm import (
    AV_PAIR,
    NTLM_AUTHENTICATE_V2,
    NTLM_CHALLENGE,
    NTLM_NEGOTIATE,
    NTLMv2_RESPONSE,
)
from scapy.layers.spnego import (
    SPNEGO_MechType,
    SPNEGO_negToken,
    SPNEGO_negTokenInit,
    SPNEGO_negTokenResp,
    SPNEGO_Token,
)
from scapy.packet import Raw

from .ids import FILETIME_T0

NTLM_OID = "1.3.6.1.4.1.311.2.2.10"


def ntlm_negotiate() -> bytes:
    """NEGOTIATE_MESSAGE ([MS-NLMP] 2.2.1.1), Windows 10 flags and version."""
    return bytes(
        NTLM_NEGOTIATE(
            NegotiateFlags=0xE2088297,
            ProductMajorVersion=10,
            ProductMinorVersion=0,
            ProductBuild=19041,
            NTLMRevisionCurrent=15,
        )
    )


def ntlm_challenge(rng: random.Random, domain: str = "CORP", server: str = "SRV01") -> bytes:
    """CHALLENGE_MESSAGE ([MS-NLMP] 2.2.1.2) with a target-info AV_PAIR list."""
    dns_domain = domain.lower() + ".local"
    return bytes(
        NTLM_CHALLENGE(
            TargetName=domain,
            NegotiateFlags=0xE28A8215,
            ServerChallenge=rng.randbytes(8),
            ProductMajorVersion=10,
            ProductMinorVersion=0,
            ProductBuild=17763,
            NTLMRevisionCurrent=15,
            TargetInfo=[
                AV_PAIR(AvId="MsvAvNbDomainName", Value=domain),
                AV_PAIR(AvId="MsvAvNbComputerName", Value=server),
                AV_PAIR(AvId="MsvAvDnsDomainName", Value=dns_domain),
                AV_PAIR(AvId="MsvAvDnsComputerName", Value=f"{server.lower()}.{dns_domain}"),
                AV_PAIR(AvId="MsvAvTimestamp", Value=FILETIME_T0),
                AV_PAIR(AvId="MsvAvEOL"),
            ],
        )
    )


def ntlm_authenticate(rng: random.Random, user: str, domain: str, workstation: str, server: str = "SRV01") -> bytes:
    """AUTHENTICATE_MESSAGE ([MS-NLMP] 2.2.1.3), Unicode, with an NTLMv2 response and a MIC."""
    resp = NTLMv2_RESPONSE(
        NTProofStr=rng.randbytes(16),
        TimeStamp=FILETIME_T0,
        ChallengeFromClient=rng.randbytes(8),
        AvPairs=[
            AV_PAIR(AvId="MsvAvNbDomainName", Value=domain),
            AV_PAIR(AvId="MsvAvNbComputerName", Value=server),
            AV_PAIR(AvId="MsvAvTimestamp", Value=FILETIME_T0),
            AV_PAIR(AvId="MsvAvFlags", Value=2),
            AV_PAIR(AvId="MsvAvEOL"),
        ],
    )
    return bytes(
        NTLM_AUTHENTICATE_V2(
            NegotiateFlags=0xE2888215,
            DomainName=domain,
            UserName=user,
            Workstation=workstation,
            LmChallengeResponse=b"\0" * 24,
            NtChallengeResponse=resp,
            EncryptedRandomSessionKey=rng.randbytes(16),
            ProductMajorVersion=10,
            ProductMinorVersion=0,
            ProductBuild=19041,
            NTLMRevisionCurrent=15,
            MIC=rng.randbytes(16),
        )
    )


def ntlm_signature(rng: random.Random, seq: int) -> bytes:
    """NTLMSSP_MESSAGE_SIGNATURE with extended session security ([MS-NLMP] 2.2.2.9.1): version 1,
    8-byte checksum, sequence number."""
    return struct.pack("<I", 1) + rng.randbytes(8) + struct.pack("<I", seq)


def spnego_init(token: bytes) -> bytes:
    """GSS-API InitialContextToken carrying a SPNEGO NegTokenInit with an NTLMSSP mechToken."""
    return bytes(
        GSSAPI_BLOB(
            innerToken=SPNEGO_negToken(
                token=SPNEGO_negTokenInit(
                    mechTypes=[SPNEGO_MechType(oid=NTLM_OID)], mechToken=SPNEGO_Token(value=Raw(token))
                )
            )
        )
    )


def spnego_resp(token: bytes | None, state: int | None, mech: bool = True) -> bytes:
    """SPNEGO NegTokenResp (negState 0 accept-completed, 1 accept-incomplete, None = absent, as in the
    client's last leg) with an optional token."""
    kw: dict[str, Any] = {} if state is None else {"negState": state}
    if mech:
        kw["supportedMech"] = SPNEGO_MechType(oid=NTLM_OID)
    if token is not None:
        kw["responseToken"] = SPNEGO_Token(value=Raw(token))
    return bytes(SPNEGO_negToken(token=SPNEGO_negTokenResp(**kw)))


def spnego_hint() -> bytes:
    """The NegTokenInit2 a server puts in its SMB NEGOTIATE response ([MS-SPNG] 2.2.1)."""
    return bytes(
        GSSAPI_BLOB(innerToken=SPNEGO_negToken(token=SPNEGO_negTokenInit(mechTypes=[SPNEGO_MechType(oid=NTLM_OID)])))
    )
