"""The one compiled part: the pcap record walk (analyzer/capture/_walk.c). Optional: where it cannot
be built, analyzer/capture/pcap.py walks the records in Python instead (same records, slower)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("analyzer.capture._walk", ["analyzer/capture/_walk.c"], optional=True)])
