"""The `attempts` table: TCP connection attempts to RPC ports that never became DCE/RPC conversations.

Declared once, as its columns (`report.columns.Column`), like every base table. A port scan or a
SYN flood makes one row per SYN, a million of them, so the table is not built record by record:
the spool (`records.RowSpool`) hands back its Arrow record batches and each becomes a typed chunk
column by column (`attempt_chunks`), with the dtypes and values `columns.convert` gives the same
rows (a batch the spool had to keep as records, a value out of its Arrow type, still goes that way).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import pandas as pd

from analyzer.capture.localise import localise
from analyzer.model import AttemptRecord
from analyzer.records import Records
from analyzer.report.columns import INT, MAX_TS_NS, STR, TIME, Column, convert, schema
from analyzer.report.vector import typed as typed_column
from analyzer.report.vector import utc_times

# The issue 9 contract: one row per attempt, outcome syn_only, rejected or no_pdu.
ATTEMPT_COLUMNS: list[Column[AttemptRecord, None]] = [
    Column("capture", STR, lambda a, _: a.capture),
    Column("frame", INT, lambda a, _: a.frame),
    Column("ts", TIME, lambda a, _: a.ts),
    Column("client_ip", STR, lambda a, _: a.client_ip),
    Column("client_port", INT, lambda a, _: a.client_port),
    Column("server_ip", STR, lambda a, _: a.server_ip),
    Column("server_port", INT, lambda a, _: a.server_port),
    Column("outcome", STR, lambda a, _: a.outcome),
]
ATTEMPTS = schema(ATTEMPT_COLUMNS)


def _column(values: Any, dtype: str) -> Any:
    """One Arrow column as the pandas array `columns.frame` makes of the same values."""
    if dtype == STR:
        return typed_column(values, STR)
    ints = values.fill_null(0).to_numpy()
    if dtype == INT:
        return pd.arrays.IntegerArray(ints, values.is_null().to_numpy(zero_copy_only=False))
    # TIME: 0 is the unknown time, and anything outside datetime64[ns] is unknown too (as in `frame`)
    unknown = values.is_null().to_numpy(zero_copy_only=False) | (ints <= 0) | (ints > MAX_TS_NS)
    return utc_times(ints, unknown)


def _arrow_frame(batch: Any) -> pd.DataFrame:
    data = {name: _column(batch.column(name), dtype) for name, dtype in ATTEMPTS.items()}
    df: pd.DataFrame = pd.DataFrame(data, columns=list(ATTEMPTS))
    return df


def attempt_chunks(records: Records) -> Iterator[pd.DataFrame]:
    """The attempts table's rows in record order, one typed frame per spooled batch, named by file
    and local frame (`capture.localise`)."""
    for batch in records.attempts.batches():
        df = convert(ATTEMPT_COLUMNS, batch, None) if isinstance(batch, list) else _arrow_frame(batch)
        yield localise(df, "attempts", records.frame_maps)


def compact_attempts(records: Records) -> pd.DataFrame | None:
    """The attempts table in record order with its text columns categorical (sorted categories, as
    `tables._Compact` makes them), built straight from the spool's Arrow batches: numbers written
    into arrays of the table's length, text kept as dictionary codes, so a million rows cost about
    their final size while building. None when the batches cannot be read this way (a session of
    several files, whose frames are renumbered per file; a batch kept as records; a missing value):
    the caller then goes through the typed chunks."""
    n = len(records.attempts)
    if records.frame_maps or not n:
        return None
    import pyarrow.compute as pc

    numbers = {name: np.empty(n, dtype=np.int64) for name, dtype in ATTEMPTS.items() if dtype != STR}
    texts: dict[str, list[tuple[Any, list[str]]]] = {name: [] for name, dtype in ATTEMPTS.items() if dtype == STR}
    at = 0
    for batch in records.attempts.batches():
        if isinstance(batch, list) or any(col.null_count for col in batch.columns) or at + batch.num_rows > n:
            return None
        for name, values in numbers.items():
            values[at : at + batch.num_rows] = batch.column(name).to_numpy()
        for name, parts in texts.items():
            encoded = pc.dictionary_encode(batch.column(name))
            parts.append((encoded.indices.to_numpy().copy(), encoded.dictionary.to_pylist()))
        at += batch.num_rows
    if at != n:
        return None
    data = {
        name: _text(texts[name]) if dtype == STR else _number(numbers[name], dtype) for name, dtype in ATTEMPTS.items()
    }
    df: pd.DataFrame = pd.DataFrame(data, columns=list(ATTEMPTS))
    return df


def _text(parts: list[tuple[Any, list[str]]]) -> pd.Categorical:
    """A text column's batches (dictionary codes, dictionary) as one categorical, categories sorted."""
    categories = pd.Index(sorted({v for _, uniques in parts for v in uniques}), dtype=object)
    small = np.min_scalar_type(-len(categories))  # the codes' dtype a Categorical picks
    codes = [categories.get_indexer(uniques).astype(small)[indices] for indices, uniques in parts]
    return pd.Categorical.from_codes(np.concatenate(codes), categories=categories)


def _number(values: Any, dtype: str) -> Any:
    if dtype == INT:
        return pd.arrays.IntegerArray(values, np.zeros(len(values), dtype=bool))
    return utc_times(values, (values <= 0) | (values > MAX_TS_NS))  # TIME, as `_column` makes it


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """A slice of the attempts, compact or not, in the table's own dtypes: `astype(ATTEMPTS)`, with
    categorical text taken from its categories made text once (pandas' astype makes each cell's)."""
    out: dict[str, Any] = {}
    for name, dtype in ATTEMPTS.items():
        col = df[name]
        if isinstance(col.dtype, pd.CategoricalDtype) and dtype == STR:
            text: Any = pd.array(list(col.cat.categories), dtype=cast(Any, STR))
            out[name] = text.take(col.cat.codes.to_numpy(), allow_fill=True)  # code -1: missing
        else:
            out[name] = col.astype(cast(Any, dtype)).array
    typed_df: pd.DataFrame = pd.DataFrame(out, index=df.index, columns=list(ATTEMPTS))
    return typed_df
