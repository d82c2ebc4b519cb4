"""One benchmark contestant per process: `python benchmarks/competitors.py TOOL CAPTURE`.

Each tool does its closest equivalent of the same job: read every packet, group the TCP
packets into flows by their 5-tuple (both directions in one flow), flag a flow TLS when its
first payload starts with `16 03`, and end with a pandas DataFrame of the flows. flinkwire
does its full analysis instead (reassembly, TLS handshakes, roles, snippets, findings).
nfstream exposes no payload bytes, so its TLS flag is nDPI's verdict (application name
containing "TLS"). The last line printed is a JSON object with the packets seen, the flows
and the TLS flows, which the runner checks against the generator's manifest. run.py times
these processes from outside; nothing here measures itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TCP = 6


def flow_key(src, sport, dst, dport):
    """The same key for both directions of a connection."""
    return (src, sport, dst, dport) if (src, sport) <= (dst, dport) else (dst, dport, src, sport)


def flows_frame(flows: dict):
    import pandas as pd

    rows = [(key[0], key[1], key[2], key[3], packets, length, tls)
            for key, (packets, length, tls) in flows.items()]
    return pd.DataFrame(rows, columns=["ip_a", "port_a", "ip_b", "port_b", "packets",
                                       "payload_bytes", "tls"])


def add_packet(flows: dict, key, payload: bytes):
    entry = flows.get(key)
    if entry is None:
        entry = flows[key] = [0, 0, None]
    entry[0] += 1
    if payload:
        entry[1] += len(payload)
        if entry[2] is None:
            entry[2] = payload[:2] == b"\x16\x03"


def result(packets: int, frame) -> dict:
    tls = int(frame.tls.eq(True).sum())
    return {"packets": packets, "flows": len(frame), "tls_flows": tls}


def run_flinkwire(path: str, shards: int = 1) -> dict:
    # The working tree (installed or not), or the snapshot run.py --flinkwire-commit made.
    sys.path.insert(0, os.environ.get("FLINKWIRE_SRC") or str(ROOT))
    import flinkwire

    analysis = flinkwire.analyze(path, shards=shards)
    flows = analysis.flows
    packets = int(flows.packets_c2s.sum() + flows.packets_s2c.sum()) if len(flows) else 0
    return {"packets": packets, "flows": len(flows),
            "tls_flows": int((flows.verdict == "tls").sum()),
            "verdicts": flows.verdict.value_counts().to_dict(),
            "source": str(Path(flinkwire.__file__).parent.parent)}


def run_scapy(path: str) -> dict:
    from scapy.layers.inet import IP, TCP as TCPLayer
    from scapy.utils import PcapReader

    flows: dict = {}
    packets = 0
    with PcapReader(path) as reader:
        for packet in reader:
            packets += 1
            if IP in packet and TCPLayer in packet:
                ip, tcp = packet[IP], packet[TCPLayer]
                add_packet(flows, flow_key(ip.src, tcp.sport, ip.dst, tcp.dport),
                           bytes(tcp.payload))
    return result(packets, flows_frame(flows))


def run_dpkt(path: str) -> dict:
    import dpkt

    flows: dict = {}
    packets = 0
    with open(path, "rb") as handle:
        for _ts, frame in dpkt.pcap.UniversalReader(handle):
            packets += 1
            ip = dpkt.ethernet.Ethernet(frame).data
            if isinstance(ip, dpkt.ip.IP) and ip.p == TCP:
                tcp = ip.data
                add_packet(flows, flow_key(ip.src, tcp.sport, ip.dst, tcp.dport), tcp.data)
    return result(packets, flows_frame(flows))


TSHARK_FIELDS = ("ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "tcp.len", "tcp.payload")
# Dissectors that would run on this capture's payloads; off, tshark only walks to TCP.
TSHARK_OFF = ("tls", "http", "json", "data-text-lines", "mime_multipart", "smpp", "ssl",
              "media", "xml", "data")


def run_tshark(path: str) -> dict:
    """tshark -T fields piped into pandas, read in chunks; payload kept as its first 2 bytes."""
    import pandas as pd

    command = ["tshark", "-r", path, "-n", "-T", "fields", "-E", "separator=\t",
               "-o", "tcp.desegment_tcp_streams:FALSE", "-o", "tcp.analyze_sequence_numbers:FALSE",
               "-o", "tcp.calculate_timestamps:FALSE", "-Y", "tcp"]
    for protocol in TSHARK_OFF:
        command += ["--disable-protocol", protocol]
    for field in TSHARK_FIELDS:
        command += ["-e", field]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    parts = []
    packets = 0
    chunks = pd.read_csv(process.stdout, sep="\t", header=None, names=list(TSHARK_FIELDS),
                         dtype={"tcp.payload": str}, keep_default_na=False, chunksize=200_000,
                         engine="c")
    for chunk in chunks:
        packets += len(chunk)
        chunk["tcp.payload"] = chunk["tcp.payload"].str.slice(0, 4)
        parts.append(chunk)
    process.wait()
    frame = pd.concat(parts, ignore_index=True)

    src, dst = frame["ip.src"], frame["ip.dst"]
    a_first = (src < dst) | ((src == dst) & (frame["tcp.srcport"] <= frame["tcp.dstport"]))
    frame["ip_a"] = frame["ip.src"].where(a_first, frame["ip.dst"])
    frame["port_a"] = frame["tcp.srcport"].where(a_first, frame["tcp.dstport"])
    frame["ip_b"] = frame["ip.dst"].where(a_first, frame["ip.src"])
    frame["port_b"] = frame["tcp.dstport"].where(a_first, frame["tcp.srcport"])
    with_payload = frame[frame["tcp.len"] > 0]
    first = with_payload.groupby(["ip_a", "port_a", "ip_b", "port_b"], sort=False)[
        "tcp.payload"].first()
    flows = frame.groupby(["ip_a", "port_a", "ip_b", "port_b"], sort=False).agg(
        packets=("tcp.len", "size"), payload_bytes=("tcp.len", "sum"))
    flows["tls"] = first.reindex(flows.index).eq("1603")
    return result(packets, flows)


def run_pyshark(path: str) -> dict:
    import pyshark

    flows: dict = {}
    packets = 0
    capture = pyshark.FileCapture(path, keep_packets=False)
    try:
        for packet in capture:
            packets += 1
            if "TCP" in packet and "IP" in packet:
                ip, tcp = packet.ip, packet.tcp
                payload = bytes.fromhex(tcp.payload.replace(":", "")) if int(tcp.len) else b""
                add_packet(flows, flow_key(ip.src, int(tcp.srcport), ip.dst, int(tcp.dstport)),
                           payload)
    finally:
        capture.close()
    return result(packets, flows_frame(flows))


def run_nfstream(path: str) -> dict:
    from nfstream import NFStreamer

    frame = NFStreamer(source=path, statistical_analysis=False).to_pandas()
    frame = frame[frame.protocol == TCP]
    tls = frame.application_name.str.contains("TLS", regex=False)
    return {"packets": int(frame.bidirectional_packets.sum()), "flows": len(frame),
            "tls_flows": int(tls.sum())}


def run_pyloop(path: str) -> dict:
    """The fastest pure-CPython form of the job: one loop over the mmapped file.

    One precompiled `unpack_from` per header, everything inline, no function call per
    packet. It reads classic little-endian Ethernet pcap with 20-byte IPv4 headers
    only (the generator's captures; anything else is skipped) and keeps no payload,
    so it is the floor for any Python tool that looks at every packet, not a reader.
    """
    import mmap
    import struct

    record = struct.Struct("<IIII").unpack_from
    ports = struct.Struct("!HH").unpack_from
    flows: dict = {}
    packets = 0
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0,
                                                access=mmap.ACCESS_READ) as data:
        if data[:4] != b"\xd4\xc3\xb2\xa1":
            raise SystemExit(f"{path}: pyloop reads little-endian microsecond pcap only")
        offset, end = 24, len(data)
        while offset + 16 <= end:
            _sec, _usec, caplen, _wire = record(data, offset)
            frame = offset + 16
            offset = frame + caplen
            packets += 1
            if data[frame + 12:frame + 14] != b"\x08\x00" or data[frame + 14] != 0x45 \
                    or data[frame + 23] != TCP:
                continue
            ip_end = frame + 14 + ((data[frame + 16] << 8) | data[frame + 17])
            sport, dport = ports(data, frame + 34)
            src, dst = data[frame + 26:frame + 30], data[frame + 30:frame + 34]
            key = (src, sport, dst, dport) if (src, sport) <= (dst, dport) \
                else (dst, dport, src, sport)
            start = frame + 34 + ((data[frame + 46] >> 4) << 2)
            entry = flows.get(key)
            if entry is None:
                entry = flows[key] = [0, 0, None]
            entry[0] += 1
            if ip_end > start:
                entry[1] += ip_end - start
                if entry[2] is None:
                    entry[2] = data[start:start + 2] == b"\x16\x03"
    return result(packets, flows_frame(flows))


def run_cat(path: str) -> dict:
    with open(path, "rb") as handle:
        while handle.read(1 << 20):
            pass
    return {}


TOOLS = {"flinkwire": run_flinkwire,
         "flinkwire-2p": lambda path: run_flinkwire(path, shards=2),
         "scapy": run_scapy, "dpkt": run_dpkt, "tshark": run_tshark, "pyshark": run_pyshark,
         "nfstream": run_nfstream, "pyloop": run_pyloop, "read": run_cat}


def main(argv: list[str]) -> int:
    tool, path = argv
    print(json.dumps(TOOLS[tool](path)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
