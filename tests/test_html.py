"""The HTML report ([analyzer.report.html]): self-contained, escaped, deterministic, and opened in a real
headless browser (Debian's chromium) that must load it without a console error.

The browser is driven over the DevTools protocol on --remote-debugging-pipe (file descriptors 3 and 4,
NUL-separated JSON), with nothing but the standard library: navigate, wait for the load event, ask the
page for its tables and decoded images, take a screenshot, and collect every exception, console error
and log error (CSP violations included) the page produced.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import html as html_lib
import io
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

import analyzer
from analyzer.api import from_records
from analyzer.cli import main
from analyzer.records import Records
from analyzer.report import views
from analyzer.report.html import heatmap_table
from analyzer.report.plots import cell_colours, heatmap_grid, timeline_bucket, timeline_png
from tests.conftest import CAPTURES, SAMPLES, needs_shared

INSTALL = "apt-get update && apt-get install -y chromium"
CHROMIUM_FALLBACK = Path("/usr/bin/chromium")
SECTIONS = [
    "Findings",
    "Summary",
    "Services negotiated between hosts",
    "Hosts as servers",
    "Hosts as clients",
    "Endpoint inventory",
    "Activity timeline",
    "Host x interface",
    "Dynamic ports",
    "Data quality",
    "Violations",
]


@pytest.fixture(scope="module")
def page() -> str:
    return analyzer.analyze([SAMPLES]).html()


# -- the file itself -------------------------------------------------------------------------------


def test_report_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I), "external reference"
    assert not re.search(r"<script|<link|<iframe|<object|<embed|@import|url\(", page, re.I)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs and all(h.startswith("#") for h in hrefs)  # only in-page anchors
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)


def test_report_has_every_section_table_and_plot(page: str) -> None:
    assert re.findall(r"<h2>([^<]*)</h2>", page) == SECTIONS
    # findings, captures, services, servers, clients, inventory, data quality, violations
    assert page.count("<table>") == 8
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2  # timeline and dynamic ports; the heat map is a table
    assert page.count('<table class="heatmap">') == 1
    for data in images:
        img = Image.open(io.BytesIO(base64.b64decode(data)))
        assert img.format == "PNG" and img.width >= 600 and img.height >= 250
    for text in ("svcctl", "ncacn_ip_tcp:10.0.0.10[49667]", "announced-and-used", "1 TCP gap", "file truncated"):
        assert text in page, text


def test_findings_come_first_most_severe_first(page: str) -> None:
    section = page.split('<section id="findings">', 1)[1].split("</section>", 1)[0]
    assert "finding(s):" in section and "T1053.005" in section and "rpc_endpoint_enum" in section
    assert section.index("T1053.005") < section.index("rpc_endpoint_enum")  # high before medium
    assert page.index('id="findings"') < page.index('id="summary"')


def test_report_is_deterministic(page: str) -> None:
    assert analyzer.analyze([SAMPLES]).html() == page


def test_wire_text_is_escaped_in_the_report() -> None:
    res = analyzer.analyze([SAMPLES / "epm_map_session.pcap"])
    res.calls["user"] = '<script>alert("u")</script>\x1b[2J'  # the matrix is built from this, lazily
    res.hosts["pipes"] = "<img src=x onerror=alert(1)>"
    page = res.html('Title <b>"x"</b>')
    assert "<script" not in page and "<img src=x" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;u&quot;)&lt;/script&gt;?[2J" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "\x1b" not in page


def test_an_empty_run_still_makes_a_report() -> None:
    page = from_records(Records()).html()
    assert "Nothing to show." in page and "Activity timeline: no data." in page
    assert "<img" not in page and "0 capture file(s), no packets read." in page


# -- in a real browser -----------------------------------------------------------------------------


def chromium() -> str:
    """The chromium executable. Without one: a skip saying how to install it on a contributor's
    machine, and a failure in CI (the CI environment variable set), where a skip would hide the check."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if CHROMIUM_FALLBACK.exists():
        return str(CHROMIUM_FALLBACK)
    message = f"chromium not found; the HTML report is tested in it. Install it with: {INSTALL}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: this check must run)")
    pytest.skip(message)


def test_no_browser_skips_with_a_reason_unless_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM_FALLBACK", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"chromium not found.*apt-get install -y chromium"):
        chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        chromium()


