"""State one SMB connection shares between its two directions and dialects: which files are pipes.

A file is a pipe when it was opened on an IPC$ tree ([MS-SMB2] 2.2.10 ShareType PIPE, [MS-CIFS]
2.2.4.55.2 Service "IPC"), or the server said so ([MS-CIFS] 2.2.4.64.2 ResourceType), or, when the
tree is unknown because the capture or this channel missed the tree connect, when its name is a
well-known RPC pipe, a FSCTL_PIPE_TRANSCEIVE / TransactNmPipe is used on it, or the first bytes
written to or read from it are a DCE/RPC header. Files on known disk trees are never looked at.

Everything here is bounded: open pipes per session (`Limits.max_smb_pipes`) and per connection,
candidates, the files found not to be pipes, encrypted sessions. A cap that is hit is a violation
(`cap_<field>`), and the oldest entry goes.
"""

from __future__ import annotations

from analyzer.bounded import BoundedDict
from analyzer.dcerpc.pdu import plausible_co_header
from analyzer.limits import Limits
from analyzer.ntlm import NtlmIdentity
from analyzer.smb.events import PipeKey, SmbEvents

# Classification of a file a request names.
NONE = 0  # not a pipe (known disk tree, or its data did not look like DCE/RPC)
PIPE = 1  # an open pipe: deliver its data
SNIFF = 2  # unknown: look at the first bytes of its data

# The caps of this layer are `Limits` fields (max_smb_*). Bytes of a write or read looked at to decide
# whether an unknown file is a pipe:
SNIFF_BYTES = 16

# Pipes that carry DCE/RPC on Windows: a CREATE of one of these on a tree of unknown type is a pipe.
WELL_KNOWN_PIPES = frozenset(
    name.lower()
    for name in (
        "atsvc",
        "browser",
        "cert",
        "Ctx_WinStation_API_service",
        "DAV RPC SERVICE",
        "DNSSERVER",
        "drsuapi",
        "efsrpc",
        "epmapper",
        "eventlog",
        "FssagentRpc",
        "InitShutdown",
        "keysvc",
        "llsrpc",
        "locator",
        "lsarpc",
        "lsass",
        "msgsvc",
        "nddeapi",
        "netdfs",
        "netlogon",
        "ntsvcs",
        "protected_storage",
        "ROUTER",
        "samr",
        "scerpc",
        "SECLOGON",
        "spoolss",
        "srvsvc",
        "svcctl",
        "tapsrv",
        "trksvr",
        "trkwks",
        "W32TIME",
        "W32TIME_ALT",
        "winreg",
        "WinsPipe",
        "wkssvc",
    )
)


def canonical_pipe_name(raw: str) -> str:
    """`\\PIPE\\name` for what a CREATE says: SMB2 gives `lsarpc`, SMB1 `\\lsarpc` or `\\PIPE\\lsarpc`."""
    name = raw.replace("/", "\\").rstrip("\x00").lstrip("\\")
    if name[:5].upper() == "PIPE\\":
        name = name[5:].lstrip("\\")
    return "\\PIPE\\" + name


def is_ipc_path(path: str) -> bool:
    """Does a tree connect's path name the IPC$ share (`\\\\server\\IPC$`)?"""
    return path.rstrip("\x00").upper().endswith("\\IPC$")


def is_well_known(raw: str) -> bool:
    return canonical_pipe_name(raw)[6:].lower() in WELL_KNOWN_PIPES


def looks_like_dcerpc(data: bytes | bytearray) -> bool:
    """Do these first bytes of a pipe message start a connection-oriented DCE/RPC PDU?"""
    return len(data) >= 16 and plausible_co_header(bytes(data[:16])) > 0


