"""Compare the analyzer's records with the Wireshark-derived truth in ../shared/captures/truth.

Keys, as the project's issues define them:
- binds: client/server address and port, call_id, ctx_id, interface uuid, major version;
  then ack_result is compared.
- EPM towers: server/client address and port, call_id, tower index, interface uuid and major
  version, protocol, port and the tower's IP floor.
- connectionless PDUs: addresses, ports, activity uuid, seqnum, ptype, opnum.

Exceptions (cases where we are sure the truth is wrong) live in `truth_exceptions.csv`, each with
its reason; nothing else may excuse a difference.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
CAPTURES = SHARED / "captures"
TRUTH = CAPTURES / "truth"
EXCEPTIONS = HERE / "truth_exceptions.csv"

ACK_NAMES = {
    "0": "acceptance",
    "1": "user_rejection",
    "2": "provider_rejection",
    "3": "negotiate_ack",
    "nak": "nak",
    "": "none",
}
PROTOCOLS = {"tcp": "ncacn_ip_tcp", "udp": "ncadg_ip_udp", "http": "ncacn_http"}
BIND_TRANSPORTS = {
    "tcp": "ncacn_ip_tcp",
    "smb": "ncacn_np",
    "smb2": "ncacn_np",
    "udp": "ncadg_ip_udp",
    "http": "ncacn_http",
}


def capture_paths() -> list[Path]:
    """Every capture that has truth files, as a path under ../shared/captures."""
    names = sorted({p.name.rsplit(".", 2)[0] for p in TRUTH.glob("*.csv")})
    out = []
    for n in names:
        rel = n.replace("__", "/")
        p = CAPTURES / rel
        if not p.exists():  # a directory name containing "__" (prot-od-netcaps/_MS-ADOD_-captureALL)
            p = _resolve(n)
        out.append(p)
    return out


def _resolve(name: str) -> Path:
    for p in CAPTURES.rglob("*"):
        if p.is_file() and truth_name(p) == name:
            return p
    raise FileNotFoundError(name)


def truth_name(path: Path) -> str:
    return path.relative_to(CAPTURES).as_posix().replace("/", "__")


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


BindKey = tuple[str, int, str, int, int, int, str, int]


@dataclass
class Diff:
    missing: list[str]
    extra: list[str]
    mismatched: list[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.mismatched)


def load_exceptions() -> set[tuple[str, str, str]]:
    """(capture truth name, table, key text) excused, each with a reason in the file."""
    out = set()
    for row in _rows(EXCEPTIONS):
        if not row.get("reason", "").strip():
            raise ValueError(f"{EXCEPTIONS}: exception without a reason: {row}")
        out.add((row["capture"], row["table"], row["key"]))
    return out


def truth_binds(name: str, transports: set[str]) -> dict[BindKey, list[str]]:
    out: dict[BindKey, list[str]] = {}
    for r in _rows(TRUTH / f"{name}.binds.csv"):
        if BIND_TRANSPORTS.get(r["transport"]) not in transports:
            continue
        key = (
            r["src_ip"],
            int(r["src_port"]),
            r["dst_ip"],
            int(r["dst_port"]),
            int(r["call_id"]),
            int(r["ctx_id"]),
            r["if_uuid"].lower(),
            int(r["if_ver"]),
        )
        out.setdefault(key, []).append(ACK_NAMES.get(r["ack_result"], r["ack_result"]))
    return out


def compare_binds(name: str, binds: list[dict[str, object]], transports: set[str]) -> Diff:
    """binds: rows of our binds table (as dicts). A bind and a later alter_context may share a key
    (same call_id and ctx_id), so keys are compared as multisets and their answers as sorted lists."""
    truth = truth_binds(name, transports)
    ours: dict[BindKey, list[str]] = {}
    for b in binds:
        if b["transport"] not in transports:
            continue
        major = int(str(b["interface_version"]).split(".")[0])
        key = (
            str(b["client_ip"]),
            int(b["client_port"]),
            str(b["server_ip"]),
            int(b["server_port"]),  # type: ignore[call-overload]
            int(b["call_id"]),
            int(b["ctx_id"]),
            str(b["interface_uuid"]),
            major,
        )  # type: ignore[call-overload]
        ours.setdefault(key, []).append(str(b["ack_result"]))
    exc = load_exceptions()
    missing, extra, mismatched = [], [], []
    for k in truth.keys() | ours.keys():
        t, o = sorted(truth.get(k, [])), sorted(ours.get(k, []))
        if (name, "binds", str(k)) in exc:
            continue
        if len(t) > len(o):
            missing.append(f"{k} truth {t} ours {o}")
        elif len(o) > len(t):
            extra.append(f"{k} truth {t} ours {o}")
        elif t != o and (name, "binds_ack", str(k)) not in exc:
            mismatched.append(f"{k}: truth {t} ours {o}")
    return Diff(missing, extra, mismatched)


# tower_index is not part of the key: tshark's JSON output merges equal keys, which reorders the
# towers of an ept_lookup answer whose entries differ in shape (tshark -T json --no-duplicate-keys),
# so the truth's index is only the position in tshark's tree. Rows are compared as multisets instead.
EpmKey = tuple[str, int, str, int, int, str, int, str, int, str]


def truth_epm(name: str, protocols: set[str]) -> Counter[EpmKey]:
    out: Counter[EpmKey] = Counter()
    for r in _rows(TRUTH / f"{name}.epm.csv"):
        proto = PROTOCOLS.get(r["protocol"], r["protocol"])
        if proto not in protocols:
            continue
        out[
            (
                r["server_ip"],
                int(r["server_port"]),
                r["client_ip"],
                int(r["client_port"]),
                int(r["call_id"]),
                r["if_uuid"].lower(),
                int(r["if_ver_major"]),
                proto,
                int(r["port"]),
                r["tower_ip"],
            )
        ] += 1
    return out


def compare_epm(name: str, endpoints: list[dict[str, object]], protocols: set[str]) -> Diff:
    truth = truth_epm(name, protocols)
    ours: Counter[EpmKey] = Counter()
    for e in endpoints:
        if e["protocol"] not in protocols or e["port"] is None:
            continue
        ours[
            (
                str(e["epm_server_ip"]),
                int(e["epm_server_port"]),
                str(e["client_ip"]),
                int(e["client_port"]),  # type: ignore[call-overload]
                int(e["call_id"]),
                str(e["interface_uuid"]),
                int(str(e["interface_version"]).split(".")[0]),  # type: ignore[call-overload]
                str(e["protocol"]),
                int(e["port"]),
                str(e["announced_host"] or ""),
            )
        ] += 1  # type: ignore[call-overload]
    exc = load_exceptions()
    missing = [f"{k} x{n}" for k, n in (truth - ours).items() if (name, "epm", str(k)) not in exc]
    extra = [f"{k} x{n}" for k, n in (ours - truth).items() if (name, "epm", str(k)) not in exc]
    return Diff(missing, extra, [])


ClKey = tuple[int, str, int, str, int, int, str, int, int]


def truth_cl(name: str) -> Counter[ClKey]:
    out: Counter[ClKey] = Counter()
    for r in _rows(TRUTH / f"{name}.cl.csv"):
        out[
            (
                int(r["frame"]),
                r["src_ip"],
                int(r["src_port"]),
                r["dst_ip"],
                int(r["dst_port"]),
                int(r["pkt_type"]),
                r["activity_uuid"].lower(),
                int(r["seqnum"]),
                int(r["opnum"]),
            )
        ] += 1
    return out


def compare_cl(name: str, datagrams: list[dict[str, object]]) -> Diff:
    """datagrams: (frame, src_ip, src_port, dst_ip, dst_port, ptype, activity_uuid, seqnum, opnum) dicts."""
    truth = truth_cl(name)
    ours: Counter[ClKey] = Counter(
        (
            int(d["frame"]),
            str(d["src_ip"]),
            int(d["src_port"]),
            str(d["dst_ip"]),
            int(d["dst_port"]),  # type: ignore[call-overload]
            int(d["ptype"]),
            str(d["activity_uuid"]),
            int(d["seqnum"]),
            int(d["opnum"]),
        )  # type: ignore[call-overload]
        for d in datagrams
    )
    exc = load_exceptions()
    missing = [f"{k} x{n}" for k, n in (truth - ours).items() if (name, "cl", str(k)) not in exc]
    extra = [f"{k} x{n}" for k, n in (ours - truth).items() if (name, "cl", str(k)) not in exc]
    return Diff(missing, extra, [])


# calls: one row per connection-oriented request, matched by the frame completing it, client and
# server address and port, call_id and opnum.
CallKey = tuple[int, str, int, str, int, int, int]
_Conv = tuple[str, int, str, int, int, int]


def truth_calls(name: str) -> Counter[CallKey]:
    """The truth's requests, each counted once at its last fragment. tshark could not reassemble some
    fragmented requests (sealed stubs, a reassembly it gave up) and lists every fragment of them; the
    fragments before the last one of the same call on the same conversation are dropped here, so the
    truth says what its maker says it counts: each request at its last fragment (the latest one
    captured, when the capture ends before the request does)."""
    rows = _rows(TRUTH / f"{name}.calls.csv")
    out: Counter[CallKey] = Counter()
    pending: dict[_Conv, list[CallKey]] = {}
    for r in rows:
        key = (
            int(r["frame"]),
            r["src"],
            int(r["sport"]),
            r["dst"],
            int(r["dport"]),
            int(r["call_id"]),
            int(r["opnum"]),
        )
        conv = key[1:]
        if r["last_frag"] == "1":
            pending.pop(conv, None)
            out[key] += 1
        elif r["first_frag"] == "1" or conv in pending:
            pending.setdefault(conv, []).append(key)
    for keys in pending.values():  # the capture ends before the last fragment: counted at the latest
        out[keys[-1]] += 1
    return out


def our_calls(calls: list[dict[str, object]]) -> Counter[CallKey]:
    """Our connection-oriented calls (rows of the calls table) under the truth's key."""
    return Counter(
        (
            int(c["frame"]),  # type: ignore[call-overload]
            str(c["client_ip"]),
            int(c["client_port"]),  # type: ignore[call-overload]
            str(c["server_ip"]),
            int(c["server_port"]),  # type: ignore[call-overload]
            int(c["call_id"]),  # type: ignore[call-overload]
            int(c["opnum"]),  # type: ignore[call-overload]
        )
        for c in calls
        if c["transport"] != "ncadg_ip_udp"
    )


@dataclass
class CallsDiff(Diff):
    truth: int = 0
    ours: int = 0
    matched: int = 0
    excused: int = 0  # differences the exceptions file explains


def compare_calls(name: str, calls: list[dict[str, object]]) -> CallsDiff:
    """Missing and extra requests, apart from the excused ones; counts include the excused."""
    truth, ours = truth_calls(name), our_calls(calls)
    exc = load_exceptions()
    differ = [*(truth - ours), *(ours - truth)]
    missing = [f"{k} x{n}" for k, n in (truth - ours).items() if (name, "calls", str(k)) not in exc]
    extra = [f"{k} x{n}" for k, n in (ours - truth).items() if (name, "calls", str(k)) not in exc]
    matched = sum((truth & ours).values())
    excused = sum((name, "calls", str(k)) in exc for k in differ)
    return CallsDiff(missing, extra, [], sum(truth.values()), sum(ours.values()), matched, excused)
