"""The Python API: `analyze(paths)` -> `AnalysisResult`, one DataFrame per table and per view."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from functools import cached_property, partial
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.parallel.beside import beside, can_fork
from analyzer.pipeline import Progress
from analyzer.records import Records
from analyzer.report import views
from analyzer.report.attempts import ATTEMPTS
from analyzer.report.counts import RunCounts
from analyzer.report.hosts import Hosts
from analyzer.report.manifest import utc_now, write_manifest
from analyzer.report.output import NamedFrame, TableData, write_tables
from analyzer.report.passes import PASS_ORDER, Pass
from analyzer.report.source import Source
from analyzer.report.spooled import CACHE_ROWS, Spooled
from analyzer.report.tables import CHUNK_ROWS, HOSTS, SCHEMAS, Tables
from analyzer.report.text import hosts_text
from analyzer.zeek.log import FORMATS as ZEEK_FORMATS

# The views `write` makes in a forked child when it may use a second core (see `_write_all`). The
# matrix is made here, beside the writer's pass over the same tables: with it the child's half was
# the longer one (1.1 GB capture, medians of 10 alternated runs: the child 0.42 s against 0.27 s
# here, 0.58 s from the records to the exit; 0.29 and 0.34 s, 0.47 s, with it here; with the
# timeline here instead, 0.34 and 0.31 s, 0.48 s).
_BESIDE = frozenset(("endpoint_inventory", "timeline", "findings"))
# ... and when a base table is big (more than CACHE_ROWS rows: streamed from the spool, not built
# before the fork), data_quality too. Its fold grows with the binds, calls and connections, and under
# floods it made this half the longer one (timelines: the binds flood's halves 2.32 s here against
# 0.49 s there, then 1.50 and 1.39 s; medians of 3 alternated runs, wall: binds 7.90 -> 7.27 s, SYN
# 1.53 -> 1.45 s, pending calls 1.49 -> 1.43 s). With small tables it is the child's half that is
# the longer one (8 captures with --jobs 2, medians of 7: 0.644 -> 0.650 s; 8 rotated files 0.579 ->
# 0.596 s), so there it stays here.
_BESIDE_BIG = frozenset(("data_quality",))


class AnalysisResult:
    """What a run found. Every table is a DataFrame with explicit dtypes (see `report.tables.SCHEMAS`
    and the column dictionary in the README); a table with no rows still has its columns. Each is
    built from the records the first time it is read as an attribute. `write` and the views read the
    tables through `source` instead (`report.spooled`): a chunk at a time from the spooled records,
    so a flood's tables are not held whole unless one of them was asked for.

    Attributes:
        binds: one row per presentation-context item of every bind and alter_context.
        endpoints: one row per tower in every endpoint-mapper response.
        calls: one row per request, with what answered it.
        connections: one row per DCE/RPC transport conversation.
        hosts: per host and role (client or server): the services negotiated.
        violations: everything malformed, inconsistent or capped.
        captures: one row per input file, with the error that stopped it, if any.
        records: the raw records the tables were built from.
        started: when the analysis started (ISO 8601 UTC), for manifest.json.
        input_digests: the inputs' sizes and SHA-256 when already computed (the CLI hashes them
            while the captures are read), for manifest.json; hashed on write otherwise.
        cores: the processes `write` may use (1, the default, or the run's `jobs`): with more than
            one, most views and the findings are made and written in a forked child
            (`analyzer.parallel.beside`) while this process writes the base tables.

    The views (see `views.VIEW_SCHEMAS`) are computed from the tables the first time they are read:
    `endpoint_inventory`, `timeline`, `matrix`, `data_quality`, and `findings`; so are `hosts` and
    the summary's `counts`. Each is a fold of one pass over the base tables (`report.passes`): read
    alone, it makes a pass of its own; `write` makes one pass for the writer and every one of them
    not made yet, and `html` one for all it shows, so each base table is read from the spool once.
    """

    def __init__(
        self,
        records: Records,
        started: str | None = None,
        input_digests: dict[str, dict[str, Any]] | None = None,
        rule_files: tuple[str, ...] = (),
    ) -> None:
        self.records = records
        self.started = started
        self.input_digests = input_digests
        self.rule_files = rule_files  # the user's findings rules, read after the shipped ones
        self.cores = 1  # processes `write` may use: with 2, the views are written in a forked child
        self._streamed: dict[str, _Streams] = {}  # finished folds whose rows the writer streams (`_Kept`)

    @cached_property
    def _spooled(self) -> Spooled:
        return Spooled(self.records)

    @cached_property
    def binds(self) -> pd.DataFrame:
        return self._spooled.table("binds")

    @cached_property
    def endpoints(self) -> pd.DataFrame:
        return self._spooled.table("endpoints")

    @cached_property
    def calls(self) -> pd.DataFrame:
        return self._spooled.table("calls")

    @cached_property
    def connections(self) -> pd.DataFrame:
        return self._spooled.table("connections")

    @cached_property
    def violations(self) -> pd.DataFrame:
        return self._spooled.table("violations")

    @cached_property
    def captures(self) -> pd.DataFrame:
        return self._spooled.table("captures")

    @cached_property
    def hosts(self) -> pd.DataFrame:
        return self._folded("hosts")  # type: ignore[no-any-return]

    @cached_property
    def counts(self) -> RunCounts:
        """What the run summary counts (`report.counts`): rows per capture and table, services."""
        return self._folded("counts")  # type: ignore[no-any-return]

    def _folded(self, name: str) -> Any:
        """A reader's result (`READERS`), made by a pass of its own unless a pass made it already."""
        if name not in self.__dict__ and name not in self._streamed:
            self._pass([name]).finish()
        streamed = self._streamed.pop(name, None)
        return self.__dict__[name] if streamed is None else streamed.result()

    def _rows(self, name: str) -> TableData:
        """A view's rows for a writer: a piece at a time from a fold that streams them (`_streamed`:
        data_quality's rows, spilled to disk), no frame made; any other view's frame."""
        streamed = self._streamed.get(name)
        return getattr(self, name) if streamed is None else streamed.stream()

    def _pass(self, names: Iterable[str]) -> Pass:
        """One pass over the base tables (`report.passes`) for the named readers not made yet, each
        kept as an attribute when the pass finishes (or, a fold that streams its rows, in `_streamed`)."""
        made, streamed = self.__dict__, self._streamed
        todo = [name for name in names if name not in made and name not in streamed]
        return Pass(self.source, [_Kept(name, _reader(name, self.rule_files), made, streamed) for name in todo])

    @property
    def source(self) -> Source:
        """The base tables as the views, the per-host table and the findings read them (`report.source`):
        a table already built for the API is read from its DataFrame, any other from the spool
        (`report.spooled`), a chunk at a time, never whole unless a reader asks for it whole."""
        return _ResultSource(self.__dict__, self._spooled)

    def __repr__(self) -> str:
        """One line: the tables and their row counts (the DataFrames themselves are attributes)."""
        counts = ", ".join(f"{name}={len(df)}" for name, df in self.tables.items())
        return f"AnalysisResult({counts})"

    @property
    def tables(self) -> Tables:
        return Tables(
            self.binds,
            self.endpoints,
            self.calls,
            self.connections,
            self.hosts,
            self.violations,
            self.captures,
        )

    @cached_property
    def attempts(self) -> pd.DataFrame:
        """One row per TCP connection attempt to an RPC port that never became a DCE/RPC conversation
        (outcome syn_only, rejected or no_pdu): port scans and refused connections."""
        return self._spooled.table("attempts")

    @cached_property
    def endpoint_inventory(self) -> pd.DataFrame:
        """Per server, interface, protocol and endpoint: what its endpoint mapper announced and what was
        used, with `status` announced-only, announced-and-used or used-without-announcement."""
        return self._folded("endpoint_inventory")  # type: ignore[no-any-return]

    @cached_property
    def timeline(self) -> pd.DataFrame:
        """Binds, calls, faults and bytes per minute, client -> server pair and interface."""
        return self._folded("timeline")  # type: ignore[no-any-return]

    @cached_property
    def matrix(self) -> pd.DataFrame:
        """Client x server x interface: where, how often and as whom each service was negotiated."""
        return self._folded("matrix")  # type: ignore[no-any-return]

    @cached_property
    def findings(self) -> pd.DataFrame:
        """Attacks, reconnaissance and risky admin actions found by the rules (see analyzer.findings), most
        severe first: one row per technique, client, server and burst of activity."""
        return self._folded("findings")  # type: ignore[no-any-return]

    def add_findings(self, extra: pd.DataFrame) -> None:
        """Add the rows of another producer of findings (Sigma matches, same columns) to `findings`."""
        if not extra.empty:
            self.__dict__["findings"] = pd.concat([self.findings, extra], ignore_index=True)

    def attempts_table(self) -> pd.DataFrame:
        """The `attempts` rows as the views and findings read them whole: the table itself once it was
        asked for, else its compact form (text columns categorical, same rows and values): a SYN
        flood's million rows without a million cells of text each."""
        return self.source.frame("attempts")

    @cached_property
    def data_quality(self) -> pd.DataFrame:
        """Per capture and per connection: what the capture did not show, with a short summary."""
        return self._folded("data_quality")  # type: ignore[no-any-return]

    def view_items(self) -> list[NamedFrame]:
        """The views as (name, what makes the DataFrame, schema), in the order they are written, then
        the findings."""
        from analyzer.findings import FINDINGS

        def view(name: str) -> Callable[[], TableData]:
            return lambda: self._rows(name)

        items: list[NamedFrame] = [(name, view(name), schema) for name, schema in views.VIEW_SCHEMAS.items()]
        return [*items, ("findings", view("findings"), FINDINGS)]

    def hosts_text(self, role: str | None = None) -> str:
        """The per-host view as readable text, each host with the services it negotiated."""
        return hosts_text(self.hosts, self.matrix, role)

    def html(self, title: str = "RPC traffic report", include_local: bool = False) -> str:
        """The self-contained HTML report (summary, per-host tables, inventory, plots, data quality);
        ncalrpc (local) endpoints are left out of its inventory unless include_local."""
        from analyzer.report.html import render

        self._pass([*READERS, "figures"]).finish()  # every reader the report shows, in one pass
        shown = {name: getattr(self, name) for name in (*views.VIEW_SCHEMAS, "findings")}
        return render(self._folded("figures"), self.hosts, shown, title, include_local)

    @property
    def errors(self) -> list[str]:
        """One line per input file that could not be read: '<file>: <why>'."""
        return [f"{c.path}: {c.error}" for c in self.records.captures if c.error]

    def write(
        self,
        out_dir: str | PathLike[str],
        fmt: str = "csv",
        all_calls: bool = False,
        *,
        arguments: Mapping[str, object] | None = None,
        partitioned: bool = False,
    ) -> list[Path]:
        """Write every table and view to out_dir as CSV (default), JSON lines or Parquet; or, with fmt
        `zeek` (TSV) or `zeek-json`, the Zeek-compatible logs (see `analyzer.zeek.logs`; `all_calls`
        puts every call in dce_rpc.log instead of only those Zeek would log). Then manifest.json
        (version, `arguments`, inputs with size and SHA-256, times, files written). Returns the paths
        of the tables (or logs). `partitioned` (with fmt `parquet`): each table a dataset of one part
        per capture session (`analyzer.report.partitioned.write_partitioned`), the views files beside them."""
        if fmt in ZEEK_FORMATS:
            from analyzer.zeek.logs import write_zeek_logs

            written = write_zeek_logs(self, out_dir, fmt, all_calls)
        elif partitioned and fmt == "parquet":
            from analyzer.report.partitioned import write_partitioned

            whole = [(name, getattr(self, name)) for name in (*PASS_ORDER[:-1], "attempts")]  # built once
            self._pass(READERS).finish()  # every reader in one pass over those frames
            written = write_partitioned([*self.tables.items(), whole[-1]], self.records, out_dir)
            written += write_tables({}, out_dir, fmt, self.view_items())
        else:
            written = self._write_all(out_dir, fmt)
            self._spooled.forget()  # the big tables whole readers needed are written: not kept after
        write_manifest(
            out_dir,
            (c.path for c in self.records.captures),
            written,
            arguments=arguments,
            started=self.started or utc_now(),
            fmt=fmt,
            digests=self.input_digests,
        )
        return written

    def _write_all(self, out_dir: str | PathLike[str], fmt: str) -> list[Path]:
        """The base tables, the per-host table, the views and findings, then attempts; the paths in
        that order. One pass over each base table (`report.passes`): the writer takes every chunk, and
        every reader not made yet (`READERS`) folds it. With `cores` > 1 the views of `_BESIDE` (and
        of `_BESIDE_BIG` when a base table is big) are made (in one pass of their own) and written in
        a forked child (`parallel.beside`) while this process makes its pass; the small tables are
        built first, so both processes read them built."""
        items = self.view_items()
        there: list[NamedFrame] = []
        if self.cores > 1 and can_fork():
            big = any(self._spooled.rows(name) > CACHE_ROWS for name in PASS_ORDER)
            beside_names = _BESIDE | _BESIDE_BIG if big else _BESIDE
            there = [item for item in items if item[0] in beside_names]
        if there:
            for name in SCHEMAS:
                if name != "hosts" and self._spooled.rows(name) <= CACHE_ROWS:
                    self._spooled.frame(name)  # built once, here: the child inherits it
        away = {name for name, _make, _schema in there}
        with beside(partial(self._write_items, out_dir, fmt, there), fork=bool(there)) as views_there:
            sweep = self._pass(name for name in READERS if name not in away)
            base = {name: sweep.chunks(name, everything=True) for name in PASS_ORDER if name in SCHEMAS}

            def hosts() -> pd.DataFrame:
                sweep.finish()
                return self.hosts

            # the attempts first of the rest: the pass's last table, which data_quality and the findings
            # read; streamed, in its own dtypes, a million SYNs' rows never held whole, not even compact
            attempts = partial(sweep.chunks, "attempts", everything=True)
            here = [item for item in items if item not in there]
            extra: list[NamedFrame] = [("attempts", attempts, ATTEMPTS), ("hosts", hosts, HOSTS), *here]
            written = write_tables(base, out_dir, fmt, extra)
            made, frames = views_there.result()
        self.__dict__.update(frames)  # the views as if made here
        written += list(made.values())
        order = [*SCHEMAS, *(name for name, _make, _schema in items), "attempts"]
        written.sort(key=lambda path: order.index(path.stem))  # listed as ever: the tables, then the rest
        return written

    def _write_items(
        self, out_dir: str | PathLike[str], fmt: str, items: list[NamedFrame]
    ) -> tuple[dict[str, Path], dict[str, pd.DataFrame]]:
        """Views written (see `view_items`): their paths and their frames, by name."""
        names = [name for name, _make, _schema in items]
        self._pass(names).finish()  # every one of them from one pass over the base tables
        written = write_tables({}, out_dir, fmt, items)
        # A view whose rows were streamed from its spill (data_quality: a row per connection) is not
        # made whole to be sent back: reading it later makes it again, as before any pass.
        made = {name: self.__dict__[name] for name in names if name in self.__dict__}
        return dict(zip(names, written, strict=True)), made


# The readers one pass over the base tables feeds (`report.passes`), by the attribute each makes.
READERS = ("hosts", *views.VIEW_SCHEMAS, "findings", "counts")


def _reader(name: str, rule_files: tuple[str, ...]) -> Any:
    """The fold that makes the reader `name` (`READERS`, or `figures` for the HTML report)."""
    if name == "hosts":
        return Hosts()
    if name == "counts":
        return RunCounts()
    if name == "figures":
        from analyzer.report.figures import FiguresFold

        return FiguresFold()
    if name == "findings":
        from analyzer import findings

        return findings.Findings(findings.load_rules(rule_files))
    return views.FOLDS[name]()


class _Streams(Protocol):
    """A finished fold that gives its rows whole (`result`) or as a writer takes them (`stream`)."""

    def result(self) -> pd.DataFrame: ...

    def stream(self) -> TableData: ...


class _Kept:
    """A reader's fold whose result is kept in `made` (the result's attributes) under its name; a fold
    that can stream its rows (`stream()`, data_quality) is kept itself, in `streamed`, instead: the
    writer streams its rows, reading the attribute makes its frame."""

    def __init__(self, name: str, fold: Any, made: dict[str, Any], streamed: dict[str, _Streams]) -> None:
        self.name, self.fold, self.made, self.streamed = name, fold, made, streamed

    def wants(self, table: str) -> Sequence[str] | None:
        return self.fold.wants(table)  # type: ignore[no-any-return]

    def add(self, table: str, chunk: pd.DataFrame) -> None:
        self.fold.add(table, chunk)

    def done(self, source: Source) -> None:
        self.fold.done(source)
        if hasattr(self.fold, "stream"):
            self.streamed[self.name] = self.fold
        else:
            self.made[self.name] = self.fold.result()
        self.fold = None  # its state freed now, before the next fold's result is made beside it


class _ResultSource:
    """The Source of an AnalysisResult: a base table the API already built (in `built`, the result's
    attributes) from that DataFrame, any other from the spool."""

    def __init__(self, built: Mapping[str, Any], spooled: Spooled) -> None:
        self._built, self._spooled = built, spooled

    def _frame(self, table: str) -> pd.DataFrame | None:
        df = self._built.get(table)
        return df if isinstance(df, pd.DataFrame) else None

    def chunks(self, table: str, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        df = self._frame(table)
        if df is None:
            yield from self._spooled.chunks(table, columns)
            return
        df = df if columns is None else df[list(columns)]
        for start in range(0, len(df), CHUNK_ROWS):
            yield df.iloc[start : start + CHUNK_ROWS]

    def frame(self, table: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        df = self._frame(table)
        if df is None:
            return self._spooled.frame(table, columns)
        return df if columns is None else df[list(columns)]


def from_records(records: Records, started: str | None = None) -> AnalysisResult:
    return AnalysisResult(records, started)


def analyze(
    paths: str | PathLike[str] | Iterable[str | PathLike[str]],
    *,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    rules: Iterable[str | PathLike[str]] = (),
    jobs: int = 1,
    client: Any = None,
) -> AnalysisResult:
    """Analyse capture files and directories (pcap, pcapng, NetMon 2.x, optionally gzip-compressed).

    Files that cannot be read do not raise: they appear in `captures` with their `error`, and in
    `errors`. Everything read before a truncated file's cut is kept. `rules`: your own findings rule
    files (see analyzer.findings.rules), read after the shipped ones when `findings` is first read.
    `jobs`: worker processes reading the capture sessions (`analyzer.parallel.multicore`; 1: this process
    alone); `client`: a `distributed.Client`, whose cluster reads them instead (`analyzer.parallel.distributed`;
    its workers must reach the same paths). Either way the records are the ones a single process makes.

        >>> result = analyze(["samples/pcaps"])          # doctest: +SKIP
        >>> result.binds[["client_ip", "server_ip", "interface_name", "ack_result"]]  # doctest: +SKIP
        >>> result = analyze(["captures/"], jobs=4)      # doctest: +SKIP
    """
    if isinstance(paths, str | PathLike):
        paths = [paths]
    started = utc_now()
    names = [str(p) for p in paths]
    if client is not None:
        from analyzer.parallel.distributed import run_on_cluster

        records = run_on_cluster(names, limits, client, progress)
    else:
        from analyzer.parallel.multicore import run

        records = run(names, limits, jobs, lambda: nullcontext(progress))
    result = from_records(records, started)
    result.rule_files = tuple(str(r) for r in rules)
    result.cores = jobs if client is None else 1
    return result


def analyze_packets(
    packets: Iterable[Any], link_type: int = 1, *, name: str = "packets", limits: Limits = DEFAULT_LIMITS
) -> AnalysisResult:
    """Analyse frames from any packet source: an iterable of `(timestamp, frame_bytes)` as
    `dpkt.pcap.Reader`, `dpkt.pcapng.Reader` or a libpcap binding yield, or scapy's `RawPcapReader`
    `(frame_bytes, metadata)` pairs (see `analyzer.packets`). `link_type` is the frames' link type
    (1 Ethernet, 113 Linux SLL, 101 raw IP, ...); `name` is the capture's name in the records.
    The result is the one `analyze()` gives for the same frames in a file.

        >>> import dpkt                                               # doctest: +SKIP
        >>> with open("capture.pcap", "rb") as f:                     # doctest: +SKIP
        ...     r = dpkt.pcap.Reader(f)
        ...     result = analyze_packets(r, r.datalink(), name="capture.pcap")

    For frames that arrive one at a time use `analyzer.packets.PacketFeed` (`feed(ts, frame)`, then
    `records()`), and `from_records` on what it returns.
    """
    from analyzer.packets import analyze_packets_records

    started = utc_now()
    return from_records(analyze_packets_records(packets, link_type, name, limits), started)
