"""Which SMB files are pipes and how they are keyed: pipe names, captures started late, multichannel, disk
shares whose bulk data is never buffered.
"""

from __future__ import annotations

from scapy.layers.smb2 import (
    SMB2_IOCTL_Request,
    SMB2_Tree_Connect_Request,
    SMB2_Tree_Connect_Response,
)

from analyzer.smb import canonical_pipe_name
from tests.smb_build import (
    BIND,
    BIND_ACK,
    FSCTL_PIPE_TRANSCEIVE,
    PIPE_A,
    PIPE_B,
    REQUEST,
    TID_DISK,
    TID_IPC,
    file_id,
    hdr,
    key2,
    run,
    smb2_open,
    smb2_read,
    smb2_setup,
    smb2_write,
    tcp,
)


def test_smb2_capture_started_late() -> None:
    """No TREE_CONNECT seen: a well-known name is a pipe, an unfamiliar one becomes one when its data
    is DCE/RPC or it is used with FSCTL_PIPE_TRANSCEIVE, a file whose data is not stays ignored, and a
    transceive on a handle whose CREATE was never seen is delivered without a name."""
    ioctl = SMB2_IOCTL_Request(CtlCode=FSCTL_PIPE_TRANSCEIVE, FileId=file_id((7, 7)), Input=REQUEST)
    stream = [
        *smb2_open(3, "lsarpc", PIPE_A, tid=9),
        *smb2_open(4, "RpcProxyPipe", PIPE_B, tid=9),
        *smb2_open(5, "notes.txt", (3, 3), tid=9),
        *smb2_write(6, (3, 3), b"just some text in a text file"),
        *smb2_write(7, PIPE_B, BIND, tid=9),
        *smb2_write(8, (3, 3), BIND, tid=9),
        (True, tcp(hdr(9, tid=9) / ioctl)),
    ]
    rec, _ = run(stream)
    assert [e[1:] for e in rec.of("open")] == [
        (key2(PIPE_A), "\\PIPE\\lsarpc", None),
        (key2(PIPE_B), "\\PIPE\\RpcProxyPipe", None),
    ]
    assert rec.of("data") == [("data", key2(PIPE_B), True, BIND), ("data", key2((7, 7)), True, REQUEST)]


def test_smb2_multichannel_keys_join_connections() -> None:
    """The CREATE on one connection, the WRITE on a second, the READ on a third: same key."""
    rec_a, _ = run(smb2_setup() + smb2_open(3, "srvsvc", PIPE_A))
    rec_b, _ = run(smb2_write(9, PIPE_A, BIND, tid=TID_IPC))
    rec_c, _ = run(smb2_read(31, PIPE_A, BIND_ACK, tid=TID_IPC))
    k = key2(PIPE_A)
    assert rec_a.of("open") == [("open", k, "\\PIPE\\srvsvc", "\\\\srv\\IPC$")]
    assert rec_b.of("data") == [("data", k, True, BIND)]
    assert rec_c.of("data") == [("data", k, False, BIND_ACK)]


def test_smb2_disk_share_file_copy_is_not_buffered() -> None:
    """1 MiB written and read back on a disk share, with a pipe busy on the same connection."""
    chunk = bytes(range(256)) * 256  # 64 KiB, starts like nothing in particular
    stream = [
        *smb2_setup(),
        (True, tcp(hdr(3, tid=0) / SMB2_Tree_Connect_Request(Path="\\\\srv\\data"))),
        (False, tcp(hdr(3, resp=True, tid=TID_DISK) / SMB2_Tree_Connect_Response(ShareType=1))),
        *smb2_open(4, "big.bin", (40, 40), tid=TID_DISK),
        *smb2_open(5, "srvsvc", PIPE_A),
    ]
    mid = 6
    for i in range(16):
        stream += smb2_write(mid, (40, 40), BIND + chunk, tid=TID_DISK)
        stream += smb2_read(mid + 1, (40, 40), chunk, tid=TID_DISK)
        mid += 2
        if i == 8:
            stream += smb2_write(mid, PIPE_A, BIND)
            mid += 1
    rec, conn = run(stream)
    assert rec.of("data") == [("data", key2(PIPE_A), True, BIND)]
    assert conn.bulk_bytes >= 2 * 16 * len(chunk)
    assert conn.peak_buffered < 1024
    # and the same when every message arrives in pieces
    rec2, conn2 = run(stream, cuts=(1, 5, 100, 333, 998))
    assert rec2.events == rec.events and conn2.peak_buffered < 1024


def test_canonical_pipe_names() -> None:
    assert canonical_pipe_name("lsarpc") == "\\PIPE\\lsarpc"
    assert canonical_pipe_name("\\lsarpc") == "\\PIPE\\lsarpc"
    assert canonical_pipe_name("\\PIPE\\lsarpc\x00") == "\\PIPE\\lsarpc"
    assert canonical_pipe_name("\\pipe\\atsvc") == "\\PIPE\\atsvc"
