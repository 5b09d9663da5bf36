"""The fuzz targets themselves (fuzz/targets.py): each takes a real capture's bytes and a mangled
copy without raising, and the end-to-end target's writer rotation reaches every writer."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from analyzer.api import AnalysisResult
from fuzz import targets
from tests.conftest import SAMPLES

SAMPLE = (Path(SAMPLES) / "epm_map_session.pcap").read_bytes()


@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_every_target_takes_a_capture_and_a_mangled_one(name: str) -> None:
    target = targets.TARGETS[name]
    target(SAMPLE)
    target(SAMPLE[: len(SAMPLE) // 2] + bytes(reversed(SAMPLE[len(SAMPLE) // 2 :])))


def test_end_to_end_reaches_every_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One input per writer (a suffix picked so its CRC selects it): each writes its own output."""
    dirs = [str(tmp_path)]
    html_calls: list[int] = []
    original = AnalysisResult.html

    def html(self: AnalysisResult, *args: str) -> str:
        html_calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(AnalysisResult, "html", html)
    writers = targets.E2E_WRITERS
    for want, writer in enumerate(writers):
        data = next(SAMPLE + bytes([k]) for k in range(256) if zlib.crc32(SAMPLE + bytes([k])) % len(writers) == want)
        targets.end_to_end(data, dirs)
        if writer == "html":
            assert html_calls == [1]
        else:
            assert any((tmp_path / writer).iterdir()), writer


def test_end_to_end_counts_terminal_escapes_as_a_find(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The target's check of the terminal text: a line with an escape (a window-title change here)
    is an AssertionError, which libFuzzer reports."""
    monkeypatch.setattr(AnalysisResult, "hosts_text", lambda self, role=None: "host\n\x1b]0;owned\x07\n")
    with pytest.raises(AssertionError, match="not printable"):
        targets.end_to_end(SAMPLE, [str(tmp_path)])
