"""`rpc-analyzer live` on the loopback interface while the test replays a sample onto it with scapy
(frames go to `lo` only; their 10.0.0.x addresses are not local, so the kernel drops them there)."""

from __future__ import annotations

import select
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import analyzer
from analyzer.live import capture_problem
from tests.conftest import ROOT, SAMPLES

SAMPLE = SAMPLES / "epm_map_session.pcap"
KEY = ["interface_name", "opnum", "status", "client_ip", "client_port", "server_ip", "server_port"]


def _wait_for(proc: subprocess.Popen[str], text: str, seconds: float) -> str:
    seen = ""
    deadline = time.monotonic() + seconds
    assert proc.stderr is not None
    while time.monotonic() < deadline and text not in seen:
        ready, _, _ = select.select([proc.stderr], [], [], 0.5)
        if ready:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
    return seen


def test_live_on_loopback_gives_the_records_of_the_file(tmp_path: Path) -> None:
    problem = capture_problem("lo")
    if problem is not None:
        pytest.skip(problem)
    from scapy.sendrecv import sendp
    from scapy.utils import rdpcap

    cmd = [sys.executable, "-m", "analyzer", "live", "-i", "lo", "--bpf", "net 10.0.0.0/24",
           "--rotate-seconds", "1", "--duration", "6", "-o", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        started = _wait_for(proc, "capturing on lo", 60)
        assert "capturing on lo" in started, started
        sendp(rdpcap(str(SAMPLE)), iface="lo", inter=0.005, verbose=False)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    intervals = sorted(tmp_path.glob("live-*"))
    assert intervals, err
    calls = pd.concat([pd.read_csv(d / "calls.csv") for d in intervals if (d / "calls.csv").exists()])
    expected = analyzer.analyze(SAMPLE).calls
    got = sorted(map(tuple, calls[KEY].astype(str).values.tolist()))
    want = sorted(map(tuple, expected[KEY].astype(str).replace("<NA>", "nan").values.tolist()))
    assert got == want
    assert any((d / "dce_rpc.log").exists() for d in intervals), "the Zeek logs are written beside the tables"


def test_without_capture_rights_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import scapy.all  # noqa: F401
    from click.testing import CliRunner
    from scapy.config import conf

    from analyzer.cli import main

    def refuse(**_kw: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(conf, "L2listen", refuse)
    res = CliRunner().invoke(main, ["live", "-i", "lo", "--duration", "1"])
    assert res.exit_code == 1
    assert "Operation not permitted" in res.output and "CAP_NET_RAW" in res.output
    assert "Traceback" not in res.output


def test_a_bad_filter_is_one_line() -> None:
    if capture_problem("lo") is not None:
        pytest.skip("no capture rights: the filter is only compiled on an open socket")
    from click.testing import CliRunner

    from analyzer.cli import main

    res = CliRunner().invoke(main, ["live", "-i", "lo", "--bpf", "not a filter at all", "--duration", "1"])
    assert res.exit_code == 1 and "filter" in res.output and "Traceback" not in res.output


def test_sigterm_writes_what_was_open(tmp_path: Path) -> None:
    """A service manager's stop (SIGTERM) still closes the open conversations into the last interval."""
    if capture_problem("lo") is not None:
        pytest.skip("no capture rights")
    import signal

    from scapy.sendrecv import sendp
    from scapy.utils import rdpcap

    frames = rdpcap(str(SAMPLE))
    cmd = [sys.executable, "-m", "analyzer", "live", "-i", "lo", "--bpf", "net 10.0.0.0/24",
           "--rotate-seconds", "600", "-o", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert "capturing on lo" in _wait_for(proc, "capturing on lo", 60)
        sendp(frames[: len(frames) - 3], iface="lo", inter=0.005, verbose=False)  # the last close never comes
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    conns = pd.concat([pd.read_csv(d / "connections.csv") for d in tmp_path.glob("live-*")])
    assert "capture_end" in set(conns["end"]), "the open connection was closed by the stop"


def test_interval_writing_formats(tmp_path: Path) -> None:
    """What one interval writes: tables and TSV logs, or with a Zeek format the logs alone."""
    from analyzer.live import write_interval
    from analyzer.records import Records
    from tests.conftest import run

    records = run([SAMPLE])
    both = {p.name for p in write_interval(records, tmp_path / "a", 0.0, "csv")}
    assert {"calls.csv", "dce_rpc.log"} <= both
    logs = {p.name for p in write_interval(records, tmp_path / "b", 0.0, "zeek-json")}
    assert "dce_rpc.log" in logs and not any(n.endswith(".csv") for n in logs)
    assert (tmp_path / "b" / "live-1970-01-01-00-00-00" / "dce_rpc.log").read_text().startswith("{")
    assert write_interval(Records(), tmp_path / "c", 0.0, "csv") == [], "an empty interval writes nothing"
