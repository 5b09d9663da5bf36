"""What the SMB layer tells its consumer: named-pipe events, identities, encryption, violations.

A pipe is named by a `PipeKey`: the SMB dialect family (1 or 2), the session (SMB2 SessionId,
SMB1 Uid) and the file id bytes as they travel on the wire (SMB2: the 16-byte FileId, persistent
then volatile half, [MS-SMB2] 2.2.14.1; SMB1: the 2-byte FID, [MS-CIFS] 2.2.1.6.1). The TCP
connection is deliberately not part of it: with SMB2 multichannel a pipe opened on one connection
may be written on a second and read on a third ([MS-SMB2] 3.2.4.1.7), and the consumer joins
them by key.
"""

from __future__ import annotations

from typing import Protocol

from analyzer.ntlm import NtlmIdentity

# (dialect family 1 or 2, session id / uid, file id bytes)
PipeKey = tuple[int, int, bytes]


class SmbEvents(Protocol):
    """Receives what one SMB connection carries. Called synchronously from `SmbConnection.data()`.

    Every call names the frame that completed the SMB message it comes from.
    """

    def pipe_open(self, key: PipeKey, name: str, tree: str | None, frame: int, ts: int) -> None:
        """A named pipe was opened; `name` is canonical (`\\PIPE\\lsarpc`), `tree` the share path
        (`\\\\server\\IPC$`) when the tree connect was seen."""

    def pipe_data(self, key: PipeKey, from_client: bool, data: bytes, frame: int, ts: int) -> None:
        """Bytes written to (from_client) or read from a pipe, in capture order.

        May come for a key that had no `pipe_open` on this connection: the CREATE was on another
        channel of the same session, or before the capture started."""

    def pipe_close(self, key: PipeKey, frame: int, ts: int) -> None:
        """The server answered a CLOSE of the pipe (or its file id was opened again, its CLOSE
        unseen, or a cap evicted it). Not called when the connection ends: an SMB2 handle may
        live on in another channel, so the consumer closes what is left when it is done."""

    def session_identity(self, dialect: int, session_id: int, identity: NtlmIdentity, frame: int) -> None:
        """A session setup named its user (NTLMSSP AUTHENTICATE, or SMB1 plain account name)."""

    def encrypted(self, session_id: int, frame: int, ts: int) -> None:
        """The session sends SMB3 encrypted messages; nothing inside them is seen."""

    def violation(self, frame: int, what: str, detail: str) -> None:
        """Malformed or unparseable bytes, or a cap that was hit. Parsing carries on."""