class Browser:
    """Headless chromium over the DevTools protocol on a pipe: commands out on fd 3, answers and
    events back on fd 4, each message JSON ended by a NUL byte."""

    def __init__(self, exe: str, profile: Path) -> None:
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()

        def in_child() -> None:
            # Move the pipe ends to 3 and 4 via fds >= 10 so neither dup2 overwrites the other.
            a = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",  # root in containers and CI
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
            ],
            # Not pass_fds=(3, 4): that needs fds 3 and 4 open here already (EBADF otherwise). The
            # pipes are close-on-exec, so chromium inherits only the copies dup2 made at 3 and 4.
            close_fds=False,
            preexec_fn=in_child,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._next(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                result: dict[str, Any] = m["result"]
                return result
            self.events.append(m)

    def wait_for(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._next(deadline))

    def _next(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise EOFError("chromium closed the DevTools pipe")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def open(self, url: str, width: int = 1280, height: int = 2000) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})
        self.session = self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of expression in the page (DevTools evaluation is not subject to the page's CSP)."""
        out = self.send("Runtime.evaluate", {"expression": f"JSON.stringify({expression})", "returnByValue": True})
        return json.loads(out["result"]["value"])

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"]))
        return path

    def errors(self) -> list[str]:
        """Every uncaught exception, console.error/assert and error-level log entry seen so far."""
        self.send("Runtime.evaluate", {"expression": "0"})  # a round trip flushes pending events
        out = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"exception: {d.get('text')} {d.get('exception', {}).get('description', '')}")
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"log ({p['entry']['source']}): {p['entry']['text']}")
        return out

    def close(self) -> None:
        # It may close the pipe before answering.
        with contextlib.suppress(OSError, EOFError, TimeoutError, RuntimeError):
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self._w)
        os.close(self._r)


