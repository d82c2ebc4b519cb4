"""Reassembly edge cases: wraparound, reordering, overlaps, reuse, -i any copies."""

from scapy.layers.inet import IP

from builders import conversation, pcap_bytes, tcp_packet
from corpus import collect_streams


def _run(tmp_path, packets, limits=None):
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap_bytes([bytes(p) for p in packets]))
    return collect_streams([path], limits)


def test_sequence_wraparound(tmp_path):
    parts = [b"A" * 100, b"B" * 100, b"C" * 100]
    pkts = conversation(c2s=parts, isn_c=0xFFFFFFFF - 150)
    _, flows = _run(tmp_path, pkts)
    assert flows[0]["c2s"] == b"".join(parts)
    assert flows[0]["gap_bytes"]["c2s"] == 0


def test_reordered_segments_are_put_back_in_order(tmp_path):
    pkts = conversation(c2s=[b"one-", b"two-", b"three"])
    pkts[3], pkts[5] = pkts[5], pkts[3]
    _, flows = _run(tmp_path, pkts)
    assert flows[0]["c2s"] == b"one-two-three"
    assert flows[0]["payload_bytes"]["c2s"] == 13


def test_conflicting_retransmission_keeps_first_copy_and_is_recorded(tmp_path):
    pkts = conversation(c2s=[b"password=hunter2", b"-end"])
    original = pkts[3]
    forged = tcp_packet("192.0.2.1", 40000, "198.51.100.2", 8081, 1001, 5001, "PA",
                        b"password=XXXXXXX")
    pkts.insert(4, forged)
    _, flows = _run(tmp_path, pkts)
    flow = flows[0]
    assert bytes(original.load) in flow["c2s"]
    assert flow["c2s"] == b"password=hunter2-end"
    kinds = [a["kind"] for a in flow["anomalies"]["c2s"]]
    assert kinds == ["conflicting-retransmission"]
    assert flow["payload_bytes"]["c2s"] == 20


def test_identical_retransmission_counts_once(tmp_path):
    pkts = conversation(c2s=[b"hello world"])
    copy = pkts[3].copy()
    copy[IP].id = pkts[3][IP].id + 1  # a real retransmission is a new IP datagram
    del copy[IP].chksum
    pkts.insert(4, copy)
    _, flows = _run(tmp_path, pkts)
    assert flows[0]["payload_bytes"]["c2s"] == 11
    assert flows[0]["frames"]["c2s"] == 5


def test_gap_is_measured_and_recorded(tmp_path):
    pkts = conversation(c2s=[b"first-", b"LOST!", b"third"])
    del pkts[4]  # S, SA, A, then the three data segments: drop the second
    _, flows = _run(tmp_path, pkts)
    flow = flows[0]
    lost = [a for a in flow["anomalies"]["c2s"] if a["kind"] == "gap"]
    assert flow["gap_bytes"]["c2s"] == 5 and lost[0]["offset"] == 6
    assert flow["payload_bytes"]["c2s"] == 11


def test_port_reuse_after_fin_starts_a_new_flow(tmp_path):
    first = conversation(c2s=[b"first connection"])
    second = conversation(c2s=[b"second connection"], isn_c=900_000, isn_s=70_000)
    _, flows = _run(tmp_path, first + second)
    assert [f["c2s"] for f in flows] == [b"first connection", b"second connection"]


def test_frames_recorded_twice_by_any_interface_are_not_doubled(tmp_path):
    pkts = conversation(c2s=[b"GET / HTTP/1.1\r\n\r\n"], s2c=[b"HTTP/1.1 200 OK\r\n\r\n"])
    doubled = []
    for p in pkts:
        doubled += [p, p]  # pcap_bytes stamps them 1 ms apart: within the window
    _, flows = _run(tmp_path, doubled)
    flow = flows[0]
    assert flow["frames"] == {"c2s": 4, "s2c": 3}  # S A PA FA / SA PA FA
    assert flow["dups"] == len(pkts)
    assert flow["c2s"] == b"GET / HTTP/1.1\r\n\r\n"


def test_retention_limit_keeps_counting(tmp_path):
    from flinkwire.tcp.flows import Limits

    parts = [bytes([65 + i]) * 1000 for i in range(10)]
    _, flows = _run(tmp_path, conversation(c2s=parts), Limits(retain_per_direction=2500))
    flow = flows[0]
    assert flow["payload_bytes"]["c2s"] == 10_000
    assert len(flow["c2s"]) == 2500


def test_a_chunk_reads_any_span_as_its_joined_bytes_give_it():
    # `Chunk.read` finds a retransmission's bytes in the parts without joining them;
    # it must give what slicing the joined chunk gives, for any span inside it.
    import random

    from flinkwire.tcp.flows import Chunk

    rng = random.Random(3)
    for _ in range(300):
        parts = [bytes(rng.randrange(256) for _ in range(rng.randint(1, 9)))
                 for _ in range(rng.randint(1, 6))]
        chunk = Chunk(0, parts[0])
        for part in parts[1:]:
            chunk.append(part)
        joined = b"".join(parts)
        for at in range(len(joined) + 1):
            for length in range(len(joined) - at + 1):
                assert chunk.read(at, length) == joined[at:at + length]
        assert chunk.parts == parts  # nothing was joined in place