class Context:
    """Events, limits, counters and the pipe table of one connection.

    Counters, read through `SmbConnection` by the tests and the real-capture checks: `bulk_bytes` message
    bytes passed over without being buffered, `skipped_bytes` bytes dropped while resynchronising,
    `gap_bytes` bytes lost in TCP gaps, `pipes_opened`, `pipe_bytes` delivered, `encrypted_messages`,
    `compressed_messages`, `peak_buffered` the largest per-direction buffer seen.
    """

    __slots__ = (
        "_blocked",
        "_candidates",
        "_encrypted_sessions",
        "_once",
        "_open",
        "_per_session",
        "bulk_bytes",
        "compressed_messages",
        "encrypted_messages",
        "events",
        "gap_bytes",
        "limits",
        "peak_buffered",
        "pipe_bytes",
        "pipes_opened",
        "skipped_bytes",
    )

    def __init__(self, events: SmbEvents, limits: Limits) -> None:
        self.events = events
        self.limits = limits
        self._open: BoundedDict[PipeKey, str | None] = BoundedDict(limits.max_smb_open_pipes)
        self._candidates: BoundedDict[PipeKey, tuple[str, str | None]] = BoundedDict(limits.max_smb_candidates)
        self._blocked: BoundedDict[PipeKey, None] = BoundedDict(limits.max_smb_not_pipes)
        self._per_session: dict[tuple[int, int], int] = {}
        self._encrypted_sessions: BoundedDict[int, None] = BoundedDict(limits.max_smb_sessions)
        self._once: set[str] = set()
        self.bulk_bytes = 0
        self.skipped_bytes = 0
        self.gap_bytes = 0
        self.pipes_opened = 0
        self.pipe_bytes = 0
        self.encrypted_messages = 0
        self.compressed_messages = 0
        self.peak_buffered = 0

    # -- events ---------------------------------------------------------------------------------

    def violation(self, frame: int, what: str, detail: str) -> None:
        self.events.violation(frame, what, detail)

    def violation_once(self, frame: int, what: str, detail: str) -> None:
        """A violation that would repeat for every message of the connection: reported the first time."""
        if what not in self._once:
            self._once.add(what)
            self.violation(frame, what, detail)

    def deliver(self, key: PipeKey, from_client: bool, data: bytes, frame: int, ts: int) -> None:
        if not data:
            return
        self.pipe_bytes += len(data)
        self.events.pipe_data(key, from_client, data, frame, ts)

    def identity(self, dialect: int, session: int, identity: NtlmIdentity, frame: int) -> None:
        self.events.session_identity(dialect, session, identity, frame)

    def encrypted(self, session: int, frame: int, ts: int) -> None:
        self.encrypted_messages += 1
        seen = self._encrypted_sessions
        if session not in seen:
            if seen.put(session, None) is not None:
                self.violation(frame, "cap_smb_sessions", f"more than {seen.cap} encrypted sessions")
            self.events.encrypted(session, frame, ts)

    # -- the pipe table -------------------------------------------------------------------------

    def tracked(self, key: PipeKey) -> bool:
        """An open pipe or a candidate: worth hearing about its CLOSE."""
        return key in self._open or key in self._candidates

    def kind(self, key: PipeKey, tree_ipc: bool | None, frame: int, ts: int) -> int:
        """How to treat a file a request names, given what is known of its tree."""
        if key in self._open:
            return PIPE
        if key in self._blocked:
            return NONE
        if key in self._candidates or tree_ipc is None:
            return SNIFF
        if tree_ipc:
            # Everything on IPC$ is a pipe; its CREATE was missed, so it has no name.
            return PIPE if self.adopt(key, frame, ts) else NONE
        return NONE

    def open_pipe(self, key: PipeKey, name: str | None, tree: str | None, frame: int, ts: int) -> bool:
        """Track a pipe; tell the consumer its name if there is one. False if the cap refused it."""
        if key in self._open:
            # The same file id opened again: its CLOSE was missed (SMB1 reuses FIDs at once).
            self.close_file(key, frame, ts)
        sess = (key[0], key[1])
        n = self._per_session.get(sess, 0)
        if n >= self.limits.max_smb_pipes:
            self.violation(
                frame, "cap_smb_pipes", f"more than {self.limits.max_smb_pipes} pipes in session {key[1]:#x}"
            )
            self._block(key, frame)
            return False
        evicted = self._open.put(key, name)
        if evicted is not None:
            detail = f"more than {self._open.cap} pipes open on one connection"
            self.violation(frame, "cap_smb_open_pipes", detail)
            self._forget(evicted[0], frame, ts)
        self._per_session[sess] = n + 1
        self._candidates.pop(key, None)
        self._blocked.pop(key, None)
        self.pipes_opened += 1
        if name is not None:
            self.events.pipe_open(key, name, tree, frame, ts)
        return True

    def adopt(self, key: PipeKey, frame: int, ts: int) -> bool:
        """A file proved to be a pipe by how it is used: open it, with its CREATE's name if seen."""
        cand = self._candidates.get(key)
        if cand is not None:
            return self.open_pipe(key, cand[0], cand[1], frame, ts)
        return self.open_pipe(key, None, None, frame, ts)

    def candidate(self, key: PipeKey, name: str, tree: str | None, frame: int, ts: int) -> None:
        """A file created on a tree of unknown type with a name that is not a well-known pipe."""
        self.close_file(key, frame, ts)  # a pipe of the same id was closed unseen
        if self._candidates.put(key, (name, tree)) is not None:
            self.violation(frame, "cap_smb_candidates", f"more than {self._candidates.cap} possible pipes")

    def reject(self, key: PipeKey, frame: int) -> None:
        """Its data is not DCE/RPC: stop looking at it."""
        self._candidates.pop(key, None)
        self._block(key, frame)

    def _block(self, key: PipeKey, frame: int) -> None:
        if self._blocked.put(key, None) is not None:
            self.violation(frame, "cap_smb_not_pipes", f"more than {self._blocked.cap} files known not to be pipes")

    def close_file(self, key: PipeKey, frame: int, ts: int) -> None:
        """The file is closed (or its id now names another file): forget it, and tell the consumer
        if it was a pipe."""
        if key in self._open:
            del self._open[key]
            self._forget(key, frame, ts)
        else:
            self._candidates.pop(key, None)
            self._blocked.pop(key, None)

    def _forget(self, key: PipeKey, frame: int, ts: int) -> None:
        """A pipe left the open table (closed, reused or evicted by the cap): tell the consumer."""
        self._candidates.pop(key, None)
        self._blocked.pop(key, None)
        sess = (key[0], key[1])
        self._per_session[sess] -= 1
        if not self._per_session[sess]:
            del self._per_session[sess]
        self.events.pipe_close(key, frame, ts)

    def sniff(self, key: PipeKey, head: bytes | bytearray, frame: int, ts: int) -> bool:
        """Decide on an unknown file from the first bytes of its data; True if it is now a pipe."""
        if looks_like_dcerpc(head):
            return self.adopt(key, frame, ts)
        self.reject(key, frame)
        return False
