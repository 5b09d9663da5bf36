"""Every cap of `Limits` has a reporter: some code path emits `cap_code(field)` when it is hit
([analyzer.limits]), and data_quality counts it as a cap. Generic on purpose: a field added to
`Limits` without a violation that names it fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import analyzer
from analyzer.limits import Limits, cap_code, cap_fields
from analyzer.pipeline import Pipeline
from analyzer.records import Records
from tests.conftest import ROOT
from tests.test_floods import _write, floods

PACKAGE = ROOT / "analyzer"


def _strings_and_cap_code_calls() -> tuple[set[str], set[str]]:
    """Every string constant in the package (but limits.py, which only declares the caps), and the
    constants of the modules that build codes with `cap_code(...)` themselves."""
    strings: set[str] = set()
    via_cap_code: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "limits.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        consts = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        strings |= consts
        calls = any(
            isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) == "cap_code"
            for n in ast.walk(tree)
        )
        if calls:
            via_cap_code |= consts
    return strings, via_cap_code


def test_every_cap_field_has_a_reporter() -> None:
    strings, via_cap_code = _strings_and_cap_code_calls()
    caps = cap_fields()
    assert caps, "Limits declares no cap"
    missing = sorted(f for f, code in caps.items() if code not in strings and f not in via_cap_code)
    assert not missing, f"caps no code path reports (no violation names cap_code(field)): {missing}"


def _violations(res: analyzer.AnalysisResult, what: str) -> int:
    v = res.violations
    return int(v.loc[v["what"] == what, "occurrences"].sum())


def _records(path: Path, limits: Limits) -> Records:
    records = Pipeline(limits, strict=True).run([str(path)])
    records.finish()
    return records


@pytest.mark.parametrize(
    ("field", "value", "build", "n"),
    [
        ("max_pending_calls", 4, floods.pending_flood, 40),
        ("max_tcp_flows", 8, floods.syn_flood, 60),
        ("max_call_stub_bytes", 1024, floods.epm_flood, 3),
    ],
)
def test_a_cap_hit_is_a_violation_and_a_cap_in_data_quality(
    tmp_path: Path, field: str, value: int, build: object, n: int
) -> None:
    kw = {"stub_bytes": 4096, "fragment": 2048} if build is floods.epm_flood else {}
    path = _write(tmp_path, build, n, **kw)  # type: ignore[arg-type]
    res = analyzer.from_records(_records(path, Limits(**{field: value})))
    code = cap_code(field)
    assert _violations(res, code) > 0, code
    dq = res.data_quality
    capture = dq[dq["scope"] == "capture"]
    assert int(capture["caps_hit"].sum()) >= _violations(res, code)
    # and not at the defaults
    assert _violations(analyzer.from_records(_records(path, Limits())), code) == 0
