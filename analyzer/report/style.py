"""The HTML report's style sheet and its content security policy (`report.html`)."""

from __future__ import annotations

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5rem 2rem; color: #1d2330;
       background: #fff; line-height: 1.35; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 2px solid #d8dde6; padding-bottom: .2rem; }
p.lead, p.note { color: #4a5263; margin: .3rem 0 .8rem; }
nav a { margin-right: .9rem; color: #2456a6; text-decoration: none; }
dl.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .5rem; }
dl.figures div { background: #f3f5f9; border-radius: 6px; padding: .5rem .7rem; }
dl.figures dt { font-size: .8rem; color: #4a5263; }
dl.figures dd { margin: 0; font-size: 1.3rem; font-weight: 600; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .8rem; margin: .4rem 0 1rem; }
th, td { border: 1px solid #d8dde6; padding: .2rem .45rem; vertical-align: top; text-align: left; }
th { background: #eef1f6; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td { white-space: nowrap; }
td.wrap { white-space: normal; min-width: 8rem; max-width: 22rem; overflow-wrap: break-word; }
table.heatmap td { min-width: 2.2rem; }
table.heatmap th.col { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; }
table.heatmap td.empty { background: #fff; }
tr:nth-child(even) td { background: #fafbfd; }
td.status-announced-only { color: #6b7280; }
td.status-announced-and-used { color: #0a6b2d; font-weight: 600; }
td.status-used-without-announcement { color: #9a4b00; font-weight: 600; }
td.quality-complete { color: #0a6b2d; }
td.severity-critical, td.severity-high { color: #a40000; font-weight: 600; }
td.severity-medium { color: #9a4b00; font-weight: 600; }
figure { margin: .5rem 0 1.5rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #d8dde6; }
figcaption { font-size: .85rem; color: #4a5263; }
footer { margin-top: 3rem; font-size: .8rem; color: #6b7280; }
"""

# No network, no script: images only from data: URLs, styles only inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
