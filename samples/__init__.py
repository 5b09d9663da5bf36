"""The bundled sample captures' generator (samples/README.md).

`wire/` holds the encoders (link layers, TCP, NDR, DCE/RPC CO and CL, EPM, NTLMSSP/SPNEGO, NetBIOS, SMB1,
SMB2, RPC over HTTP, the pcap/pcapng writers and the manifest), shared with the tests; `scenarios/` holds
one module per sample capture; `make_samples.py` is the command line. Nothing here imports `analyzer`:
the manifests state what the generator put on the wire, known by construction.
"""
