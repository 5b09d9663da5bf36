"""Decoded arguments against tshark's own dissection, every request of a capture at once.

Where tshark 4 has a dissector for the operation, each request frame's field (`tshark -T fields`)
must equal the value our decoder read from the same frame. Skips cleanly without tshark or
../shared; the per-frame cases in test_stubs_captures.py hold the values written out.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.conftest import CAPTURES, needs_shared, run

pytestmark = [needs_shared, pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")]

# (capture, display filter selecting the requests, tshark field, our argument key)
CASES = [
    (
        "zerologon/testing/Traces/CVE-2020-1472_exploit_win2016.pcap",
        "netlogon.opnum == 26",
        "netlogon.acct_name",
        "account_name",
    ),
    (
        "zerologon/testing/Traces/CVE-2020-1472_exploit_win2016.pcap",
        "netlogon.opnum == 26",
        "netlogon.computer_name",
        "computer_name",
    ),
    (
        "zerologon/testing/Traces/CVE-2020-1472_exploit_win2016.pcap",
        "netlogon.opnum == 26",
        "netlogon.neg_flags",
        "negotiate_flags",
    ),
    ("Pcaps/smbexec.pcap", "svcctl.opnum == 12", "svcctl.servicename", "service_name"),
    ("Pcaps/smbexec.pcap", "svcctl.opnum == 12", "svcctl.binarypathname", "binary_path"),
    (
        "Pcaps/multiple_psexecs_with_cmds_netstat_ipconfig.pcap",
        "svcctl.opnum == 12",
        "svcctl.displayname",
        "display_name",
    ),
    (
        "suricata-verify/tests/filestore-filecontainer-smb/filecontainer-smb.pcap",
        "svcctl.opnum == 16",
        "svcctl.servicename",
        "service_name",
    ),
    ("Pcaps/netshareenum.pcap", "srvsvc.opnum == 16", "srvsvc.srvsvc_NetShareGetInfo.share_name", "share_name"),
    (
        "Pcaps/pwshell-cmdlet-clear-eventlog-application.pcap",
        "eventlog.opnum == 7",
        "eventlog.eventlog_OpenEventLogW.Module",
        "channel",
    ),
    (
        "suricata-verify/tests/dcerpc/dcerpc-3109/input.pcap",
        "atsvc.opnum == 0",
        "atsvc.atsvc_JobInfo.command",
        "command",
    ),
    ("Pcaps/net_group_DAs.pcap", "samr.opnum == 17", "samr.samr_LookupNames.names", "names"),
    ("Pcaps/samrdump.pcap", "samr.opnum == 34", "samr.rid", "rid"),
    ("Pcaps/netshareenum.pcap", "srvsvc.opnum == 16", "srvsvc.srvsvc_NetShareGetInfo.server_unc", "server_name"),
    (
        "suricata-verify/tests/filestore-filecontainer-smb/filecontainer-smb.pcap",
        "winreg.opnum == 15",
        "winreg.winreg_OpenKey.keyname",
        "sub_key",
    ),
    ("Pcaps/netshareenum.pcap", "srvsvc.opnum == 15", "srvsvc.srvsvc_NetShareEnumAll.server_unc", "server_name"),
    ("Pcaps/netshareenum.pcap", "srvsvc.opnum == 15", "srvsvc.srvsvc_NetShareEnumAll.level", "level"),
    (
        "PCAP-ATTACK/Lateral_Movement/CVE-2020-1472_Zerologon_RPC_NetLogon_NullChallenge_SecChan_6_from_nonDC_to_DC.pcapng",
        "netlogon.opnum == 4",
        "netlogon.computer_name",
        "computer_name",
    ),
    (
        "PCAP-ATTACK/CredAccess/Remote_Pwd_Reset_RPC_Admin_Mimikatz_PostZeroLogon.pcapng",
        "lsarpc.opnum == 44",
        "lsarpc.lsa_OpenPolicy2.system_name",
        "system_name",
    ),
]


def _tshark(capture: str, display_filter: str, field: str) -> dict[int, str]:
    out = subprocess.run(
        ["tshark", "-r", str(CAPTURES / capture), "-Y", f"({display_filter}) && dcerpc.pkt_type == 0", "-T", "fields",
         "-e", "frame.number", "-e", field],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    rows = {}
    for line in out.splitlines():
        frame, _, value = line.partition("\t")
        if value:
            first = value.split(",")[0]
            rows[int(frame)] = int(first) if first.isdigit() else first
    return rows


@pytest.mark.parametrize(("capture", "display_filter", "field", "key"), CASES)
def test_every_request_matches_tshark(capture: str, display_filter: str, field: str, key: str) -> None:
    want = _tshark(capture, display_filter, field)
    assert want, f"tshark dissected no {field} in {capture}"
    ours = {c.frame: json.loads(c.arguments_json or "{}") for c in run([CAPTURES / capture]).calls}
    got = {frame: _first(ours.get(frame, {}).get(key)) for frame in want}
    assert got == want


def _first(v: object) -> object:
    """A list-valued argument against tshark's first occurrence of the field."""
    return v[0] if isinstance(v, list) and v else v
