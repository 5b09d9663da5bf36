"""Writing tables to files: CSV (default), JSON lines, Parquet.

CSV and JSON lines: missing values empty / null, times ISO 8601 UTC with microseconds and a Z,
integers as integers. In CSV, text that came off the wire (pipe names, user names, annotations)
is never trusted: a cell a spreadsheet would read as a formula (leading =, +, -, @, tab or carriage
return) gets a leading single quote, as OWASP advises against CSV injection. Parquet keeps the
DataFrames' own types.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import pandas as pd

from analyzer.report import SCHEMAS, STR, TIME, Tables

FORMATS = ("csv", "jsonl", "parquet")
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_FORMULA = r"[=+\-@\t\r]"


def neutralise(value: str) -> str:
    """A cell safe to open in a spreadsheet."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _as_text(df: pd.DataFrame, schema: dict[str, str], spreadsheet_safe: bool) -> pd.DataFrame:
    out = df.copy()
    for col, dtype in schema.items():
        if dtype == TIME:
            out[col] = out[col].dt.strftime(ISO_FORMAT).astype(STR)
        elif dtype == STR and spreadsheet_safe:
            mask = out[col].str.match(_FORMULA, na=False)
            if mask.any():
                out.loc[mask, col] = out.loc[mask, col].map(neutralise)
    result: pd.DataFrame = out
    return result


def write_tables(tables: Tables, out_dir: str | PathLike[str], fmt: str = "csv") -> list[Path]:
    """Write every table as <out_dir>/<table>.<ext>; the paths written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            _as_text(df, SCHEMAS[name], True).to_csv(path, index=False, lineterminator="\n", float_format="%.6f")
        elif fmt == "jsonl":
            _as_text(df, SCHEMAS[name], False).to_json(path, orient="records", lines=True)
        else:
            df.to_parquet(path, index=False)
        written.append(path)
    return written
