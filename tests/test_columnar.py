"""The base tables built column by column from the spool's Arrow batches (`report.vector.columnar`,
through `report.builder.Declaration.frame`) equal the tables built row by row from the records
(`report.columns.convert`, each column's `get`), on random records: every column, its dtype, every
value, late naming and connection totals included; and the chunks `report.spooled` streams have the
sizes they had when the tables were built from records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import records as rec_mod
from analyzer.model import (
    BY_MIDSTREAM,
    NCACN_HTTP,
    NCACN_IP_TCP,
    NCACN_NP,
    NCADG_IP_UDP,
    BindRecord,
    CallRecord,
    ConnectionRecord,
    EndpointRecord,
    Flow,
    Violation,
)
from analyzer.records import Records
from analyzer.report import spooled as spooled_mod
from analyzer.report.builder import Builder
from analyzer.report.columns import convert
from analyzer.report.source import TABLES
from analyzer.report.spooled import Spooled

EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
SRVSVC = "4b324fc8-1670-01d3-1278-5a47bf6ee188"
NDR = "8a885d04-1ceb-11c9-9fe8-08002b104860"
NDR64 = "71710533-beba-4937-8319-b5dbef9ccc36"
UNKNOWN = "01234567-89ab-cdef-0123-456789abcdef"

uuids = st.sampled_from([EPM, SRVSVC, NDR, NDR64, UNKNOWN])
maybe = st.none().__or__
small = st.integers(0, 6)
text = st.one_of(st.sampled_from(["", "x", "=cmd", "a,b", "line\r\nnext"]), st.text(max_size=4))
ints = st.integers(-(2**40), 2**40)
times = st.one_of(st.just(0), st.integers(-(10**12), 2**63 - 1), st.integers(1, 10**12))
flows = st.builds(
    Flow,
    capture=st.sampled_from(["a.pcap", "b.pcap"]),
    stream=small,
    transport=st.sampled_from([NCACN_IP_TCP, NCACN_NP, NCADG_IP_UDP, NCACN_HTTP]),
    client_ip=st.sampled_from(["10.0.0.1", "10.0.0.2", "fe80::1", "bogus"]),
    client_port=st.integers(0, 70000),
    server_ip=st.sampled_from(["10.0.0.9", "::1"]),
    server_port=st.sampled_from([135, 445, 49664, 70000]),
    pipe=maybe(st.sampled_from(["\\PIPE\\srvsvc", "lsarpc"])),
    opened_ts=times,
)


@st.composite
def answered_times(draw: st.DrawFn) -> tuple[int, int | None]:
    """A request's time and its answer's: equal, later by a few ns or half a microsecond, earlier, unknown."""
    ts = draw(times)
    delta = draw(st.one_of(st.integers(-(10**6), 10**16), st.integers(0, 10**6).map(lambda us: us * 1000 + 500)))
    answer = draw(st.one_of(st.none(), st.just(0), st.just(ts + delta)))
    return ts, answer if answer is None or answer < 2**63 else None


binds = st.builds(
    BindRecord,
    flow=flows,
    frame=ints,
    ts=times,
    pdu_type=st.sampled_from(["bind", "alter_context"]),
    call_id=small,
    ctx_id=small,
    interface_uuid=uuids,
    if_major=small,
    if_minor=small,
    transfer_syntaxes=st.lists(uuids, max_size=3).map(tuple),
    ack_result=st.sampled_from(["acceptance", "provider_rejection", "none", "nak"]),
    ack_reason=maybe(text),
    ack_frame=maybe(ints),
    ack_transfer_syntax=maybe(uuids),
    sec_addr=maybe(text),
    max_xmit_frag=ints,
    max_recv_frag=ints,
    assoc_group=st.integers(0, 2**32 - 1),
    ack_assoc_group=maybe(ints),
    auth_type=maybe(st.sampled_from([9, 10, 16, 68, 200])),
    auth_level=maybe(st.integers(0, 7)),
    identified_by=st.sampled_from(["port135", BY_MIDSTREAM]),
)

endpoints = st.builds(
    EndpointRecord,
    flow=flows,
    frame=ints,
    ts=times,
    call_id=small,
    epm_opnum=st.integers(0, 7),
    request_frame=maybe(ints),
    tower_index=small,
    object_uuid=maybe(uuids),
    interface_uuid=maybe(uuids),
    if_major=maybe(small),
    if_minor=maybe(small),
    transfer_syntax=maybe(uuids),
    protocol=maybe(st.sampled_from(["ncacn_ip_tcp", "ncacn_np"])),
    port=maybe(st.integers(0, 65535)),
    host=maybe(text),
    announced_host=maybe(text),
    pipe=maybe(text),
    endpoint=maybe(text),
    annotation=maybe(text),
    floors=text,
    status=maybe(st.sampled_from([0, 5, 0x16C9A0D6, 2**32 - 1])),
    entry_handle=maybe(text),
)


@st.composite
def calls(draw: st.DrawFn) -> CallRecord:
    ts, answer = draw(answered_times())
    fault = draw(maybe(st.sampled_from([5, 0x1C010003, 2**32 - 1])))
    return CallRecord(
        flow=draw(flows),
        frame=draw(ints),
        ts=ts,
        first_frame=draw(ints),
        call_id=draw(small),
        ctx_id=draw(small),
        interface_uuid=draw(maybe(uuids)),
        if_major=draw(maybe(small)),
        if_minor=draw(maybe(small)),
        interface_source=draw(st.sampled_from(["bind", "unknown", "epm"])),
        opnum=draw(st.integers(0, 40)),
        object_uuid=draw(maybe(uuids)),
        request_bytes=draw(ints),
        request_fragments=draw(small),
        response_frame=draw(maybe(ints)),
        response_ts=answer,
        response_bytes=draw(maybe(ints)),
        response_fragments=draw(maybe(small)),
        fault_status=fault,
        answered=draw(st.booleans()),
        auth_type=draw(maybe(st.sampled_from([9, 10, 68]))),
        auth_level=draw(maybe(st.integers(0, 7))),
        auth_context_id=draw(maybe(small)),
        user=draw(maybe(text)),
        domain=draw(maybe(text)),
        workstation=draw(maybe(text)),
        encrypted=draw(st.booleans()),
        activity_uuid=draw(maybe(uuids)),
        seqnum=draw(maybe(ints)),
        return_status=draw(maybe(st.sampled_from([0, 5, 0xC0000022, 0x80070005]))),
        return_kind=draw(maybe(st.sampled_from(["win32", "ntstatus", "hresult", "rpc"]))),
        arguments=draw(maybe(text)),
        arguments_json=draw(maybe(text)),
    )


@st.composite
def connections(draw: st.DrawFn) -> ConnectionRecord:
    first, last = draw(answered_times())
    return ConnectionRecord(
        flow=draw(flows),
        identified_by=draw(st.sampled_from(["port135", "epm", BY_MIDSTREAM])),
        first_frame=draw(ints),
        first_ts=first,
        last_frame=draw(ints),
        last_ts=last if last is not None else 0,
        packets=draw(ints),
        client_bytes=draw(ints),
        server_bytes=draw(ints),
        pdus=draw(ints),
        end=draw(st.sampled_from(["fin", "rst"])),
        gaps=draw(small),
        epm_capture=draw(maybe(st.sampled_from(["a.pcap"]))),
        epm_frame=draw(maybe(ints)),
        epm_client_ip=draw(maybe(text)),
        epm_delay_s=draw(maybe(st.floats(-1e6, 1e6))),
        detail=draw(maybe(text)),
        midstream=draw(maybe(st.booleans())),
    )


violations = st.builds(
    Violation,
    capture=st.sampled_from(["a.pcap", "b.pcap"]),
    frame=maybe(ints),
    stream=maybe(small),
    layer=st.sampled_from(["tcp", "dcerpc"]),
    what=st.sampled_from(["tcp_gap", "bad_frag_length"]),
    detail=text,
    count=st.integers(1, 10**6),
    last_frame=maybe(ints),
)

SPOOLS = {"binds": binds, "endpoints": endpoints, "calls": calls(), "connections": connections()}


def _each_way(records: Records, table: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table from one Arrow batch of all its records, and from the records row by row."""
    decl = Builder(records).declaration(table)
    every = {c.name for c in decl.columns}
    spool = records.spool(table)
    piece = spool.take_batch(np.arange(len(spool)))
    assert not isinstance(piece, list), "the values fit their Arrow types"
    rows = Builder(records).declaration(table)
    return decl.frame(piece, every), convert(rows.columns, rows.rows(list(rows.records), every), rows.context)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    made=st.fixed_dictionaries({name: st.lists(strategy, max_size=12) for name, strategy in SPOOLS.items()}),
    flagged=st.lists(violations, max_size=8),
)
def test_the_columnar_tables_are_the_tables_built_row_by_row(
    made: dict[str, list[object]], flagged: list[Violation]
) -> None:
    records = Records()
    for name, recs in made.items():
        getattr(records, name).extend(recs)
    records._violation_rows.extend(flagged)  # as the violation log writes them: no aggregation here
    records.finish()
    for table in (*SPOOLS, "violations"):
        columnar, row_by_row = _each_way(records, table)
        pd.testing.assert_frame_equal(columnar, row_by_row, check_exact=True, obj=table)
        assert {c: str(t) for c, t in columnar.dtypes.items()} == TABLES[table], "the tables' dtypes"


