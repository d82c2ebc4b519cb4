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


def _segments(rng, port):
    """(port, seq, payload) of one direction: in order mostly, some reordered, resent
    (a few altered), lost or overlapping."""
    isn = rng.randrange(1 << 32)
    stream = rng.randbytes(rng.randint(1, 20000))
    cuts = sorted({0, len(stream), *(rng.randrange(len(stream)) for _ in range(60))})
    segments = [(isn + a, stream[a:b]) for a, b in zip(cuts, cuts[1:])]
    out = []
    for i, segment in enumerate(segments):
        roll = rng.random()
        if roll < 0.05:
            continue
        if roll < 0.15 and out:
            out.insert(len(out) - 1, segment)
            continue
        out.append(segment)
        if roll > 0.9:
            seq, payload = segments[rng.randrange(i + 1)]
            if rng.random() < 0.3:
                payload = bytes(b ^ 1 for b in payload)
            skew = rng.randint(0, len(payload) - 1)
            out.append((seq + skew, payload[skew:]))
    return [(port, seq & 0xFFFFFFFF, payload) for seq, payload in out]


def test_the_in_order_path_of_add_tcp_keeps_what_half_add_keeps():
    # `FlowTable.add_tcp` extends the last chunk itself for the next bytes of a stream;
    # before, every payload segment went to the reassembler (`Half.add`), which must
    # give the same halves, whatever the order, the losses and the budgets.
    import random

    from flinkwire.tcp.flows import FlowTable, Half, Limits, wire_key

    rng = random.Random(11)
    for _ in range(150):
        limits = Limits(retain_per_direction=rng.choice([700, 4000, 1 << 20]),
                        retain_total=rng.choice([900, 12000, 30000, 1 << 27]),
                        pending_per_direction=rng.choice([500, 1 << 20]))
        fast, plain = FlowTable(lambda flow: None, limits), FlowTable(lambda flow: None, limits)
        halves = {port: Half() for port in (1001, 1002, 1003)}
        streams = [_segments(rng, port) for port in halves]
        packets = []
        while any(streams):
            stream = rng.choice([s for s in streams if s])
            packets.append(stream.pop(0))
        for ts, (port, seq, payload) in enumerate(packets):
            buf = b"\0" * 8 + payload
            fast.add_tcp(wire_key(b"\x0a\0\0\x01", port, b"\x0a\0\0\x02", 80), seq, 0, 0x18,
                         8, len(buf), ts, 0, (), ts, buf)
            half = halves[port]
            keep = not half.retain_cut and half.kept < plain.retain_per_direction
            half.add(seq, payload if keep else None, len(payload), ts, plain)
            if rng.random() < 0.03:  # another flow finished and gave its bytes back
                freed = rng.randint(0, plain.kept_total)
                fast.kept_total -= freed
                plain.kept_total -= freed
        assert fast.kept_total == plain.kept_total
        for port, half in halves.items():
            flow = fast.flows[(b"\x0a\0\0\x01", port, b"\x0a\0\0\x02", 80)]
            for done in (flow.halves[0], half):
                done.finish(fast if done is not half else plain)
            fields = ("next", "seq_next", "kept", "unique_bytes", "gap_bytes", "dup_bytes",
                      "marks", "mark_ts", "anomalies", "retain_cut", "before_start",
                      "out_of_order", "pending_bytes")
            assert ({name: getattr(flow.halves[0], name) for name in fields}
                    == {name: getattr(half, name) for name in fields})
            assert ([(c.start, c.data()) for c in flow.halves[0].chunks]
                    == [(c.start, c.data()) for c in half.chunks])


def test_the_wire_keys_follow_the_flows_through_reuse_sweeps_and_evictions():
    # `FlowTable.add_tcp` finds a segment's flow and side by its wire bytes, in a map
    # beside `flows`; it must always hold both directions of exactly the live flows,
    # and give the side the endpoint order gives, self-connections included.
    import random

    from flinkwire.tcp.flows import FlowTable, Limits, wire_key

    rng = random.Random(5)
    table = FlowTable(lambda flow: None, Limits(max_flows=6, close_grace_s=0.002,
                                                idle_timeout_s=0.02))
    hosts = [b"\x0a\0\0\x01", b"\x0a\0\0\x02"]
    for packet in range(33_000):
        src, dst = rng.choice(hosts), rng.choice(hosts)
        sport, dport = rng.choice((80, 81, 5000)), rng.choice((80, 81, 5000))
        ts = packet * 1_000_000
        buf = b"\0" * 4 + b"x" * rng.randint(0, 3)
        table.add_tcp(wire_key(src, sport, dst, dport), rng.randrange(1 << 32), 0,
                      rng.choice((0x02, 0x12, 0x10, 0x18, 0x11, 0x04)), 4, len(buf), packet, 0,
                      (), ts, buf)
        if (src, sport) <= (dst, dport):
            flow, side = table.flows[(src, sport, dst, dport)], 0
        else:
            flow, side = table.flows[(dst, dport, src, sport)], 1
        assert flow.halves[side].last_ts == ts
        expected = {}
        for key, live in table.flows.items():
            expected[wire_key(key[2], key[3], key[0], key[1])] = (live, 1)
            expected[wire_key(*key)] = (live, 0)
        assert table.wired == expected
    assert table.swept and table.evicted and table.reused
    table.finish_all()
    assert table.wired == {}
