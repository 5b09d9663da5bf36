"""Text bound for a terminal ([analyzer.report.terminal], the summary, the CLI): no control characters and no
rich markup from the wire or from file names (issue 13 item 4); the summary readable when piped and
able to tell same-named inputs apart (issue 10)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

import analyzer
from analyzer.cli import echo, main
from analyzer.report.summary import display_names, print_summary
from analyzer.report.terminal import plain_text, printable, printable_lines
from tests.conftest import SAMPLES

EVIL = "[link=http://evil.example]x[/link][blink]b[/blink]\x1b]0;pwned\x07\x1b[31m\x9b2J\u202eabc"


def test_printable_removes_c0_c1_and_format_characters() -> None:
    out = printable(EVIL)
    assert out.isprintable()
    for ch in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert ch not in out
    assert out.startswith("[link=http://evil.example]")  # markup characters are text, not removed
    assert printable_lines("a\x1b\nb\rc") == "a?\nb?c"
    assert plain_text(EVIL).plain == out and plain_text(EVIL).spans == []


def test_summary_prints_wire_names_literally_not_as_markup() -> None:
    res = analyzer.analyze([SAMPLES / "smb2_pipes.pcap"])
    res.binds["pipe_name"] = EVIL
    res.calls["pipe_name"] = EVIL
    buf = io.StringIO()
    print_summary(res, Path("out[bold]x"), "csv", Console(file=buf, force_terminal=True, width=300))
    text = buf.getvalue()
    assert "\x1b]8;" not in text  # no OSC 8 hyperlink from the [link] markup
    assert "\x1b[5m" not in text  # no blink
    assert "\x1b]0;" not in text and "\x07" not in text and "\x9b" not in text
    assert "[link=http://evil.example]x[/link][blink]b[/blink]" in text
    assert "out[bold]x/*.csv" in text


def test_a_hostile_file_name_reaches_the_terminal_as_text(tmp_path: Path) -> None:
    name = tmp_path / "[blink]e\x1b]0;t\x07vil.pcap"
    shutil.copyfile(SAMPLES / "epm_map_session.pcap", name)
    res = CliRunner().invoke(main, ["analyze", str(name), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\x07" not in res.output
    assert "[blink]e?]0;t?vil.pcap" in res.output


@pytest.mark.parametrize("command", ["hosts", "endpoints"])
def test_csv_to_a_terminal_carries_no_wire_bytes(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = echo.read_captures

    def hostile(captures: tuple[str, ...], quiet: bool) -> analyzer.AnalysisResult:
        res = real(captures, quiet)
        res.hosts["users"] = EVIL + "\rline"
        res.endpoints["annotation"] = EVIL + "\rline"  # the inventory is built from it, lazily
        return res

    monkeypatch.setattr(echo, "read_captures", hostile)
    args = [command, str(SAMPLES / "epm_lookup_dump.pcap"), "--format", "csv"]
    piped = CliRunner().invoke(main, args)
    raw = piped.stdout_bytes.decode()
    assert piped.exit_code == 0 and "\x1b" in raw and "\rline" in raw  # piped: the same bytes as the file
    monkeypatch.setattr(echo, "stdout_is_terminal", lambda: True)
    shown = CliRunner().invoke(main, args)
    assert shown.exit_code == 0
    text = shown.stdout_bytes.decode()
    assert "\x1b" not in text and "\x9b" not in text and "\r" not in text
    assert "[link=http://evil.example]" in text and "?line" in text
    assert len(text.splitlines()) == len(raw.split("\r\n")) - 1  # one line per record


def test_the_summary_is_not_squeezed_when_piped(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["analyze", "-o", str(tmp_path / "out"), str(SAMPLES)])
    assert res.exit_code == 0, res.output
    assert "…" not in res.output
    for name in ("nanosecond_bigendian.pcap", "two_interfaces.pcapng", "cl_udp.pcap"):
        assert name in res.output


def test_inputs_sharing_a_file_name_are_shown_by_their_path(tmp_path: Path) -> None:
    for d in ("suite/a", "suite/b/c"):
        (tmp_path / d).mkdir(parents=True)
        shutil.copyfile(SAMPLES / "epm_map_session.pcap", tmp_path / d / "input.pcap")
    shutil.copyfile(SAMPLES / "cl_udp.pcap", tmp_path / "suite" / "cl_udp.pcap")
    res = CliRunner().invoke(main, ["analyze", str(tmp_path / "suite"), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert " a/input.pcap " in res.output and " b/c/input.pcap " in res.output
    assert " cl_udp.pcap " in res.output  # a unique name stays short
    assert display_names(["x/1.pcap", "y/2.pcap"]) == {"x/1.pcap": "1.pcap", "y/2.pcap": "2.pcap"}
