"""Capture files and link layers ([analyzer.capture]): formats, byte orders, resolutions, faults."""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.capture.decode import PROTO_TCP, PacketDecoder, Selector
from analyzer.capture.gzipstream import GzipStream
from analyzer.capture.ipfrag import Defragmenter
from analyzer.capture.source import expand_paths, open_capture
from analyzer.errors import CaptureError
from analyzer.limits import Limits
from tests.conftest import CAPTURES, EPM, NDR, SAMPLES, Conversation, bind, needs_shared, run, write_pcap


def frames(path: Path) -> list[tuple[int, int, bytes]]:
    r = open_capture(str(path))
    out = [(ts, link, bytes(buf[s:e])) for ts, link, buf, s, e in r]
    r.close()
    return out


def pcap_bytes(records: list[tuple[int, int, bytes]], endian: str = "<", nano: bool = False, link: int = 1) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, link)
    for sec, frac, data in records:
        out += struct.pack(endian + "IIII", sec, frac, len(data), len(data)) + data
    return out


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, endian: str, nano: bool) -> None:
    p = tmp_path / "x.pcap"
    p.write_bytes(pcap_bytes([(1_700_000_000, 123456, b"A" * 60), (1_700_000_001, 5, b"B" * 70)], endian, nano))
    got = frames(p)
    unit = 1 if nano else 1000
    assert got == [
        (1_700_000_000 * 10**9 + 123456 * unit, 1, b"A" * 60),
        (1_700_000_001 * 10**9 + 5 * unit, 1, b"B" * 70),
    ]


def _block(btype: int, body: bytes, e: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def _shb(e: str = "<") -> bytes:
    return _block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def _idb(link: int, tsresol: int | None = None, e: str = "<") -> bytes:
    opts = b""
    if tsresol is not None:
        opts = struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(e + "HH", 0, 0)
    return _block(1, struct.pack(e + "HHI", link, 0, 0) + opts, e)


def _epb(iface: int, ticks: int, data: bytes, e: str = "<") -> bytes:
    return _block(6, struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)) + data, e)


def test_pcapng_interfaces_resolutions_and_block_kinds(tmp_path: Path) -> None:
    spb = _block(3, struct.pack("<I", 5) + b"spb!!")
    opb = _block(2, struct.pack("<HHIIII", 1, 0, 0, 7, 3, 3) + b"opb")
    second = _shb(">") + _idb(101, None, ">") + _epb(0, 42, b"big", ">")
    data = (
        _shb()
        + _idb(1, 6)
        + _idb(113, 9)
        + _epb(0, 1_000_000, b"eth")
        + _epb(1, 2_000_000_000, b"sll")
        + spb
        + opb
        + _block(5, b"\0" * 8)
        + second
    )
    p = tmp_path / "x.pcapng"
    p.write_bytes(data)
    r = open_capture(str(p))
    got = [(ts, link, bytes(buf[s:e])) for ts, link, buf, s, e in r]
    assert got == [
        (1_000_000_000, 1, b"eth"),  # microseconds
        (2_000_000_000, 113, b"sll"),  # nanoseconds, its own link type
        (0, 1, b"spb!!"),  # simple packet block: no timestamp, interface 0
        (7, 113, b"opb"),  # obsolete packet block on interface 1
        (42_000, 101, b"big"),  # a second, big-endian section resets the interfaces
    ]
    assert r.link_types == {1, 113, 101} and r.truncated is None


def test_gzip_and_truncated_files(tmp_path: Path) -> None:
    raw = pcap_bytes([(1, 0, b"A" * 60), (2, 0, b"B" * 60), (3, 0, b"C" * 60)])
    (tmp_path / "z.pcap.gz").write_bytes(gzip.compress(raw))
    assert [d for _, _, d in frames(tmp_path / "z.pcap.gz")] == [b"A" * 60, b"B" * 60, b"C" * 60]
    (tmp_path / "cut.pcap").write_bytes(raw[:-30])
    r = open_capture(str(tmp_path / "cut.pcap"))
    assert len(list(r)) == 2 and r.truncated is not None and "frame 3" in r.truncated


