"""SMB1 ([MS-CIFS] 2.2, [MS-SMB] 2.2): the header, a conversation on one TCP connection and DCE/RPC over its
named pipes (TRANSACTION TransactNmPipe, WRITE_ANDX / READ_ANDX).
"""

from __future__ import annotations

import random
import struct
from typing import Any

from .assoc import Channel
from .capture import Capture
from .ids import FILETIME_T0, STATUS_MORE_PROCESSING_REQUIRED
from .netbios import nbss
from .ntlm import ntlm_authenticate, ntlm_challenge, ntlm_negotiate, spnego_hint, spnego_init, spnego_resp
from .smb import record_session_auth
from .tcp import TcpFlow

SMB_COM_CLOSE, SMB_COM_TRANSACTION, SMB_COM_READ_ANDX, SMB_COM_WRITE_ANDX = 0x04, 0x25, 0x2E, 0x2F
SMB_COM_NEGOTIATE, SMB_COM_SESSION_SETUP_ANDX, SMB_COM_TREE_CONNECT_ANDX, SMB_COM_NT_CREATE_ANDX = (
    0x72,
    0x73,
    0x75,
    0xA2,
)
TRANS_TRANSACT_NMPIPE = 0x0026


def smb1_header(
    cmd: int, *, resp: bool = False, status: int = 0, tid: int = 0, uid: int = 0, mid: int = 0, pid: int = 0xFEFF
) -> bytes:
    """SMB1 header ([MS-CIFS] 2.2.3.1): Protocol, Command, Status, Flags, Flags2 (unicode, NT status,
    extended security, long names), PIDHigh, SecurityFeatures, Reserved, TID, PIDLow, UID, MID."""
    return b"\xffSMB" + struct.pack(
        "<BIBHH8sHHHHH", cmd, status, 0x98 if resp else 0x18, 0xC803, 0, b"\0" * 8, 0, tid, pid, uid, mid
    )


