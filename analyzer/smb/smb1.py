"""SMB1 (CIFS) commands as far as named pipes need them ([MS-CIFS] 2.2.3, 2.2.4, [MS-SMB] 2.2.4).

Parsed: the header (2.2.3.1); SESSION_SETUP_ANDX request security blob or account name
(2.2.4.53.1, [MS-SMB] 2.2.4.6.1); TREE_CONNECT_ANDX request path and response service
(2.2.4.55); NT_CREATE_ANDX request name and response FID and resource type (2.2.4.64);
OPEN_ANDX (2.2.4.41); WRITE_ANDX request data, including the 2-byte length a raw-mode message start
carries (2.2.4.43.1); READ_ANDX request FID and response data (2.2.4.42); the core READ and WRITE
(2.2.4.11, 2.2.4.12) some clients use on pipes; the TRANSACTION and TRANSACTION_SECONDARY
named-pipe subcommands TransactNmPipe, WriteNmPipe, ReadNmPipe and their raw forms, FID in
Setup[1] (2.2.4.33, 2.2.4.34, 2.2.5); CLOSE (2.2.4.5). AndX chains are followed by AndXOffset
(2.2.3.4). Strings are OEM or, with SMB_FLAGS2_UNICODE, UTF-16 aligned to an even offset from
the start of the SMB header (2.2.1.1).

A message is buffered whole only when it is pipe-related or a small control message: a
WRITE_ANDX request or READ_ANDX response on a file that is not a pipe is dropped after its
parameter words. Responses are matched to requests by (MID, command) on the connection.
"""

from __future__ import annotations

import struct

from analyzer.bounded import BoundedDict
from analyzer.ntlm import NtlmIdentity, ntlm_identity
from analyzer.smb.events import PipeKey
from analyzer.smb.reader import Reader
from analyzer.smb.smb1_wire import (
    ANDX_COMMANDS,
    CLOSE,
    HEADER_LEN,
    NO_ANDX_COMMAND,
    NT_CREATE_ANDX,
    OPEN_ANDX,
    PIPE_RESOURCE_TYPES,
    PIPE_SIZED,
    READ,
    READ_ANDX,
    SESSION_SETUP_ANDX,
    TRANS_READS,
    TRANS_TRANSACT_NMPIPE,
    TRANS_WRITES,
    TRANSACTION,
    TRANSACTION_SECONDARY,
    TREE_CONNECT_ANDX,
    WHOLE_COMMANDS,
    WRITE,
    WRITE_ANDX,
    WRITE_RAW_START,
    Pending,
    Smb1Header,
    Tree,
    parse_header,
    read_string,
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
)

_U16 = struct.Struct("<H")