def test_late_naming_reaches_the_columns_of_a_batch() -> None:
    """A call on a context no bind named takes its interface from a later accepted alter_context of
    the same conversation, in the columnar table as in the records."""
    flow = Flow("a.pcap", 3, NCACN_IP_TCP, "10.0.0.1", 50000, "10.0.0.9", 49664)
    alter = BindRecord(
        flow, 20, 2, "alter_context", 4, 1, SRVSVC, 3, 0, (NDR,), "acceptance", None, 21, NDR, None, 4280, 4280, 0, 0,
        None, None, BY_MIDSTREAM,
    )  # fmt: skip
    call = CallRecord(
        flow, 10, 1, 10, 7, 1, None, None, None, "unknown", 15, None, 0, 1, None, None, None, None, None, False, None,
        None, None, None, None, None, False,
    )  # fmt: skip
    records = Records()
    records.binds.append(alter)
    records.calls.append(call)
    records.finish()
    columnar, row_by_row = _each_way(records, "calls")
    pd.testing.assert_frame_equal(columnar, row_by_row)
    assert columnar.loc[0, "interface_name"] == "srvsvc" and columnar.loc[0, "interface_source"] == "alter_context"
    assert columnar.loc[0, "operation"] == row_by_row.loc[0, "operation"] != "opnum-15"


