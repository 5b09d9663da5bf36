"""The ORPC headers every DCOM call carries ([MS-DCOM] 2.2.13): ORPCTHIS before the request's
parameters, ORPCTHAT before the response's. `registry.decode` reads them for the families declared
`orpc=True`; they are kept out of the decoded values."""

from __future__ import annotations

from analyzer.dcerpc.ndr_types import BYTES, GUID, U16, U32, Array, Ptr, Struct

ORPC_EXTENT = Struct(("id", GUID), ("size", U32), ("data", BYTES))
ORPC_EXTENT_ARRAY = Struct(("size", U32), ("reserved", U32), ("extent", Ptr(Array(Ptr(ORPC_EXTENT)))))
ORPCTHIS = Struct(
    ("version_major", U16),
    ("version_minor", U16),
    ("flags", U32),
    ("reserved1", U32),
    ("cid", GUID),
    ("extensions", Ptr(ORPC_EXTENT_ARRAY)),
)
ORPCTHAT = Struct(("flags", U32), ("extensions", Ptr(ORPC_EXTENT_ARRAY)))
