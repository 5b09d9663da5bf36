"""SMB over the NetBIOS session service on TCP 139 ([RFC 1002] 4.3): session request, response, keep-alive."""

from __future__ import annotations

from tests.smb_build import netbios_stream, run, smb1_pipe_session


def test_netbios_139_session_request() -> None:
    rec, _ = run(netbios_stream(), netbios=True)
    plain, _ = run(smb1_pipe_session(), netbios=True)
    assert rec.events == plain.events
    assert len(rec.of("data")) == 4 and not rec.of("violation")