def test_chunks_keep_their_size_across_batch_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch files of 3 records (and a buffer of 2) streamed as chunks of 4 (binds come in twice
    CHUNK_ROWS): every chunk but the last is full, as when the records were gathered one by one."""
    from tests.test_records import _bind

    monkeypatch.setattr(rec_mod, "BATCH_ROWS", 3)
    monkeypatch.setattr(spooled_mod, "CHUNK_ROWS", 2)
    monkeypatch.setattr(spooled_mod, "CACHE_ROWS", 0)
    records = Records()
    records.binds.extend(_bind(i) for i in range(11))
    sizes = [len(chunk) for chunk in Spooled(records).chunks("binds", ["frame"])]
    assert sizes == [4, 4, 3]
    frames = [f for chunk in Spooled(records).chunks("binds", ["frame"]) for f in chunk["frame"].tolist()]
    assert frames == [_bind(i).frame for i in range(11)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 1, 2**63 - 1])), max_size=20)
)
def test_times_and_text_are_what_pandas_makes(values: list[int | None]) -> None:
    """`vector.typed`'s quicker ways (a time column as a view of its integers, `vector.utc_times`;
    text as pandas' own Arrow string array) make what `pd.to_datetime(unit="ns", utc=True)` and
    `pd.array(dtype="string")` make: unknown (0, negative, missing) times NaT, missing text NA."""
    import pyarrow as pa

    from analyzer.report.vector import typed

    ns = pa.array(values, type=pa.int64())
    whole = np.asarray(ns.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    unknown = np.asarray(ns.is_null().to_numpy(zero_copy_only=False), dtype=bool) | (whole <= 0)
    expected = pd.to_datetime(pd.arrays.IntegerArray(np.where(unknown, 0, whole), unknown), unit="ns", utc=True)
    pd.testing.assert_series_equal(pd.Series(typed(ns, "datetime64[ns, UTC]")), pd.Series(expected))
    text = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    for arrow in (text, text.cast(pa.large_string()), pa.chunked_array([text])):
        made = typed(arrow, "string")
        pd.testing.assert_series_equal(pd.Series(made), pd.Series(pd.array(text.to_pylist(), dtype="string")))