def test_files_that_are_not_captures(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello, not a capture")
    (tmp_path / "empty.pcap").write_bytes(b"")
    with pytest.raises(CaptureError, match=r"notes\.txt: not a capture file"):
        open_capture(str(tmp_path / "notes.txt"))
    with pytest.raises(CaptureError, match="empty"):
        open_capture(str(tmp_path / "empty.pcap"))
    with pytest.raises(CaptureError, match="cannot open"):
        open_capture(str(tmp_path / "missing.pcap"))
    (tmp_path / "short.pcap").write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00")
    with pytest.raises(CaptureError, match="not a capture file: shorter than the 24-byte pcap file header"):
        open_capture(str(tmp_path / "short.pcap"))


def test_directories_take_only_captures(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.pcap").write_bytes(pcap_bytes([(1, 0, b"x" * 20)]))
    (tmp_path / "a" / "README.md").write_text("# not a capture")
    (tmp_path / "b.pcap.gz").write_bytes(gzip.compress(pcap_bytes([])))
    got = expand_paths([str(tmp_path)])
    assert [Path(p).name for p, _ in got] == ["one.pcap", "b.pcap.gz"] or [Path(p).name for p, _ in got] == [
        "b.pcap.gz",
        "one.pcap",
    ]
    assert all(not explicit for _, explicit in got)


def test_unsupported_link_type_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "wifi.pcap"
    p.write_bytes(pcap_bytes([(1, 0, b"\0" * 40)], link=105))
    r = run([p])
    assert r.captures[0].error == "unsupported link type 105"


def _decode_all(packets: list[object], tmp_path: Path, tcp_ports: set[int]) -> list[object]:
    path = write_pcap(tmp_path / "p.pcap", packets)
    sel = Selector()
    sel.tcp_ports |= tcp_ports
    dec = PacketDecoder(sel, Defragmenter(Limits()))
    out = []
    for i, (ts, link, buf, s, e) in enumerate(open_capture(str(path)), 1):
        pkt = dec.decode(link, buf, s, e, i, ts)
        if pkt is not None:
            out.append(pkt)
    return out


def test_link_layers(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import CookedLinux, Dot1AD, Dot1Q, Ether, Loopback

    payload = TCP(sport=50000, dport=135, flags="PA", seq=1) / b"hello"
    ip = IP(src="1.2.3.4", dst="5.6.7.8") / payload
    for pkt in (
        Ether() / ip,
        Ether() / Dot1Q(vlan=10) / ip,
        Ether() / Dot1AD(vlan=20) / Dot1Q(vlan=30) / ip,
        CookedLinux(proto=0x0800) / ip,
        Loopback(type=2) / ip,
    ):
        (got,) = _decode_all([pkt], tmp_path, {135})
        assert (got.proto, got.src, got.dport, got.payload) == (PROTO_TCP, bytes([1, 2, 3, 4]), 135, b"hello")  # type: ignore[attr-defined]


def test_raw_and_sll2_link_types_from_samples() -> None:
    for name in ("linux_sll2.pcap", "null_loopback.pcap", "linux_sll.pcap", "vlan_qinq.pcap"):
        r = run([SAMPLES / name])
        assert r.binds, name


def test_ethernet_padding_is_not_payload(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    pkt = Ether() / IP(src="1.2.3.4", dst="5.6.7.8") / TCP(sport=50000, dport=135, flags="A")
    raw = bytes(pkt) + b"\xaa" * 6  # minimum-size frame padding
    from scapy.layers.l2 import Ether as E

    (got,) = _decode_all([E(raw)], tmp_path, {135})
    assert got.payload == b""  # type: ignore[attr-defined]


def test_ipv4_fragments_out_of_order(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP, fragment
    from scapy.layers.l2 import Ether

    whole = IP(src="1.2.3.4", dst="5.6.7.8", id=77) / TCP(sport=50000, dport=135, flags="PA") / (b"F" * 3000)
    frags = [Ether() / f for f in fragment(whole, fragsize=800)]
    got = _decode_all(list(reversed(frags)), tmp_path, {135})
    assert len(got) == 1 and got[0].payload == b"F" * 3000  # type: ignore[attr-defined]


def test_ipv6_extension_headers_and_fragments(tmp_path: Path) -> None:
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, fragment6
    from scapy.layers.l2 import Ether

    tcp = TCP(sport=50000, dport=135, flags="PA") / b"six"
    plain = Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / tcp
    big = (
        IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment() / TCP(sport=50001, dport=135) / (b"G" * 3000)
    )
    frags = [Ether() / f for f in fragment6(big, 1280)]
    got = _decode_all([plain, *frags], tmp_path, {135})
    assert [g.payload[:3] for g in got] == [b"six", b"GGG"]  # type: ignore[attr-defined]
    assert len(got[1].payload) == 3000  # type: ignore[attr-defined]


def test_two_interface_pcapng_sample() -> None:
    r = open_capture(str(SAMPLES / "two_interfaces.pcapng"))
    stamps = [ts for ts, *_ in r if ts]  # a simple packet block has no time (0)
    assert len(r.link_types) == 2
    assert stamps == sorted(stamps)
    assert any(ts % 1000 for ts in stamps)  # the nanosecond interface keeps its resolution


def test_rpc_session_read_through_every_format(tmp_path: Path) -> None:
    c = Conversation().handshake().send(True, bind(1, [(0, EPM, 3, [NDR])]))
    plain = c.write(tmp_path / "s.pcap")
    (tmp_path / "s.pcap.gz").write_bytes(gzip.compress(plain.read_bytes()))
    for p in (plain, tmp_path / "s.pcap.gz"):
        assert [b.interface_uuid for b in run([p]).binds] == [EPM]


@needs_shared
def test_readers_agree_with_dpkt_on_every_shared_capture() -> None:
    """dpkt, an independent reader, sees the same frames in every pcap and single-interface pcapng."""
    import dpkt

    checked = 0
    for path in sorted(CAPTURES.rglob("*")):
        if path.suffix not in (".pcap", ".pcapng") or "truth" in path.parts:
            continue
        with path.open("rb") as fh:
            try:
                reader = dpkt.pcap.Reader(fh) if path.suffix == ".pcap" else dpkt.pcapng.Reader(fh)
                theirs = [bytes(b) for _ts, b in reader]
            except (ValueError, dpkt.NeedData, dpkt.UnpackError):
                continue
        ours = [d for _, _, d in frames(path)]
        assert ours == theirs, path
        checked += 1
    assert checked > 100


@needs_shared
def test_netmon_reader_matches_its_converted_copy() -> None:
    """Wireshark's pcapng conversions of the NetMon 2.x files hold the same frames with the same
    times, except the frames NetMon annotated (Wireshark's "Network Monitor Header" encapsulation),
    which the conversion drops: the converted frames are an in-order subsequence of ours."""
    checked = 0
    for cap in sorted(CAPTURES.rglob("*.cap")):
        conv = cap.with_name(cap.name[: -len(".cap")] + ".converted.pcapng")
        if not conv.exists():
            continue
        ours = iter([(ts, d) for ts, link, d in frames(cap) if link == 1])
        for ts, data in ((ts, d) for ts, _link, d in frames(conv)):
            # the conversion rounds times to microseconds
            assert any(d == data and abs(t - ts) < 1000 for t, d in ours), (cap, ts)
        checked += 1
    assert checked >= 8


def test_corrupt_pcapng_blocks_end_the_file_cleanly(tmp_path: Path) -> None:
    """An interface block whose option overruns it, or a packet block too short for its fields,
    ends the reading with `truncated` set; frames before it are kept."""
    bad_option = _block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 9, 40) + b"\x06")
    short_epb = struct.pack("<II", 6, 16) + b"\0" * 4 + struct.pack("<I", 16)
    p = tmp_path / "bad.pcapng"
    p.write_bytes(_shb() + _idb(1, 6) + _epb(0, 5, b"first") + bad_option + _epb(0, 6, b"second") + short_epb)
    r = open_capture(str(p))
    got = [bytes(buf[s:e]) for _ts, _link, buf, s, e in r]
    assert got == [b"first", b"second"]
    assert r.truncated is not None and "too short" in r.truncated


@settings(max_examples=60, deadline=None)
@given(
    members=st.lists(st.binary(max_size=3000), min_size=1, max_size=3),
    repeat=st.integers(1, 400),
    cut=st.integers(0, 64),
    reads=st.lists(st.integers(-1, 70_000), min_size=1, max_size=40),
)
def test_gzip_stream_hands_out_the_bytes_zlib_gives_whatever_the_read_sizes(
    members: list[bytes], repeat: int, cut: int, reads: list[int]
) -> None:
    """Reads of any sizes (all that is left, none, less or more than zlib's pieces) give the
    decompressed bytes in order, member after member; a file cut short gives a prefix of them."""
    plain = [m * repeat for m in members]
    data = b"".join(gzip.compress(m, compresslevel=1) for m in plain)
    if cut:
        data = data[:-cut]
    whole = b"".join(plain)
    stream = GzipStream(io.BytesIO(data), max_ratio=1 << 30, floor=1 << 40)
    got = bytearray()
    for n in reads:
        piece = stream.read(n)
        assert n < 0 or len(piece) <= n
        got += piece
        assert stream.tell() == len(got)
    got += stream.read()
    if cut:
        assert whole.startswith(bytes(got))
    else:
        assert bytes(got) == whole
    assert stream.read(10) == b""
