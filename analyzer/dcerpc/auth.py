"""Moved: NTLM token parsing is `analyzer.ntlm` (DCE/RPC and SMB both read it)."""

from analyzer.ntlm import (  # moved: to analyzer.ntlm; remove once no branch imports this path
    NTLM_AUTHENTICATE,
    NTLM_CHALLENGE,
    NTLM_NEGOTIATE,
    NTLMSSP_SIGNATURE,
    NtlmIdentity,
    ntlm_identity,
)

__all__ = [
    "NTLMSSP_SIGNATURE",
    "NTLM_AUTHENTICATE",
    "NTLM_CHALLENGE",
    "NTLM_NEGOTIATE",
    "NtlmIdentity",
    "ntlm_identity",
]
