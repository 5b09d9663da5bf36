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

The rows of a piece are made column by column in Arrow where its columns' dtypes allow
(`report.csv_rows`, `report.json_rows`: the same bytes, held equal by property tests), else through
the csv module and pandas' `to_json`.
"""

from __future__ import annotations

import csv
import errno
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd

from analyzer.report import csv_rows, json_rows
from analyzer.report.columns import STR, TIME, frame
from analyzer.report.csv_rows import HAS_FORMULA, neutralise
from analyzer.report.tables import CHUNK_ROWS, SCHEMAS

# A table: a whole frame, or its rows as a stream of frames in order (`report.spooled.Spooled.chunks`).
TableData = pd.DataFrame | Iterable[pd.DataFrame]
# A table to write beside the base ones: (file name without extension, frame or what makes it, its schema).
NamedFrame = tuple[str, TableData | Callable[[], TableData], dict[str, str]]

FORMATS = ("csv", "jsonl", "parquet")
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
LINE_TERMINATOR = "\r\n"  # RFC 4180; also makes the csv writer quote every cell holding a CR or an LF


def _as_text(df: pd.DataFrame, schema: dict[str, str], spreadsheet_safe: bool) -> pd.DataFrame:
    out = df.copy()
    for col, dtype in schema.items():
        if dtype == TIME:
            out[col] = out[col].dt.strftime(ISO_FORMAT).astype(STR)
        elif dtype == STR and spreadsheet_safe:
            mask = out[col].str.contains(HAS_FORMULA, na=False, regex=True)
            if mask.any():
                out.loc[mask, col] = out.loc[mask, col].map(neutralise)
    result: pd.DataFrame = out
    return result


def _write_csv(df: pd.DataFrame, schema: dict[str, str], target: IO[str], header: bool = True) -> None:
    """Plain pieces (a flood's rows) by `report.csv_rows`; any other through the csv module (what
    pandas' to_csv calls too), each column made text once:
    times formatted by numpy, fractions with 6 decimals, wire text neutralised where it needs it.
    Measured on the 200 MB capture's tables, this is a third of to_csv's time (its per-call setup
    and the copy of the frame the formula check needs)."""
    plain = csv_rows.rows(df, schema, ",", LINE_TERMINATOR)  # the same bytes, column by column (a flood's rows)
    if plain is not None:
        target.write((",".join(schema) + LINE_TERMINATOR if header else "") + plain)
        return
    writer = csv.writer(target, lineterminator=LINE_TERMINATOR)
    if header:
        writer.writerow(df.columns)
    if len(df):
        writer.writerows(zip(*(_cells(df[col], schema.get(str(col))) for col in df.columns), strict=True))


def _cells(col: pd.Series, kind: str | None) -> list[Any]:
    """One column's cells as the csv writer takes them (None is an empty cell), formatted as to_csv
    with this module's conventions formats them."""
    array = col.array
    if isinstance(array, pd.arrays.DatetimeArray):
        us = array.as_unit("us").asi8
        text = np.char.add(np.datetime_as_string(us.view("datetime64[us]"), unit="us"), "Z").astype(object)
        text[array.isna()] = None
        return list(text.tolist())
    values = col.to_numpy(dtype=object, na_value=cast(Any, None)).tolist()
    if kind == STR:
        return [neutralise(v) if v and _needs_quote_check(v) else v for v in values]
    if pd.api.types.is_float_dtype(col.dtype):
        return [None if v is None or v != v else f"{v:.6f}" for v in values]
    return list(values)


def _needs_quote_check(value: str) -> bool:
    """Whether a cell may hold a formula start: at its start, or anywhere after a line break."""
    return value[0] in csv_rows.FORMULA_STARTS or (
        ("\r" in value or "\n" in value) and re.search(HAS_FORMULA, value) is not None
    )


def csv_text(df: pd.DataFrame, schema: dict[str, str]) -> str:
    """One table as CSV text, with the same conventions and spreadsheet safety as the files."""
    buf = io.StringIO()
    _write_csv(df, schema, buf)
    return buf.getvalue()


def _pieces(table: TableData, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """A table as frames of at most about `rows` rows: a whole frame is sliced (its text copy for
    the writer is then one slice at a time), a stream of chunks passes as it is, its small chunks
    joined (`_joined`)."""
    if isinstance(table, pd.DataFrame):
        for start in range(0, len(table), rows):
            yield table.iloc[start : start + rows]
    else:
        yield from _joined(table, rows)


def _joined(chunks: Iterable[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """Consecutive chunks of the same dtypes joined up to about `rows` rows. Writing costs about a
    millisecond a piece whatever its size, and a stream can come in many small ones: data_quality's
    capture rows go between slices of its connection rows, 290 pieces for the 2,396 rows of
    ../shared/captures (0.3 s of writing). Joining changes no cell: chunks of other dtypes than the
    ones before them are not joined to them."""
    held: list[pd.DataFrame] = []
    count = 0
    for chunk in chunks:
        if held and (count + len(chunk) > rows or not chunk.dtypes.equals(held[0].dtypes)):
            yield _one(held)
            held, count = [], 0
        held.append(chunk)
        count += len(chunk)
    if held:
        yield _one(held)


def _one(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def write_frame(df: TableData, schema: dict[str, str], path: str | PathLike[str], fmt: str = "csv") -> Path:
    """Write one table (a frame, or its rows as a stream of frames in order) to path in fmt (csv,
    jsonl or parquet), a slice at a time; the path written. The bytes are those of writing the
    whole table at once."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(path)
    if fmt == "csv":
        with open(out, "w", encoding="utf-8", newline="") as f:
            header = True
            for piece in _pieces(df):
                _write_csv(piece, schema, f, header)
                header = False
            if header:  # no rows: the header alone
                _write_csv(frame(schema, {}), schema, f, True)
    elif fmt == "jsonl":
        # No rows is an empty file: pandas writes one blank line for no rows, which would read as a record.
        with open(out, "w", encoding="utf-8", newline="") as f:
            for piece in _pieces(df):
                if not piece.empty:
                    made = json_rows.lines(piece, schema)  # the same bytes, column by column
                    f.write(
                        made
                        if made is not None
                        else _as_text(piece, schema, False).to_json(orient="records", lines=True)
                    )
    else:
        _write_parquet(df, schema, out)
    return out


# Rows per row group: four chunks. pyarrow's writer holds a row group's Arrow columns and its encoded
# pages until the group ends; measured on the bind flood's 200,000-row binds table, 65,536-row groups
# (converted from frames) added 157 MiB to the process at their peak, 16,384-row groups gathered as
# Arrow 32 MiB, for a file the same size within 0.5 %.
PARQUET_ROWS = 16_384


def _write_parquet(df: TableData, schema: dict[str, str], out: Path) -> None:
    """A table (a frame, sliced, or a stream of frames) as row groups of exactly `PARQUET_ROWS` rows
    (the last: the rest), each piece converted to Arrow as it comes (`Table.from_pandas`, with pandas'
    metadata, so the file reads back typed) and held as Arrow until its group is written: what is
    held is one row group, whatever the table's length. A table of no rows is its schema's empty frame."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer: Any = None
    held: list[Any] = []
    rows = 0
    try:
        for piece in _pieces(df):
            if not len(piece):
                continue
            table = pa.Table.from_pandas(piece, preserve_index=False)
            writer = writer or pq.ParquetWriter(out, table.schema)
            held.append(table.cast(writer.schema))
            rows += len(piece)
            while rows >= PARQUET_ROWS:
                group = pa.concat_tables(held)
                writer.write_table(group.slice(0, PARQUET_ROWS))
                held, rows = [group.slice(PARQUET_ROWS)], rows - PARQUET_ROWS
        if writer is None:  # no rows at all
            empty = pa.Table.from_pandas(frame(schema, {}), preserve_index=False)
            writer = pq.ParquetWriter(out, empty.schema)
            writer.write_table(empty)
        elif rows:
            writer.write_table(pa.concat_tables(held))
    finally:
        if writer is not None:
            writer.close()


def write_tables(
    tables: Mapping[str, TableData], out_dir: str | PathLike[str], fmt: str = "csv", extra: Iterable[NamedFrame] = ()
) -> list[Path]:
    """Write every base table (name -> frame or stream of frames, see `SCHEMAS`), then every extra
    (name, frame, schema), as <out_dir>/<name>.<ext>; the paths written. An extra's frame may be a
    callable that makes it, called only when the base tables are written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():  # mkdir would say "File exists", which misleads
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(out))
    out.mkdir(parents=True, exist_ok=True)
    written = [write_frame(df, SCHEMAS[name], out / f"{name}.{fmt}", fmt) for name, df in tables.items()]
    for name, df, schema in extra:
        written.append(write_frame(df() if callable(df) else df, schema, out / f"{name}.{fmt}", fmt))
    return written
