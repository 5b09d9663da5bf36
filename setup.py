"""The compiled parts, each optional, each with a Python twin that runs where it cannot be built (the
same output, slower): the batched reader's per-record loops (analyzer/capture/_batch.c: the pcap
record walk and the prefilter's fields; twins in capture/pcap.py and prefilter.py), the decoder's
per-packet step (analyzer/capture/_packets.c: the packets of a batch's candidates; twin in
capture/decode.py), the DCE/RPC framer's header test (analyzer/dcerpc/_framing.c; twin in
dcerpc/pdu.py), and on the table side the flow ids (analyzer/report/_flowid.c, linked to OpenSSL's
libcrypto; twin in report/flowid.py) and the CSV rows (analyzer/report/_csv.c; twin in report/csv_rows.py);
on the TCP path the reassembly of each direction, the per-packet step and the dispatch of a followed
connection (analyzer/tcp/_tcp.c; twins in tcp/reassembly.py, tcp/core.py and pipeline/conversations.py),
and for `--jobs` the census of a batch (analyzer/parallel/_census.c; twin in parallel/units.py)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("analyzer.capture._batch", ["analyzer/capture/_batch.c"], optional=True),
        Extension("analyzer.capture._packets", ["analyzer/capture/_packets.c"], optional=True),
        Extension("analyzer.dcerpc._framing", ["analyzer/dcerpc/_framing.c"], optional=True),
        Extension("analyzer.report._flowid", ["analyzer/report/_flowid.c"], libraries=["crypto"], optional=True),
        Extension("analyzer.report._csv", ["analyzer/report/_csv.c"], optional=True),
        Extension("analyzer.tcp._tcp", ["analyzer/tcp/_tcp.c"], optional=True),
        Extension("analyzer.parallel._census", ["analyzer/parallel/_census.c"], optional=True),
    ]
)