def smb1_block(words: bytes, data: bytes) -> bytes:
    """Parameter block (WordCount + words) and data block (ByteCount + bytes)."""
    assert len(words) % 2 == 0, "WordCount counts 16-bit words"
    return bytes([len(words) // 2]) + words + struct.pack("<H", len(data)) + data


def uni(text: str) -> bytes:
    return (text + "\0").encode("utf-16-le")


def pad_to(offset: int, n: int) -> bytes:
    return b"\0" * ((-offset) % n)


class Smb1Conn:
    """An SMB1 conversation on one TCP connection (direct TCP framing on 445)."""

    def __init__(self, cap: Capture, flow: TcpFlow) -> None:
        self.cap, self.flow = cap, flow
        self.mid, self.uid, self.tid = 1, 0, 0
        self.user: tuple[str, str] | None = None

    def send(self, side: str, msg: bytes, desc: str) -> int:
        return self.flow.send(side, nbss(msg), desc)

    def req(self, cmd: int, body: bytes, desc: str) -> tuple[int, int]:
        mid = self.mid
        self.mid += 1
        return self.send("c", smb1_header(cmd, tid=self.tid, uid=self.uid, mid=mid) + body, desc), mid

    def resp(self, cmd: int, mid: int, body: bytes, desc: str, status: int = 0) -> int:
        return self.send(
            "s", smb1_header(cmd, resp=True, status=status, tid=self.tid, uid=self.uid, mid=mid) + body, desc
        )

    def negotiate(self, rng: random.Random) -> None:
        """NEGOTIATE ([MS-CIFS] 2.2.4.52) for NT LM 0.12 with extended security ([MS-SMB] 2.2.4.5.2.1)."""
        dialects = [
            "PC NETWORK PROGRAM 1.0",
            "LANMAN1.0",
            "Windows for Workgroups 3.1a",
            "LM1.2X002",
            "LANMAN2.1",
            "NT LM 0.12",
        ]
        _, mid = self.req(
            SMB_COM_NEGOTIATE,
            smb1_block(b"", b"".join(b"\x02" + d.encode() + b"\0" for d in dialects)),
            "SMB NEGOTIATE request",
        )
        words = struct.pack("<HBHHIIIIQhB", 5, 3, 50, 1, 16644, 65536, 0, 0x8000F3FD, FILETIME_T0, 0, 0)
        self.resp(
            SMB_COM_NEGOTIATE,
            mid,
            smb1_block(words, rng.randbytes(16) + spnego_hint()),
            "SMB NEGOTIATE response NT LM 0.12",
        )

    def session_setup(self, rng: random.Random, user: str, domain: str, workstation: str) -> int:
        """Two SESSION_SETUP_ANDX round trips with SPNEGO/NTLMSSP security blobs ([MS-SMB] 2.2.4.6)."""

        def ss_req(blob: bytes) -> bytes:
            words = struct.pack("<BBHHHHIHII", 0xFF, 0, 0, 16644, 50, 0, 0, len(blob), 0, 0x8000E05C)
            off = 32 + 1 + len(words) + 2 + len(blob)
            return smb1_block(words, blob + pad_to(off, 2) + uni("Windows 7 Professional 7601") + uni("Windows 7"))

        def ss_resp(blob: bytes) -> bytes:
            words = struct.pack("<BBHHH", 0xFF, 0, 0, 0, len(blob))
            off = 32 + 1 + len(words) + 2 + len(blob)
            return smb1_block(
                words,
                blob
                + pad_to(off, 2)
                + uni("Windows Server 2016 Standard 14393")
                + uni("Windows Server 2016 Standard 6.3"),
            )

        _, mid = self.req(
            SMB_COM_SESSION_SETUP_ANDX,
            ss_req(spnego_init(ntlm_negotiate())),
            "SMB SESSION_SETUP_ANDX request NTLMSSP_NEGOTIATE",
        )
        self.uid = 0x0801
        self.resp(
            SMB_COM_SESSION_SETUP_ANDX,
            mid,
            ss_resp(spnego_resp(ntlm_challenge(rng), 1)),
            "SMB SESSION_SETUP_ANDX response NTLMSSP_CHALLENGE",
            status=STATUS_MORE_PROCESSING_REQUIRED,
        )
        fr, mid = self.req(
            SMB_COM_SESSION_SETUP_ANDX,
            ss_req(spnego_resp(ntlm_authenticate(rng, user, domain, workstation), None, mech=False)),
            f"SMB SESSION_SETUP_ANDX request NTLMSSP_AUTH {domain}\\{user}",
        )
        self.resp(
            SMB_COM_SESSION_SETUP_ANDX,
            mid,
            ss_resp(spnego_resp(None, 0, mech=False)),
            "SMB SESSION_SETUP_ANDX response",
        )
        self.user = (user, domain)
        record_session_auth(self.flow, fr, "smb", "SMB1 SESSION_SETUP_ANDX (SPNEGO)", user, domain, workstation)
        return fr

    def tree_connect(self, path: str) -> None:
        """TREE_CONNECT_ANDX ([MS-CIFS] 2.2.4.55) to IPC$ (service 'IPC')."""
        words = struct.pack("<BBHHH", 0xFF, 0, 0, 0x0008, 1)
        _, mid = self.req(
            SMB_COM_TREE_CONNECT_ANDX,
            smb1_block(words, b"\0" + uni(path) + b"?????\0"),
            f"SMB TREE_CONNECT_ANDX request {path}",
        )
        self.tid = 0x0800
        rw = struct.pack("<BBHH", 0xFF, 0, 0, 0x0001)
        off = 32 + 1 + len(rw) + 2 + 4
        self.resp(
            SMB_COM_TREE_CONNECT_ANDX,
            mid,
            smb1_block(rw, b"IPC\0" + pad_to(off, 2) + uni("")),
            "SMB TREE_CONNECT_ANDX response",
        )

    def nt_create(self, name: str, fid: int) -> None:
        """NT_CREATE_ANDX ([MS-CIFS] 2.2.4.64) of a pipe; the answer says ResourceType 2
        (message-mode pipe)."""
        n = name.encode("utf-16-le")
        words = struct.pack("<BBHBHIIIQIIIIIB", 0xFF, 0, 0, 0, len(n), 0x16, 0, 0x0002019F, 0, 0, 3, 1, 0, 2, 0)
        off = 32 + 1 + len(words) + 2
        _, mid = self.req(
            SMB_COM_NT_CREATE_ANDX,
            smb1_block(words, pad_to(off, 2) + n + b"\0\0"),
            f"SMB NT_CREATE_ANDX request {name}",
        )
        rw = struct.pack("<BBHBHIQQQQIQQHHB", 0xFF, 0, 0, 0, fid, 1, 0, 0, 0, 0, 0x80, 4096, 0, 2, 0x05FF, 0)
        self.resp(SMB_COM_NT_CREATE_ANDX, mid, smb1_block(rw, b""), f"SMB NT_CREATE_ANDX response fid=0x{fid:04x}")

    def close(self, fid: int) -> None:
        _, mid = self.req(SMB_COM_CLOSE, smb1_block(struct.pack("<HI", fid, 0xFFFFFFFF), b""), "SMB CLOSE request")
        self.resp(SMB_COM_CLOSE, mid, smb1_block(b"", b""), "SMB CLOSE response")


class Smb1Pipe(Channel):
    """DCE/RPC over an SMB1 named pipe: TRANSACTION TransactNmPipe (mode "trans", [MS-CIFS] 2.2.5.5), or
    WRITE_ANDX with a chained READ_ANDX (mode "andx")."""

    transport = "ncacn_np"

    def __init__(self, conn: Smb1Conn, fid: int, name: str, mode: str = "trans") -> None:
        self.conn, self.fid, self.name, self.mode = conn, fid, name, mode
        f = conn.flow
        self.client, self.server, self.cport, self.sport = f.client, f.server, f.cport, f.sport
        self.pipe = name.lower().split("\\")[-1]
        self.pending_mid = 0

    def endpoint(self) -> dict[str, Any]:
        d = super().endpoint()
        d.update(pipe_wire_name=self.name, smb_version=1, smb_file_id=f"0x{self.fid:04x}")
        if self.conn.user:
            d["smb_user"], d["smb_domain"] = self.conn.user
        return d

    def c2s(self, pdu: bytes, desc: str) -> int:
        c = self.conn
        if self.mode == "trans":
            name = uni("\\PIPE\\")
            words_len = 2 * 16
            start = 32 + 1 + words_len + 2
            p1 = pad_to(start, 2)
            data_off = start + len(p1) + len(name)
            p2 = pad_to(data_off, 4)
            data_off += len(p2)
            words = struct.pack(
                "<HHHHBBHIHHHHHBBHH",
                0,
                len(pdu),
                0,
                4280,
                0,
                0,
                0,
                0,
                0,
                0,
                data_off,
                len(pdu),
                data_off,
                2,
                0,
                TRANS_TRANSACT_NMPIPE,
                self.fid,
            )
            fr, self.pending_mid = c.req(
                SMB_COM_TRANSACTION,
                smb1_block(words, p1 + name + p2 + pdu),
                f"SMB TRANSACTION TransactNmPipe request ({desc})",
            )
            return fr
        # WRITE_ANDX with a READ_ANDX chained behind it: the answer comes in the chained READ_ANDX response
        wl = 28
        data_off = 32 + 1 + wl + 2 + 1
        read_off = data_off + len(pdu)
        words = struct.pack(
            "<BBHHIIHHHHHI", SMB_COM_READ_ANDX, 0, read_off, self.fid, 0, 0, 0x0008, len(pdu), 0, len(pdu), data_off, 0
        )
        read = smb1_block(struct.pack("<BBHHIHHIHI", 0xFF, 0, 0, self.fid, 0, 4280, 4280, 0xFFFFFFFF, 4280, 0), b"")
        fr, self.pending_mid = c.req(
            SMB_COM_WRITE_ANDX, smb1_block(words, b"\0" + pdu) + read, f"SMB WRITE_ANDX+READ_ANDX request ({desc})"
        )
        self.pending_len = len(pdu)
        return fr

    def s2c(self, pdu: bytes, desc: str) -> int:
        c = self.conn
        if self.mode == "trans":
            start = 32 + 1 + 20 + 2
            p = pad_to(start, 4)
            off = start + len(p)
            words = struct.pack("<HHHHHHHHHBB", 0, len(pdu), 0, 0, off, 0, len(pdu), off, 0, 0, 0)
            return c.resp(
                SMB_COM_TRANSACTION,
                self.pending_mid,
                smb1_block(words, p + pdu),
                f"SMB TRANSACTION TransactNmPipe response ({desc})",
            )
        read_off = 32 + 1 + 12 + 2
        write = smb1_block(struct.pack("<BBHHHI", SMB_COM_READ_ANDX, 0, read_off, self.pending_len, 0xFFFF, 0), b"")
        data_off = read_off + 1 + 24 + 2
        read = smb1_block(struct.pack("<BBHHHHHHH8s", 0xFF, 0, 0, 0, 0, 0, len(pdu), data_off, 0, b"\0" * 8), pdu)
        return c.resp(SMB_COM_WRITE_ANDX, self.pending_mid, write + read, f"SMB WRITE_ANDX+READ_ANDX response ({desc})")
