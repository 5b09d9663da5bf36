"""One module per sample capture; `BUILDERS` lists the builders in the order make_samples.py runs them.

Each builder is independent: any subset, in any order, writes the same bytes as a full run.
Must not import `analyzer`.
"""

from __future__ import annotations

from collections.abc import Callable

from .cl_udp import make_cl_udp
from .epm_lookup_dump import make_epm_lookup_dump
from .epm_map_session import make_epm_map_session
from .gzip_session import make_gzip_session
from .ip_fragments import make_ip_fragments
from .ipv6_session import make_ipv6_session
from .linux_sll import make_linux_sll, make_linux_sll2
from .multifrag_calls import make_multifrag_calls
from .nanosecond_bigendian import make_nanosecond_bigendian
from .netbios139 import make_netbios139
from .null_loopback import make_null_loopback
from .rpc_http_v1 import make_rpc_http_v1
from .rpc_http_v2 import make_rpc_http_v2
from .smb1_pipe import make_smb1_pipe
from .smb2_epmapper import make_smb2_epmapper
from .smb2_pipes import make_smb2_pipes
from .tcp_segmentation import make_tcp_segmentation
from .truncated import make_truncated
from .tunnels import (
    make_tunnel_erspan2,
    make_tunnel_erspan3,
    make_tunnel_geneve,
    make_tunnel_gre,
    make_tunnel_vxlan,
    make_tunnel_wccp,
)
from .two_interfaces import make_two_interfaces
from .vlan_qinq import make_vlan_qinq

BUILDERS: list[Callable[[], None]] = [
    make_epm_map_session,
    make_epm_lookup_dump,
    make_tcp_segmentation,
    make_multifrag_calls,
    make_two_interfaces,
    make_linux_sll,
    make_linux_sll2,
    make_vlan_qinq,
    make_ipv6_session,
    make_ip_fragments,
    make_null_loopback,
    make_nanosecond_bigendian,
    make_gzip_session,
    make_truncated,
    make_smb2_pipes,
    make_smb2_epmapper,
    make_smb1_pipe,
    make_netbios139,
    make_cl_udp,
    make_rpc_http_v1,
    make_rpc_http_v2,
    make_tunnel_gre,
    make_tunnel_wccp,
    make_tunnel_erspan2,
    make_tunnel_erspan3,
    make_tunnel_vxlan,
    make_tunnel_geneve,
]
