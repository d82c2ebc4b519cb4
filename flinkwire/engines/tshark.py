"""The `flows` table from Wireshark's dissectors: `analyze(path, engine="tshark")`.

Theory of operation
-------------------
tshark reads each file once and prints, per TCP segment, the conversation
number Wireshark gave it (`tcp.stream`), its endpoints, flags, payload length,
and the TLS fields its dissector found in it. One pass over those lines folds
them into one row per conversation with the columns of flinkwire's own
`flows` table, so every face, the role refinement and the channel table work
unchanged; the other tables (snippets, findings, decoded messages) stay empty,
because Wireshark does not know Flink's protocols.

How the verdict is decided, and why:

- `tls` when Wireshark dissected at least one TLS record header or handshake
  message in the conversation. TLS is decoded on every port by turning on
  Wireshark's TLS heuristic and trying heuristics before port tables
  (`tcp.try_heuristic_first`), with `tls.desegment_ssl_records` so a hello
  split over segments is reassembled. A display filter like `-Y tls` is not
  used: it decides by port (plaintext on 443 would be "TLS"), while record
  fields appear only where a record header really parsed.
- `no-payload` when no segment carried payload; `plaintext` otherwise. Wireshark
  cannot tell readable from opaque content on Flink's ports, so this engine's
  `plaintext` means "not TLS" (flinkwire's own engine splits it into
  `plaintext` and `opaque`).

The client is the sender of the SYN, else the receiver of the SYN-ACK, else
the sender of a ClientHello, else the side whose peer port is a known
listening port, else the higher port, as flinkwire's own engine decides.
`flow_id`s are made the same way, so where both engines agree on the
orientation and the first packet, both give a flow the same id. Several files
are read one by one and merged as `tables.merge` merges rotated files.

Why tshark's fields output and not pyshark, the design card's package: pyshark
turns every packet into Python objects through an asyncio loop, about 450
packets/s on the project's machine (1,747 packets in 3.8-4.4 s, with JSON or
EK output and with the layers cut to frame/ip/tcp/tls), about 75 minutes for a
1 GB capture. The same tshark with the same dissector preferences printing
only the needed fields is about a hundred times faster, streams in bounded
memory, and yields the same facts. pyshark still locates the tshark binary
(its `tshark_path` configuration is honoured).

Limits: TCP only (UDP conversations are not listed); `bytes_*` are payload
bytes of segments Wireshark did not flag as retransmissions, so overlapping
partial retransmissions count twice and gaps are not measured; a TLS flow's
version is the ServerHello's (`supported_versions` for TLS 1.3), so a flow
without a ServerHello has none.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import subprocess

from ..errors import CaptureError
from ..flink import knowledge, roles
from ..protocols.tls_names import cipher_suite_name, version_name
from ..reading.capture import CaptureInfo
from ..tables.examine import Context, Rows, flow_id
from ..tcp.build import BuildStats
from . import EngineError

log = logging.getLogger(__name__)

FIELDS = (
    "tcp.stream", "frame.time_epoch", "ip.src", "ipv6.src", "tcp.srcport", "ip.dst",
    "ipv6.dst", "tcp.dstport", "tcp.flags", "tcp.len", "tcp.analysis.retransmission",
    "tls.record.content_type", "tls.record.version", "tls.handshake.type",
    "tls.handshake.version", "tls.handshake.extensions.supported_version",
    "tls.handshake.extensions_server_name", "tls.handshake.ciphersuite",
)
PREFERENCES = (
    "tls.desegment_ssl_records:TRUE",
    "tcp.desegment_tcp_streams:TRUE",
    "tcp.try_heuristic_first:TRUE",
    "tcp.analyze_sequence_numbers:TRUE",
)
HEURISTICS = ("tls_tcp",)
# TPKT (RDP on 3389) binds its conversations and in tshark 4.0 never hands the TLS
# that follows RDP's security negotiation to the TLS dissector ("TPKT Continuation");
# without it the TLS heuristic finds those records.
DISABLED = ("tpkt",)
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
CLIENT_HELLO, SERVER_HELLO = "1", "2"


def tshark_path() -> str:
    """The tshark binary pyshark would run; raises `EngineError` when there is none."""
    try:
        from pyshark.tshark.tshark import get_process_path
        path = get_process_path()
    except Exception:  # pyshark missing, or its own search failed
        path = shutil.which("tshark")
    if not path or not os.path.exists(path):
        raise EngineError("tshark is not installed (apt-get install tshark); "
                          "engine='tshark' needs it")
    return path


def tshark_command(path: str, binary: str | None = None) -> list[str]:
    command = [binary or tshark_path(), "-n", "-r", path, "-Y", "tcp && !icmp && !icmpv6",
               "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
               "-E", "aggregator=,"]
    for preference in PREFERENCES:
        command += ["-o", preference]
    for heuristic in HEURISTICS:
        command += ["--enable-heuristic", heuristic]
    for protocol in DISABLED:
        command += ["--disable-protocol", protocol]
    for name in FIELDS:
        command += ["-e", name]
    return command


def tshark_rows(paths, ctx: Context, progress=None) -> tuple[Rows, BuildStats]:
    """Rows (only `flows`, plus reading anomalies) and stats for `paths`, from tshark."""
    from ..tables.merge import FilePart, merge_parts

    binary = tshark_path()
    parts = []
    done = 0
    for path in paths:
        parts.append(FilePart(path, *_one_file(os.fspath(path), ctx, binary)))
        done += parts[-1].stats.bytes_read
        if progress is not None:
            progress(done)
    if len(parts) == 1:
        return parts[0].rows, parts[0].stats
    return merge_parts(parts, ctx.port_roles)


def _one_file(path: str, ctx: Context, binary: str) -> tuple[Rows, BuildStats]:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise CaptureError(path, f"cannot be opened ({exc.strerror})") from None
    info = CaptureInfo(path=path, file_size=size, format=_container(path))
    folder = _Conversations()
    process = subprocess.Popen(tshark_command(path, binary), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                               errors="replace")
    try:
        for line in process.stdout:
            folder.add(line.rstrip("\n").split("\t"))
        errors = process.stderr.read()
    finally:
        process.stdout.close()
        process.stderr.close()
        code = process.wait()
    complaints = [line for line in errors.splitlines()
                  if line.strip() and "dangerous" not in line]
    cut_short = any("cut short" in line for line in complaints)
    if code != 0 and not folder.frames and not cut_short:
        raise CaptureError(path, "tshark cannot read it: " + " ".join(complaints)[:300])
    for complaint in complaints:
        info.anomaly("tshark", 0, complaint[:300])
    info.records_total = info.records_complete = folder.frames

    rows = Rows()
    for number, conversation in sorted(folder.streams.items()):
        rows.flows.append(conversation.row(number, ctx.port_roles))
    stats = BuildStats(files=[info], packets=folder.frames, segments=folder.frames,
                       flows=len(rows.flows), bytes_read=size)
    return rows, stats


def _container(path: str) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head == b"\x0a\x0d\x0d\x0a":
        return "pcapng"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    return "pcap"


class _Conversations:
    """Folds tshark's lines, one per TCP segment, into one `_Conversation` per tcp.stream."""

    def __init__(self):
        self.streams: dict[int, _Conversation] = {}
        self.frames = 0

    def add(self, cells: list[str]) -> None:
        if len(cells) < len(FIELDS) or not cells[0]:
            return
        self.frames += 1
        (stream, epoch, ip4_src, ip6_src, sport, ip4_dst, ip6_dst, dport, flags, length,
         retransmission, content_type, record_version, handshake, hello_version,
         supported, sni, cipher) = cells[:len(FIELDS)]
        src = _ip(_last(ip4_src) or _last(ip6_src))
        dst = _ip(_last(ip4_dst) or _last(ip6_dst))
        if src is None or dst is None or not sport or not dport:
            return
        number = int(stream.split(",")[0])
        conversation = self.streams.get(number)
        ts = _nanoseconds(epoch)
        if conversation is None:
            conversation = self.streams[number] = _Conversation((src, int(sport)), ts)
        conversation.segment((src, int(sport)), (dst, int(dport)), ts, int(flags, 16),
                             int(length or 0), bool(retransmission))
        if content_type or record_version or handshake:
            conversation.saw_tls((src, int(sport)), handshake.split(","), hello_version,
                                 supported, sni, cipher)


