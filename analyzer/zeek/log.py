"""Writing a table as a Zeek log: the ASCII (TSV) writer's format and its JSON variant.

The TSV format is Zeek's `Log::WRITER_ASCII` default (src/logging/writers/ascii/Ascii.cc,
src/threading/formatters/Ascii.cc): the meta lines `#separator \\x09`, `#set_separator`,
`#empty_field`, `#unset_field`, `#path`, `#open`, `#fields`, `#types`, then one line per record with
fields joined by TAB, then `#close`. Times are epoch seconds with 6 decimals, intervals the same,
ports and counts integers, bools T/F. An unset field is `-`, an empty string `(empty)`; a value that is
literally `-` or `(empty)` gets its first byte hex-escaped, and so does a line that would start with
`#`. Inside strings a backslash becomes `\\\\`, the separator and other non-printable characters
`\\xNN`; other UTF-8 text passes through (`LogAscii::enable_utf_8`). Unlike Zeek we also escape
non-printable non-ASCII characters (U+2028, U+200B, ...): wire text must not split lines or hide.

JSON (`LogAscii::use_json = T`): one object per line, no meta lines, dotted field names, unset fields
left out, times and intervals as numbers (epoch seconds), ports and counts as numbers; strings have
non-printable bytes as `\\xNN` text and are then JSON-escaped.

Like Zeek, a log with no records is not written at all.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import pandas as pd

Field = tuple[str, str]  # (name, Zeek type: time interval string addr port count int double bool set[string])

FORMATS = ("zeek", "zeek-json")
SEPARATOR = "\t"
SET_SEPARATOR = ","
EMPTY = "(empty)"
UNSET = "-"
_OPEN_FORMAT = "%Y-%m-%d-%H-%M-%S"


def escape(text: str) -> str:
    """A string as the ASCII writer prints it: backslash doubled, TAB and non-printables as \\xNN."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8"))
    return "".join(out)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def time_text(value: Any) -> str:
    """A time as Zeek prints it, epoch seconds with 6 decimals, from a pandas Timestamp (exact, from
    its nanoseconds), integer nanoseconds, or float seconds."""
    if isinstance(value, pd.Timestamp):
        us = (int(value.value) + 500) // 1000
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"
    return fixed6(float(value))


def fixed6(seconds: float) -> str:
    """Zeek's rendering of a double: fixed notation, 6 decimals."""
    return f"{seconds:.6f}"


def _tsv_value(value: Any, kind: str) -> str:
    if _missing(value):
        return UNSET
    if kind in ("time", "interval", "double"):
        return time_text(value) if kind == "time" else fixed6(float(value))
    if kind in ("port", "count", "int"):
        return str(int(value))
    if kind == "bool":
        return "T" if bool(value) else "F"
    if kind.startswith("set[") or kind.startswith("vector["):
        items = list(value) if not isinstance(value, str) else [v for v in value.split(SET_SEPARATOR) if v]
        return SET_SEPARATOR.join(escape(str(v)).replace(",", "\\x2c") for v in items) if items else EMPTY
    return _text(value)


def tsv_line(values: Sequence[Any], fields: Sequence[Field]) -> str:
    """One record line (without the newline)."""
    cells = [_tsv_value(v, kind) for v, (_name, kind) in zip(values, fields, strict=True)]
    line = SEPARATOR.join(cells)
    return "\\x23" + line[1:] if line.startswith("#") else line


def _json_value(value: Any, kind: str) -> Any:
    if kind == "time":
        return float(time_text(value))
    if kind in ("interval", "double"):
        v = float(value)
        return None if math.isinf(v) or math.isnan(v) else v
    if kind in ("port", "count", "int"):
        return int(value)
    if kind == "bool":
        return bool(value)
    if kind.startswith("set[") or kind.startswith("vector["):
        items = list(value) if not isinstance(value, str) else [v for v in value.split(SET_SEPARATOR) if v]
        return [_hex_text(str(v)) for v in items]
    return _hex_text(str(value))


