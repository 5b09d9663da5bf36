"""Numbers from the specifications: packet types, flags, well-known syntaxes.

[C706] 12.6.3.1 (connection-oriented header), 12.5.3.1 (connectionless header), [MS-RPCE] 2.2.2.
"""

from __future__ import annotations

# Packet types, [C706] 12.6.3.1 / 12.5.3.1; 20 is rts ([MS-RPCH] 2.2.4.2).
REQUEST = 0
PING = 1
RESPONSE = 2
FAULT = 3
WORKING = 4
NOCALL = 5
REJECT = 6
ACK = 7
CL_CANCEL = 8
FACK = 9
CANCEL_ACK = 10
BIND = 11
BIND_ACK = 12
BIND_NAK = 13
ALTER_CONTEXT = 14
ALTER_CONTEXT_RESP = 15
AUTH3 = 16
SHUTDOWN = 17
CO_CANCEL = 18
ORPHANED = 19
RTS = 20

# pfc_flags, [C706] 12.6.3.1 and [MS-RPCE] 2.2.2.3
PFC_FIRST_FRAG = 0x01
PFC_LAST_FRAG = 0x02
PFC_PENDING_CANCEL = 0x04  # also PFC_SUPPORT_HEADER_SIGN in bind / bind_ack
PFC_CONC_MPX = 0x10
PFC_DID_NOT_EXECUTE = 0x20
PFC_MAYBE = 0x40
PFC_OBJECT_UUID = 0x80

CO_HEADER_LEN = 16
SEC_TRAILER_LEN = 8

# Presentation context results and reasons, [C706] 12.6.3.1 p_cont_def_result_t / p_provider_reason_t,
# [MS-RPCE] 2.2.2.4 (negotiate_ack for bind-time feature negotiation).
ACK_RESULTS = {0: "acceptance", 1: "user_rejection", 2: "provider_rejection", 3: "negotiate_ack"}
PROVIDER_REASONS = {
    0: "reason_not_specified",
    1: "abstract_syntax_not_supported",
    2: "proposed_transfer_syntaxes_not_supported",
    3: "local_limit_exceeded",
}
# bind_nak reject reasons, [C706] 12.6.3.1 p_reject_reason_t, [MS-RPCE] 2.2.2.5
BIND_NAK_REASONS = {
    0: "reason_not_specified",
    1: "temporary_congestion",
    2: "local_limit_exceeded",
    3: "called_paddr_unknown",
    4: "protocol_version_not_supported",
    5: "default_context_not_supported",
    6: "user_data_not_readable",
    7: "no_psap_available",
    8: "authentication_type_not_recognized",
    9: "invalid_checksum",
}
# Bind-time feature negotiation bits, [MS-RPCE] 2.2.2.14
BTFN_FEATURES = {1: "security_context_multiplexing", 2: "keep_connection_on_orphan"}

NDR_UUID = "8a885d04-1ceb-11c9-9fe8-08002b104860"
NDR64_UUID = "71710533-beba-4937-8319-b5dbef9ccc36"
BTFN_PREFIX = "6cb71c2c-9812-4540-"
EPM_UUID = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"

# Auth levels, [MS-RPCE] 2.2.1.1.8
AUTH_LEVEL_CONNECT = 2
AUTH_LEVEL_PRIVACY = 6
