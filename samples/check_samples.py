#!/usr/bin/env python3
"""Check that tshark agrees with the manifests of the bundled sample captures.

For every samples/expected/<capture>.json this runs the shared tshark truth tool
(/work/shared/captures/tools/truth.py CAPTURE samples/truth/), which writes <capture>.binds.csv,
.epm.csv and .cl.csv, and compares:

  * binds      every bind/alter_context context item: frame, client/server address and port, pdu type,
               call_id, ctx_id, interface uuid and major version, transfer syntaxes, ack frame, ack result
               and (bind_ack) secondary address;
  * epm        every endpoint-mapper tower carrying a TCP/UDP/HTTP port: frame, addresses, call_id,
               opnum, request frame, tower index, interface uuid/version, protocol, port, floor-5 IP;
  * cl         every connectionless PDU: frame, addresses, ptype, interface, opnum, activity, seqnum,
               fragnum, byte order;

and, with direct tshark queries (the truth tool does not cover them), the requests (frame, call_id,
ctx_id, opnum, answer frame, fault status), the NTLMSSP AUTHENTICATE user/domain/workstation, and the
number of frames.  Manifest rows carrying "tshark_skip" (something tshark is known not to see, explained
under the manifest's "tshark_notes") are left out of the expected side; a tshark row matching one of
them is not reported as unexpected either.

Exit status 0 when everything agrees, 1 otherwise (the differences are printed).

    /work/venv/bin/python samples/check_samples.py              # every sample
    /work/venv/bin/python samples/check_samples.py smb2 cl_udp  # samples whose file name contains a word
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PCAPS = HERE / "pcaps"
EXPECTED = HERE / "expected"
TRUTH = HERE / "truth"
TRUTH_TOOL = Path("/work/shared/captures/tools/truth.py")

CARRIERS = {
    "ncacn_ip_tcp": {"tcp"},
    "ncacn_http": {"tcp", "http"},
    "ncacn_np": {"smb", "smb2"},
    "ncadg_ip_udp": {"udp"},
}
EPM_PROTO = {"ncacn_ip_tcp": "tcp", "ncadg_ip_udp": "udp", "ncacn_http": "http"}
CL_PTYPE = {
    "request": 0,
    "ping": 1,
    "response": 2,
    "fault": 3,
    "working": 4,
    "nocall": 5,
    "reject": 6,
    "ack": 7,
    "cl_cancel": 8,
    "fack": 9,
    "cancel_ack": 10,
}


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def s(v: Any) -> str:
    return "" if v is None else str(v)


class Report:
    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[str] = []
        self.checked: Counter[str] = Counter()

    def compare(
        self,
        what: str,
        expected: Sequence[tuple[str, ...]],
        actual: Sequence[tuple[str, ...]],
        tolerated: Sequence[tuple[str, ...]],
        fields: tuple[str, ...],
    ) -> None:
        """Multiset comparison; rows of `tolerated` may appear in tshark's output without being expected."""
        exp, act = Counter(expected), Counter(actual)
        missing = exp - act
        extra = act - exp
        tol = Counter(tolerated)
        extra = Counter({k: v for k, v in extra.items() if k not in tol})
        self.checked[what] += len(expected)
        for row, n in sorted(missing.items()):
            self.problems.append(
                f"{what}: expected but tshark does not show ({n}x): {dict(zip(fields, row, strict=True))}"
            )
            near = [a for a in act if a[0] == row[0]]
            for a in near[:3]:
                diff = {f: (x, y) for f, x, y in zip(fields, row, a, strict=True) if x != y}
                self.problems.append(f"    tshark row in the same frame differs in {diff}")
        for row, n in sorted(extra.items()):
            shown = dict(zip(fields, row, strict=True))
            self.problems.append(f"{what}: tshark shows but the manifest does not ({n}x): {shown}")


