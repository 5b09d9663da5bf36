"""Wire encoders for the sample captures and the tests: every byte is built here, with scapy for the
link/IP/TCP/UDP layers and the NTLMSSP/SPNEGO tokens and with `struct` for the rest, each builder following
the specification section its docstring names. Must not import `analyzer` (the samples are an independent
encoder of what the analyzer decodes) nor `samples.scenarios`.
"""

from scapy.config import conf

conf.verb = 0  # before any scapy layer is imported: no chatter from scapy
