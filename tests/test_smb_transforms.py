"""SMB2 transform headers ([MS-SMB2] 2.2.41, 2.2.42): encrypted sessions are reported, compressed messages are
a violation.
"""

from __future__ import annotations

from scapy.layers.smb2 import (
    DirectTCP,
    SMB2_Compression_Transform_Header,
    SMB2_Transform_Header,
)
from scapy.packet import Raw

from tests.smb_build import SID, run, smb2_setup


def test_encrypted_transform_reported_once_per_session() -> None:
    def sealed(sid: int) -> bytes:
        return bytes(DirectTCP() / SMB2_Transform_Header(SessionId=sid, OriginalMessageSize=100) / Raw(bytes(100)))

    rec, conn = run([*smb2_setup(), (True, sealed(SID)), (False, sealed(SID)), (True, sealed(SID + 1))])
    assert rec.of("encrypted") == [("encrypted", SID), ("encrypted", SID + 1)]
    assert conn.encrypted_messages == 3 and not rec.of("violation")


def test_compression_transform_is_a_violation() -> None:
    packed = bytes(DirectTCP() / SMB2_Compression_Transform_Header(OriginalCompressedSegmentSize=50) / Raw(bytes(40)))
    rec, conn = run([(True, packed), (True, packed), *smb2_setup()])
    assert rec.of("violation") == [("violation", "smb_compressed")]
    assert conn.compressed_messages == 2 and len(rec.of("identity")) == 1
