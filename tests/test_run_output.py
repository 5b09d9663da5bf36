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
from analyzer.capture.source import open_capture
from analyzer.cli import main
from analyzer.report.manifest import hash_inputs
from tests.conftest import SAMPLES
from tests.test_hostile_files import netmon

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
    digests = hash_inputs([str(big), str(tmp_path / "missing"), str(big)])
    assert list(digests) == [str(big), str(tmp_path / "missing")]  # each file once
    assert digests[str(big)] == {"path": str(big), "size": 5_120_000, "sha256": sha256_file(big)}
    assert digests[str(tmp_path / "missing")]["sha256"] is None and digests[str(tmp_path / "missing")]["error"]


def _read_through(path: Path) -> str | None:
    reader = open_capture(str(path), hashed=True)
    for _frame in reader:
        pass
    assert reader.sha256 is None  # known once closed
    reader.close()
    return reader.sha256


def test_a_reader_hashes_the_file_as_stored_while_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.pcap"  # several of the reader's buffers, and of the hashing thread's blocks
    data = EPM.read_bytes()
    big.write_bytes(data + data[24:] * (9_000_000 // len(data)))
    for path in (EPM, GZ, SAMPLES / "two_interfaces.pcapng", big):
        assert _read_through(path) == hashlib.sha256(path.read_bytes()).hexdigest(), path.name
    assert open_capture(str(EPM)).sha256 is None  # not asked for
    nm = tmp_path / "frames.cap"  # NetMon reads its frame table, at the end, first: a gap
    nm.write_bytes(netmon([bytes(60 + i) for i in range(40)]))
    assert _read_through(nm) is None  # the manifest hashes it itself


def test_the_manifest_hashes_what_the_reader_did_not(tmp_path: Path) -> None:
    nm = tmp_path / "frames.cap"
    nm.write_bytes(netmon([bytes(60 + i) for i in range(40)]))
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["analyze", "-q", str(EPM), str(nm), "-o", str(out)])
    assert res.exit_code == 0, res.output + res.stderr
    inputs = json.loads((out / "manifest.json").read_text())["inputs"]
    assert [i["sha256"] for i in inputs] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in (EPM, nm)]


def test_a_file_read_only_in_part_has_no_digest_from_its_reader(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    data = EPM.read_bytes()
    cut.write_bytes(data[:24] + b"\xff" * 16 + bytes(9_000_000))  # a corrupt record header: reading stops there
    reader = open_capture(str(cut), hashed=True)
    list(reader)
    reader.close()
    assert reader.truncated and reader.sha256 is None  # the manifest hashes it itself
    small = tmp_path / "small.pcap"  # read whole in one buffer, though cut after that: the digest stands
    small.write_bytes(data[:24] + b"\xff" * 16)
    assert _read_through(small) == hashlib.sha256(small.read_bytes()).hexdigest()


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
