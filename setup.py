"""The one compiled part: the batched reader's per-record loops (analyzer/capture/_batch.c: the pcap
record walk and the prefilter's fields). Optional: where it cannot be built, analyzer/capture/pcap.py
and prefilter.py do the same in Python and numpy (the same records, slower)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("analyzer.capture._batch", ["analyzer/capture/_batch.c"], optional=True),
        Extension("analyzer.report._flowid", ["analyzer/report/_flowid.c"], libraries=["crypto"], optional=True),
        Extension("analyzer.report._csv", ["analyzer/report/_csv.c"], optional=True),
    ]
)
