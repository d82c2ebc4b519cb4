"""Builders of small synthetic captures for edge cases (scapy for packets, struct for files)."""

import gzip
import struct

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether


# Fixed MAC addresses: with none, scapy would resolve them (ARP on the real network).
CLIENT_MAC = "02:00:00:00:00:01"
SERVER_MAC = "02:00:00:00:00:02"


def tcp_packet(src, sport, dst, dport, seq, ack=0, flags="A", payload=b"", v6=False):
    ip = IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst)
    return Ether(src=CLIENT_MAC, dst=SERVER_MAC) / ip / TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags) / payload


def conversation(client=("192.0.2.1", 40000), server=("198.51.100.2", 8081), c2s=(), s2c=(),
                 isn_c=1000, isn_s=5000):
    """Handshake, then alternating data segments, then FINs; returns scapy packets."""
    (ci, cp), (si, sp) = client, server
    pkts = [tcp_packet(ci, cp, si, sp, isn_c, 0, "S"),
            tcp_packet(si, sp, ci, cp, isn_s, isn_c + 1, "SA"),
            tcp_packet(ci, cp, si, sp, isn_c + 1, isn_s + 1, "A")]
    cseq, sseq = isn_c + 1, isn_s + 1
    for i in range(max(len(c2s), len(s2c))):
        if i < len(c2s):
            pkts.append(tcp_packet(ci, cp, si, sp, cseq, sseq, "PA", c2s[i]))
            cseq = (cseq + len(c2s[i])) & 0xFFFFFFFF
        if i < len(s2c):
            pkts.append(tcp_packet(si, sp, ci, cp, sseq, cseq, "PA", s2c[i]))
            sseq = (sseq + len(s2c[i])) & 0xFFFFFFFF
    pkts.append(tcp_packet(ci, cp, si, sp, cseq, sseq, "FA"))
    pkts.append(tcp_packet(si, sp, ci, cp, sseq, cseq + 1, "FA"))
    return pkts


def pcap_bytes(frames, linktype=1, nanos=False, big=False, base_ts=1_767_225_600):
    """A classic pcap of raw frames (bytes), one per 1 ms."""
    order = ">" if big else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for i, frame in enumerate(frames):
        frame = bytes(frame)
        frac = i * (1_000_000 if nanos else 1000)
        out.append(struct.pack(order + "IIII", base_ts, frac, len(frame), len(frame)) + frame)
    return b"".join(out)


def _block(btype, body):
    body = body + b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


def pcapng_bytes(sections):
    """`sections` = [[(linktype, tsresol, [(ts_units, frame), ...]), ...], ...]; one IDB per
    interface, EPBs in order, plus an unknown block in each section that must be skipped."""
    out = []
    for interfaces in sections:
        out.append(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        out.append(_block(0x0BAD, b"custom block a reader must skip"))
        for linktype, tsresol, _ in interfaces:
            opts = struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HH", 0, 0)
            out.append(_block(1, struct.pack("<HHI", linktype, 0, 262144) + opts))
        for ifid, (_, _, packets) in enumerate(interfaces):
            for ts, frame in packets:
                frame = bytes(frame)
                body = struct.pack("<IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(frame),
                                   len(frame)) + frame
                out.append(_block(6, body))
    return b"".join(out)


def gz(data):
    return gzip.compress(data)


def flink_string_value(text: str) -> bytes:
    """Flink's StringValue as writeString lays it out, built from the format (not Flink's
    code): varint of length + 1 in 7-bit groups, low first, then each UTF-16 char the same."""
    units = text.encode("utf-16-be")
    out = bytearray()
    for number in [len(units) // 2 + 1] + [int.from_bytes(units[i:i + 2], "big")
                                           for i in range(0, len(units), 2)]:
        while number >= 0x80:
            out.append(number & 0x7F | 0x80)
            number >>= 7
        out.append(number)
    return bytes(out)


# Akka/Pekko classic remoting frames, built byte for byte per flink-wire-facts.md 2b.
def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def associate(system=b"flink", host=b"127.0.0.1", port=40000,
              uid=b"\x01\x02\x03\x04\xff\xff\xff\xff"):
    address = field(1, system) + field(2, host) + b"\x18" + varint(port) + field(4, b"tcp")
    handshake = field(1, address) + b"\x11" + uid
    control = b"\x08\x01" + field(2, handshake)
    message = field(2, control)
    return struct.pack(">I", len(message)) + message


def envelope(recipient, sender, body, serializer=1, manifest=b""):
    serialized = field(1, body) + b"\x10" + varint(serializer)
    if manifest:
        serialized += field(3, manifest)
    remote = (field(1, field(1, recipient)) + field(2, serialized) + field(4, field(1, sender))
              + b"\x29" + struct.pack("<Q", 7))
    message = field(1, field(2, remote))
    return struct.pack(">I", len(message)) + message


def method_invocation(gateway, method):
    """The inner Java stream of RemoteRpcInvocation$MethodInvocation, as on the wire."""
    name = b"org.apache.flink.runtime.rpc.messages.RemoteRpcInvocation$MethodInvocation"
    utf = (struct.pack(">H", len(gateway)) + gateway + struct.pack(">H", len(method)) + method
           + b"\x00\x00\x00\x01")
    return (b"\xac\xed\x00\x05\x73\x72\x00" + bytes([len(name)]) + name
            + b"\x00" * 8 + b"\x03\x00\x00\x78\x70" + b"\x77" + bytes([len(utf)]) + utf + b"\x78")
