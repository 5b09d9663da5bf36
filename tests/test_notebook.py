"""The incident-review notebook runs top to bottom on the bundled samples, in a kernel of this
interpreter, and shows what it promises (tables and a plot); it is committed without outputs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import nbclient
import nbformat

from tests.conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "incident_review.ipynb"


def _read() -> Any:
    return nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]  # nbformat is unannotated


def _code_cell(source: str) -> Any:
    return nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]


def test_notebook_is_committed_without_outputs() -> None:
    nb = _read()
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 8
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def _outputs(cell: Any, kind: str) -> list[Any]:
    return [o for o in cell.outputs if kind in o.get("data", {})]


def test_notebook_executes_and_shows_tables_and_a_plot() -> None:
    nb = _read()
    # One extra cell, in memory only: the kernel must be this interpreter, not whatever "python" is on PATH.
    nb.cells.append(_code_cell("import sys; print(sys.executable)"))
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert code[-1].outputs[0]["text"].strip() == str(Path(sys.executable))
    frames = [c for c in code if any("dataframe" in o["data"]["text/html"] for o in _outputs(c, "text/html"))]
    assert len(frames) >= 6, "the DataFrame cells did not render tables"
    captures_table = _outputs(code[0], "text/html")[0]["data"]["text/html"]
    assert "epm_map_session.pcap" in captures_table and "tcp_segmentation.pcap" in captures_table
    images = [o for c in code for o in _outputs(c, "image/png")]
    assert len(images) == 1 and len(images[0]["data"]["image/png"]) > 1000
    printed = "".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    assert "as server:" in printed and "announced-and-used" in printed
    assert "UUID: 367abb81-9844-35f1-ad32-98f038001003" in printed
    assert "'endpoint_inventory.csv'" in _outputs(code[-2], "text/plain")[0]["data"]["text/plain"]
