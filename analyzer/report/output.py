"""Writing tables to files: CSV (default), JSON lines, Parquet.

CSV and JSON lines: missing values empty / null, times ISO 8601 UTC with microseconds and a Z,
integers as integers. Parquet keeps the DataFrames' own types.

CSV follows RFC 4180 on purpose: records end in CRLF and a cell is quoted when it holds the
separator, a quote, a CR or an LF. Python's csv writer quotes a cell only for the characters of its
own line terminator, so with "\n" a bare CR in a wire string went out unquoted and a spreadsheet
started a new row there. Text that came off the wire (pipe names, user names, annotations) is never
trusted: wherever a spreadsheet could start reading a cell or a line of one (the start of the cell,
or just after a CR or LF inside it) and finds =, +, -, @, tab or CR, a single quote is put first, as
OWASP advises against CSV injection. An empty table in JSON lines is an empty file.
"""

from __future__ import annotations

import errno
import io
import re
from collections.abc import Iterable
from os import PathLike
from pathlib import Path

import pandas as pd

from analyzer.report.columns import STR, TIME
from analyzer.report.tables import SCHEMAS, Tables

# A table to write beside the base ones: (file name without extension, frame, its schema).
NamedFrame = tuple[str, pd.DataFrame, dict[str, str]]

FORMATS = ("csv", "jsonl", "parquet")
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
LINE_TERMINATOR = "\r\n"  # RFC 4180; also makes the csv writer quote every cell holding a CR or an LF
# Where a spreadsheet starts reading a formula: at the start of the cell or of any line inside it.
_FORMULA_START = r"(?<![^\r\n])(?=[=+\-@\t\r])"
_HAS_FORMULA = r"(?:^|[\r\n])[=+\-@\t\r]"


def neutralise(value: str) -> str:
    """A cell safe to open in a spreadsheet: a `'` before every formula start, in the cell and after
    each line break inside it."""
    return re.sub(_FORMULA_START, "'", value)


def _as_text(df: pd.DataFrame, schema: dict[str, str], spreadsheet_safe: bool) -> pd.DataFrame:
    out = df.copy()
    for col, dtype in schema.items():
        if dtype == TIME:
            out[col] = out[col].dt.strftime(ISO_FORMAT).astype(STR)
        elif dtype == STR and spreadsheet_safe:
            mask = out[col].str.contains(_HAS_FORMULA, na=False, regex=True)
            if mask.any():
                out.loc[mask, col] = out.loc[mask, col].map(neutralise)
    result: pd.DataFrame = out
    return result


def _write_csv(df: pd.DataFrame, schema: dict[str, str], target: str | Path | io.StringIO) -> None:
    _as_text(df, schema, True).to_csv(target, index=False, lineterminator=LINE_TERMINATOR, float_format="%.6f")


def csv_text(df: pd.DataFrame, schema: dict[str, str]) -> str:
    """One table as CSV text, with the same conventions and spreadsheet safety as the files."""
    buf = io.StringIO()
    _write_csv(df, schema, buf)
    return buf.getvalue()


def write_frame(df: pd.DataFrame, schema: dict[str, str], path: str | PathLike[str], fmt: str = "csv") -> Path:
    """Write one table to path in fmt (csv, jsonl or parquet); the path written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(path)
    if fmt == "csv":
        _write_csv(df, schema, out)
    elif fmt == "jsonl":
        if df.empty:
            out.write_bytes(b"")  # pandas writes one blank line for no rows: that would read as a record
        else:
            _as_text(df, schema, False).to_json(out, orient="records", lines=True)
    else:
        df.to_parquet(out, index=False)
    return out


def write_tables(
    tables: Tables, out_dir: str | PathLike[str], fmt: str = "csv", extra: Iterable[NamedFrame] = ()
) -> list[Path]:
    """Write every table, then every extra (name, frame, schema), as <out_dir>/<name>.<ext>; the paths written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():  # mkdir would say "File exists", which misleads
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(out))
    out.mkdir(parents=True, exist_ok=True)
    named: list[NamedFrame] = [(name, df, SCHEMAS[name]) for name, df in tables.items()]
    return [write_frame(df, schema, out / f"{name}.{fmt}", fmt) for name, df, schema in [*named, *extra]]
