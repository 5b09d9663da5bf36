"""Findings: which of the observed RPC activity was an attack, reconnaissance or a risky admin action.

Rules are data (`rules.tsv`, plus the user's `--rules FILE`); `engine.py` applies them to the tables in
one pass over each source's chunks (a fold of `report.passes`, so the views share that pass):
`select.py` says which columns each source must give and which rows each rule takes, `stream.py`
cuts a rule's rows into groups and bursts, `evidence.py` aggregates a burst into its findings row,
and `context.py` supplies what rules need beyond one row (domain controllers, one shape for every
source). The result is the `findings` table (columns: `schema.FINDINGS`), one row per technique,
client, server and burst of activity. Sigma rules are another producer of the same rows (`sigma.py`).

It reads tables and the name registry only: it must not import the pipeline, the transports, the
parsers below them, the API or the command line.
"""

from __future__ import annotations

import pandas as pd

from analyzer.findings.engine import Findings
from analyzer.findings.rules import Rule, RuleError, load_rules
from analyzer.findings.schema import FINDINGS, empty
from analyzer.report.passes import fold
from analyzer.report.source import Source

__all__ = ["FINDINGS", "Findings", "Rule", "RuleError", "compute", "empty", "load_rules"]


def compute(source: Source, rules: list[Rule] | None = None) -> pd.DataFrame:
    """The findings of the tables of one run (read through `source` a chunk at a time, see
    `report.source` and `engine`), most severe first (the shipped rules when `rules` is not given;
    `load_rules(files)` adds the user's). `Findings` is the same as a fold of a pass that feeds other
    readers too (`report.passes`)."""
    found = Findings(load_rules() if rules is None else rules)
    fold(source, found)
    return found.result()
