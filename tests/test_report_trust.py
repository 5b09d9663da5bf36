"""Report defects found by reading the outputs as an analyst (issue 10): ports sorted as numbers,
dynamic ranges that do not swallow unrelated ports, operations in the hosts text."""

from __future__ import annotations

import re

import analyzer
from analyzer.report import list_order, port_ranges
from tests.conftest import SAMPLES


def test_lists_sort_numbers_as_numbers_and_addresses_as_addresses() -> None:
    ports = ["80", "6004", "135", "49670", "593", "445", "49665", "139"]
    assert sorted(ports, key=list_order) == ["80", "135", "139", "445", "593", "6004", "49665", "49670"]
    hosts = ["10.0.0.10", "10.0.0.5", "\\PIPE\\lsarpc", "10.0.0.100"]
    assert sorted(hosts, key=list_order) == ["10.0.0.5", "10.0.0.10", "10.0.0.100", "\\PIPE\\lsarpc"]


def test_dynamic_port_ranges_split_at_large_gaps() -> None:
    assert port_ranges([49670, 6004, 49665, 49667]) == "6004;49665-49670"
    assert port_ranges([1025, 1030, 5000]) == "1025-1030;5000"
    assert port_ranges([]) is None


def test_hosts_table_and_text_show_ports_in_numeric_order_and_operations() -> None:
    res = analyzer.analyze([SAMPLES])
    for cell in res.hosts["ports"].dropna():
        ints = [int(p) for p in cell.split(";")]
        assert ints == sorted(ints), cell
    server = res.hosts[(res.hosts["host"] == "10.0.0.10") & (res.hosts["role"] == "server")].iloc[0]
    assert "6004" in server["ports"] and server["dynamic_ports"].split(";")[0] == "6004"
    text = res.hosts_text("server")
    m = re.search(r"ports ([0-9, ]+);", text)
    assert m and [int(p) for p in m.group(1).split(", ")] == sorted(int(p) for p in m.group(1).split(", "))
    assert "operations" in text and "RStartServiceW" in text and "ept_map" in text
