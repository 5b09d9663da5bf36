"""The compiled parts, each optional, each with a Python twin that runs where it cannot be built (the
same output, slower): the batched reader's per-record loops (analyzer/capture/_batch.c: the pcap
record walk and the prefilter's fields; twins in capture/pcap.py and prefilter.py), the decoder's
per-packet step (analyzer/capture/_packets.c: the packets of a batch's candidates; twin in
capture/decode.py), the DCE/RPC framer's header test (analyzer/dcerpc/_framing.c; twin in
dcerpc/pdu.py), and on the table side the flow ids (analyzer/report/_flowid.c, linked to OpenSSL's
libcrypto; twin in report/flowid.py) and the CSV rows (analyzer/report/_csv.c; twin in report/csv_rows.py);
on the TCP path the reassembly of each direction, the per-packet step and the dispatch of a followed
connection (analyzer/tcp/_tcp.c; twins in tcp/reassembly.py, tcp/core.py and pipeline/conversations.py),
and for `--jobs` the census of a batch (analyzer/parallel/_census.c; twin in parallel/units.py).

Beside them, `NATIVE`: modules of the reading's per-PDU and per-connection path compiled by mypyc
from their own typed source (the twin is the module itself: `RPC_ANALYZER_SOURCE=1` runs it, see
analyzer/twins.py). They are built together or not at all: mypyc makes one shared library for the
group (`analyzer.native__mypyc`) and a small extension per module that imports it, and a module's
extension shadows its source, so a group built in part would not import. `RPC_ANALYZER_PURE=1` at
install builds none of them."""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The DCE/RPC layer and the pipeline's classifier and collector (issue 13, round 14). Not the TCP
# connection and the flow table (their classes extend analyzer/tcp/_tcp.c's types, which mypyc
# cannot compile against: the reading crashed), nor the conversations (a test drives their
# per-packet method on a stand-in, as it does the C dispatch) or the violation log (pickled with
# the records: a compiled class is rebuilt through its __init__).
NATIVE = [
    "analyzer/dcerpc/association.py",
    "analyzer/dcerpc/stream.py",
    "analyzer/dcerpc/pdu.py",
    "analyzer/dcerpc/co_bind.py",
    "analyzer/dcerpc/co_call.py",
    "analyzer/transports/ncacn_ip_tcp.py",
    "analyzer/pipeline/classify.py",
    "analyzer/pipeline/collector.py",
    "analyzer/pipeline/learn.py",
]


# The setup.py commands that build extensions: pip also runs it for the metadata (egg_info,
# dist_info), where compiling would only cost time (mypyc's type check is some 20 s).
_BUILDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "install", "develop", "bdist_egg"}
# mypy's options for the compile: not the project's configuration, whose `files` is the whole package
# (and needs the stubs of numpy and pandas, absent from pip's isolated build environment); a missing
# library is then `Any`, which compiles as any Python object does.
_MYPYC_OPTIONS = ["--config-file=", "--ignore-missing-imports", "--follow-imports=silent"]


def native_extensions() -> list[Any]:
    """mypyc's extensions for `NATIVE`, or none (no mypyc, `RPC_ANALYZER_PURE`, a failed compile)."""
    if os.environ.get("RPC_ANALYZER_PURE") or not _BUILDS & set(sys.argv[1:]):
        return []
    try:
        from mypyc.build import mypycify

        made: list[Any] = mypycify([*_MYPYC_OPTIONS, *NATIVE], opt_level="3", group_name="analyzer.native")
    except (Exception, SystemExit) as e:  # mypyc absent, or the source did not type-check
        print(f"rpc-analyzer: the mypyc modules are not built ({e!r}); their Python source runs", file=sys.stderr)
        return []
    for ext in made:
        ext.optional = True
        ext.native = True
    return made


class BuildExt(build_ext):
    """`build_ext`, then: should any of the mypyc group's extensions have failed, the others are
    removed (see the module docstring), so the modules' source runs."""

    def run(self) -> None:
        super().run()
        native = [ext for ext in self.extensions if getattr(ext, "native", False)]
        paths = [self.get_ext_fullpath(ext.name) for ext in native]
        if all(os.path.exists(p) for p in paths):
            return
        for path in paths:
            if os.path.exists(path):
                os.remove(path)
        print("rpc-analyzer: a mypyc extension failed to build; their Python source runs", file=sys.stderr)


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=[
        Extension("analyzer.capture._batch", ["analyzer/capture/_batch.c"], optional=True),
        Extension("analyzer.capture._packets", ["analyzer/capture/_packets.c"], optional=True),
        Extension("analyzer.dcerpc._framing", ["analyzer/dcerpc/_framing.c"], optional=True),
        Extension("analyzer.report._flowid", ["analyzer/report/_flowid.c"], libraries=["crypto"], optional=True),
        Extension("analyzer.report._csv", ["analyzer/report/_csv.c"], optional=True),
        Extension("analyzer.tcp._tcp", ["analyzer/tcp/_tcp.c"], optional=True),
        Extension("analyzer.parallel._census", ["analyzer/parallel/_census.c"], optional=True),
        *native_extensions(),
    ],
)