def _hex_text(text: str) -> str:
    """Zeek's JSON string policy: non-printable characters as \\xNN text (JSON escaping follows)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else "".join(f"\\x{b:02x}" for b in ch.encode()) for ch in text)


def json_line(values: Sequence[Any], fields: Sequence[Field]) -> str:
    obj = {name: _json_value(v, kind) for v, (name, kind) in zip(values, fields, strict=True) if not _missing(v)}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def header(path_name: str, fields: Sequence[Field], opened: float) -> list[str]:
    return [
        "#separator \\x09",
        f"#set_separator{SEPARATOR}{SET_SEPARATOR}",
        f"#empty_field{SEPARATOR}{EMPTY}",
        f"#unset_field{SEPARATOR}{UNSET}",
        f"#path{SEPARATOR}{path_name}",
        f"#open{SEPARATOR}{time.strftime(_OPEN_FORMAT, time.localtime(opened))}",
        "#fields" + SEPARATOR + SEPARATOR.join(name for name, _k in fields),
        "#types" + SEPARATOR + SEPARATOR.join(kind for _n, kind in fields),
    ]


def _lines(rows: Iterable[Sequence[Any]], fields: Sequence[Field], fmt: str) -> list[str]:
    return [tsv_line(r, fields) if fmt == "zeek" else json_line(r, fields) for r in rows]


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown Zeek log format {fmt!r}; choose one of {', '.join(FORMATS)}")


def log_text(path_name: str, fields: Sequence[Field], rows: Iterable[Sequence[Any]], fmt: str = "zeek") -> str:
    """The whole log as text; '' when there are no rows."""
    _check(fmt)
    opened = time.time()
    lines = _lines(rows, fields, fmt)
    if not lines:
        return ""
    if fmt == "zeek":
        lines = [*header(path_name, fields, opened), *lines, _close()]
    return "\n".join(lines) + "\n"


def _close() -> str:
    return f"#close{SEPARATOR}{time.strftime(_OPEN_FORMAT)}"


def tsv_lines(df: pd.DataFrame, fields: Sequence[Field]) -> list[str]:
    """The record lines of a frame (its columns named as the fields), each column made text at once:
    the same lines as `tsv_line` row by row, in a third of the time (no dispatch on the type per cell)."""
    columns = [_tsv_column(df[name], kind) for name, kind in fields]
    lines = [SEPARATOR.join(cells) for cells in zip(*columns, strict=True)]
    return ["\\x23" + line[1:] if line.startswith("#") else line for line in lines]


def _tsv_column(col: pd.Series, kind: str) -> list[str]:
    """One column's cells as `_tsv_value` makes them."""
    array = col.array
    if kind == "time" and isinstance(array, pd.arrays.DatetimeArray):
        us = (array.as_unit("ns").asi8 + 500) // 1000
        missing = array.isna().tolist()
        return [
            UNSET if m else f"{u // 1_000_000}.{u % 1_000_000:06d}" for u, m in zip(us.tolist(), missing, strict=True)
        ]
    values = col.astype(object).tolist()
    if kind in ("interval", "double"):
        return [UNSET if _missing(v) else f"{float(v):.6f}" for v in values]
    if kind in ("port", "count", "int"):
        return [UNSET if _missing(v) else str(int(v)) for v in values]
    if kind == "string":
        return [UNSET if _missing(v) else _text(v) for v in values]
    return [_tsv_value(v, kind) for v in values]


def _text(value: Any) -> str:
    text = escape(str(value))
    if text == "":
        return EMPTY
    if text in (UNSET, EMPTY):
        return f"\\x{ord(text[0]):02x}" + text[1:]
    return text


def write_log(
    out_dir: str | Path,
    path_name: str,
    fields: Sequence[Field],
    df: pd.DataFrame | Iterable[pd.DataFrame],
    fmt: str = "zeek",
) -> Path | None:
    """Write df (its columns named as the fields; or its rows as a stream of such frames, written a
    frame at a time) to <out_dir>/<path_name>.log; None when there are no rows (no file, as Zeek)."""
    _check(fmt)
    names = [name for name, _k in fields]
    out = Path(out_dir) / f"{path_name}.log"
    opened = time.time()
    f: IO[str] | None = None
    try:
        for chunk in [df] if isinstance(df, pd.DataFrame) else df:
            if chunk.empty:
                continue
            if fmt == "zeek":
                lines = tsv_lines(chunk, fields)
            else:
                lines = _lines(chunk[names].astype(object).itertuples(index=False, name=None), fields, fmt)
            if f is None:
                f = out.open("w", encoding="utf-8")  # closed below, also on error
                if fmt == "zeek":
                    f.write("\n".join(header(path_name, fields, opened)) + "\n")
            f.write("\n".join(lines) + "\n")
        if f is not None and fmt == "zeek":
            f.write(_close() + "\n")
    finally:
        if f is not None:
            f.close()
    return out if f is not None else None
