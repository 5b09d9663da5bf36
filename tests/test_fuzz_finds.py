"""Inputs the fuzzer (fuzz/run.py under atheris) found to escape, rebuilt here small: each must now
become a clean result, never an exception."""

from __future__ import annotations

import gzip
from pathlib import Path

from tests.conftest import SAMPLES, run


def _corrupt_gzip(tmp_path: Path, raw: bytes, at: float) -> Path:
    """A gzip of `raw` whose deflate data is corrupt from fraction `at` of it on: the first byte
    from there whose flip makes zlib fail (not the CRC check)."""
    import zlib

    data = bytearray(gzip.compress(raw, mtime=0))
    for off in range(max(10, int(len(data) * at)), len(data) - 8):
        bad = bytearray(data)
        bad[off] ^= 0xFF
        try:
            gzip.decompress(bytes(bad))
        except zlib.error:
            path = tmp_path / "corrupt.pcap.gz"
            path.write_bytes(bytes(bad))
            return path
        except Exception:
            continue
    raise AssertionError("no corruption found that zlib rejects")


def test_corrupt_deflate_data_at_the_start_is_an_unreadable_capture(tmp_path: Path) -> None:
    r = run([_corrupt_gzip(tmp_path, (SAMPLES / "epm_map_session.pcap").read_bytes(), at=0.0)])
    (cap,) = r.captures
    assert cap.error is not None and "cannot read" in cap.error and not r.binds


def test_corrupt_deflate_data_midway_keeps_what_was_read(tmp_path: Path) -> None:
    import io

    from tests.test_floods import floods  # the flood builders of bench/floods.py

    out = io.BytesIO()
    floods.bind_flood(out, 6000)  # 2.9 MB: more than the reader's first 1 MiB read
    r = run([_corrupt_gzip(tmp_path, out.getvalue(), at=0.5)])
    (cap,) = r.captures
    # Corrupt data ends the readable part, like a cut: the file counts as read and truncated, the
    # violation says why and names the last complete frame (analyzer.capture.gzipstream).
    assert cap.error is None and cap.truncated
    (v,) = [v for v in r.violations if v.what == "truncated"]
    assert v.detail.startswith("compressed data is corrupt") and f"last complete frame is {cap.frames}" in v.detail
    assert cap.frames > 1000 and len(r.binds) > 1000  # what came before the corruption is kept
