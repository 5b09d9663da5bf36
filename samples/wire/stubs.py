"""NDR stubs of the operations more than one sample calls (per the interfaces' IDL)."""

from __future__ import annotations

import random

from .ndr import Ndr


def scmr_open_scmanager(le: bool = True) -> tuple[bytes, bytes, str]:
    """[MS-SCMR] 3.1.4.15 ROpenSCManagerW (opnum 15): lpMachineName, lpDatabaseName, dwDesiredAccess."""
    h = "1b7c2a3e-4d5f-4a6b-8c7d-9e0f1a2b3c4d"
    req = Ndr(le).ptr().wstr("\\\\SRV01").align(4).ptr().wstr("ServicesActive").align(4).u32(0x000F003F).bytes()
    resp = Ndr(le).handle(h).u32(0).bytes()
    return req, resp, h


def scmr_handle_call(handle: str, extra: bytes = b"", le: bool = True) -> bytes:
    return Ndr(le).handle(handle).raw(extra).bytes()


def scmr_open_service(handle: str, name: str, le: bool = True) -> bytes:
    """[MS-SCMR] 3.1.4.16 ROpenServiceW (opnum 16): hSCManager, lpServiceName, dwDesiredAccess."""
    return Ndr(le).handle(handle).wstr(name).align(4).u32(0x000F01FF).bytes()


def handle_status(handle: str, status: int = 0, le: bool = True) -> bytes:
    return Ndr(le).handle(handle).u32(status).bytes()


def service_status(le: bool = True) -> bytes:
    """SERVICE_STATUS ([MS-SCMR] 2.2.47) + return value: a stopped own-process service."""
    n = Ndr(le)
    for v in (0x10, 1, 0, 0, 0, 0, 0):
        n.u32(v)
    return n.u32(0).bytes()


TSCH_HIGHEST = (0, b"", Ndr().u32(0x00010006).u32(0).bytes(), "SchRpcHighestVersion")


def netr_req_challenge(rng: random.Random, computer: str) -> bytes:
    """[MS-NRPC] 3.5.4.4.1 NetrServerReqChallenge in: [unique, string] PrimaryName, [string] ComputerName,
    NETLOGON_CREDENTIAL ClientChallenge (8 bytes, byte-aligned)."""
    return Ndr().ptr().wstr("\\\\DC01").align(4).wstr(computer).raw(rng.randbytes(8)).bytes()


def nspi_bind_req(rng: random.Random) -> bytes:
    """[MS-NSPI] 3.1.4.1.1 NspiBind in: dwFlags, STAT (9 DWORDs), [unique] FlatUID_r pServerGuid."""
    n = Ndr().u32(0)
    for v in (0, 0, 0, 0, 0, 0, 1252, 0x0409, 0x0409):
        n.u32(v)
    return n.ptr().raw(b"\0" * 16).bytes()


def nspi_bind_resp(rng: random.Random, handle: str) -> bytes:
    return Ndr().ptr().raw(rng.randbytes(16)).handle(handle).u32(0).bytes()
