"""Zeek interoperability: the run's tables written as Zeek logs (`logs`: dce_rpc.log and its
companions; `log`: Zeek's ASCII/TSV and JSON log formats).

The Zeek vocabulary itself (endpoint and operation names, the dce_rpc.log row rule) is
`analyzer.report.zeek_names`, since the findings' Sigma views read it too. This package sits above
`analyzer.findings` (it writes rpc_findings.log) and must not import `analyzer.api` or `analyzer.cli`.
"""
