"""Interfaces whose operations are mostly not decoded but whose return type is known, so that every
answered, unsealed call of theirs still gets its `return_status` (the last four bytes of the
response stub, [MS-RPCE] 2.2.5). Each line cites the specification of the return type."""

from __future__ import annotations

from analyzer.dcerpc.ndr_types import GUID, U16, U32, Array
from analyzer.stubs.registry import HRESULT, WIN32, family

# [MS-DCOM] 3.1.2.5.1: IObjectExporter methods return error_status_t (Win32 codes, RPC_S_*).
family("99fcfec4-5260-101b-bbcb-00aa0021347a", "IObjectExporter", WIN32)
# [MS-DCOM] 3.1.1.5.6: IRemUnknown / IRemUnknown2 return HRESULT.
REM = family("00000131-0000-0000-c000-000000000046", "IRemUnknown", HRESULT, orpc=True)
REM.op(
    3, "RemQueryInterface", [("ipid", GUID), ("refs", U32), ("iid_count", U16), ("iids", Array(GUID))], show=("iids",)
)
REM2 = family("00000143-0000-0000-c000-000000000046", "IRemUnknown2", HRESULT, orpc=True)
# RemQueryInterface (3.1.1.5.6.1.1): the IPID queried and the interfaces asked for.
REM2.op(
    3, "RemQueryInterface", [("ipid", GUID), ("refs", U32), ("iid_count", U16), ("iids", Array(GUID))], show=("iids",)
)
# [MS-WMI] 3.1.4: the WMI interfaces return HRESULT (WBEM_S_* / WBEM_E_*).
family("027947e1-d731-11ce-a357-000000000001", "IEnumWbemClassObject", HRESULT, orpc=True)
family("1c1c45ee-4395-11d2-b60b-00104b703efd", "IWbemFetchSmartEnum", HRESULT, orpc=True)
family("44aca675-e8fc-11d0-a07c-00c04fb68820", "IWbemCallResult", HRESULT, orpc=True)
family("d4781cd6-e5d3-44df-ad94-930efe48a887", "IWbemLoginClientID", HRESULT, orpc=True)
family("423ec01e-2e35-11d2-b604-00104b703efd", "IWbemWCOSmartEnum", HRESULT, orpc=True)
# [MS-OAUT] 3.7.4: ITypeInfo returns HRESULT.
family("00020401-0000-0000-c000-000000000046", "ITypeInfo", HRESULT, orpc=True)
# [MS-DSSP] 3.2.5: DsRolerGetPrimaryDomainInformation returns a Win32 code.
family("3919286a-b10c-11d0-9ba8-00c04fd92ef5", "dssetup", WIN32)
