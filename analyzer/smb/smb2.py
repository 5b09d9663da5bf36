"""SMB2 and SMB3 commands as far as named pipes need them ([MS-SMB2] 2.2).

Parsed: the sync and async header (2.2.1.1, 2.2.1.2) and compound chains (3.2.4.1.4: NextCommand,
SMB2_FLAGS_RELATED_OPERATIONS with FileId 0xFFFFFFFFFFFFFFFF:0xFFFFFFFFFFFFFFFF naming the file of
the previous command); SESSION_SETUP request security buffer (2.2.5); TREE_CONNECT request path and
response ShareType (2.2.9, 2.2.10); CREATE request name and response FileId (2.2.13, 2.2.14); CLOSE
(2.2.15); READ request FileId and response data (2.2.19, 2.2.20); WRITE (2.2.21); IOCTL
FSCTL_PIPE_TRANSCEIVE input and output (2.2.31, 2.2.32). Every other command is skipped after its
header. Responses are matched to requests by MessageId on the connection (3.2.5.1.2); an interim
async response (STATUS_PENDING, 3.3.4.2) is not the answer. A READ or IOCTL answered with
STATUS_BUFFER_OVERFLOW still carries data (3.3.4.4).

Data goes out keyed by (2, SessionId, FileId), not by connection, so a multichannel session's
channels can be joined by the consumer ([MS-SMB2] 3.2.4.1.7). A write on a related compound
CREATE, whose FileId is not known until the CREATE response, is held until then.
"""

from __future__ import annotations

import struct

from analyzer.bounded import BoundedDict
from analyzer.ntlm import NTLMSSP_SIGNATURE, ntlm_identity
from analyzer.smb.events import PipeKey
from analyzer.smb.reader import Reader
from analyzer.smb.smb2_wire import (
    CLOSE,
    CREATE,
    DEFER,
    FILE_ID_PREVIOUS,
    FSCTL_PIPE_TRANSCEIVE,
    HEADER_LEN,
    IOCTL,
    NO_FILE,
    PENDED,
    READ,
    REQUEST_SHAPES,
    RESPONSE_SHAPES,
    SESSION_SETUP,
    SHARE_TYPE_PIPE,
    STATUS_PENDING,
    TOKEN_PEEK,
    TREE_CONNECT,
    WRITE,
    DataCursor,
    FileRef,
    Pending,
    Smb2Header,
    Tree,
    header_problem,
    parse_header,
    utf16,
)
from analyzer.smb.state import (
    NONE,
    PIPE,
    SNIFF,
    SNIFF_BYTES,
    Context,
    canonical_pipe_name,
    is_ipc_path,
    is_well_known,
    looks_like_dcerpc,
)

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U16U16 = struct.Struct("<HH")
_U16U32 = struct.Struct("<HI")
_U32U32 = struct.Struct("<II")


