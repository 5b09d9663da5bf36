"""The SMB1 (CIFS) wire format as far as named pipes need it ([MS-CIFS] 2.2.3, 2.2.4, 2.2.5), and the small
records the SMB1 handler (analyzer.smb.smb1) keeps per request.

The header (2.2.3.1), command codes, flags and status values, the named-pipe TRANSACTION subcommands, which
commands are AndX or buffered whole, and strings (OEM, or UTF-16 with SMB_FLAGS2_UNICODE, 2.2.1.1). Pure
functions and frozen records: no state, no events. Imports nothing above `analyzer.smb.events`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from analyzer.ntlm import NtlmIdentity
from analyzer.smb.events import PipeKey

HEADER_LEN = 32

CLOSE = 0x04
READ = 0x0A
WRITE = 0x0B
LOCKING_ANDX = 0x24
TRANSACTION = 0x25
TRANSACTION_SECONDARY = 0x26
OPEN_ANDX = 0x2D
READ_ANDX = 0x2E
WRITE_ANDX = 0x2F
TREE_DISCONNECT = 0x71
NEGOTIATE = 0x72
SESSION_SETUP_ANDX = 0x73
LOGOFF_ANDX = 0x74
TREE_CONNECT_ANDX = 0x75
NT_CREATE_ANDX = 0xA2
NO_ANDX_COMMAND = 0xFF

FLAGS_REPLY = 0x80
FLAGS2_UNICODE = 0x8000

STATUS_SUCCESS = 0
STATUS_BUFFER_OVERFLOW = 0x80000005
_DOS_MORE_DATA = 0x00EA0001  # ERRDOS / ERRmoredata as the 4 status bytes read little-endian

# Named-pipe TRANSACTION subcommands ([MS-CIFS] 2.2.5) whose Setup[1] is a FID and that move data.
TRANS_RAW_READ_NMPIPE = 0x0011
TRANS_TRANSACT_NMPIPE = 0x0026
TRANS_RAW_WRITE_NMPIPE = 0x0031
TRANS_READ_NMPIPE = 0x0036
TRANS_WRITE_NMPIPE = 0x0037
TRANS_WRITES = frozenset({TRANS_TRANSACT_NMPIPE, TRANS_RAW_WRITE_NMPIPE, TRANS_WRITE_NMPIPE})
TRANS_READS = frozenset({TRANS_TRANSACT_NMPIPE, TRANS_RAW_READ_NMPIPE, TRANS_READ_NMPIPE})

# WRITE_ANDX WriteMode: RAW_MODE and MSG_START together put a 2-byte message length before the data.
WRITE_RAW_START = 0x000C

# Resource types of an open response ([MS-CIFS] 2.2.4.64.2): byte-mode and message-mode pipes.
PIPE_RESOURCE_TYPES = frozenset({1, 2})

ANDX_COMMANDS = frozenset(
    {LOCKING_ANDX, OPEN_ANDX, READ_ANDX, WRITE_ANDX, SESSION_SETUP_ANDX, LOGOFF_ANDX, TREE_CONNECT_ANDX, NT_CREATE_ANDX}
)
# Commands buffered whole (all small, or pipe traffic); the rest is skipped after the header.
WHOLE_COMMANDS = frozenset(
    {
        CLOSE,
        READ,
        WRITE,
        TRANSACTION,
        TRANSACTION_SECONDARY,
        OPEN_ANDX,
        READ_ANDX,
        WRITE_ANDX,
        SESSION_SETUP_ANDX,
        TREE_CONNECT_ANDX,
        NT_CREATE_ANDX,
    }
)
PIPE_SIZED = frozenset({TRANSACTION, TRANSACTION_SECONDARY, READ, WRITE, READ_ANDX, WRITE_ANDX})

_HDR = struct.Struct("<BIBH")  # Command, Status, Flags, Flags2 at offset 4
_TAIL = struct.Struct("<HHHH")  # TID, PIDLow, UID, MID at offset 24
_new_tuple = tuple.__new__  # a header of its fields, without the frame of its NamedTuple's __new__


class Smb1Header(NamedTuple):
    """The fields of the 32-byte header this layer uses ([MS-CIFS] 2.2.3.1): a tuple made in one step,
    as `smb2_wire.Smb2Header`."""

    command: int
    status: int
    flags: int
    flags2: int
    tid: int
    pid: int
    uid: int
    mid: int

    @property
    def response(self) -> bool:
        return bool(self.flags & FLAGS_REPLY)

    @property
    def unicode(self) -> bool:
        return bool(self.flags2 & FLAGS2_UNICODE)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_SUCCESS

    @property
    def carries_data(self) -> bool:
        """Success, or a pipe read that says more data follows: its data is still good."""
        return self.status in (STATUS_SUCCESS, STATUS_BUFFER_OVERFLOW, _DOS_MORE_DATA)


def parse_header(b: bytes | bytearray) -> Smb1Header | None:
    if len(b) < HEADER_LEN or b[:4] != b"\xffSMB":
        return None
    return _new_tuple(Smb1Header, (*_HDR.unpack_from(b, 4), *_TAIL.unpack_from(b, 24)))


def read_string(b: bytes | bytearray, p: int, end: int, unicode: bool) -> tuple[str, int]:
    """The NUL-terminated string at b[p:end] and the offset after its terminator."""
    if unicode:
        q = p
        while q + 1 < end and (b[q] or b[q + 1]):
            q += 2
        return bytes(b[p:q]).decode("utf-16-le", "replace"), min(q + 2, end)
    q = b.find(b"\x00", p, end)
    if q < 0:
        q = end
    return bytes(b[p:q]).decode("latin-1"), min(q + 1, end)


@dataclass(frozen=True, slots=True)
class Tree:
    is_ipc: bool
    path: str | None


@dataclass(frozen=True, slots=True)
class Pending:
    command: int
    uid: int
    tid: int
    key: PipeKey | None = None
    tree_ipc: bool | None = None
    name: str | None = None  # TREE_CONNECT_ANDX path, NT_CREATE_ANDX / OPEN_ANDX file name
    sub: int = 0  # TRANSACTION subcommand
    identity: NtlmIdentity | None = None
