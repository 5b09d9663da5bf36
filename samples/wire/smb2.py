"""SMB2 ([MS-SMB2] 2.2): the packet header, a conversation on one TCP connection (negotiate, NTLMSSP session,
tree connect, create, close, compounds) and DCE/RPC over its named pipes (ncacn_np, [MS-RPCE] 2.1.1.2).
"""

from __future__ import annotations

import random
import struct
import uuid
from typing import Any

from .assoc import Channel
from .capture import Capture
from .ids import FILETIME_T0, STATUS_MORE_PROCESSING_REQUIRED, STATUS_PENDING
from .netbios import nbss
from .ntlm import ntlm_authenticate, ntlm_challenge, ntlm_negotiate, spnego_hint, spnego_init, spnego_resp
from .smb import record_session_auth
from .tcp import TcpFlow

SMB2_NEGOTIATE, SMB2_SESSION_SETUP, SMB2_TREE_CONNECT, SMB2_CREATE, SMB2_CLOSE = 0, 1, 3, 5, 6
SMB2_READ, SMB2_WRITE, SMB2_IOCTL = 8, 9, 11
SMB2_FLAGS_SERVER_TO_REDIR, SMB2_FLAGS_ASYNC, SMB2_FLAGS_RELATED = 0x1, 0x2, 0x4
FSCTL_PIPE_TRANSCEIVE = 0x0011C017
SMB2_CMD_NAME = {
    0: "NEGOTIATE",
    1: "SESSION_SETUP",
    3: "TREE_CONNECT",
    5: "CREATE",
    6: "CLOSE",
    8: "READ",
    9: "WRITE",
    11: "IOCTL",
}


def smb2_header(
    cmd: int,
    mid: int,
    *,
    resp: bool = False,
    status: int = 0,
    session: int = 0,
    tree: int = 0,
    flags: int = 0,
    next_cmd: int = 0,
    async_id: int | None = None,
    credits: int = 1,
) -> bytes:
    """SMB2 packet header ([MS-SMB2] 2.2.1.1 async / 2.2.1.2 sync): ProtocolId, StructureSize 64,
    CreditCharge, Status, Command, CreditRequest/Response, Flags, NextCommand, MessageId,
    (AsyncId | Reserved + TreeId), SessionId, Signature."""
    if resp:
        flags |= SMB2_FLAGS_SERVER_TO_REDIR
    h = b"\xfeSMB" + struct.pack("<HHIHHIIQ", 64, 1, status, cmd, credits, flags, next_cmd, mid)
    if async_id is not None:
        h = h[:16] + struct.pack("<I", flags | SMB2_FLAGS_ASYNC) + h[20:]
        h += struct.pack("<Q", async_id)
    else:
        h += struct.pack("<II", 0x0000FEFF, tree)
    return h + struct.pack("<Q", session) + b"\0" * 16


def smb2_file_id(persistent: int, volatile: int) -> bytes:
    return struct.pack("<QQ", persistent, volatile)


