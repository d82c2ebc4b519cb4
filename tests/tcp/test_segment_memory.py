"""407: what a direction holds besides its payload must not grow with its segment count."""

import struct

from flinkwire.tcp.build import build_flows
from flinkwire.tcp.flows import JOIN_PARTS, MAX_MARKS, MIN_PART

BASE_S = 1_767_225_600
BASE_NS = BASE_S * 10**9


def _pcap(frames):
    """A classic pcap of these frames, one per millisecond."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for i, frame in enumerate(frames):
        out.append(struct.pack("<IIII", BASE_S + i // 1000, i % 1000 * 1000, len(frame),
                               len(frame)) + frame)
    return b"".join(out)


def _frames(sizes):
    """Ethernet/IPv4/TCP frames of one direction, in order, with payloads of these sizes
    (bytes 0, 1, 2, ... of the stream, mod 251), built with struct: scapy per packet
    would take seconds here."""
    frames, seq, stream = [], 1000, bytearray()
    for size in sizes:
        payload = bytes((len(stream) + i) % 251 for i in range(size))
        stream += payload
        tcp = struct.pack("!HHIIBBHHH", 40000, 6121, seq, 1, 0x50, 0x18, 65535, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + size, 0, 0x4000, 64, 6, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 1, 0, 1]))
        frames.append(b"\0" * 12 + b"\x08\x00" + ip + tcp + payload)
        seq += size
    return frames, bytes(stream)


def _one_flow(tmp_path, sizes):
    frames, stream = _frames(sizes)
    path = tmp_path / "t.pcap"
    path.write_bytes(_pcap(frames))
    seen = []

    def done(flow):
        half = max(flow.halves, key=lambda h: h.kept)
        seen.append((sum(len(c.parts) for c in half.chunks), len(half.marks),
                     half.head(), half))

    build_flows([path], done)
    assert len(seen) == 1
    return seen[0], stream


def test_tiny_segments_cost_a_bounded_number_of_parts_and_marks(tmp_path):
    count = 20_000
    (parts, marks, head, half), stream = _one_flow(tmp_path, [1] * count)
    # Before 407 every segment was a part and a mark: 20,000 of each.
    assert parts <= JOIN_PARTS + count // MIN_PART + 1
    assert marks <= MAX_MARKS
    assert head == stream

    # Thinned marks date a byte by a segment at most `mark_gap` bytes before it.
    for offset in (0, 1, 777, count // 2, count - 1):
        exact = BASE_NS + offset * 1_000_000  # one frame per ms
        got = half.timestamp_at(offset)
        assert exact - (half.mark_gap + 1) * 1_000_000 <= got <= exact


def test_usual_segments_keep_exact_times(tmp_path):
    sizes = [1000 + (i % 7) * 60 for i in range(700)]
    (parts, marks, head, half), stream = _one_flow(tmp_path, sizes)
    assert head == stream
    assert marks == len(sizes)
    offset = 0
    for i, size in enumerate(sizes):
        assert half.timestamp_at(offset + size - 1) == BASE_NS + i * 1_000_000
        offset += size