class Smb1Handler:
    """The SMB1 state of one connection: trees and requests awaiting answers."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._trees: BoundedDict[int, Tree] = BoundedDict(ctx.limits.max_smb_trees)
        self._pending: BoundedDict[tuple[int, int], Pending] = BoundedDict(ctx.limits.max_smb_pending)
        # Per direction (index: from_client): header of the message in progress, and the file and
        # data offset a look at its first data bytes is for.
        self._hdr: list[Smb1Header | None] = [None, None]
        self._sniff: list[tuple[PipeKey, int]] = [((1, 0, b""), 0), ((1, 0, b""), 0)]

    # -- the message ----------------------------------------------------------------------------

    def begin(self, r: Reader) -> None:
        r.collect(HEADER_LEN + 1, self._word_count)

    def _word_count(self, r: Reader) -> None:
        b = r.buf
        if len(b) < HEADER_LEN + 1:
            r.violation("smb_truncated", f"SMB1 header cut short at {len(b)} bytes")
            r.done()
            return
        r.collect(HEADER_LEN + 1 + 2 * b[HEADER_LEN] + 2, self._head)

    def _head(self, r: Reader) -> None:
        """Header and the first command's parameter words: decide what to keep of the message."""
        b = r.buf
        h = parse_header(b)
        assert h is not None  # the reader checked the magic
        wc = b[HEADER_LEN]
        if len(b) < HEADER_LEN + 3 + 2 * wc:
            r.violation("smb_truncated", f"SMB1 command {h.command:#x} parameters cut short")
            r.done()
            return
        self._hdr[r.from_client] = h
        ctx = self._ctx
        w = HEADER_LEN + 1
        if h.command == WRITE_ANDX and not h.response and wc >= 12:
            key: PipeKey = (1, h.uid, bytes(b[w + 4 : w + 6]))
            kind = ctx.kind(key, self._tree_ipc(h.tid), r.frame, r.ts)
            off = _U16.unpack_from(b, w + 22)[0]
            if _U16.unpack_from(b, w + 14)[0] & WRITE_RAW_START == WRITE_RAW_START:
                off += 2
            self._decide(r, kind, key, off)
        elif h.command == READ_ANDX and h.response and wc >= 12:
            p = self._pending.get((h.mid, READ_ANDX))
            if p is None or p.key is None:
                r.done()
                return
            kind = ctx.kind(p.key, p.tree_ipc, r.frame, r.ts)
            if kind == NONE:
                del self._pending[(h.mid, READ_ANDX)]
            self._decide(r, kind, p.key, _U16.unpack_from(b, w + 12)[0])
        elif h.command == WRITE and not h.response and wc >= 5:
            key = (1, h.uid, bytes(b[w : w + 2]))
            kind = ctx.kind(key, self._tree_ipc(h.tid), r.frame, r.ts)
            self._decide(r, kind, key, w + 2 * wc + 5)  # after ByteCount, BufferFormat, DataLength
        elif h.command == READ and h.response and wc >= 5:
            p = self._pending.get((h.mid, READ))
            if p is None or p.key is None:
                r.done()
                return
            kind = ctx.kind(p.key, p.tree_ipc, r.frame, r.ts)
            if kind == NONE:
                del self._pending[(h.mid, READ)]
            self._decide(r, kind, p.key, w + 2 * wc + 5)
        elif h.command in WHOLE_COMMANDS:
            self._whole(r)
        else:
            r.done()

    def _decide(self, r: Reader, kind: int, key: PipeKey, off: int) -> None:
        if kind == NONE:
            r.done()
        elif kind == SNIFF:
            self._sniff[r.from_client] = (key, off)
            r.collect(off + SNIFF_BYTES, self._sniffed)
        else:
            self._whole(r)

    def _sniffed(self, r: Reader) -> None:
        key, off = self._sniff[r.from_client]
        if self._ctx.sniff(key, r.buf[off : off + SNIFF_BYTES], r.frame, r.ts):
            self._whole(r)
        else:
            h = self._hdr[r.from_client]
            if h is not None and h.response:
                self._pending.pop((h.mid, h.command), None)
            r.done()

    def _whole(self, r: Reader) -> None:
        h = self._hdr[r.from_client]
        assert h is not None
        lim = self._ctx.limits
        pipe_sized = h.command in PIPE_SIZED
        cap = lim.max_smb_pipe_message_bytes if pipe_sized else lim.max_smb_message_bytes
        if r.unit_len > cap:
            what = "cap_smb_pipe_message_bytes" if pipe_sized else "cap_smb_message_bytes"
            r.violation(what, f"a {r.unit_len}-byte SMB1 command {h.command:#x}")
            r.done()
            return
        r.collect(r.unit_len, self._walk)

    def _walk(self, r: Reader) -> None:
        """Every command of the AndX chain, over the whole message."""
        h = self._hdr[r.from_client]
        assert h is not None
        b = r.buf
        handlers = _RESPONSES if h.response else _REQUESTS
        off = HEADER_LEN
        command = h.command
        while True:
            if off >= len(b):
                r.violation("smb_truncated", f"SMB1 command {command:#x} beyond the end of the message")
                break
            wc = b[off]
            w = off + 1
            at = w + 2 * wc
            if at + 2 > len(b):
                r.violation("smb_truncated", f"SMB1 command {command:#x} parameters cut short")
                break
            data = at + 2
            end = min(data + _U16.unpack_from(b, at)[0], len(b))
            step = handlers.get(command)
            if step is not None:
                step(self, r, h, w, wc, data, end)
            if command not in ANDX_COMMANDS or wc < 2:
                break
            following = b[w]
            following_off = _U16.unpack_from(b, w + 2)[0]
            if following == NO_ANDX_COMMAND:
                break
            if following_off <= off or following_off >= len(b):
                r.violation("smb_bad_andx", f"AndXOffset {following_off} after a command at {off}")
                break
            command, off = following, following_off
        r.done()

    # -- helpers --------------------------------------------------------------------------------

    def _tree_ipc(self, tid: int) -> bool | None:
        tree = self._trees.get(tid)
        return None if tree is None else tree.is_ipc

    def _pend(self, r: Reader, mid: int, p: Pending) -> None:
        if self._pending.put((mid, p.command), p) is not None:
            detail = f"more than {self._pending.cap} SMB1 requests unanswered"
            self._ctx.violation(r.frame, "cap_smb_pending", detail)

    def _deliver(
        self, r: Reader, key: PipeKey, kind: int, from_client: bool, b: bytearray, off: int, length: int
    ) -> None:
        """Pipe data at b[off:off + length] of the message, if it is inside it."""
        if length <= 0 or kind == NONE:
            return
        if off < HEADER_LEN or off + length > len(b):
            r.violation("smb_bad_length", f"data at {off}+{length} outside a {len(b)}-byte SMB1 message")
            return
        if kind == SNIFF and not self._ctx.sniff(key, b[off : off + SNIFF_BYTES], r.frame, r.ts):
            return
        self._ctx.deliver(key, from_client, bytes(b[off : off + length]), r.frame, r.ts)

    def _opened(self, r: Reader, h: Smb1Header, command: int, fid: bytes, resource_type: int | None) -> None:
        p = self._pending.pop((h.mid, command), None)
        if p is None or p.name is None or not h.ok or not p.name.strip("\\"):
            return
        ctx = self._ctx
        key: PipeKey = (1, p.uid, fid)
        tree = self._trees.get(p.tid)
        name = canonical_pipe_name(p.name)
        path = tree.path if tree is not None else None
        if resource_type in PIPE_RESOURCE_TYPES or (tree is not None and tree.is_ipc):
            ctx.open_pipe(key, name, path, r.frame, r.ts)
        elif tree is None and resource_type is None:
            if is_well_known(p.name):
                ctx.open_pipe(key, name, None, r.frame, r.ts)
            else:
                ctx.candidate(key, name, None, r.frame, r.ts)
        else:
            ctx.close_file(key, r.frame, r.ts)  # a file: if a pipe had this FID, it was closed unseen

    # -- requests (r, header, offset of the words, word count, offset of the bytes, their end) --

    def _session_setup_request(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        b = r.buf
        identity: NtlmIdentity | None = None
        if wc == 12:  # extended security: an SPNEGO or raw NTLMSSP blob ([MS-SMB] 2.2.4.6.1)
            blob_len = _U16.unpack_from(b, w + 14)[0]
            identity = ntlm_identity(bytes(b[data : min(data + blob_len, end)]))
        elif wc == 13:  # NT LM 0.12 without extended security: the account name in clear
            p = data + _U16.unpack_from(b, w + 14)[0] + _U16.unpack_from(b, w + 16)[0]
            if h.unicode and p % 2:
                p += 1
            account, p = read_string(b, p, end, h.unicode)
            domain, p = read_string(b, p, end, h.unicode)
            if account:
                identity = NtlmIdentity(account, domain or None, None)
        if identity is None:
            return
        if h.uid:
            self._ctx.identity(1, h.uid, identity, r.frame)
        else:  # the server assigns the Uid in its answer
            self._pend(r, h.mid, Pending(SESSION_SETUP_ANDX, h.uid, h.tid, identity=identity))

    def _tree_connect_request(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        if wc < 4:
            return
        b = r.buf
        p = data + _U16.unpack_from(b, w + 6)[0]
        if p % 2 and (h.unicode or (p + 1 < end and b[p] == 0 and b[p + 1] == 0x5C)):
            p += 1  # the alignment pad; some encoders put it before an OEM path too
        path, _ = read_string(b, p, end, h.unicode)
        self._pend(r, h.mid, Pending(TREE_CONNECT_ANDX, h.uid, h.tid, name=path))

    def _nt_create_request(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        if wc < 24:
            return
        b = r.buf
        p = data + 1 if h.unicode and data % 2 else data
        length = _U16.unpack_from(b, w + 5)[0]
        if 0 < length <= end - p:
            raw = bytes(b[p : p + length])
            name = (raw.decode("utf-16-le", "replace") if h.unicode else raw.decode("latin-1")).rstrip("\x00")
        else:
            name, _ = read_string(b, p, end, h.unicode)
        self._pend(r, h.mid, Pending(NT_CREATE_ANDX, h.uid, h.tid, name=name))

    def _open_request(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        if wc < 15:
            return
        p = data + 1 if h.unicode and data % 2 else data
        name, _ = read_string(r.buf, p, end, h.unicode)
        self._pend(r, h.mid, Pending(OPEN_ANDX, h.uid, h.tid, name=name))

    def _write_request(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        if wc < 12:
            return
        b = r.buf
        key: PipeKey = (1, h.uid, bytes(b[w + 4 : w + 6]))
        kind = self._ctx.kind(key, self._tree_ipc(h.tid), r.frame, r.ts)
        if kind == NONE:
            return
        mode, _rem, high, length, off = struct.unpack_from("<HHHHH", b, w + 14)
        if off + (length | high << 16) <= len(b):
            length |= high << 16  # [MS-SMB] 2.2.4.3.1 DataLengthHigh, when it is not garbage
        if mode & WRITE_RAW_START == WRITE_RAW_START:
            off += 2
            length -= 2
        self._deliver(r, key, kind, True, b, off, length)

    def _read_request(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        if wc < 10:
            return
        self._pend_read(r, h, READ_ANDX, bytes(r.buf[w + 4 : w + 6]))

    def _pend_read(self, r: Reader, h: Smb1Header, command: int, fid: bytes) -> None:
        key: PipeKey = (1, h.uid, fid)
        tree_ipc = self._tree_ipc(h.tid)
        if self._ctx.kind(key, tree_ipc, r.frame, r.ts) != NONE:
            self._pend(r, h.mid, Pending(command, h.uid, h.tid, key, tree_ipc))

    def _core_write_request(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        """SMB_COM_WRITE ([MS-CIFS] 2.2.4.12): FID, then the data as a 0x01-format data buffer."""
        if wc < 5 or end - data < 3 or r.buf[data] != 1:
            return
        b = r.buf
        key: PipeKey = (1, h.uid, bytes(b[w : w + 2]))
        kind = self._ctx.kind(key, self._tree_ipc(h.tid), r.frame, r.ts)
        self._deliver(r, key, kind, True, b, data + 3, _U16.unpack_from(b, data + 1)[0])

    def _core_read_request(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        """SMB_COM_READ ([MS-CIFS] 2.2.4.11): the FID the answer's data belongs to."""
        if wc >= 5:
            self._pend_read(r, h, READ, bytes(r.buf[w : w + 2]))

    def _transaction_request(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        b = r.buf
        if wc < 16 or b[w + 26] < 2 or wc < 14 + b[w + 26]:
            return
        sub = _U16.unpack_from(b, w + 28)[0]
        if sub not in TRANS_WRITES and sub not in TRANS_READS:
            return
        key: PipeKey = (1, h.uid, bytes(b[w + 30 : w + 32]))
        tree_ipc = self._tree_ipc(h.tid)
        kind = self._ctx.kind(key, tree_ipc, r.frame, r.ts)
        if kind == SNIFF and sub == TRANS_TRANSACT_NMPIPE:  # only ever done on a pipe
            kind = PIPE if self._ctx.adopt(key, r.frame, r.ts) else NONE
        if kind == NONE:
            return
        total, count, off = (
            _U16.unpack_from(b, w + 2)[0],
            _U16.unpack_from(b, w + 22)[0],
            _U16.unpack_from(b, w + 24)[0],
        )
        if sub in TRANS_WRITES:
            self._deliver(r, key, kind, True, b, off, count)
        pending = Pending(TRANSACTION, h.uid, h.tid, key, tree_ipc, sub=sub)
        if sub in TRANS_READS:
            self._pend(r, h.mid, pending)
        if count < total:  # the rest comes in TRANSACTION_SECONDARY requests with the same MID
            self._pend(r, h.mid, Pending(TRANSACTION_SECONDARY, h.uid, h.tid, key, tree_ipc, sub=sub))

    def _transaction_secondary_request(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        if wc < 8:
            return
        b = r.buf
        p = self._pending.get((h.mid, TRANSACTION_SECONDARY))
        if p is None or p.key is None:
            return
        total, count, off, disp = (_U16.unpack_from(b, w + i)[0] for i in (2, 10, 12, 14))
        if p.sub in TRANS_WRITES:
            kind = self._ctx.kind(p.key, p.tree_ipc, r.frame, r.ts)
            self._deliver(r, p.key, kind, True, b, off, count)
        if disp + count >= total:
            del self._pending[(h.mid, TRANSACTION_SECONDARY)]

    def _close_request(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        if wc < 3:
            return
        key: PipeKey = (1, h.uid, bytes(r.buf[w : w + 2]))
        if self._ctx.tracked(key):
            self._pend(r, h.mid, Pending(CLOSE, h.uid, h.tid, key))

    # -- responses ------------------------------------------------------------------------------

    def _session_setup_response(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        p = self._pending.pop((h.mid, SESSION_SETUP_ANDX), None)
        if p is not None and p.identity is not None and h.ok and h.uid:
            self._ctx.identity(1, h.uid, p.identity, r.frame)

    def _tree_connect_response(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        p = self._pending.pop((h.mid, TREE_CONNECT_ANDX), None)
        if not h.ok or wc < 2:
            return
        service, _ = read_string(r.buf, data, end, False)  # always OEM ([MS-CIFS] 2.2.4.55.2)
        path = p.name if p is not None else None
        tree = Tree(service.upper().startswith("IPC") or (path is not None and is_ipc_path(path)), path)
        if self._trees.put(h.tid, tree) is not None:
            self._ctx.violation(r.frame, "cap_smb_trees", f"more than {self._trees.cap} SMB1 trees")

    def _nt_create_response(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        if wc < 4:
            self._pending.pop((h.mid, NT_CREATE_ANDX), None)
            return
        b = r.buf
        resource_type = _U16.unpack_from(b, w + 63)[0] if wc >= 33 else None
        self._opened(r, h, NT_CREATE_ANDX, bytes(b[w + 5 : w + 7]), resource_type)

    def _open_response(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        if wc < 3:
            self._pending.pop((h.mid, OPEN_ANDX), None)
            return
        b = r.buf
        resource_type = _U16.unpack_from(b, w + 18)[0] if wc >= 10 else None
        self._opened(r, h, OPEN_ANDX, bytes(b[w + 4 : w + 6]), resource_type)

    def _read_response(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        p = self._pending.pop((h.mid, READ_ANDX), None)
        if p is None or p.key is None or not h.carries_data or wc < 12:
            return
        b = r.buf
        length, off, high = struct.unpack_from("<HHH", b, w + 10)
        if off + (length | high << 16) <= len(b):
            length |= high << 16
        kind = self._ctx.kind(p.key, p.tree_ipc, r.frame, r.ts)
        self._deliver(r, p.key, kind, False, b, off, length)

    def _core_read_response(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        p = self._pending.pop((h.mid, READ), None)
        if p is None or p.key is None or not h.carries_data or wc < 5 or end - data < 3 or r.buf[data] != 1:
            return
        b = r.buf
        kind = self._ctx.kind(p.key, p.tree_ipc, r.frame, r.ts)
        self._deliver(r, p.key, kind, False, b, data + 3, _U16.unpack_from(b, data + 1)[0])

    def _transaction_response(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        k = (h.mid, TRANSACTION)
        p = self._pending.get(k)
        if p is None or p.key is None:
            return
        if not h.carries_data:
            del self._pending[k]
            return
        if wc < 10:
            return  # the interim answer to a transaction whose secondaries are still to come
        b = r.buf
        total, count, off, disp = (_U16.unpack_from(b, w + i)[0] for i in (2, 12, 14, 16))
        kind = self._ctx.kind(p.key, p.tree_ipc, r.frame, r.ts)
        self._deliver(r, p.key, kind, False, b, off, count)
        if disp + count >= total:
            del self._pending[k]

    def _close_response(self, r: Reader, h: Smb1Header, w: int, wc: int, data: int, end: int) -> None:
        p = self._pending.pop((h.mid, CLOSE), None)
        if p is not None and p.key is not None:
            self._ctx.close_file(p.key, r.frame, r.ts)


_REQUESTS = {
    SESSION_SETUP_ANDX: Smb1Handler._session_setup_request,
    TREE_CONNECT_ANDX: Smb1Handler._tree_connect_request,
    NT_CREATE_ANDX: Smb1Handler._nt_create_request,
    OPEN_ANDX: Smb1Handler._open_request,
    WRITE_ANDX: Smb1Handler._write_request,
    WRITE: Smb1Handler._core_write_request,
    READ: Smb1Handler._core_read_request,
    READ_ANDX: Smb1Handler._read_request,
    TRANSACTION: Smb1Handler._transaction_request,
    TRANSACTION_SECONDARY: Smb1Handler._transaction_secondary_request,
    CLOSE: Smb1Handler._close_request,
}
_RESPONSES = {
    SESSION_SETUP_ANDX: Smb1Handler._session_setup_response,
    TREE_CONNECT_ANDX: Smb1Handler._tree_connect_response,
    NT_CREATE_ANDX: Smb1Handler._nt_create_response,
    OPEN_ANDX: Smb1Handler._open_response,
    READ_ANDX: Smb1Handler._read_response,
    READ: Smb1Handler._core_read_response,
    TRANSACTION: Smb1Handler._transaction_response,
    CLOSE: Smb1Handler._close_response,
}
