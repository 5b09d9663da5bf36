"""Scoring our findings against what an expert concluded (../shared/detection/findings_expected.csv).

An expected row is found when a finding of the same capture and technique names its client and server
(a finding's client_ip / server_ip may list several hosts, `;`-joined). Its argument is matched when it
was readable and at least one of its distinctive tokens (paths, names, CLSIDs; prose words dropped) is
in our `argument`. The expected arguments are written for people ("service SDfL, binary
%systemroot%\\HtCOoeYd.exe (written to ADMIN$)"), so a token, not the whole text, is what can match.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

import analyzer
from analyzer.api import AnalysisResult
from tests.conftest import CAPTURES

# Words of the expected arguments' prose, not values an analyzer could decode.
_PROSE = {
    "service",
    "services",
    "binary",
    "written",
    "admin$",
    "level",
    "namespace",
    "clsid",
    "data",
    "file",
    "config",
    "windows",
    "null",
    "queried",
    "with",
    "from",
    "used",
    "channel",
    "output",
    "zero",
    "credential",
    "secchan",
    "flags",
    "inquiry",
    "blob",
    "random",
    "unicode",
    "accountname",
    "600-byte",
    "information",
    "start",
    "type",
    "cmds",
    "empty",
    "localsystem",
    "hidden",
    "task",
    "command",
    "commandline",
    "create",
    "log",
    "account",
    "machine",
    "secret",
    "seen",
    "over",
    "all",
    "and",
    "the",
    "via",
}
_TOKEN = re.compile(r"[^\s,;()'\"<>]+")


@cache
def analysed(capture: str) -> AnalysisResult:
    """One shared capture analysed once per test session (the findings and Sigma tests both read it)."""
    return analyzer.analyze(CAPTURES / capture)


def tokens(argument: str) -> set[str]:
    """The distinctive tokens of an expected argument, lower-case."""
    out = set()
    for t in _TOKEN.findall(argument):
        t = t.strip(".:").lower()
        # counts such as "~200" or "x4" are the expert's summary, not a decoded value
        if len(t) >= 4 and t not in _PROSE and not t.startswith(("...", "~")):
            out.add(t)
    return out


@dataclass(frozen=True)
class Expected:
    capture: str
    technique: str
    client_ip: str
    server_ip: str
    operation: str
    argument: str
    readable: str
    confidence: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.capture, self.technique, self.client_ip, self.server_ip)


def expected_rows(path: Path) -> list[Expected]:
    with path.open(newline="") as fh:
        return [
            Expected(
                r["capture"],
                r["technique"],
                r["client_ip"],
                r["server_ip"],
                r["operation"],
                r["argument"],
                r["readable"],
                r["confidence"],
            )
            for r in csv.DictReader(fh)
        ]


def _lists(value: object, ip: str) -> bool:
    return isinstance(value, str) and ip in value.split(";")


def matches(findings: pd.DataFrame, row: Expected) -> pd.DataFrame:
    """Our findings that report the expected row's technique between its client and server."""
    same = findings[findings["technique"] == row.technique]
    pairs = zip(same["client_ip"].tolist(), same["server_ip"].tolist(), strict=True)
    ok = [_lists(c, row.client_ip) and _lists(s, row.server_ip) for c, s in pairs]
    out: pd.DataFrame = same[ok] if ok else same
    return out


def argument_matched(found: pd.DataFrame, row: Expected) -> bool | None:
    """True/False when the expected argument was readable and has distinctive tokens; None otherwise."""
    want = tokens(row.argument) if row.readable == "yes" else set()
    if not want:
        return None
    ours = " ".join(str(a) for a in found["argument"].dropna().tolist()).lower()
    return any(t in ours for t in want)


def read_exceptions(path: Path) -> dict[tuple[str, str, str, str, str], str]:
    """(capture, technique, client, server, what) -> reason, where what is `finding` or `argument`."""
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    return {(r["capture"], r["technique"], r["client_ip"], r["server_ip"], r["what"]): r["reason"] for r in rows}
