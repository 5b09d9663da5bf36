#!/usr/bin/env python3
"""Generate the bundled sample captures in samples/pcaps/ and their manifests in samples/expected/.

Every capture is built from scratch by the encoders in ``samples/wire/`` (scapy for Ethernet/SLL/IP/IPv6/
TCP/UDP and the NTLMSSP/SPNEGO tokens, ``struct`` for the DCE/RPC, EPM, SMB1/SMB2 and RPC-over-HTTP payloads,
following the specification sections named in each builder's docstring); ``samples/scenarios/`` holds one
module per capture.  The analyzer's own decoder is never imported:
the manifests state what the generator put on the wire (known by construction), and
``samples/check_samples.py`` compares them with what tshark makes of the files.

The output is deterministic: fixed seeds, fixed addresses and a clock that starts at
2024-03-01T10:00:00Z for every capture.  Running the script twice gives byte-identical files.

    /work/venv/bin/python samples/make_samples.py            # writes every sample
    /work/venv/bin/python samples/make_samples.py cl_udp      # only the samples whose name contains "cl_udp"

References: [C706] DCE 1.1 RPC (12.5 CL PDUs, 12.6 CO PDUs, 14 NDR, Appendix I/L towers and EPM);
[MS-RPCE] 2.2 (extensions: BTFN, NDR64, sec_trailer); [MS-NLMP] 2.2 (NTLMSSP); [MS-SMB2] 2.2;
[MS-CIFS]/[MS-SMB] 2.2 (SMB1); [RFC 1002] 4.3 (NetBIOS session service); [MS-RPCH] 2.1-2.2 (RPC over HTTP).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable for `samples.*`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from samples.scenarios import BUILDERS


def main(argv: list[str]) -> int:
    want = argv[1:]
    for b in BUILDERS:
        if want and not any(w in b.__name__ for w in want):
            continue
        b()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