def test_the_browser_harness_sees_console_errors(tmp_path: Path) -> None:
    """The control: a page with a blocked remote image, a console.error and an uncaught exception must
    show all three, or the clean result below would prove nothing."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        'img-src data:; script-src \'unsafe-inline\'"></head><body><img src="http://example.invalid/x.png">'
        '<script>console.error("boom"); no_such_function();</script></body></html>'
    )
    browser = Browser(chromium(), tmp_path / "profile")
    try:
        browser.open(bad.as_uri())
        errors = browser.errors()
        images = browser.evaluate("[...document.images].map(i => i.naturalWidth)")
    finally:
        browser.close()
    assert any("Content Security Policy" in e for e in errors), errors
    assert any(e.startswith("console: boom") for e in errors), errors
    assert any(e.startswith("exception:") and "no_such_function" in e for e in errors), errors
    assert images == [0]


def test_report_opens_in_headless_chromium_without_console_errors(tmp_path: Path, page: str) -> None:
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    browser = Browser(chromium(), tmp_path / "profile")
    try:
        browser.open(report.as_uri())
        facts = browser.evaluate(
            "{title: document.title, tables: document.querySelectorAll('table').length,"
            " rows: document.querySelectorAll('tbody tr').length,"
            " h2: [...document.querySelectorAll('h2')].map(h => h.textContent),"
            " images: [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])}"
        )
        shot = browser.screenshot(tmp_path / "report.png")
        errors = browser.errors()
    finally:
        browser.close()
    print(f"screenshot of the report: {shot}")
    assert errors == []
    assert facts["title"] == "RPC traffic report"
    assert facts["tables"] == 9 and facts["rows"] > 50  # the 7 tables, the heat map and the findings
    assert facts["h2"] == SECTIONS
    assert len(facts["images"]) == 2
    assert all(complete and w >= 600 and h >= 250 for complete, w, h in facts["images"]), facts["images"]
    img = Image.open(shot)
    assert img.format == "PNG" and img.size == (1280, 2000)
    grey = img.convert("L")
    lo, hi = cast(tuple[int, int], grey.getextrema())  # one band: (min, max)
    assert hi - lo > 150, "the screenshot is blank"
    dark = sum(grey.histogram()[:200])
    assert dark > 0.02 * img.width * img.height, "almost nothing drawn on the screenshot"


# -- the command -----------------------------------------------------------------------------------


def test_report_command_writes_one_file(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", str(SAMPLES / "epm_map_session.pcap"), "-o", str(out), "--title", "T1"])
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    assert "<title>T1</title>" in text and "svcctl" in text
    assert "-> " in res.output and str(out) in res.output
    quiet = CliRunner().invoke(main, ["report", "-q", str(SAMPLES / "epm_map_session.pcap"), "-o", str(out)])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_report_command_errors_are_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture")
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", "-q", str(junk), str(SAMPLES / "truncated.pcap"), "-o", str(out)])
    assert res.exit_code == 1 and len(res.stderr.splitlines()) == 1 and "junk.pcap" in res.stderr
    assert "truncated.pcap" in out.read_text()  # the readable capture is still reported
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["report", str(tmp_path / "empty"), "-o", str(out)])
    assert res.exit_code == 3 and "no capture files" in res.stderr
    res = CliRunner().invoke(main, ["report", str(SAMPLES / "truncated.pcap"), "-o", str(tmp_path / "no" / "r.html")])
    assert res.exit_code == 1 and "cannot write" in res.stderr and "Traceback" not in res.output


# -- what an analyst reads (issue 10) --------------------------------------------------------------

ZEROLOGON = CAPTURES / "zerologon" / "testing" / "Traces" / "CVE-2020-1472_exploit_win2016.pcap"
RPCDUMP = CAPTURES / "PCAP-ATTACK" / "Discovery" / "Discovery_impacket_rpcdump.pcapng"
PSEXEC = CAPTURES / "PCAP-ATTACK" / "Lateral_Movement" / "LM_psexec_smb_dcerpc_epm_svcctl.pcapng"


def _expected_heat(matrix: pd.DataFrame) -> dict[tuple[str, str], int]:
    """binds + calls per (host (role), interface), summed straight from the matrix."""
    want: dict[tuple[str, str], int] = {}
    for r in matrix.itertuples():
        for host in (f"{r.server_ip} (server)", f"{r.client_ip} (client)"):
            key = (host, r.interface_name)
            want[key] = want.get(key, 0) + int(r.binds) + int(r.calls)
    return want


def _heat_cells(page: str) -> dict[tuple[str, str], int]:
    """(row label, column label) -> number, read back from the heat-map table's HTML."""
    table = re.search(r'<table class="heatmap">(.*?)</table>', page, re.S)
    assert table, "no heat map"
    cols = [html_lib.unescape(c) for c in re.findall(r'<th class="col">([^<]*)</th>', table.group(1))]
    cells = {}
    for row in re.findall(r'<tr><th class="row">(.*?)</tr>', table.group(1)):
        label, rest = row.split("</th>", 1)
        values = re.findall(r"<td[^>]*>([^<]*)</td>", rest)
        assert len(values) == len(cols)
        for col, v in zip(cols, values, strict=True):
            cells[(html_lib.unescape(label), col)] = int(v) if v else 0
    return cells


def test_heat_map_labels_agree_with_a_known_matrix() -> None:
    """The busiest interface sorts first by total and last alphabetically: a grid drawn in one order
    and labelled in the other (the old defect) puts netlogon's count under epmapper."""
    matrix = pd.DataFrame(
        {
            "client_ip": ["10.0.0.1", "10.0.0.1", "10.0.0.2"],
            "server_ip": ["10.0.0.9", "10.0.0.9", "10.0.0.9"],
            "interface_name": ["netlogon", "epmapper", "samr"],
            "binds": [286, 286, 1],
            "calls": [573, 286, 1],
        }
    )
    grid = heatmap_grid(matrix)
    assert grid.loc["10.0.0.9 (server)", "netlogon"] == 859 and grid.loc["10.0.0.9 (server)", "epmapper"] == 572
    cells = _heat_cells(heatmap_table(grid))
    want = _expected_heat(matrix)
    assert {k: v for k, v in cells.items() if v} == want
    assert cells[("10.0.0.2 (client)", "netlogon")] == 0


def test_heat_map_numbers_are_readable_on_their_colour() -> None:
    for value in (1, 3, 30, 300, 1000):
        bg, fg = cell_colours(value, 1000)
        r, g, b = (int(bg[i : i + 2], 16) / 255 for i in (1, 3, 5))
        luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
        assert (fg == "#000") == (luminance > 0.45), (value, bg, fg)  # dark text on light (yellow) cells


def test_no_dynamic_port_used_is_said_in_words() -> None:
    page = analyzer.analyze([SAMPLES / "epm_lookup_dump.pcap"]).html()
    section = page.split('id="ports"')[1].split("</section>")[0]
    assert "No dynamic port was used." in section and "<img" not in section


