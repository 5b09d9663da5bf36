"""DCE/RPC: PDU parsing ([C706] 12, [MS-RPCE] 2.2), connection-oriented framing and association
state, connectionless PDUs, and the endpoint mapper. Sans-IO throughout: bytes in, events out."""
