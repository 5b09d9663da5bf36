"""Live capture: scapy's sniffer feeds a `PacketFeed`; every N seconds the records completed since
the last write become the tables and Zeek logs of one interval directory.

A conversation's records appear in the interval in which it completes (a call when answered, a
connection when it closes), as Zeek writes its logs; what the endpoint mapper taught (dynamic ports)
carries over between intervals. At the end (the duration elapsed, Ctrl-C or SIGTERM) every open
conversation is closed and written. Capturing needs the rights to open a raw socket (root, or the CAP_NET_RAW and
CAP_NET_ADMIN capabilities); `capture_problem` says in one line why capture is impossible.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analyzer.packets import PacketFeed
from analyzer.records import Records

RIGHTS_HINT = (
    "live capture needs root, or the CAP_NET_RAW and CAP_NET_ADMIN capabilities "
    '(e.g. sudo setcap cap_net_raw,cap_net_admin=eip "$(readlink -f '
    '$(command -v python3))")'
)


def capture_problem(iface: str, bpf: str | None = None) -> str | None:
    """Why capturing on iface with the BPF filter is impossible (no rights, no such interface, a filter
    that does not compile), or None."""
    try:
        import scapy.all  # noqa: F401 - sets up the platform's sockets in scapy's conf
        from scapy.config import conf

        sock = conf.L2listen(iface=iface, filter=bpf) if bpf else conf.L2listen(iface=iface)
    except PermissionError as e:
        return f"cannot capture on {iface}: {e.strerror or e}; {RIGHTS_HINT}"
    except OSError as e:
        return f"cannot capture on {iface}: {e.strerror or e}"
    except ImportError as e:  # pragma: no cover - scapy is a dependency of this command
        return f"live capture needs scapy ({e})"
    except Exception as e:  # scapy raises its own errors for bad interfaces: one line, no traceback
        return f"cannot capture on {iface}: {type(e).__name__}: {e}"
    sock.close()
    return None


def _link_type(pkt: Any) -> int:
    """The pcap link type of a packet scapy sniffed (Ethernet on most interfaces)."""
    from scapy.config import conf

    num = conf.l2types.layer2num.get(type(pkt))
    return int(num) if num is not None else 1


def _stop_on_sigterm() -> Any:
    """SIGTERM (a service manager stopping us) ends the capture like Ctrl-C: open conversations are
    written. The previous handler, to restore; None off the main thread, where no handler can be set."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, stop)


def _interval_name(start: float) -> str:
    return "live-" + time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(start))


def write_interval(records: Records, out_dir: Path, start: float, fmt: str) -> list[Path]:
    """The tables (fmt) and the Zeek logs of one interval's records, in their own directory; with fmt
    `zeek` or `zeek-json`, the Zeek logs alone in that format."""
    from analyzer.api import from_records

    if not (records.binds or records.calls or records.connections or records.endpoints):
        return []
    result = from_records(records)
    target = out_dir / _interval_name(start)
    if fmt.startswith("zeek"):  # the Zeek logs only, TSV or JSON
        return result.write(target, fmt)
    return [*result.write(target, fmt), *result.write(target, "zeek")]


def run_live(
    iface: str,
    out_dir: str,
    bpf: str | None = None,
    rotate_seconds: float = 60.0,
    duration: float | None = None,
    fmt: str = "csv",
    report: Callable[[str], None] = lambda _line: None,
) -> int:
    """Capture until `duration` seconds have passed (or Ctrl-C), writing every `rotate_seconds`;
    the number of interval directories written."""
    from scapy.sendrecv import AsyncSniffer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    feed = PacketFeed(name=f"live:{iface}")

    def on_packet(pkt: Any) -> None:
        feed.feed(pkt.time, bytes(pkt), _link_type(pkt))

    ready = threading.Event()
    sniffer = AsyncSniffer(iface=iface, filter=bpf, prn=on_packet, store=False, started_callback=ready.set)
    sniffer.start()
    deadline = time.monotonic() + 30
    while not ready.wait(0.2):  # the sniffer's thread opens its socket: say "capturing" only once it has
        thread = getattr(sniffer, "thread", None)
        if time.monotonic() > deadline or thread is None or not thread.is_alive():
            raise OSError(f"the sniffer on {iface} did not start: {getattr(sniffer, 'exception', None) or 'timeout'}")
    report(f"capturing on {iface}{f' ({bpf})' if bpf else ''}; writing every {rotate_seconds:g} s to {out}")
    started = interval = time.time()
    written = 0
    previous = _stop_on_sigterm()
    try:
        while duration is None or time.time() - started < duration:
            time.sleep(min(0.2, rotate_seconds))
            if time.time() - interval >= rotate_seconds:
                paths = write_interval(feed.drain(), out, interval, fmt)
                written += bool(paths)
                report(f"{_interval_name(interval)}: {len(paths)} files")
                interval = time.time()
    except KeyboardInterrupt:
        report("stopping")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        sniffer.stop()
        paths = write_interval(feed.records(), out, interval, fmt)
        written += bool(paths)
        report(f"{_interval_name(interval)}: {len(paths)} files (final)")
    return written
