"""Name registry: interface UUIDs, operations, named pipes, status codes -> names.

CONTRACT (implemented by the registry work; the rest of the analyzer only uses these names):

    interface_name(uuid: str, major: int | None = None) -> str
        Short name in Zeek/Sigma vocabulary ("svcctl", "epmapper", ...); never fails:
        "unknown-<uuid>" when the UUID is not known.
    interface_info(uuid: str, major: int | None = None) -> InterfaceInfo | None
        Frozen dataclass: uuid, version ("major.minor" or None), name, spec ("[MS-SCMR]" or None),
        spec_title, provider (Windows binary or None), sources (tuple of source ids).
    operation_name(uuid: str, major: int | None, opnum: int) -> str
        Specification name where one exists, else implementation name; "opnum-N" when unknown.
    pipe_interfaces(pipe: str) -> tuple[str, ...]
        UUIDs served on a well-known named pipe; accepts "\\PIPE\\lsarpc", "\\pipe\\lsarpc", "lsarpc".
    status_name(code: int) -> str
        nca_s_* / RPC_S_* / NTSTATUS / Win32 / EPM status names; "0x%08x" when unknown.
    auth_type_name(n: int) -> str, auth_level_name(n: int) -> str
    transfer_syntax_name(uuid: str) -> str   ("ndr", "ndr64", "bind_time_feature_negotiation", else uuid)
"""
