"""SMB1/SMB2/SMB3 named pipes out of one TCP connection, for the DCE/RPC layer (ncacn_np).

`SmbConnection` takes the reassembled bytes of a 445 or 139 connection and reports pipe opens,
pipe data in both directions, pipe closes, session identities, encrypted sessions and violations
through an `SmbEvents` object. Non-pipe traffic (file copies) is skipped as it streams past.
"""

from analyzer.smb.connection import SmbConnection
from analyzer.smb.events import PipeKey, SmbEvents
from analyzer.smb.state import canonical_pipe_name

__all__ = ["PipeKey", "SmbConnection", "SmbEvents", "canonical_pipe_name"]
