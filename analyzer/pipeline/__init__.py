"""From capture files to records: the only place with state across connections.

Owns, in data-flow order: the run (`state`: what lives across files; `run`: the `Pipeline` facade),
the file loop (`files`), the conversations of one capture and their flow table (`conversations`,
`flow_table`), the decision of what a new connection is (`classify`, `midstream`), what the
endpoint mapper taught (`learn`) and where records go (`collector`). The transports that read a
connection's bytes are `analyzer.transports`.

Must not import: `analyzer.report`, `analyzer.findings`, the Zeek and interop modules, `analyzer.api`,
`analyzer.cli` (nothing above it), nor pandas.
"""

from analyzer.pipeline.run import Pipeline, Progress

__all__ = ["Pipeline", "Progress"]
