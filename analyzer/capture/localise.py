"""Session frame numbers back to files: the last step of building the tables of a multi-file run.

A capture session (`analyzer.capture.session`) numbers its frames through all its files and its records name
the session's first file. Here each row's `capture` becomes the file its frame fell in (for
connections, the file of `first_frame`; `epm_capture` the file of `epm_frame`), and every frame column
the frame number within its own file, as Wireshark shows it when that file is opened alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyzer.capture.session import FrameMap

# table -> (the frame column that says the row's file, every frame column)
FRAME_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "binds": ("frame", ("frame", "ack_frame")),
    "endpoints": ("frame", ("frame", "request_frame")),
    "calls": ("frame", ("frame", "response_frame", "first_frame")),
    "connections": ("first_frame", ("first_frame", "last_frame")),  # epm_frame: by epm_capture
    "violations": ("frame", ("frame", "first_frame", "last_frame")),
    "attempts": ("frame", ("frame",)),
}


def localise(df: pd.DataFrame, table: str, maps: dict[str, FrameMap]) -> pd.DataFrame:
    """`df` with the rows of every multi-file session named by file and local frame numbers."""
    if not maps or df.empty or table not in FRAME_COLUMNS:
        return df
    by, columns = FRAME_COLUMNS[table]
    df = df.copy()
    for session, fmap in maps.items():
        rows = (df["capture"] == session).fillna(False).to_numpy(dtype=bool)
        if not rows.any():
            continue
        starts = np.asarray(fmap.starts, dtype=np.int64)
        files = np.asarray(fmap.files, dtype=object)
        locals_ = np.asarray(fmap.locals, dtype=np.int64)
        which = _runs(df.loc[rows, by], starts)
        if which is not None:
            known = which >= 0
            names = df.loc[rows, "capture"].to_numpy(dtype=object)
            names[known] = files[which[known]]
            df.loc[rows, "capture"] = names
        for col in columns:
            _local_frames(df, rows, col, starts, locals_)
        if table == "connections":
            _epm(df, fmap, starts, files, locals_)
    return df


def _local_frames(df: pd.DataFrame, rows: np.ndarray, col: str, starts: np.ndarray, locals_: np.ndarray) -> None:
    idx = _runs(df.loc[rows, col], starts)
    if idx is None:
        return
    values = df.loc[rows, col].to_numpy(dtype="float64", na_value=np.nan)
    ok = idx >= 0
    values[ok] = locals_[idx[ok]] + values[ok] - starts[idx[ok]]
    df.loc[rows, col] = pd.array([None if np.isnan(v) else int(v) for v in values], dtype="Int64")


def _runs(frames: pd.Series, starts: np.ndarray) -> np.ndarray | None:
    """Index of the run holding each frame (-1 where the frame is missing)."""
    if frames.empty:
        return None
    values = frames.to_numpy(dtype="float64", na_value=np.nan)
    idx: np.ndarray = np.maximum(np.searchsorted(starts, np.nan_to_num(values, nan=0), side="right") - 1, 0)
    idx[np.isnan(values)] = -1
    return idx


def _epm(df: pd.DataFrame, fmap: FrameMap, starts: np.ndarray, files: np.ndarray, locals_: np.ndarray) -> None:
    """A connection's `epm_capture` names the file of its `epm_frame`, which becomes local to it."""
    rows = (df["epm_capture"] == fmap.session).fillna(False).to_numpy(dtype=bool)
    if not rows.any():
        return
    idx = _runs(df.loc[rows, "epm_frame"], starts)
    if idx is None:
        return
    names = df.loc[rows, "epm_capture"].to_numpy(dtype=object)
    names[idx >= 0] = files[idx[idx >= 0]]
    df.loc[rows, "epm_capture"] = names
    _local_frames(df, rows, "epm_frame", starts, locals_)