def run_tshark_fields(cap: Path, flt: str, fields: list[str], opts: list[str]) -> list[list[str]]:
    cmd = [
        "tshark",
        "-r",
        str(cap),
        "-2",
        *opts,
        "-Y",
        flt,
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
    ]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, errors="replace").stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def check_binds(rep: Report, man: dict[str, Any], truth: list[dict[str, str]]) -> None:
    fields = (
        "frame",
        "client_ip",
        "client_port",
        "server_ip",
        "server_port",
        "carrier",
        "pdu_type",
        "call_id",
        "ctx_id",
        "if_uuid",
        "if_ver_major",
        "transfer_syntaxes",
        "ack_frame",
        "ack_result",
        "sec_addr",
        "smb2_fid",
    )
    exp: list[tuple[str, ...]] = []
    tol: list[tuple[str, ...]] = []
    carriers: dict[tuple[str, str], set[str]] = {}
    for b in man["binds"]:
        row = (
            s(b["frame"]),
            b["client_ip"],
            s(b["client_port"]),
            b["server_ip"],
            s(b["server_port"]),
            "*",
            b["pdu_type"],
            s(b["call_id"]),
            s(b["ctx_id"]),
            b["if_uuid"],
            s(b["if_ver_major"]),
            ";".join(t.split("/")[0] for t in b["transfer_syntaxes"]),
            s(b["ack_frame"]),
            b["ack_result"],
            s(b.get("sec_addr", "")) if b["ack_pdu_type"] == "bind_ack" else "",
            b.get("smb_file_id", "") if b.get("smb_version") == 2 else "",
        )
        carriers[(row[0], row[7])] = CARRIERS[b["transport"]]
        (tol if b.get("tshark_skip") or not b.get("recoverable", True) else exp).append(row)
    act = []
    for t in truth:
        res = t["ack_result_name"]
        res = "nak" if t["ack_result"] == "nak" else (res or "none")
        sec = t["ack_sec_addr"] if t["ack_pkt_type"] == "bind_ack" else ""
        key = (t["frame"], t["call_id"])
        carrier_ok = t["transport"] in carriers.get(key, {t["transport"]})
        if not carrier_ok:
            rep.problems.append(
                f"binds: frame {t['frame']} carried over {t['transport']}, manifest says {sorted(carriers[key])}"
            )
        act.append(
            (
                t["frame"],
                t["src_ip"],
                t["src_port"],
                t["dst_ip"],
                t["dst_port"],
                "*",
                t["pkt_type"],
                t["call_id"],
                t["ctx_id"],
                t["if_uuid"],
                t["if_ver"],
                t["transfer_syntaxes"],
                t["ack_frame"],
                res,
                sec,
                t["smb_fid"] if t["transport"] == "smb2" else "",
            )
        )
    rep.compare("binds", exp, act, tol, fields)


def tower_index(opnum: str, index: str) -> str:
    """The truth tool numbers towers in the order of tshark's JSON, where --no-duplicate-keys groups the
    ept_lookup entries that have the same label ("Entry:") into one list: for ept_lookup (opnum 2) that order
    is not the wire order, so the index is only compared for ept_map (opnum 3)."""
    return index if opnum == "3" else "*"


def check_epm(rep: Report, man: dict[str, Any], truth: list[dict[str, str]]) -> None:
    fields = (
        "frame",
        "server_ip",
        "server_port",
        "client_ip",
        "client_port",
        "call_id",
        "request_frame",
        "opnum",
        "tower_index",
        "if_uuid",
        "if_ver_major",
        "if_ver_minor",
        "protocol",
        "port",
        "tower_ip",
    )
    exp: list[tuple[str, ...]] = []
    tol: list[tuple[str, ...]] = []
    for t in man["epm_towers"]:
        if t["protocol"] not in EPM_PROTO:
            continue
        row = (
            s(t["frame"]),
            t["server_ip"],
            s(t["server_port"]),
            t["client_ip"],
            s(t["client_port"]),
            s(t["call_id"]),
            s(t["request_frame"]),
            s(t["opnum"]),
            tower_index(s(t["opnum"]), s(t["tower_index"])),
            t["if_uuid"],
            s(t["if_ver_major"]),
            s(t["if_ver_minor"]),
            EPM_PROTO[t["protocol"]],
            s(t["port"]),
            s(t["host_ip"]),
        )
        (tol if t.get("tshark_skip") else exp).append(row)
    act = [
        (
            t["frame"],
            t["server_ip"],
            t["server_port"],
            t["client_ip"],
            t["client_port"],
            t["call_id"],
            t["request_frame"],
            t["epm_opnum"],
            tower_index(t["epm_opnum"], t["tower_index"]),
            t["if_uuid"],
            t["if_ver_major"],
            t["if_ver_minor"],
            t["protocol"],
            t["port"],
            t["tower_ip"],
        )
        for t in truth
    ]
    rep.compare("epm", exp, act, tol, fields)


