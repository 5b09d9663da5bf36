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
from typing import Any

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
    text = escape(str(value))
    if text == "":
        return EMPTY
    if text in (UNSET, EMPTY):
        return f"\\x{ord(text[0]):02x}" + text[1:]
    return text


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


def log_text(path_name: str, fields: Sequence[Field], rows: Iterable[Sequence[Any]], fmt: str = "zeek") -> str:
    """The whole log as text; '' when there are no rows."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown Zeek log format {fmt!r}; choose one of {', '.join(FORMATS)}")
    opened = time.time()
    lines = [tsv_line(r, fields) if fmt == "zeek" else json_line(r, fields) for r in rows]
    if not lines:
        return ""
    if fmt == "zeek":
        lines = [*header(path_name, fields, opened), *lines, f"#close{SEPARATOR}{time.strftime(_OPEN_FORMAT)}"]
    return "\n".join(lines) + "\n"


def write_log(
    out_dir: str | Path, path_name: str, fields: Sequence[Field], df: pd.DataFrame, fmt: str = "zeek"
) -> Path | None:
    """Write df (its columns named as the fields) to <out_dir>/<path_name>.log; None when df is empty."""
    names = [name for name, _k in fields]
    rows = df[names].astype(object).itertuples(index=False, name=None)
    text = log_text(path_name, fields, rows, fmt)
    if not text:
        return None
    out = Path(out_dir) / f"{path_name}.log"
    out.write_text(text, encoding="utf-8")
    return out