class Smb2Conn:
    """An SMB2 conversation on one TCP connection: message ids, session id, tree id, one NBSS-framed
    message per send (several SMB2 messages chained with NextCommand when compounded)."""

    def __init__(self, cap: Capture, flow: TcpFlow) -> None:
        self.cap, self.flow = cap, flow
        self.mid = 0
        self.session = 0
        self.tree = 0
        self.user: tuple[str, str] | None = None

    def request(self, cmd: int, body: bytes, desc: str = "", **kw: Any) -> tuple[int, int]:
        mid = self.mid
        self.mid += 1
        kw.setdefault("session", self.session)
        kw.setdefault("tree", self.tree)
        fr = self.flow.send("c", nbss(smb2_header(cmd, mid, **kw) + body), f"SMB2 {SMB2_CMD_NAME[cmd]} request {desc}")
        return fr, mid

    def response(self, cmd: int, mid: int, body: bytes, desc: str = "", **kw: Any) -> int:
        kw.setdefault("session", self.session)
        kw.setdefault("tree", self.tree)
        return self.flow.send(
            "s", nbss(smb2_header(cmd, mid, resp=True, **kw) + body), f"SMB2 {SMB2_CMD_NAME[cmd]} response {desc}"
        )

    def compound(self, side: str, parts: list[bytes], desc: str) -> int:
        """Several SMB2 messages in one transport message, each padded to 8 bytes and linked by
        NextCommand."""
        out = b""
        for i, p in enumerate(parts):
            if i < len(parts) - 1:
                p += b"\0" * ((-len(p)) % 8)
                p = p[:20] + struct.pack("<I", len(p)) + p[24:]
            out += p
        return self.flow.send(side, nbss(out), desc)

    # -- session establishment ---------------------------------------------------------------------

    def negotiate(self, rng: random.Random, dialect: int = 0x0302) -> None:
        """NEGOTIATE request ([MS-SMB2] 2.2.3) and response (2.2.4) with a SPNEGO hint."""
        dialects = [0x0202, 0x0210, 0x0300, 0x0302]
        req = struct.pack("<HHHHI", 36, len(dialects), 1, 0, 0x7F) + rng.randbytes(16) + b"\0" * 8
        req += b"".join(struct.pack("<H", d) for d in dialects)
        _, mid = self.request(SMB2_NEGOTIATE, req)
        self.negotiate_response(rng, mid, dialect, 0x2F, 8388608, f"dialect 0x{dialect:04x}")

    def negotiate_response(
        self, rng: random.Random, mid: int, dialect: int, capabilities: int, max_size: int, desc: str
    ) -> int:
        """NEGOTIATE response ([MS-SMB2] 2.2.4): SecurityMode signing enabled, a random ServerGuid, the same
        MaxTransactSize/MaxReadSize/MaxWriteSize, SystemTime = the capture's start, the SPNEGO hint."""
        blob = spnego_hint()
        resp = (
            struct.pack("<HHHH", 65, 1, dialect, 0)
            + rng.randbytes(16)
            + struct.pack("<IIIIQQHHI", capabilities, max_size, max_size, max_size, FILETIME_T0, 0, 128, len(blob), 0)
            + blob
        )
        return self.response(SMB2_NEGOTIATE, mid, resp, desc)

    def session_setup(self, rng: random.Random, user: str, domain: str, workstation: str) -> int:
        """Two SESSION_SETUP round trips ([MS-SMB2] 2.2.5/2.2.6) carrying SPNEGO-wrapped NTLMSSP; returns the
        frame of the request with the AUTHENTICATE message."""

        def ss_req(blob: bytes) -> bytes:
            return struct.pack("<HBBIIHHQ", 25, 0, 1, 1, 0, 88, len(blob), 0) + blob

        def ss_resp(blob: bytes) -> bytes:
            return struct.pack("<HHHH", 9, 0, 72, len(blob)) + blob

        _, mid = self.request(SMB2_SESSION_SETUP, ss_req(spnego_init(ntlm_negotiate())), "NTLMSSP_NEGOTIATE")
        self.session = 0x0000040000000015
        self.response(
            SMB2_SESSION_SETUP,
            mid,
            ss_resp(spnego_resp(ntlm_challenge(rng), 1)),
            "NTLMSSP_CHALLENGE",
            status=STATUS_MORE_PROCESSING_REQUIRED,
        )
        auth = ntlm_authenticate(rng, user, domain, workstation)
        fr, mid = self.request(
            SMB2_SESSION_SETUP, ss_req(spnego_resp(auth, None, mech=False)), f"NTLMSSP_AUTH {domain}\\{user}"
        )
        self.response(SMB2_SESSION_SETUP, mid, ss_resp(spnego_resp(None, 0, mech=False)))
        self.user = (user, domain)
        record_session_auth(self.flow, fr, "smb2", "SMB2 SESSION_SETUP (SPNEGO)", user, domain, workstation)
        return fr

    def tree_connect(self, path: str, tree_id: int = 1) -> None:
        """TREE_CONNECT ([MS-SMB2] 2.2.9/2.2.10) to a pipe share (ShareType 0x02)."""
        p = path.encode("utf-16-le")
        _, mid = self.request(SMB2_TREE_CONNECT, struct.pack("<HHHH", 9, 0, 72, len(p)) + p, path)
        self.tree = tree_id
        self.response(SMB2_TREE_CONNECT, mid, struct.pack("<HBBIII", 16, 2, 0, 0x30, 0, 0x001F01FF))

    def create(self, name: str, fid: bytes) -> int:
        """CREATE ([MS-SMB2] 2.2.13/2.2.14) of a named pipe; returns the request frame."""
        n = name.encode("utf-16-le")
        req = struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x0012019F, 0, 3, 1, 0x40, 120, len(n), 0, 0) + n
        fr, mid = self.request(SMB2_CREATE, req, name)
        resp = struct.pack("<HBBIQQQQQQII", 89, 0, 0, 1, 0, 0, 0, 0, 4096, 0, 0x80, 0) + fid + struct.pack("<II", 0, 0)
        self.response(SMB2_CREATE, mid, resp, name)
        return fr

    def close(self, fid: bytes) -> None:
        """CLOSE ([MS-SMB2] 2.2.15/2.2.16)."""
        _, mid = self.request(SMB2_CLOSE, struct.pack("<HHI", 24, 0, 0) + fid)
        self.response(SMB2_CLOSE, mid, struct.pack("<HHI", 60, 0, 0) + b"\0" * 48 + struct.pack("<I", 0))

    # -- pipe i/o bodies ---------------------------------------------------------------------------

    @staticmethod
    def write_req(fid: bytes, data: bytes) -> bytes:
        """WRITE request ([MS-SMB2] 2.2.21): data at offset 0x70 from the header."""
        return struct.pack("<HHIQ", 49, 112, len(data), 0) + fid + struct.pack("<IIHHI", 0, 0, 0, 0, 0) + data

    @staticmethod
    def write_resp(n: int) -> bytes:
        return struct.pack("<HHIIHH", 17, 0, n, 0, 0, 0)

    @staticmethod
    def read_req(fid: bytes, length: int = 4280) -> bytes:
        """READ request ([MS-SMB2] 2.2.19)."""
        return struct.pack("<HBBIQ", 49, 0x50, 0, length, 0) + fid + struct.pack("<IIIHH", 0, 0, 0, 0, 0) + b"\0"

    @staticmethod
    def read_resp(data: bytes) -> bytes:
        """READ response ([MS-SMB2] 2.2.20): data at offset 0x50."""
        return struct.pack("<HBBIII", 17, 80, 0, len(data), 0, 0) + data

    @staticmethod
    def ioctl_req(fid: bytes, data: bytes) -> bytes:
        """IOCTL request ([MS-SMB2] 2.2.31) FSCTL_PIPE_TRANSCEIVE: input at offset 0x78."""
        return (
            struct.pack("<HHI", 57, 0, FSCTL_PIPE_TRANSCEIVE)
            + fid
            + struct.pack("<IIIIIIII", 120, len(data), 0, 120 + len(data), 0, 4280, 1, 0)
            + data
        )

    @staticmethod
    def ioctl_resp(fid: bytes, data: bytes) -> bytes:
        """IOCTL response ([MS-SMB2] 2.2.32): output at offset 0x70."""
        return (
            struct.pack("<HHI", 49, 0, FSCTL_PIPE_TRANSCEIVE)
            + fid
            + struct.pack("<IIIIII", 112, 0, 112, len(data), 0, 0)
            + data
        )