def check_cl(rep: Report, man: dict[str, Any], truth: list[dict[str, str]]) -> None:
    fields = (
        "frame",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "ptype",
        "if_uuid",
        "opnum",
        "activity_uuid",
        "seqnum",
        "fragnum",
        "byteorder",
        "flags1",
        "if_ver",
        "object_uuid",
    )
    exp: list[tuple[str, ...]] = []
    tol: list[tuple[str, ...]] = []
    for p in man["cl_pdus"]:
        major, minor = (int(x) for x in p["if_version"].split("."))
        row = (
            s(p["frame"]),
            p["src_ip"],
            s(p["src_port"]),
            p["dst_ip"],
            s(p["dst_port"]),
            s(CL_PTYPE[p["ptype"]]),
            p["if_uuid"],
            s(p["opnum"]),
            p["activity_uuid"],
            s(p["seqnum"]),
            s(p["fragnum"]),
            "1" if p["drep"] == "little" else "0",
            f"0x{p['flags1']:02x}",
            str(major | (minor << 16)),
            p["object_uuid"],
        )
        (tol if p.get("tshark_skip") else exp).append(row)
    act = [
        (
            t["frame"],
            t["src_ip"],
            t["src_port"],
            t["dst_ip"],
            t["dst_port"],
            t["pkt_type"],
            t["if_uuid"],
            t["opnum"],
            t["activity_uuid"],
            t["seqnum"],
            t["frag_num"],
            t["drep_byteorder"],
            t["flags1"],
            t["if_ver"],
            t["object_uuid"],
        )
        for t in truth
        # The truth tool selects `dcerpc && udp`, which also matches a connection-oriented PDU over TCP
        # inside a UDP tunnel (VXLAN, Geneve); such a row has no activity UUID, which every
        # connectionless header carries ([C706] 12.5.1), so it is not a connectionless PDU.
        if t["activity_uuid"]
    ]
    rep.compare("cl", exp, act, tol, fields)


def check_requests(rep: Report, cap: Path, man: dict[str, Any], opts: list[str]) -> None:
    """Requests and their answers, from `tshark -T fields` (one row per PDU, several PDUs per frame)."""
    rows = run_tshark_fields(
        cap,
        "dcerpc.pkt_type == 0 || dcerpc.pkt_type == 2 || dcerpc.pkt_type == 3",
        [
            "frame.number",
            "dcerpc.pkt_type",
            "dcerpc.cn_call_id",
            "dcerpc.cn_ctx_id",
            "dcerpc.opnum",
            "dcerpc.cn_status",
            "dcerpc.cn_flags.last_frag",
        ],
        opts,
    )
    seen: set[tuple[str, ...]] = set()
    for r in rows:
        r += [""] * (7 - len(r))
        frame, pts, cids, ctxs, ops, st, _last = r
        pts_l, cids_l, ctxs_l = pts.split("|"), cids.split("|"), ctxs.split("|")
        ops_l = ops.split("|") if ops else []
        sts = st.split("|") if st else []
        for i, pt in enumerate(pts_l):
            cid = cids_l[i] if i < len(cids_l) else ""
            ctx = ctxs_l[i] if i < len(ctxs_l) else ""
            op = ops_l[i] if i < len(ops_l) else ""
            seen.add((frame, pt, cid, ctx, op if pt == "0" else ""))
            seen.add((frame, pt, cid, "*", "*"))
            if pt == "3":
                for x in sts:
                    seen.add((frame, pt, cid, "status", str(int(x, 0))))
    for q in man["requests"]:
        if q.get("tshark_skip"):
            continue
        rep.checked["requests"] += 1
        if q.get("recoverable", True):
            want = (s(q["frame"]), "0", s(q["call_id"]), s(q["ctx_id"]), s(q["opnum"]))
            if want not in seen:
                rep.problems.append(
                    f"requests: tshark shows no request call_id={q['call_id']} ctx_id={q['ctx_id']} "
                    f"opnum={q['opnum']} in frame {q['frame']}"
                )
        if q.get("response_frame") and q.get("response_recoverable", True) and not q.get("response_tshark_skip"):
            if q.get("fault_status") is not None:
                want = (s(q["response_frame"]), "3", s(q["call_id"]), "status", str(q["fault_status"]))
            else:
                want = (s(q["response_frame"]), "2", s(q["call_id"]), "*", "*")
            if want not in seen:
                rep.problems.append(
                    f"requests: tshark shows no {'fault' if want[1] == '3' else 'response'} "
                    f"call_id={q['call_id']} in frame {q['response_frame']}"
                )


