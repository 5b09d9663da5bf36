"""SMB1/SMB2/SMB3 named pipes out of one TCP connection, for the DCE/RPC layer (ncacn_np).

`SmbConnection` takes the reassembled bytes of a 445 or 139 connection and reports pipe opens,
pipe data in both directions, pipe closes, session identities, encrypted sessions and violations
through an `SmbEvents` object. Non-pipe traffic (file copies) is skipped as it streams past.

Owns the NetBIOS/direct-TCP framing (`netbios`, `reader`), the per-connection pipe table (`state`), the SMB1 and
SMB2 wire formats (`smb1_wire`, `smb2_wire`) and their handlers (`smb1`, `smb2`). Sits above `dcerpc` (it uses
the NTLMSSP identity and the CO header check) and below the transports: it must not import
`analyzer.transports`, the pipeline, the report or anything above.
"""

from analyzer.smb.connection import SmbConnection
from analyzer.smb.events import PipeKey, SmbEvents
from analyzer.smb.state import canonical_pipe_name

__all__ = ["PipeKey", "SmbConnection", "SmbEvents", "canonical_pipe_name"]
