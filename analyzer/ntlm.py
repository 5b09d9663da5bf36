"""What an NTLMSSP token says about who authenticated ([MS-NLMP] 2.2.1).

Neutral: both DCE/RPC (the auth verifier of bind, alter_context and auth3 PDUs, [MS-RPCE] 2.2.1.1.7)
and SMB (session setup security blobs) carry these tokens, so neither owns their parsing. Only
NTLMSSP AUTHENTICATE messages name the user in clear: user, domain and workstation. They travel bare
(auth_type 10) or wrapped in SPNEGO (9). Kerberos tickets name the service, not the client (whose
name is encrypted), so they give nothing. Imports nothing of the package.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NTLMSSP_SIGNATURE = b"NTLMSSP\x00"
NTLM_NEGOTIATE = 1
NTLM_CHALLENGE = 2
NTLM_AUTHENTICATE = 3
_NEGOTIATE_UNICODE = 0x00000001


@dataclass(frozen=True, slots=True)
class NtlmIdentity:
    """The names an NTLMSSP AUTHENTICATE message carries; None where a field is empty."""

    user: str | None
    domain: str | None
    workstation: str | None


def ntlm_identity(token: bytes) -> NtlmIdentity | None:
    """User, domain and workstation of an NTLMSSP AUTHENTICATE message in the token, if any.

    The message may sit inside SPNEGO's DER wrapping: its signature is searched for rather than
    the DER decoded, since only the NTLMSSP bytes matter and their offsets are relative to it.
    """
    at = token.find(NTLMSSP_SIGNATURE)
    if at < 0 or at + 64 > len(token):
        return None
    msg = token[at:]
    if struct.unpack_from("<I", msg, 8)[0] != NTLM_AUTHENTICATE:
        return None
    flags = struct.unpack_from("<I", msg, 60)[0]
    unicode = bool(flags & _NEGOTIATE_UNICODE)

    def field(pos: int) -> str | None:
        length, _max, offset = struct.unpack_from("<HHI", msg, pos)
        if not length or offset + length > len(msg):
            return None
        raw = msg[offset : offset + length]
        text = raw.decode("utf-16-le", "replace") if unicode else raw.decode("latin-1")
        return text or None

    # AUTHENTICATE_MESSAGE fields ([MS-NLMP] 2.2.1.3): Lm 12, Nt 20, Domain 28, User 36, Workstation 44.
    return NtlmIdentity(user=field(36), domain=field(28), workstation=field(44))
