"""The transports: one module per protocol sequence ([MS-RPCE] 2.1.1), one connection object each.

- `ncacn_ip_tcp`: DCE/RPC connection-oriented PDUs straight on TCP (`CoConnection`);
- `ncacn_np`: SMB named pipes on 445 / 139 (`NpConnection`, the `PipeTable` of a capture);
- `ncacn_http`: RPC over HTTP v1 and v2 (`HttpConnection`, virtual connections);
- `ncadg_ip_udp`: connectionless DCE/RPC over UDP (`UdpTransport`).
A connection object holds both directions' framers and the association, and takes events:
`data(from_client, bytes, frame, ts)`, `gap(from_client, missing, frame, ts)`, `close()`.
Sans-IO.

Must not import: `analyzer.pipeline` or anything above it (report, findings, api, cli), pandas.
"""
