"""The run: what lives across the files of one analysis.

`Run` holds the limits, the packet selector (which ports and payloads the decoder lets through:
the well-known RPC ports, then every port the endpoint mapper announced), the `EndpointLearner`
with the run's `EndpointBook`, the `Records` spool, and the filter that decides which new TCP
flows are followed. The file loop makes one capture's `Conversations` from it at a time.
"""

from __future__ import annotations

from analyzer.capture.decode import Selector
from analyzer.dcerpc.cl_pdu import CL_VERSION, cl_probe
from analyzer.limits import Limits
from analyzer.pipeline.classify import EPM_PORT, HTTP_PORT, SMB_PORTS, TCP_PROBE_FIRST, FlowFilter, tcp_probe
from analyzer.pipeline.learn import EndpointLearner
from analyzer.records import Records


class Run:
    """What lives across files: limits, selector, learned endpoints, records."""

    def __init__(
        self,
        limits: Limits,
        strict: bool,
        follow: FlowFilter | None = None,
        datagrams: bool = False,
        digests: bool = False,
    ) -> None:
        self.limits = limits
        self.strict = strict  # re-raise internal errors (tests) instead of reporting them
        self.follow = follow  # decides whether a new TCP flow is followed (None: every one)
        self.digests = digests  # hash each input file as it is read, into records.digests
        self.records = Records(limits, datagrams)  # datagrams: spool DatagramRecords (see Records)
        self.selector = Selector()
        self.selector.tcp_ports |= {EPM_PORT, HTTP_PORT, *SMB_PORTS}
        self.selector.tcp_probe = tcp_probe
        self.selector.tcp_probe_first = TCP_PROBE_FIRST
        self.selector.udp_ports.add(EPM_PORT)
        self.selector.udp_probe = cl_probe
        self.selector.udp_probe_first = frozenset({CL_VERSION})  # cl_probe's first test: no call for the rest
        self.learner = EndpointLearner(self.records.book, self.selector)
