"""Views for analysts: the base tables (`report.tables`) regrouped to answer one question each.

Each view is a function of a `report.source.Source`, and a fold (`FOLDS`) of the one pass over the
base tables that feeds every reader (`report.passes`): it takes the chunks of the base tables it
needs, only their columns it needs, and folds them (`report.fold`) into its result, which is bounded by its
keys (hosts, pairs, interfaces, minutes, connections), never by a table's rows. Nothing here reads
records or files. Each view has an explicit schema in `VIEW_SCHEMAS` (column -> dtype, the vocabulary
of `report.columns`), a stable column order and row order, and comes back empty-but-shaped when there
is nothing to show.

- `endpoint_inventory` (inventory.py): per server, what `portqry -e 135` or `rpcdump` would have
  listed, rebuilt passively from endpoint-mapper answers and from the binds and calls actually seen,
  each entry marked `announced-only`, `announced-and-used` or `used-without-announcement`.
- `timeline` (activity.py): RPC activity per minute, host pair and interface, for incident notes.
- `matrix` (activity.py): client x server x interface: who negotiated which service with whom,
  where and how often.
- `data_quality` (quality.py): per capture and per connection, what the capture did not show (gaps,
  violations, caps hit, calls without a bind, encrypted stubs, unknown interfaces), so a reader
  knows what the other tables cannot say.

The package works on Sources and DataFrames only: it must not import records, the pipeline, the API
or the CLI.
"""

from __future__ import annotations

import pandas as pd

from analyzer.report.fold import table
from analyzer.report.views.activity import MATRIX, TIMELINE, Matrix, Timeline, matrix, timeline
from analyzer.report.views.inventory import (
    ANNOUNCED_AND_USED,
    ANNOUNCED_ONLY,
    ENDPOINT_INVENTORY,
    LOCAL_PROTOCOL,
    STATUSES,
    USED_WITHOUT_ANNOUNCEMENT,
    Inventory,
    endpoint_inventory,
    network_endpoints,
)
from analyzer.report.views.quality import DATA_QUALITY, DataQuality, data_quality

__all__ = [
    "ANNOUNCED_AND_USED",
    "ANNOUNCED_ONLY",
    "DATA_QUALITY",
    "ENDPOINT_INVENTORY",
    "FOLDS",
    "LOCAL_PROTOCOL",
    "MATRIX",
    "STATUSES",
    "TIMELINE",
    "USED_WITHOUT_ANNOUNCEMENT",
    "VIEW_SCHEMAS",
    "data_quality",
    "empty_view",
    "endpoint_inventory",
    "matrix",
    "network_endpoints",
    "timeline",
]

VIEW_SCHEMAS: dict[str, dict[str, str]] = {
    "endpoint_inventory": ENDPOINT_INVENTORY,
    "timeline": TIMELINE,
    "matrix": MATRIX,
    "data_quality": DATA_QUALITY,
}


# Each view as a fold of the one pass over the base tables (`report.passes`): what makes it, by name.
FOLDS: dict[str, type[Inventory | Timeline | Matrix | DataQuality]] = {
    "endpoint_inventory": Inventory,
    "timeline": Timeline,
    "matrix": Matrix,
    "data_quality": DataQuality,
}


def empty_view(name: str) -> pd.DataFrame:
    """The view `name` with no rows: its columns, in order, with their dtypes."""
    return table(VIEW_SCHEMAS[name], {})
