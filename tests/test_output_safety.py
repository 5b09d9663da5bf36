"""What the writers let through from hostile wire strings ([analyzer.report.output]): CSV quoting and the
formula neutraliser (issue 13 item 3), empty JSON lines tables (item 8)."""

from __future__ import annotations

import csv
import io
import re
import struct
from pathlib import Path

import pandas as pd
import pytest

import analyzer
from analyzer.report.columns import STR
from analyzer.report.csv_rows import neutralise
from analyzer.report.output import LINE_TERMINATOR, csv_text, write_frame
from analyzer.report.tables import SCHEMAS
from analyzer.report.views import VIEW_SCHEMAS

ALL = {**SCHEMAS, **VIEW_SCHEMAS}
HOSTILE = [
    "ok\r=cmd|' /C calc'!A0",  # a bare CR: the row-splitting case
    "ok\n+1+cmd|' /C calc'!A0",
    "ok\r\n@SUM(1)",
    'a,"b",c',
    '=HYPERLINK("http://x")',
    "\t-2",
]
# A line start (of the cell or after any CR/LF inside it) a spreadsheet would read as a formula.
FORMULA = re.compile(r"(?:^|[\r\n])[=+\-@\t]")


def _hostile_frame(schema: dict[str, str]) -> pd.DataFrame:
    """One row per hostile string, in every text column; the other columns missing."""
    n = len(HOSTILE)
    return pd.DataFrame({c: pd.Series(HOSTILE if d == STR else [None] * n, dtype=d) for c, d in schema.items()})


@pytest.mark.parametrize("table", list(ALL))
def test_hostile_cells_stay_in_their_row_and_cannot_start_a_formula(table: str) -> None:
    schema = ALL[table]
    if STR not in schema.values():
        pytest.skip("no text column")
    text = csv_text(_hostile_frame(schema), schema)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 1 + len(HOSTILE), rows  # nothing started a row of its own
    assert all(len(r) == len(schema) for r in rows)
    for row in rows[1:]:
        for cell in row:
            assert not FORMULA.search(cell), (table, cell)
    # Every record ends in CRLF, and every CR or LF inside a cell is inside quotes.
    assert text.endswith(LINE_TERMINATOR)
    outside = re.sub(r'"(?:[^"]|"")*"', "", text)
    assert "\r" not in outside.replace("\r\n", "") and "\n" not in outside.replace("\r\n", "")


def test_pandas_reads_the_neutralised_text_back() -> None:
    df = pd.DataFrame({"detail": pd.array(HOSTILE, dtype=STR)})
    back = pd.read_csv(io.StringIO(csv_text(df, {"detail": STR})), dtype=str, keep_default_na=False)
    assert back["detail"].tolist() == [neutralise(v) for v in HOSTILE]
    assert back["detail"][0] == "ok\r'=cmd|' /C calc'!A0"
    assert neutralise("a\r\n=b") == "a\r\n'=b" and neutralise("\r=x") == "'\r'=x"
    assert neutralise("\\PIPE\\lsarpc\nnext") == "\\PIPE\\lsarpc\nnext"


def test_an_empty_jsonl_table_is_an_empty_file(tmp_path: Path) -> None:
    for name, schema in ALL.items():
        empty = pd.DataFrame({c: pd.Series(dtype=d) for c, d in schema.items()})
        path = write_frame(empty, schema, tmp_path / f"{name}.jsonl", "jsonl")
        assert path.read_bytes() == b"", name
    one = pd.DataFrame({"detail": pd.array(["x"], dtype=STR)})
    assert write_frame(one, {"detail": STR}, tmp_path / "one.jsonl", "jsonl").read_text() == '{"detail":"x"}\n'


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def test_a_cell_naming_link_types_is_capped(tmp_path: Path) -> None:
    """Issue 13 item 8: one pcapng with 3,000 interfaces of unknown link types made a violation detail
    (and the captures' link_types) name every one of them."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idbs = _block(1, struct.pack("<HHI", 1, 0, 65535))  # interface 0: Ethernet
    idbs += b"".join(_block(1, struct.pack("<HHI", 1000 + i, 0, 65535)) for i in range(3000))
    frame = bytes(60)
    epb = _block(6, struct.pack("<IIIII", 0, 0, 0, len(frame), len(frame)) + frame)
    path = tmp_path / "many.pcapng"
    path.write_bytes(shb + idbs + epb)
    res = analyzer.analyze([path])
    (detail,) = res.violations.loc[res.violations["what"] == "unsupported_link_type", "detail"]
    assert len(detail) < 200 and "1000" in detail and "(2984 more)" in detail, detail
    link_types = res.captures["link_types"].iloc[0]
    assert len(link_types) < 200 and link_types.startswith("1,1000,") and "(2985 more)" in link_types
