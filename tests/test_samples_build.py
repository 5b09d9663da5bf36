"""The sample generator (samples/make_samples.py over samples/wire and samples/scenarios) still writes the
bundled captures and manifests byte for byte: the encoders the tests share have not drifted, and each
builder stands alone (run here in reverse order, each on its own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from samples.scenarios import BUILDERS
from samples.wire import capture

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def test_every_sample_is_rebuilt_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "PCAP_DIR", tmp_path / "pcaps")
    monkeypatch.setattr(capture, "EXPECTED_DIR", tmp_path / "expected")
    for build in reversed(BUILDERS):
        build()
    for sub in ("pcaps", "expected"):
        made = sorted(p.name for p in (tmp_path / sub).iterdir())
        bundled = sorted(p.name for p in (SAMPLES / sub).iterdir())
        assert made == bundled
        changed = [n for n in made if (tmp_path / sub / n).read_bytes() != (SAMPLES / sub / n).read_bytes()]
        assert not changed, f"samples/{sub} would change: {changed}"
