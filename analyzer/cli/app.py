"""The command group: `rpc-analyzer` itself, its version and its help."""

from __future__ import annotations

import click

from analyzer.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="rpc-analyzer")
def main() -> None:
    """Passive analyzer for Microsoft RPC (DCE/RPC) traffic in Wireshark/tcpdump captures.

    Which RPC services were negotiated, between which hosts, over which ports: every bind and
    its answer, every endpoint the endpoint mapper (TCP 135) announced with its dynamic port,
    the connections that used those ports, the calls made, and a per-host view.

    \b
    Example:
      rpc-analyzer analyze capture.pcapng -o out/
      rpc-analyzer analyze capture.pcapng -o zeek/ --format zeek
      rpc-analyzer hosts capture.pcapng --role server
      rpc-analyzer endpoints capture.pcapng
      rpc-analyzer report capture.pcapng -o report.html
      rpc-analyzer firewall capture.pcapng --format md
      sudo rpc-analyzer live -i eth0 --rotate-seconds 300
      rpc-analyzer findings capture.pcapng
      rpc-analyzer sigma sigma/rules/network/zeek/ capture.pcapng
      rpc-analyzer names svcctl
    """