@needs_shared
def test_local_endpoints_only_with_all(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", "-q", str(RPCDUMP), "-o", str(out)])
    assert res.exit_code == 0
    assert "ncalrpc:" not in out.read_text() and "local (ncalrpc) endpoint(s)" in out.read_text()
    res = CliRunner().invoke(main, ["report", "-q", "--all", str(RPCDUMP), "-o", str(out)])
    assert res.exit_code == 0 and "ncalrpc:" in out.read_text()


@needs_shared
def test_attack_report_in_the_browser(tmp_path: Path) -> None:
    """The report of real attack captures at 1400 px: the users column of every host and service table
    on screen, the heat map's labels and numbers those of the matrix, no ncalrpc rows by default."""
    res = analyzer.analyze([ZEROLOGON, RPCDUMP, PSEXEC])
    assert (res.endpoint_inventory["protocol"] == "ncalrpc").sum() > 100  # the default has to hide them
    report = tmp_path / "attack.html"
    report.write_text(res.html("Attack review"), encoding="utf-8")
    browser = Browser(chromium(), tmp_path / "profile")
    try:
        browser.open(report.as_uri(), width=1400, height=3000)
        facts = browser.evaluate(
            "{users: ['services', 'servers', 'clients'].map(id => [...document.querySelectorAll("
            "'#' + id + ' th')].filter(th => th.textContent === 'users')"
            ".map(th => th.getBoundingClientRect().right + window.scrollX)),"
            " heat: (() => { const t = document.querySelector('table.heatmap');"
            "  const cols = [...t.querySelectorAll('th.col')].map(th => th.textContent);"
            "  return [...t.querySelectorAll('tbody tr')].map(tr => [tr.querySelector('th').textContent,"
            "   [...tr.querySelectorAll('td')].map((td, i) => [cols[i], td.textContent])]); })(),"
            " inventory: [...document.querySelectorAll('#inventory tbody tr')].map(tr => tr.textContent),"
            " width: window.innerWidth}"
        )
        shot = browser.screenshot(tmp_path / "attack.png")
        errors = browser.errors()
    finally:
        browser.close()
    print(f"screenshot of the attack report: {shot}")
    assert errors == []
    assert facts["width"] == 1400
    assert [len(u) for u in facts["users"]] == [1, 1, 1], facts["users"]
    assert all(right <= 1400 for (right,) in facts["users"]), facts["users"]
    want = _expected_heat(res.matrix)
    seen = {(host, col): int(v) for host, cells in facts["heat"] for col, v in cells if v}
    assert seen == want
    assert seen[("172.16.5.59 (server)", "netlogon")] == 859 and seen[("172.16.5.59 (server)", "epmapper")] == 572
    assert facts["inventory"] and not any("ncalrpc" in row for row in facts["inventory"])
    assert len(facts["inventory"]) == len(views.network_endpoints(res.endpoint_inventory))
    img = Image.open(shot)
    assert img.size == (1400, 3000)
    lo, hi = cast(tuple[int, int], img.convert("L").getextrema())
    assert hi - lo > 150, "the screenshot is blank"


def test_timeline_bars_stay_visible_over_long_spans() -> None:
    """Captures two months apart: one-minute bars were narrower than a pixel and the plot was empty."""
    day = pd.Timestamp("2020-07-19T13:14:00Z")
    assert timeline_bucket(day, day + pd.Timedelta(minutes=90))[2] == "minute"
    assert timeline_bucket(day, day + pd.Timedelta(hours=10))[2] == "10 minutes"
    assert timeline_bucket(day, day + pd.Timedelta(days=60))[2] == "day"
    tl = views.empty_view("timeline")
    tl = pd.concat(
        [
            tl,
            pd.DataFrame(
                {
                    "minute": [day, day + pd.Timedelta(days=60)],
                    "interface_name": ["netlogon", "netlogon"],
                    "binds": [10, 10],
                    "calls": [20, 20],
                }
            ),
        ]
    )
    data = timeline_png(tl.astype({"binds": "Int64", "calls": "Int64"})).split(",", 1)[1]
    img = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    px = np.asarray(img, dtype=int)
    blue = int((np.abs(px - np.array([0x1F, 0x77, 0xB4])).max(axis=2) < 12).sum())
    assert blue > 300, blue  # both bars are drawn, each several pixels wide
