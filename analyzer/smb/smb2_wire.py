"""The SMB2 and SMB3 wire format as far as named pipes need it ([MS-SMB2] 2.2), and the small records
the SMB2 handler (analyzer.smb.smb2) keeps per request.

The sync and async header (2.2.1.1, 2.2.1.2), the command codes, flags and status values used, and the
(StructureSize, fixed body bytes read) of each request and response the handler looks into. Pure
functions and frozen records: no state, no events. Imports nothing above `analyzer.smb.events`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from analyzer.smb.events import PipeKey
from analyzer.smb.state import NONE

HEADER_LEN = 64

NEGOTIATE = 0x00
SESSION_SETUP = 0x01
LOGOFF = 0x02
TREE_CONNECT = 0x03
TREE_DISCONNECT = 0x04
CREATE = 0x05
CLOSE = 0x06
READ = 0x08
WRITE = 0x09
IOCTL = 0x0B

FLAGS_SERVER_TO_REDIR = 0x00000001
FLAGS_ASYNC_COMMAND = 0x00000002
FLAGS_RELATED_OPERATIONS = 0x00000004

STATUS_SUCCESS = 0x00000000
STATUS_PENDING = 0x00000103
STATUS_BUFFER_OVERFLOW = 0x80000005

SHARE_TYPE_PIPE = 0x02
FSCTL_PIPE_TRANSCEIVE = 0x0011C017
FILE_ID_PREVIOUS = b"\xff" * 16

# Status, Command, CreditRequest/Response, Flags, NextCommand, MessageId, then ProcessId and TreeId (a
# sync header) or AsyncId (an async one), SessionId: offsets 8 to 48, in one unpack.
_HDR = struct.Struct("<IHHIIQIIQ")
_new_tuple = tuple.__new__  # a header of its fields, without the frame of its NamedTuple's __new__

# (StructureSize, fixed body bytes read) of the requests and responses looked at beyond the header.
REQUEST_SHAPES = {
    SESSION_SETUP: (25, 24),
    TREE_CONNECT: (9, 8),
    CREATE: (57, 56),
    CLOSE: (24, 24),
    READ: (49, 48),
    WRITE: (49, 48),
    IOCTL: (57, 56),
}
RESPONSE_SHAPES = {
    TREE_CONNECT: (16, 16),
    CREATE: (89, 88),
    CLOSE: (60, 0),
    READ: (17, 16),
    IOCTL: (49, 48),
}
# Answers worth matching to their requests.
PENDED = frozenset({TREE_CONNECT, CREATE, CLOSE, READ, IOCTL})

# How far into a security token the NTLMSSP signature may sit behind its SPNEGO wrapping.
TOKEN_PEEK = 256

DEFER = 3  # a related operation on a CREATE whose response has not been seen yet


class Smb2Header(NamedTuple):
    """The fields of the 64-byte header this layer uses ([MS-SMB2] 2.2.1). A tuple, made in one
    step (`parse_header`): a frozen dataclass set each field through `object.__setattr__`, 6 % of
    reading ../shared/captures, where SMB is most of it."""

    command: int
    status: int
    flags: int
    next_command: int
    message_id: int
    tree_id: int | None  # None in an async header
    session_id: int

    @property
    def response(self) -> bool:
        return bool(self.flags & FLAGS_SERVER_TO_REDIR)

    @property
    def is_async(self) -> bool:
        return bool(self.flags & FLAGS_ASYNC_COMMAND)

    @property
    def related(self) -> bool:
        return bool(self.flags & FLAGS_RELATED_OPERATIONS)

    @property
    def succeeded(self) -> bool:
        """A response whose body is good: success, or a READ / IOCTL that says more data follows
        ([MS-SMB2] 3.3.4.4: STATUS_BUFFER_OVERFLOW still carries data)."""
        return self.status == STATUS_SUCCESS or (
            self.status == STATUS_BUFFER_OVERFLOW and self.command in (READ, IOCTL)
        )


def parse_header(b: bytes | bytearray) -> Smb2Header | None:
    """The header at the start of b, or None if b does not start with one."""
    if len(b) < HEADER_LEN or b[:4] != b"\xfeSMB" or b[4] != 64 or b[5] != 0:
        return None
    status, command, _credit, flags, next_command, message_id, _pid, tree_id, session_id = _HDR.unpack_from(b, 8)
    fields = (command, status, flags, next_command, message_id, None if flags & FLAGS_ASYNC_COMMAND else tree_id)
    return _new_tuple(Smb2Header, (*fields, session_id))


def header_problem(b: bytes | bytearray) -> str:
    """What makes b not an SMB2 header ([MS-SMB2] 2.2.1): the field at fault and its value, not the
    magic itself (which is usually fine)."""
    if len(b) < HEADER_LEN:
        return f"SMB2 header cut short at {len(b)} of {HEADER_LEN} bytes"
    if b[:4] != b"\xfeSMB":
        return f"ProtocolId {bytes(b[:4]).hex()} is not fe534d42 (\\xfeSMB)"
    size = b[4] | (b[5] << 8)
    return f"SMB2 header StructureSize {size}, must be 64"


def utf16(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("utf-16-le", "replace").rstrip("\x00")


@dataclass(frozen=True, slots=True)
class Tree:
    is_ipc: bool
    path: str | None


@dataclass(frozen=True, slots=True)
class FileRef:
    """The file a request names: a key and what was known of its tree, or a pending CREATE."""

    key: PipeKey | None
    tree_ipc: bool | None
    create_mid: int = -1


NO_FILE = FileRef(None, False)


@dataclass(frozen=True, slots=True)
class Pending:
    command: int
    session_id: int
    tree_id: int | None
    name: str | None = None  # TREE_CONNECT path, CREATE file name
    ref: FileRef = NO_FILE


class DataCursor:
    """What the data step of the unit in progress delivers: bytes [off, off + length) of it."""

    __slots__ = ("create_mid", "key", "kind", "length", "off", "proven")

    def __init__(self) -> None:
        self.kind = NONE
        self.key: PipeKey | None = None
        self.create_mid = -1
        self.off = 0
        self.length = 0
        self.proven = False  # a pipe operation (transceive): adopt without looking at the data

    def set(self, kind: int, key: PipeKey | None, create_mid: int, off: int, length: int, proven: bool) -> None:
        self.kind = kind
        self.key = key
        self.create_mid = create_mid
        self.off = off
        self.length = length
        self.proven = proven