class Smb2Handler:
    """The SMB2 state of one connection: trees, requests awaiting answers, related compounds."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        lim = ctx.limits
        self._trees: BoundedDict[tuple[int, int], Tree] = BoundedDict(lim.max_smb_trees)
        self._pending: BoundedDict[int, Pending] = BoundedDict(lim.max_smb_pending)
        # Bookkeeping for related compounds: CREATE outcomes remembered, CREATEs with data held back.
        self._created: BoundedDict[int, FileRef | None] = BoundedDict(lim.max_smb_created)
        self._held: BoundedDict[int, list[tuple[bool, bytes, int, int, bool]]] = BoundedDict(lim.max_smb_held_creates)
        # Per direction (index: from_client): the header of the unit in progress, the file of the
        # previous command of the compound, what the data step delivers.
        self._hdr: list[Smb2Header | None] = [None, None]
        self._chain_ref: list[FileRef | None] = [None, None]
        self._cur = [DataCursor(), DataCursor()]
        # Per session: the pipe the client last wrote to on this connection. A READ response whose
        # request was lost in a gap carries no FileId; if its data is a DCE/RPC PDU it answers that write.
        self._last_written: BoundedDict[int, PipeKey] = BoundedDict(lim.max_smb_created)

    # -- units ----------------------------------------------------------------------------------

    def begin(self, r: Reader) -> None:
        self._chain_ref[r.from_client] = None
        r.collect(HEADER_LEN, self._header)

    def _next_unit(self, r: Reader) -> None:
        r.collect(HEADER_LEN, self._header)

    def _header(self, r: Reader) -> None:
        b = r.buf
        if len(b) < HEADER_LEN:
            r.violation("smb_truncated", f"SMB2 header cut short at {len(b)} bytes")
            r.done()
            return
        h = parse_header(b)
        if h is None:
            r.violation("smb_bad_header", header_problem(b))
            r.done()
            return
        if h.next_command:
            if h.next_command < HEADER_LEN or h.next_command % 8 or h.next_command >= r.unit_len:
                r.violation("smb_bad_length", f"NextCommand {h.next_command} in a {r.unit_len}-byte compound")
            else:
                r.split(h.next_command, self._next_unit)
        self._hdr[r.from_client] = h
        if h.response:
            if h.is_async and h.status == STATUS_PENDING:
                r.done()  # interim: the answer comes later with the same MessageId
                return
            if not h.succeeded:
                self._failed(r, h)
                r.done()
                return
        shape = (RESPONSE_SHAPES if h.response else REQUEST_SHAPES).get(h.command)
        if shape is None:
            # A command acting on an explicit file resets the compound's "previous file"; a related
            # one (say a QUERY_INFO between a CREATE and a READ) acts on the same file and keeps it.
            if not h.response and not h.related:
                self._chain_ref[r.from_client] = NO_FILE
            r.done()
            return
        r.collect(HEADER_LEN + shape[1], self._body)

    def _body(self, r: Reader) -> None:
        h = self._hdr[r.from_client]
        assert h is not None
        b = r.buf
        size, fixed = (RESPONSE_SHAPES if h.response else REQUEST_SHAPES)[h.command]
        if len(b) < HEADER_LEN + fixed or (fixed and _U16.unpack_from(b, HEADER_LEN)[0] & 0xFFFE != size & 0xFFFE):
            what = "smb_truncated" if len(b) < HEADER_LEN + fixed else "smb_bad_body"
            r.violation(what, f"SMB2 command {h.command:#x} {'response' if h.response else 'request'} body")
            if h.response:
                self._take(h, h.command)
            else:
                self._chain_ref[r.from_client] = NO_FILE
            r.done()
            return
        if h.response:
            _RESPONSE_STEPS[h.command](self, r, h)
        else:
            _REQUEST_STEPS[h.command](self, r, h)

    # -- helpers --------------------------------------------------------------------------------

    def _file_ref(self, r: Reader, h: Smb2Header, file_id: bytes) -> FileRef:
        if h.related and file_id == FILE_ID_PREVIOUS:
            prev = self._chain_ref[r.from_client]
            ref = prev if prev is not None else NO_FILE
        else:
            tree = self._trees.get((h.session_id, h.tree_id)) if h.tree_id is not None else None
            ref = FileRef((2, h.session_id, file_id), tree.is_ipc if tree is not None else None)
        self._chain_ref[r.from_client] = ref
        return ref

    def _kind(self, r: Reader, ref: FileRef) -> tuple[int, PipeKey | None]:
        if ref.create_mid >= 0:
            if ref.create_mid not in self._created:
                return DEFER, None
            resolved = self._created[ref.create_mid]
            if resolved is None:
                return NONE, None
            ref = resolved
        if ref.key is None:
            return NONE, None
        return self._ctx.kind(ref.key, ref.tree_ipc, r.frame, r.ts), ref.key

    def _transceive_kind(self, r: Reader, ref: FileRef) -> tuple[int, PipeKey | None]:
        """`_kind` for FSCTL_PIPE_TRANSCEIVE: the operation proves the file is a pipe."""
        kind, key = self._kind(r, ref)
        if kind == SNIFF:
            assert key is not None
            kind = PIPE if self._ctx.adopt(key, r.frame, r.ts) else NONE
        return kind, key

    def _pend(self, r: Reader, mid: int, p: Pending) -> None:
        if self._pending.put(mid, p) is not None:
            detail = f"more than {self._pending.cap} SMB2 requests unanswered"
            self._ctx.violation(r.frame, "cap_smb_pending", detail)

    def _take(self, h: Smb2Header, command: int) -> Pending | None:
        p = self._pending.get(h.message_id)
        if p is None or p.command != command:
            return None
        del self._pending[h.message_id]
        return p

    def _failed(self, r: Reader, h: Smb2Header) -> None:
        if h.command not in PENDED:
            return
        p = self._take(h, h.command)
        if p is None:
            return
        if h.command == CREATE:
            self._remember_create(r, h.message_id, None)
            self._held.pop(h.message_id, None)
        elif h.command == CLOSE:
            self._close(r, p.ref)

    def _remember_create(self, r: Reader, mid: int, ref: FileRef | None) -> None:
        """A CREATE's outcome, for the related commands compounded after it."""
        if self._created.put(mid, ref) is not None:
            self._ctx.violation(r.frame, "cap_smb_created", f"more than {self._created.cap} CREATE outcomes held")

    def _close(self, r: Reader, ref: FileRef) -> None:
        if ref.create_mid >= 0:
            resolved = self._created.get(ref.create_mid)
            ref = resolved if resolved is not None else NO_FILE
        if ref.key is not None:
            self._ctx.close_file(ref.key, r.frame, r.ts)

    def _want_data(
        self, r: Reader, kind: int, key: PipeKey | None, ref: FileRef, off: int, length: int, proven: bool
    ) -> None:
        """Collect bytes [off, off + length) of the unit for a pipe (or a look at them for a file
        that may be one), then deliver them, hold them or drop them."""
        if kind == NONE or length == 0:
            r.done()
            return
        if off < HEADER_LEN or off + length > r.unit_len:
            r.violation("smb_bad_length", f"data at {off}+{length} outside a {r.unit_len}-byte SMB2 command")
            r.done()
            return
        if length > self._ctx.limits.max_smb_pipe_message_bytes:
            r.violation("cap_smb_pipe_message_bytes", f"{length} bytes of pipe data in one SMB2 message")
            r.done()
            return
        self._cur[r.from_client].set(kind, key, ref.create_mid, off, length, proven)
        if kind == SNIFF:
            r.collect(off + min(length, SNIFF_BYTES), self._sniff_step)
        else:
            r.collect(off + length, self._data_step)

    def _sniff_step(self, r: Reader) -> None:
        cur = self._cur[r.from_client]
        assert cur.key is not None
        if self._ctx.sniff(cur.key, r.buf[cur.off : cur.off + SNIFF_BYTES], r.frame, r.ts):
            cur.kind = PIPE
            r.collect(cur.off + cur.length, self._data_step)
        else:
            r.done()

    def _data_step(self, r: Reader) -> None:
        cur = self._cur[r.from_client]
        h = self._hdr[r.from_client]
        assert h is not None
        b = r.buf
        if len(b) < cur.off + cur.length:
            r.violation("smb_truncated", "SMB2 pipe data cut short")
            r.done()
            return
        data = bytes(b[cur.off : cur.off + cur.length])
        if cur.kind == DEFER:
            self._hold(r, cur.create_mid, (not h.response, data, r.frame, r.ts, cur.proven))
        elif cur.key is not None:
            self._ctx.deliver(cur.key, not h.response, data, r.frame, r.ts)
            if not h.response:
                if self._last_written.put(cur.key[1], cur.key) is not None:
                    detail = f"pipes last written remembered for more than {self._last_written.cap} sessions"
                    self._ctx.violation(r.frame, "cap_smb_created", detail)
        r.done()

    def _hold(self, r: Reader, create_mid: int, item: tuple[bool, bytes, int, int, bool]) -> None:
        held = self._held.get(create_mid)
        if sum(len(x[1]) for x in held or ()) + len(item[1]) > self._ctx.limits.max_smb_pipe_message_bytes:
            r.violation("cap_smb_pipe_message_bytes", "too much data held for a related CREATE")
            return
        if held is None:
            held = []
            if self._held.put(create_mid, held) is not None:
                self._ctx.violation(r.frame, "cap_smb_held_creates", "too many related CREATEs awaiting their answer")
        held.append(item)

    # -- requests -------------------------------------------------------------------------------

    def _session_setup_request(self, r: Reader, h: Smb2Header) -> None:
        off, length = _U16U16.unpack_from(r.buf, HEADER_LEN + 12)
        if not length:
            r.done()
        elif off < HEADER_LEN or off + length > r.unit_len:
            r.violation("smb_bad_length", f"security buffer at {off}+{length} outside the SESSION_SETUP")
            r.done()
        else:
            # Kerberos tickets are large and name nobody: look for NTLMSSP near the start first.
            r.collect(off + min(length, TOKEN_PEEK), self._session_token_start)

    def _session_token_start(self, r: Reader) -> None:
        off, length = _U16U16.unpack_from(r.buf, HEADER_LEN + 12)
        if NTLMSSP_SIGNATURE not in r.buf[off:]:
            r.done()
        elif off + length > self._ctx.limits.max_smb_message_bytes:
            r.violation("cap_smb_message_bytes", f"a {off + length}-byte SESSION_SETUP")
            r.done()
        else:
            r.collect(off + length, self._session_token)

    def _session_token(self, r: Reader) -> None:
        h = self._hdr[r.from_client]
        assert h is not None
        off, length = _U16U16.unpack_from(r.buf, HEADER_LEN + 12)
        if len(r.buf) >= off + length:
            identity = ntlm_identity(bytes(r.buf[off : off + length]))
            if identity is not None:
                self._ctx.identity(2, h.session_id, identity, r.frame)
        r.done()

    def _named_request(self, r: Reader, h: Smb2Header, at: int) -> None:
        """TREE_CONNECT and CREATE: read the UTF-16 name whose offset and length are at `at`."""
        off, length = _U16U16.unpack_from(r.buf, at)
        if off + length > r.unit_len or (length and off < HEADER_LEN):
            r.violation("smb_bad_length", f"name at {off}+{length} outside a {r.unit_len}-byte SMB2 command")
            r.done()
        elif off + length > self._ctx.limits.max_smb_message_bytes:
            r.violation("cap_smb_message_bytes", f"a {off + length}-byte SMB2 command {h.command:#x}")
            r.done()
        else:
            r.collect(off + length, self._named_request_name)

    def _named_request_name(self, r: Reader) -> None:
        h = self._hdr[r.from_client]
        assert h is not None
        at = HEADER_LEN + (4 if h.command == TREE_CONNECT else 44)
        off, length = _U16U16.unpack_from(r.buf, at)
        name = utf16(r.buf[off : off + length]) if length else ""
        self._pend(r, h.message_id, Pending(h.command, h.session_id, h.tree_id, name))
        if h.command == CREATE:
            self._chain_ref[r.from_client] = FileRef(None, None, h.message_id)
        r.done()

    def _tree_connect_request(self, r: Reader, h: Smb2Header) -> None:
        self._named_request(r, h, HEADER_LEN + 4)

    def _create_request(self, r: Reader, h: Smb2Header) -> None:
        tree = self._trees.get((h.session_id, h.tree_id)) if h.tree_id is not None else None
        self._chain_ref[r.from_client] = NO_FILE
        if tree is not None and not tree.is_ipc:
            r.done()  # a file on a disk share: not our business
            return
        self._named_request(r, h, HEADER_LEN + 44)

    def _close_request(self, r: Reader, h: Smb2Header) -> None:
        ref = self._file_ref(r, h, bytes(r.buf[72:88]))
        if ref.create_mid >= 0 or (ref.key is not None and self._ctx.tracked(ref.key)):
            self._pend(r, h.message_id, Pending(CLOSE, h.session_id, h.tree_id, ref=ref))
        r.done()

    def _read_request(self, r: Reader, h: Smb2Header) -> None:
        ref = self._file_ref(r, h, bytes(r.buf[80:96]))
        kind, _key = self._kind(r, ref)
        if kind != NONE:
            self._pend(r, h.message_id, Pending(READ, h.session_id, h.tree_id, ref=ref))
        r.done()

    def _write_request(self, r: Reader, h: Smb2Header) -> None:
        off, length = _U16U32.unpack_from(r.buf, HEADER_LEN + 2)
        ref = self._file_ref(r, h, bytes(r.buf[80:96]))
        kind, key = self._kind(r, ref)
        self._want_data(r, kind, key, ref, off, length, False)

    def _ioctl_request(self, r: Reader, h: Smb2Header) -> None:
        b = r.buf
        ref = self._file_ref(r, h, bytes(b[72:88]))
        if _U32.unpack_from(b, HEADER_LEN + 4)[0] != FSCTL_PIPE_TRANSCEIVE:
            r.done()
            return
        kind, key = self._transceive_kind(r, ref)
        if kind == NONE:
            r.done()
            return
        self._pend(r, h.message_id, Pending(IOCTL, h.session_id, h.tree_id, ref=ref))
        off, length = _U32U32.unpack_from(b, HEADER_LEN + 24)
        self._want_data(r, kind, key, ref, off, length, True)

    # -- responses ------------------------------------------------------------------------------

    def _tree_connect_response(self, r: Reader, h: Smb2Header) -> None:
        p = self._take(h, TREE_CONNECT)
        path = p.name if p is not None else None
        is_ipc = r.buf[HEADER_LEN + 2] == SHARE_TYPE_PIPE or (path is not None and is_ipc_path(path))
        if h.tree_id is not None:
            if self._trees.put((h.session_id, h.tree_id), Tree(is_ipc, path)) is not None:
                self._ctx.violation(r.frame, "cap_smb_trees", f"more than {self._trees.cap} SMB2 trees")
        r.done()

    def _create_response(self, r: Reader, h: Smb2Header) -> None:
        p = self._take(h, CREATE)
        if p is None or p.name is None:
            r.done()
            return
        ctx = self._ctx
        key: PipeKey = (2, p.session_id, bytes(r.buf[128:144]))
        tree = self._trees.get((p.session_id, p.tree_id)) if p.tree_id is not None else None
        name = canonical_pipe_name(p.name)
        resolved: FileRef | None = None
        if not p.name.strip("\\"):
            pass  # the share itself
        elif tree is None:
            if is_well_known(p.name):
                ctx.open_pipe(key, name, None, r.frame, r.ts)
            else:
                ctx.candidate(key, name, None, r.frame, r.ts)
            resolved = FileRef(key, None)
        elif tree.is_ipc:
            ctx.open_pipe(key, name, tree.path, r.frame, r.ts)
            resolved = FileRef(key, True)
        self._remember_create(r, h.message_id, resolved)
        for from_client, data, frame, ts, proven in self._held.pop(h.message_id, ()):
            if resolved is None:
                break
            kind = ctx.kind(key, resolved.tree_ipc, frame, ts)
            if kind == SNIFF:
                adopted = ctx.adopt(key, frame, ts) if proven else ctx.sniff(key, data[:SNIFF_BYTES], frame, ts)
                kind = PIPE if adopted else NONE
            if kind == PIPE:
                ctx.deliver(key, from_client, data, frame, ts)
        r.done()

    def _close_response(self, r: Reader, h: Smb2Header) -> None:
        p = self._take(h, CLOSE)
        if p is not None:
            self._close(r, p.ref)
        r.done()

    def _read_response(self, r: Reader, h: Smb2Header) -> None:
        p = self._take(h, READ)
        if p is None:
            self._orphan_read(r, h)
            return
        kind, key = self._kind(r, p.ref)
        off = r.buf[HEADER_LEN + 2]
        length = _U32.unpack_from(r.buf, HEADER_LEN + 4)[0]
        self._want_data(r, NONE if kind == DEFER else kind, key, p.ref, off, length, False)

    def _orphan_read(self, r: Reader, h: Smb2Header) -> None:
        """A READ response whose request is not in the capture (lost in a gap): its data goes to the
        pipe last written in its session on this connection, if it starts a DCE/RPC PDU."""
        key = self._last_written.get(h.session_id)
        off = r.buf[HEADER_LEN + 2]
        length = _U32.unpack_from(r.buf, HEADER_LEN + 4)[0]
        if (
            key is None
            or not length
            or off < HEADER_LEN
            or off + length > r.unit_len
            or length > self._ctx.limits.max_smb_pipe_message_bytes
        ):
            r.done()
            return
        self._cur[r.from_client].set(PIPE, key, -1, off, length, False)
        r.collect(off + min(length, SNIFF_BYTES), self._orphan_step)

    def _orphan_step(self, r: Reader) -> None:
        cur = self._cur[r.from_client]
        if looks_like_dcerpc(r.buf[cur.off : cur.off + SNIFF_BYTES]):
            r.violation("smb_read_without_request", "READ response matched to the pipe last written: request not seen")
            r.collect(cur.off + cur.length, self._data_step)
        else:
            r.done()

    def _ioctl_response(self, r: Reader, h: Smb2Header) -> None:
        p = self._take(h, IOCTL)
        if p is None:
            r.done()
            return
        kind, key = self._transceive_kind(r, p.ref)
        off, length = _U32U32.unpack_from(r.buf, HEADER_LEN + 32)
        self._want_data(r, NONE if kind == DEFER else kind, key, p.ref, off, length, True)


_REQUEST_STEPS = {
    SESSION_SETUP: Smb2Handler._session_setup_request,
    TREE_CONNECT: Smb2Handler._tree_connect_request,
    CREATE: Smb2Handler._create_request,
    CLOSE: Smb2Handler._close_request,
    READ: Smb2Handler._read_request,
    WRITE: Smb2Handler._write_request,
    IOCTL: Smb2Handler._ioctl_request,
}
_RESPONSE_STEPS = {
    TREE_CONNECT: Smb2Handler._tree_connect_response,
    CREATE: Smb2Handler._create_response,
    CLOSE: Smb2Handler._close_response,
    READ: Smb2Handler._read_response,
    IOCTL: Smb2Handler._ioctl_response,
}
