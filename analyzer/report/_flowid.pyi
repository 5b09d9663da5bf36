from typing_extensions import Buffer

_Text = tuple[Buffer, Buffer, Buffer]  # int32 offsets, UTF-8 data, a validity byte per row
_Number = tuple[Buffer, Buffer]  # int64 values, a validity byte per row

def uids(
    udp: Buffer, client_ip: _Text, client_port: _Number, server_ip: _Text, server_port: _Number, opened: _Number, /
) -> tuple[bytes, bytes]: ...
def community_ids(
    udp: Buffer, src_ip: _Text, src_port: _Number, dst_ip: _Text, dst_port: _Number, /
) -> tuple[bytes, bytes, bytes]: ...
