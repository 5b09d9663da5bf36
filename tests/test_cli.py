"""The command line, driven through click's CliRunner and, once, as a real process."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from analyzer.cli import main, printable
from tests.conftest import ROOT, SAMPLES

TABLES = ("binds", "endpoints", "calls", "connections", "hosts", "violations", "captures")


def test_analyze_samples_writes_every_table(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["analyze", str(SAMPLES / "epm_map_session.pcap"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    for t in TABLES:
        assert (out / f"{t}.csv").exists(), t
    with (out / "binds.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) > 0
    assert "Captures" in res.output and "context items bound" in res.output


def test_bad_file_is_one_line_and_the_rest_is_analysed(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["analyze", "-q", str(junk), str(SAMPLES / "epm_map_session.pcap"), "-o", str(out)])
    assert res.exit_code == 1
    err_lines = [line for line in res.stderr.splitlines() if line]
    assert len(err_lines) == 1 and "junk.pcap" in err_lines[0] and "not a capture" in err_lines[0]
    assert "Traceback" not in res.output + res.stderr
    with (out / "binds.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) > 0  # the good file was analysed
    with (out / "captures.csv").open() as fh:
        caps = {Path(r["capture"]).name: r for r in csv.DictReader(fh)}
    assert caps["junk.pcap"]["error"] and not caps["epm_map_session.pcap"]["error"]


def test_truncated_capture_is_read_up_to_the_cut(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["analyze", "-q", str(SAMPLES / "truncated.pcap"), "-o", str(tmp_path)])
    assert res.exit_code == 0
    with (tmp_path / "violations.csv").open() as fh:
        assert any(r["what"] == "truncated" for r in csv.DictReader(fh))
    with (tmp_path / "binds.csv").open() as fh:
        assert list(csv.DictReader(fh))


def test_no_capture_found(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("nothing here")
    res = CliRunner().invoke(main, ["analyze", str(tmp_path / "d"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 3 and "no capture files" in res.stderr


def test_every_command_has_help_with_an_example_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, _cmd in main.commands.items():
        res = CliRunner().invoke(main, [name, "--help"])
        assert res.exit_code == 0 and "Example" in res.output, name
        assert f"rpc-analyzer {name}" in readme, name
    assert "Exit codes" in CliRunner().invoke(main, ["analyze", "--help"]).output


def test_names_command() -> None:
    res = CliRunner().invoke(main, ["names", "svcctl"])
    assert res.exit_code == 0 and "367abb81-9844-35f1-ad32-98f038001003" in res.output
    res = CliRunner().invoke(main, ["names", "no-such-interface-anywhere"])
    assert res.exit_code == 1


def test_terminal_text_is_stripped_of_control_characters() -> None:
    assert printable("\\PIPE\\evil\x1b[31m\x07") == "\\PIPE\\evil?[31m?"


def test_python_dash_m_runs_the_same_cli(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "analyzer",
            "analyze",
            "-q",
            str(SAMPLES / "linux_sll.pcap"),
            "-o",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "binds.csv").exists()


def test_analyze_zeek_formats_and_all_calls(tmp_path: Path) -> None:
    cap = str(ROOT / "samples" / "pcaps" / "smb2_pipes.pcap")
    res = CliRunner().invoke(main, ["analyze", cap, "-o", str(tmp_path / "z"), "--format", "zeek"])
    assert res.exit_code == 0 and "dce_rpc.log" in res.output, res.output
    assert not list((tmp_path / "z").glob("*.csv")), "the Zeek formats write logs, not the tables"
    res = CliRunner().invoke(
        main, ["analyze", cap, "-q", "-o", str(tmp_path / "a"), "--format", "zeek-json", "--all-calls"]
    )
    assert res.exit_code == 0
    lines = (tmp_path / "a" / "dce_rpc.log").read_text().splitlines()
    ext = (tmp_path / "a" / "dce_rpc_ext.log").read_text().splitlines()
    assert len(lines) == len(ext) > 0, "--all-calls: every call in dce_rpc.log"
