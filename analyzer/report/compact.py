"""The compact form of a big table: its text columns categorical, so a million rows of a flood cost their
codes, not a million cells of text each (`report.spooled.Spooled.table(compact=True)`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analyzer.report.columns import STR


class Compact:
    """Chunks gathered into one frame whose text columns are categoricals with sorted categories (so
    sorting by them is sorting by the text): each chunk's text is factorised as it comes, so a text
    cell costs its code, not its bytes, and no chunk's text is kept."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []

    def add(self, chunk: pd.DataFrame) -> None:
        self.parts.append(
            {
                str(col): pd.factorize(values, use_na_sentinel=True) if values.dtype == STR else values
                for col, values in chunk.items()
            }
        )

    def frame(self) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for col, first in self.parts[0].items():
            if not isinstance(first, tuple):
                data[col] = pd.concat([p[col] for p in self.parts], ignore_index=True)
                continue
            factored: list[tuple[np.ndarray, Any]] = [p[col] for p in self.parts]
            at = pd.Index(sorted({v for _, uniques in factored for v in uniques}), dtype=object)
            codes = [np.where(c < 0, -1, at.get_indexer(u)[np.maximum(c, 0)]) if len(u) else c for c, u in factored]
            data[col] = pd.Categorical.from_codes(np.concatenate(codes), categories=at)
        df: pd.DataFrame = pd.DataFrame(data)
        return df
