"""The report layer: everything that turns a run's records into tables and presents them.

- `columns`: the dtype vocabulary and the `Column` declaration a table is made of;
- `tables`: records -> the base tables (binds, endpoints, calls, connections, violations, captures,
  attempts), each declared once; `hosts`: the per-host table; `names`, `lists`: what they share;
- `views/`: the analyst views (endpoint inventory, timeline, matrix, data quality);
- `output`: CSV / JSON lines / Parquet writers; `manifest`: manifest.json;
- `terminal` (the one sanitiser for text bound for a terminal), `summary`, `text`, `endpoints_text`:
  what the CLI prints; `html` and `plots`: the HTML report.

It reads records (`analyzer.records`, `analyzer.model`) and the registry, and must not import the
pipeline, the transports, `analyzer.findings`, the Zeek writers, `analyzer.api` or `analyzer.cli`.
"""
