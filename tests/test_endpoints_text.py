"""The rpcdump-shaped `endpoints` text: grouped by server then interface, Protocol and Provider from
the registry, every binding, ncalrpc hidden unless --all."""

from __future__ import annotations

import re

from click.testing import CliRunner

import analyzer
from analyzer import registry
from analyzer.cli import main
from analyzer.report.endpoints_text import rpcdump_text
from tests.conftest import SAMPLES


def _blocks(text: str) -> list[list[str]]:
    """The interface blocks: from a Protocol: line to the blank line after its bindings."""
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("Protocol: "):
            current = [line]
            blocks.append(current)
        elif current is not None and line:
            current.append(line)
        else:
            current = None
    return blocks


def test_layout_and_every_binding_under_its_interface() -> None:
    inv = analyzer.analyze(SAMPLES / "epm_lookup_dump.pcap").endpoint_inventory
    text = rpcdump_text(inv)
    blocks = _blocks(text)
    assert blocks
    seen: set[tuple[str, str]] = set()
    for b in blocks:
        assert b[1].startswith("Provider: ") and b[2].startswith("UUID    : ") and b[3].startswith("Bindings:")
        m = re.match(r"UUID    : ([0-9A-F-]{36})( v(\S+))? ", b[2])
        assert m is not None, b[2]
        uuid = m.group(1).lower()
        info = registry.interface_info(uuid)
        assert info is not None
        assert b[1] == f"Provider: {info.provider or 'N/A'}"
        assert b[0].startswith(f"Protocol: {info.spec}")
        rows = inv[(inv["interface_uuid"] == uuid) & (inv["interface_version"] == m.group(3))]
        bindings = [ln.split()[0] for ln in b[4:]]
        assert sorted(bindings) == sorted(rows.loc[rows["protocol"] != "ncalrpc", "string_binding"])
        assert (uuid, m.group(3)) not in seen, "one block per interface and version"
        seen.add((uuid, m.group(3)))
    assert len(seen) == len(
        inv.loc[inv["protocol"] != "ncalrpc", ["interface_uuid", "interface_version"]].drop_duplicates()
    )


def test_ncalrpc_hidden_unless_all() -> None:
    inv = analyzer.analyze(SAMPLES / "epm_lookup_dump.pcap").endpoint_inventory
    local = inv[inv["protocol"] == "ncalrpc"]
    assert len(local) >= 1
    hidden, shown = rpcdump_text(inv), rpcdump_text(inv, show_all=True)
    for binding in local["string_binding"]:
        assert binding not in hidden and binding in shown
    assert "local-only ncalrpc bindings hidden" in hidden and "hidden" not in shown
    res = CliRunner().invoke(main, ["endpoints", str(SAMPLES / "epm_lookup_dump.pcap"), "--all", "-q"])
    assert res.exit_code == 0 and all(b in res.output for b in local["string_binding"])


def test_server_header_counts() -> None:
    inv = analyzer.analyze([SAMPLES]).endpoint_inventory
    text = rpcdump_text(inv)
    remote = inv[inv["protocol"] != "ncalrpc"]
    for server, rows in remote.groupby("server"):
        assert f"Server {server}: " in text
        assert f"{len(rows)} bindings (" in text.split(f"Server {server}: ")[1].splitlines()[0]
