"""The command group: `rpc-analyzer` itself, its version and its help; and `run`, the console
script, which leaves the process without tearing the interpreter down."""

from __future__ import annotations

import atexit
import os
import sys
import threading

import click

from analyzer.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="rpc-analyzer")
def main() -> None:
    """Passive analyzer for Microsoft RPC (DCE/RPC) traffic in Wireshark/tcpdump captures.

    Which RPC services were negotiated, between which hosts, over which ports: every bind and
    its answer, every endpoint the endpoint mapper (TCP 135) announced with its dynamic port,
    the connections that used those ports, the calls made, and a per-host view.

    \b
    Example:
      rpc-analyzer analyze capture.pcapng -o out/
      rpc-analyzer analyze capture.pcapng -o zeek/ --format zeek
      rpc-analyzer hosts capture.pcapng --role server
      rpc-analyzer endpoints capture.pcapng
      rpc-analyzer report capture.pcapng -o report.html
      rpc-analyzer firewall capture.pcapng --format md
      sudo rpc-analyzer live -i eth0 --rotate-seconds 300
      rpc-analyzer findings capture.pcapng
      rpc-analyzer sigma sigma/rules/network/zeek/ capture.pcapng
      rpc-analyzer names svcctl
    """


def run() -> None:
    """The `rpc-analyzer` console script and `python -m analyzer`: the command, then `leave`."""
    # numpy's OpenBLAS starts a thread per core when numpy is imported, and each spins a while
    # waiting for linear algebra this program never asks for: 0.08 to 0.18 s of CPU a run (medians
    # of 8 alternated runs: 1.06 -> 0.92 s on the bundled samples, 1.36 -> 1.18 s on 8 captures with
    # --jobs 1), taken from the cores the readers use. One thread, unless the user chose otherwise.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        main.main(prog_name="rpc-analyzer")  # click's standalone mode: always ends in SystemExit
    except SystemExit as e:
        leave(e.code)
        raise


def leave(code: object) -> None:
    """End the process with exit status `code` (an int or None, as `sys.exit` takes) once the
    `atexit` handlers have run (the run directories' removal among them) and stdout and stderr are
    flushed, skipping the interpreter's teardown: freeing every module's objects one by one after a
    run that loaded pandas and pyarrow cost 0.12 to 0.2 s of CPU and wall time at the end of every
    run (measured on the 200 MB capture), for memory the kernel frees at once. Everything the
    commands write is closed by then. Returns (the caller then raises as usual) where the quick way
    would lose something: a code that is text (printed by the normal exit), other threads still
    running (the normal exit waits for them), or output that cannot be flushed (a closed pipe,
    reported by the normal exit)."""
    if not (code is None or isinstance(code, int)) or threading.active_count() > 1:
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code or 0)