class Smb2Pipe(Channel):
    """DCE/RPC over an SMB2 named pipe (ncacn_np, [MS-RPCE] 2.1.1.2): PDUs go out in WRITE and come back in
    READ (mode "rw"), or both ways in one IOCTL FSCTL_PIPE_TRANSCEIVE (mode "ioctl")."""

    transport = "ncacn_np"

    def __init__(self, conn: Smb2Conn, fid: bytes, name: str, mode: str = "rw") -> None:
        self.conn, self.fid, self.name, self.mode = conn, fid, name, mode
        f = conn.flow
        self.client, self.server, self.cport, self.sport = f.client, f.server, f.cport, f.sport
        self.pipe = name.lower().split("\\")[-1]
        self.pending_mid = 0
        self.pending_async = False

    def endpoint(self) -> dict[str, Any]:
        d = super().endpoint()
        d["pipe_wire_name"] = self.name
        d["smb_version"] = 2
        d["smb_file_id"] = str(uuid.UUID(bytes_le=self.fid))  # persistent + volatile, as Wireshark shows it
        if self.conn.user:
            d["smb_user"], d["smb_domain"] = self.conn.user
        return d

    def c2s(self, pdu: bytes, desc: str) -> int:
        c = self.conn
        if self.mode == "ioctl":
            fr, self.pending_mid = c.request(SMB2_IOCTL, c.ioctl_req(self.fid, pdu), f"FSCTL_PIPE_TRANSCEIVE {desc}")
            return fr
        fr, mid = c.request(SMB2_WRITE, c.write_req(self.fid, pdu), desc)
        c.response(SMB2_WRITE, mid, c.write_resp(len(pdu)))
        return fr

    def s2c(self, pdu: bytes, desc: str) -> int:
        c = self.conn
        if self.mode == "ioctl":
            return c.response(
                SMB2_IOCTL, self.pending_mid, c.ioctl_resp(self.fid, pdu), f"FSCTL_PIPE_TRANSCEIVE {desc}"
            )
        _, mid = c.request(SMB2_READ, c.read_req(self.fid))
        if self.pending_async:
            self.pending_async = False
            aid = 0x0000000000000051
            c.response(
                SMB2_READ,
                mid,
                struct.pack("<HBBIB", 9, 0, 0, 0, 0),
                "interim STATUS_PENDING",
                status=STATUS_PENDING,
                async_id=aid,
                credits=0,
            )
            self.conn.cap.wait(15)
            return c.response(SMB2_READ, mid, c.read_resp(pdu), desc + " (async final)", async_id=aid)
        return c.response(SMB2_READ, mid, c.read_resp(pdu), desc)
