"""What a run leaves behind and says about itself (issue 10): manifest.json, the warning when the
output directory holds another run's files, `-o` that is not a directory, repr(result), names --help."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from click.testing import CliRunner

import analyzer
from analyzer.capture.digest import sha256_file
from analyzer.cli import main
from analyzer.report.manifest import hash_in_background
from tests.conftest import SAMPLES

EPM = SAMPLES / "epm_map_session.pcap"
GZ = SAMPLES / "gzip_session.pcap.gz"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_manifest_names_version_arguments_inputs_times_and_tables(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["analyze", "-q", str(EPM), str(GZ), "-o", str(out), "--format", "jsonl"])
    assert res.exit_code == 0, res.output + res.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["tool"] == "rpc-analyzer" and m["version"] == analyzer.__version__
    assert m["arguments"]["captures"] == [str(EPM), str(GZ)] and m["arguments"]["format"] == "jsonl"
    assert [i["path"] for i in m["inputs"]] == [str(EPM), str(GZ)]
    for entry, path in zip(m["inputs"], (EPM, GZ), strict=True):
        assert entry["size"] == path.stat().st_size
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()  # the file as stored, not unzipped
    assert ISO.match(m["started"]) and ISO.match(m["ended"]) and m["started"] <= m["ended"]
    on_disk = sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    assert sorted(m["tables"]) == on_disk and "binds.jsonl" in on_disk and "data_quality.jsonl" in on_disk


def test_sha256_is_streamed_in_blocks(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 20_000)  # 5 MB: several blocks
    assert sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()
    wait = hash_in_background([str(big), str(tmp_path / "missing"), str(big)])
    digests = wait()
    assert list(digests) == [str(big), str(tmp_path / "missing")]  # each file once
    assert digests[str(big)] == {"path": str(big), "size": 5_120_000, "sha256": sha256_file(big)}
    assert digests[str(tmp_path / "missing")]["sha256"] is None and digests[str(tmp_path / "missing")]["error"]


def test_another_runs_files_are_named_in_a_warning(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = CliRunner().invoke(main, ["analyze", "-q", str(EPM), "-o", str(out), "--format", "parquet"])
    assert first.exit_code == 0 and first.stderr == ""
    again = CliRunner().invoke(main, ["analyze", "-q", str(EPM), "-o", str(out), "--format", "parquet"])
    assert again.exit_code == 0 and again.stderr == ""  # the same files replaced: nothing mixed
    csv_run = CliRunner().invoke(main, ["analyze", "-q", str(GZ), "-o", str(out)])
    assert csv_run.exit_code == 0
    assert "warning" in csv_run.stderr and "binds.parquet" in csv_run.stderr and "manifest.json" in csv_run.stderr
    assert "binds.csv" not in csv_run.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert "binds.csv" in m["tables"] and "binds.parquet" not in m["tables"]
    assert [i["path"] for i in m["inputs"]] == [str(GZ)]


def test_out_that_is_not_a_directory_says_so(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    for target in ("/dev/full", "/dev/null", str(tmp_path / "plain")):
        res = CliRunner().invoke(main, ["analyze", "-q", str(EPM), "-o", target])
        assert res.exit_code == 2 and "not a directory" in res.stderr, res.stderr
        assert "File exists" not in res.stderr
    f = tmp_path / "file"
    f.write_text("x")
    res = CliRunner().invoke(main, ["analyze", "-q", str(EPM), "-o", str(f / "sub")])
    assert res.exit_code == 1 and "not a directory" in res.stderr and "Traceback" not in res.output


def test_repr_is_one_line_of_row_counts() -> None:
    res = analyzer.analyze([EPM])
    text = repr(res)
    assert "\n" not in text and len(text) < 200
    assert text == (
        f"AnalysisResult(binds={len(res.binds)}, endpoints={len(res.endpoints)}, calls={len(res.calls)}, "
        f"connections={len(res.connections)}, hosts={len(res.hosts)}, violations={len(res.violations)}, "
        f"captures={len(res.captures)})"
    )
    assert "binds=6" in text and "calls=9" in text


def test_names_help_does_not_list_capture_exit_codes() -> None:
    names = CliRunner().invoke(main, ["names", "--help"]).output
    assert "capture" not in names.split("Exit codes:")[1] and "nothing matches" in names
    analyze = CliRunner().invoke(main, ["analyze", "--help"]).output
    assert "no capture file was found" in analyze
