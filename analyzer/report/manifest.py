"""manifest.json: what run wrote an output directory, so its tables can be trusted to belong together.

The manifest names the tool version, the arguments, every input with its size and SHA-256 (taken by
the reader as it read the file, else read here in 1 MiB blocks: memory stays flat whatever the
capture's size), when the run started and ended, and the files it wrote. Before writing,
`foreign_files` lists what the directory already holds that a run writes (tables, views, a
manifest); after writing, what of it this run did not overwrite is another run's, and the command
line warns about it by name. Nothing is deleted: the directory may be the analyst's own, and the
warning plus the manifest tell which files are current.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from analyzer.capture.digest import sha256_file
from analyzer.version import __version__

MANIFEST = "manifest.json"
# What a run writes, whatever its format: the tables, the views, companions other commands add.
_OUTPUT_SUFFIXES = (".csv", ".jsonl", ".parquet")


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _input(path: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": path, "size": None, "sha256": None}
    try:
        entry["size"] = os.stat(path).st_size
        entry["sha256"] = sha256_file(path)
    except OSError as e:  # unreadable: the captures table says why; the manifest says it was named
        entry["error"] = e.strerror or str(e)
    return entry


Digests = dict[str, dict[str, Any]]


def hash_inputs(paths: Iterable[str]) -> Digests:
    """path -> its manifest entry (path, size, sha256, or the error that stopped the read)."""
    return {p: _input(p) for p in dict.fromkeys(paths)}


def read_digests(hashed: Mapping[str, str]) -> Digests:
    """path -> its manifest entry, for the inputs whose SHA-256 the reader took as it read them
    (`Records.digests`); `write_manifest` hashes the others itself."""
    out: Digests = {}
    for path, sha256 in hashed.items():
        try:
            out[path] = {"path": path, "size": os.stat(path).st_size, "sha256": sha256}
        except OSError:  # gone since it was read: the manifest's own read says so
            continue
    return out


def foreign_files(out_dir: str | os.PathLike[str]) -> set[str]:
    """Names of files in out_dir a run could have written (tables of any format, a manifest)."""
    try:
        entries = list(os.scandir(out_dir))
    except OSError:
        return set()
    return {e.name for e in entries if e.is_file() and (e.name == MANIFEST or e.name.endswith(_OUTPUT_SUFFIXES))}


def write_manifest(
    out_dir: str | os.PathLike[str],
    inputs: Iterable[str],
    written: Sequence[Path],
    *,
    arguments: Mapping[str, object] | None,
    started: str,
    fmt: str,
    digests: Digests | None = None,
) -> Path:
    """Write manifest.json into out_dir; the path written."""
    manifest = {
        "tool": "rpc-analyzer",
        "version": __version__,
        "arguments": dict(arguments) if arguments is not None else None,
        "format": fmt,
        "started": started,
        "ended": utc_now(),
        "inputs": [(digests or {}).get(p) or _input(p) for p in dict.fromkeys(inputs)],
        "tables": [p.name for p in written],
    }
    path = Path(out_dir) / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path
