"""Captures built with struct alone, fast enough for tens of thousands of flows."""

import struct

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


def tcp_frame(src: bytes, sport: int, dst: bytes, dport: int, seq: int, flags: int,
              payload: bytes = b"", ack: int = 0) -> bytes:
    """Ethernet / IPv4 / TCP with zero checksums (flinkwire does not verify them)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack, 5 << 4, flags,
                      65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 1, 0x4000, 64,
                     6, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload


def pcap(frames, start_s: int = 1_767_225_600, step_us: int = 10) -> bytes:
    out = [PCAP_HEADER]
    for i, frame in enumerate(frames):
        ts = i * step_us
        out.append(struct.pack("<IIII", start_s + ts // 1_000_000, ts % 1_000_000,
                               len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)


def syn_scan(flows: int) -> bytes:
    """One SYN from a scanner to each of `flows` (address, port) targets: every SYN a flow."""
    scanner = bytes([198, 51, 100, 1])
    frames = []
    for i in range(flows):
        target = bytes([10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])
        frames.append(tcp_frame(scanner, 40000 + i % 20000, target, 8081, i * 7919, 0x02))
    return pcap(frames)


def one_big_flow(payload: bytes, segment: int = 1400) -> bytes:
    """Handshake, `payload` client to server in segments, FINs."""
    client, server = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
    isn_c, isn_s = 1000, 90000
    frames = [tcp_frame(client, 40000, server, 8081, isn_c, 0x02),
              tcp_frame(server, 8081, client, 40000, isn_s, 0x12, ack=isn_c + 1),
              tcp_frame(client, 40000, server, 8081, isn_c + 1, 0x10, ack=isn_s + 1)]
    seq = isn_c + 1
    for start in range(0, len(payload), segment):
        piece = payload[start:start + segment]
        frames.append(tcp_frame(client, 40000, server, 8081, seq, 0x18, piece, isn_s + 1))
        seq += len(piece)
    frames.append(tcp_frame(client, 40000, server, 8081, seq, 0x11, ack=isn_s + 1))
    frames.append(tcp_frame(server, 8081, client, 40000, isn_s + 1, 0x11, ack=seq + 1))
    return pcap(frames)
