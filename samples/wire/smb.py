"""What the SMB1 and SMB2 encoders share: the manifest row of the NTLMSSP authentication a SESSION_SETUP
carries ([MS-SMB] 2.2.4.6, [MS-SMB2] 2.2.5), SPNEGO-wrapped, so outside any DCE/RPC association."""

from __future__ import annotations

from .tcp import TcpFlow


def record_session_auth(
    flow: TcpFlow, frame: int, transport: str, carrier: str, user: str, domain: str, workstation: str
) -> None:
    """One `ntlm_auth` row for the SESSION_SETUP request in `frame` (no auth level: not a DCE/RPC verifier)."""
    flow.cap.man["ntlm_auth"].append(
        {
            "frame": frame,
            "client_ip": flow.client.ip,
            "client_port": flow.cport,
            "server_ip": flow.server.ip,
            "server_port": flow.sport,
            "transport": transport,
            "pipe": None,
            "carrier": carrier,
            "user": user,
            "domain": domain,
            "workstation": workstation,
            "auth_level": None,
            "auth_context_id": None,
        }
    )
