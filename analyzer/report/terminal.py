"""The one sanitiser for text bound for a terminal: wire strings and file names alike.

A terminal acts on what it is sent: C0 controls (ESC starts a window-title change, colours, an OSC 8
hyperlink), C1 controls (U+009B is a one-character CSI) and format characters (bidi overrides that
reorder what is shown) all come through a pipe name or a file name as easily as through anything
else. `printable` turns every character Python does not call printable into '?'; `plain_text` also
keeps rich from reading the result as markup (`[link=...]`, `[blink]`), by handing rich a `Text`
object, which it prints as it is. Nothing here knows about tables or records.

Every text rendering goes through `printable`: the CLI, `text.py`, `endpoints_text.py`, the findings
text and the HTML report (which HTML-escapes after it). Two outputs escape differently on purpose:
`csv_rows.neutralise` guards CSV cells against spreadsheet formulas (a file, not a terminal), and
`zeek.log.escape` follows Zeek's own `\\xNN` rule so that our logs read like Zeek's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

REPLACEMENT = "?"


def printable(value: object) -> str:
    """str(value) with every non-printable character (C0, C1, format, unassigned) as '?'."""
    s = "" if value is None else str(value)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else REPLACEMENT for ch in s)


def printable_lines(text: str) -> str:
    """Multi-line text with each line made printable; the line breaks themselves are kept."""
    return "\n".join(printable(line) for line in text.split("\n"))


def plain_text(value: object, style: str = "") -> Text:
    """A rich `Text` of the printable value: rich prints it literally, never as markup."""
    from rich.text import Text

    return Text(printable(value), style=style)
