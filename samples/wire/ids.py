"""Identifiers written on the wire: the capture clock, transfer syntaxes, interfaces, status codes and UUIDs.

[C706] 12.6.3.1 (p_syntax_id_t), Appendix A (UUIDs); [MS-RPCE] 3.3.1.5.3 (bind-time feature negotiation).
"""

from __future__ import annotations

import random
import uuid

T0 = 1709287200  # 2024-03-01T10:00:00Z, the first timestamp of every capture
FILETIME_T0 = (T0 + 11644473600) * 10_000_000  # the same instant as a Windows FILETIME

# --------------------------------------------------------------------------------------------------
# Well-known syntaxes and interfaces (uuid, (major, minor))
# --------------------------------------------------------------------------------------------------

NDR = ("8a885d04-1ceb-11c9-9fe8-08002b104860", (2, 0))
NDR64 = ("71710533-beba-4937-8319-b5dbef9ccc36", (1, 0))


def btfn(bits: int) -> tuple[str, tuple[int, int]]:
    """Bind-time feature negotiation pseudo transfer syntax ([MS-RPCE] 3.3.1.5.3): bitmask in byte 8."""
    return (f"6cb71c2c-9812-4540-{bits:02x}00-000000000000", (1, 0))


IFACES: dict[str, tuple[str, tuple[int, int]]] = {
    "epmapper": ("e1af8308-5d1f-11c9-91a4-08002b14a0fa", (3, 0)),
    "svcctl": ("367abb81-9844-35f1-ad32-98f038001003", (2, 0)),
    "drsuapi": ("e3514235-4b06-11d1-ab04-00c04fc2dcd2", (4, 0)),
    "lsarpc": ("12345778-1234-abcd-ef00-0123456789ab", (0, 0)),
    "samr": ("12345778-1234-abcd-ef00-0123456789ac", (1, 0)),
    "netlogon": ("12345678-1234-abcd-ef00-01234567cffb", (1, 0)),
    "srvsvc": ("4b324fc8-1670-01d3-1278-5a47bf6ee188", (3, 0)),
    "wkssvc": ("6bffd098-a112-3610-9833-46c3f87e345a", (1, 0)),
    "atsvc_tsch": ("86d35949-83c9-4044-b424-db363231fd0c", (1, 0)),
    "IObjectExporter": ("99fcfec4-5260-101b-bbcb-00aa0021347a", (0, 0)),
    "ISystemActivator": ("000001a0-0000-0000-c000-000000000046", (0, 0)),
    "eventlog6": ("f6beaff7-1e19-4fbb-9f8f-b89e2018337c", (1, 0)),
    "nspi": ("f5cc5a18-4264-101a-8c59-08002b2f8426", (56, 0)),
    "pnio_device": ("dea00001-6c97-11d1-8271-00a02442df7d", (1, 0)),
    "pnio_controller": ("dea00002-6c97-11d1-8271-00a02442df7d", (1, 0)),
    "winreg": ("338cd001-2244-31f1-aaaa-900038001003", (1, 0)),
    "msgsvc": ("5a7b91f8-ff00-11d0-a9b2-00c04fb6e6fc", (1, 0)),
    "IRemoteWinspool": ("76f03f96-cdfd-44fc-a22c-64950a001209", (1, 0)),
    "frs2": ("897e2e5f-93f3-4376-9c9c-fd2277495c27", (1, 0)),
    "IRemUnknown2": ("00000143-0000-0000-c000-000000000046", (0, 0)),
    "unknown_iface": ("6e7a1a15-2a4b-4c2d-9e0f-1a2b3c4d5e6f", (1, 0)),
}


def iface_id(iface: str) -> tuple[str, tuple[int, int]]:
    """(uuid, (major, minor)) of a key of IFACES; any other string is taken as a raw uuid, version 1.0."""
    return IFACES.get(iface, (iface, (1, 0)))


# Status codes used on the wire
NCA_S_OP_RNG_ERROR = 0x1C010002
NCA_S_UNK_IF = 0x1C010003
EPT_S_NOT_REGISTERED = 0x16C9A0D6
STATUS_PENDING = 0x00000103
STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016


def uuid_bytes(u: str, le: bool = True) -> bytes:
    """A UUID as NDR encodes it ([C706] Appendix A): the first three fields follow the byte order."""
    x = uuid.UUID(u)
    return x.bytes_le if le else x.bytes


def ver_u32(ver: tuple[int, int]) -> int:
    """p_syntax_id_t.if_version ([C706] 12.6.3.1): major in the low 16 bits, minor in the high ones."""
    return ver[0] | (ver[1] << 16)


def vstr(ver: tuple[int, int]) -> str:
    return f"{ver[0]}.{ver[1]}"


def zero_uuid() -> str:
    return "00000000-0000-0000-0000-000000000000"


def det_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(bytes=rng.randbytes(16), version=4))