class _Conversation:
    __slots__ = ("first", "ends", "first_ts", "last_ts", "packets", "bytes", "retransmitted",
                 "syn_from", "synack_to", "hello_from", "closed", "tls", "version", "sni",
                 "cipher", "client_version")

    def __init__(self, first, ts):
        self.first = first
        self.ends = [first, None]
        self.first_ts = self.last_ts = ts
        self.packets = {}
        self.bytes = {}
        self.retransmitted = 0
        self.syn_from = self.synack_to = self.hello_from = None
        self.closed = False
        self.tls = False
        self.version = self.sni = self.cipher = self.client_version = None

    def segment(self, src, dst, ts, flags, length, retransmission) -> None:
        if self.ends[1] is None and src != self.first:
            self.ends[1] = src
        elif self.ends[1] is None:
            self.ends[1] = dst
        self.first_ts = min(self.first_ts, ts)
        self.last_ts = max(self.last_ts, ts)
        self.packets[src] = self.packets.get(src, 0) + 1
        if retransmission:
            self.retransmitted += length
        else:
            self.bytes[src] = self.bytes.get(src, 0) + length
        if flags & SYN and not flags & ACK and self.syn_from is None:
            self.syn_from = src
        elif flags & SYN and flags & ACK and self.synack_to is None:
            self.synack_to = dst
        if flags & (FIN | RST):
            self.closed = True

    def saw_tls(self, src, handshakes, hello_version, supported, sni, cipher) -> None:
        self.tls = True
        if CLIENT_HELLO in handshakes:
            if self.hello_from is None:
                self.hello_from = src
            if sni and self.sni is None:
                self.sni = sni.split(",")[0]
            if hello_version and self.client_version is None:
                self.client_version = hello_version.split(",")[0]
        if SERVER_HELLO in handshakes and self.version is None:
            chosen = _last(supported) or (hello_version.split(",")[0] if hello_version
                                          else None)
            name = version_name(int(chosen, 16)) if chosen else None
            # drafts and Fizz variants count as TLS 1.3, as flinkwire's own engine says
            self.version = "TLS 1.3" if name and name.startswith("TLS 1.3") else name
            if cipher:
                self.cipher = cipher_suite_name(int(cipher.split(",")[0], 16))

    def _client(self, port_roles) -> tuple[tuple, str]:
        if self.syn_from is not None:
            return self.syn_from, "SYN"
        if self.synack_to is not None:
            return self.synack_to, "SYN-ACK"
        if self.hello_from is not None:
            return self.hello_from, "sends the request"
        a, b = self.ends[0], self.ends[1] or self.ends[0]
        for side, peer in ((a, b), (b, a)):
            if peer[1] in port_roles or peer[1] in knowledge.DEFAULT_PORTS:
                return side, f"peer port {peer[1]} is a known listening port"
        if a[1] != b[1]:
            return (a if a[1] > b[1] else b), "higher port (no handshake seen)"
        return a, "first packet"

    def row(self, number: int, port_roles: dict) -> dict:
        client, decided_by = self._client(port_roles)
        server = self.ends[1] if client == self.ends[0] else self.ends[0]
        server = server or client
        c2s, s2c = self.bytes.get(client, 0), self.bytes.get(server, 0)
        verdict = "tls" if self.tls else ("plaintext" if c2s or s2c else "no-payload")
        role, evidence = roles.decide_role(server[1], None, verdict == "tls", port_roles)
        return {
            "flow_id": flow_id("tcp", client[0], client[1], server[0], server[1],
                               self.first_ts),
            "first_ts": self.first_ts, "last_ts": self.last_ts, "transport": "tcp",
            "client_ip": client[0], "client_port": client[1],
            "server_ip": server[0], "server_port": server[1],
            "role": role, "role_evidence": "; ".join(evidence), "verdict": verdict,
            "tls_version": self.version if self.tls else None,
            "sni": self.sni, "cipher": self.cipher,
            "packets_c2s": self.packets.get(client, 0), "packets_s2c": self.packets.get(server, 0),
            "bytes_c2s": c2s, "bytes_s2c": s2c, "gap_bytes_c2s": 0, "gap_bytes_s2c": 0,
            "retransmitted_bytes": self.retransmitted, "readable_bytes": None,
            "handshake_seen": self.syn_from is not None, "closed": self.closed,
            "client_decided_by": decided_by, "starttls_offset": None, "vlan": None,
            "capture_duplicates": None, "index": number, "_content": None,
        }


def _last(cell: str) -> str | None:
    return cell.rsplit(",", 1)[-1] if cell else None


def _ip(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _nanoseconds(epoch: str) -> int:
    """frame.time_epoch ("1767225600.001500000") as integer nanoseconds, without floats."""
    whole, _, fraction = epoch.partition(".")
    return int(whole) * 1_000_000_000 + int((fraction + "000000000")[:9])


__all__ = ["tshark_command", "tshark_path", "tshark_rows"]