def check_ntlm(rep: Report, cap: Path, man: dict[str, Any], opts: list[str]) -> None:
    rows = run_tshark_fields(
        cap,
        "ntlmssp.messagetype == 3",
        ["frame.number", "ntlmssp.auth.username", "ntlmssp.auth.domain", "ntlmssp.auth.hostname"],
        opts,
    )
    act = [tuple([*r, "", "", "", ""][:4]) for r in rows]
    exp = [
        (s(a["frame"]), a["user"], a["domain"], a["workstation"]) for a in man["ntlm_auth"] if not a.get("tshark_skip")
    ]
    tol = [(s(a["frame"]), a["user"], a["domain"], a["workstation"]) for a in man["ntlm_auth"] if a.get("tshark_skip")]
    rep.compare("ntlm_auth", exp, act, tol, ("frame", "user", "domain", "workstation"))


def check_rts(rep: Report, cap: Path, man: dict[str, Any], opts: list[str]) -> None:
    """RPC-over-HTTP v2 RTS PDUs ([MS-RPCH] 2.2.4): frame, RTS flags and the list of command types."""
    names = {
        0: "ReceiveWindowSize",
        1: "FlowControlAck",
        2: "ConnectionTimeout",
        3: "Cookie",
        4: "ChannelLifetime",
        5: "ClientKeepalive",
        6: "Version",
        7: "Empty",
        8: "Padding",
        9: "NegativeANCE",
        10: "ANCE",
        11: "ClientAddress",
        12: "AssociationGroupId",
        13: "Destination",
        14: "PingTrafficSentNotify",
    }
    rows = run_tshark_fields(
        cap, "dcerpc.pkt_type == 20", ["frame.number", "dcerpc.cn_rts_flags", "dcerpc.cn_rts_command"], opts
    )
    act = [
        (r[0], str(int(r[1], 0)), ",".join(names.get(int(x, 0), x) for x in r[2].split("|")))
        for r in rows
        if len(r) >= 3
    ]
    exp = [
        (s(r["frame"]), str(r["flags"]), ",".join(r["commands"]))
        for r in man.get("rts_pdus", [])
        if not r.get("tshark_skip")
    ]
    tol = [
        (s(r["frame"]), str(r["flags"]), ",".join(r["commands"]))
        for r in man.get("rts_pdus", [])
        if r.get("tshark_skip")
    ]
    rep.compare("rts", exp, act, tol, ("frame", "flags", "commands"))


def check_frames(rep: Report, cap: Path, man: dict[str, Any]) -> None:
    out = subprocess.run(
        ["tshark", "-r", str(cap), "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        errors="replace",
    ).stdout
    n = len(out.split())
    rep.checked["frame_count"] += 1
    if n != man["frame_count"]:
        rep.problems.append(f"frames: tshark reads {n} frames, the manifest says {man['frame_count']}")


def check_one(manifest_path: Path) -> Report:
    man = json.loads(manifest_path.read_text())
    name = man["file"]
    cap = PCAPS / name
    rep = Report(name)
    if not cap.exists():
        rep.problems.append(f"capture {cap} is missing")
        return rep
    TRUTH.mkdir(exist_ok=True)
    for ext in ("binds", "epm", "cl"):
        (TRUTH / f"{name}.{ext}.csv").unlink(missing_ok=True)
    p = subprocess.run([sys.executable, str(TRUTH_TOOL), str(cap), str(TRUTH)], capture_output=True, text=True)
    if p.returncode != 0:
        rep.problems.append(f"truth tool failed: {p.stderr.strip()}")
        return rep
    opts = man.get("tshark_check_options", [])
    check_frames(rep, cap, man)
    check_binds(rep, man, read_csv(TRUTH / f"{name}.binds.csv"))
    check_epm(rep, man, read_csv(TRUTH / f"{name}.epm.csv"))
    check_cl(rep, man, read_csv(TRUTH / f"{name}.cl.csv"))
    check_requests(rep, cap, man, opts)
    check_ntlm(rep, cap, man, opts)
    if man.get("rts_pdus"):
        check_rts(rep, cap, man, opts)
    return rep


def main(argv: list[str]) -> int:
    words = argv[1:]
    manifests = sorted(EXPECTED.glob("*.json"))
    if words:
        manifests = [m for m in manifests if any(w in m.name for w in words)]
    if not manifests:
        print("no manifests found", file=sys.stderr)
        return 1
    bad = 0
    for m in manifests:
        rep = check_one(m)
        counts = ", ".join(f"{k}={v}" for k, v in sorted(rep.checked.items()))
        if rep.problems:
            bad += 1
            print(f"FAIL {rep.name} ({counts})")
            for line in rep.problems:
                print("   ", line)
        else:
            print(f"ok   {rep.name} ({counts})")
    print(f"{len(manifests) - bad}/{len(manifests)} samples agree with tshark")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
