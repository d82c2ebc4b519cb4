"""Fuzz TCP reassembly with random segment sequences.

A random stream is cut into segments, some dropped (gaps), some sent twice or
overlapping, in a shuffled order, from an initial sequence number that is often
a few bytes before the 32-bit wrap. Invariants, per direction:

- unique_bytes + gap_bytes is the stream length seen (the end of the furthest segment);
- without a pending overflow, gap_bytes is exactly the bytes no segment carried;
- the retained head is the stream's own bytes, up to the first hole and the
  retention limit;
- the flow table never holds more than max_flows flows, and hands on every flow once.
"""

from hypothesis import given
from hypothesis import strategies as st

from fuzzing import FUZZ, target
from flinkwire.tcp.flows import MASK, FlowTable, Half, Limits

CLIENT, SERVER = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
ISNS = st.one_of(st.sampled_from((0, 1, MASK, MASK - 1, MASK - 700, 1 << 31, (1 << 31) - 1)),
                 st.integers(0, MASK))


@st.composite
def _plan(draw):
    stream = draw(st.binary(min_size=1, max_size=3000))
    size = len(stream)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, size - 1)), max_size=24))))
    bounds = [0] + [c for c in cuts if c < size] + [size]
    pieces = [(a, b - a) for a, b in zip(bounds, bounds[1:]) if b > a]
    kept = [p for p in pieces if not draw(st.integers(0, 5)) == 0] or pieces[-1:]
    extra = draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(1, 600)), max_size=6))
    segments = kept + [(a, min(n, size - a)) for a, n in extra]
    segments += draw(st.lists(st.sampled_from(segments), max_size=4))  # duplicates
    order = draw(st.permutations(range(len(segments))))
    return stream, [segments[i] for i in order]


def _seg(src, dst, seq, flags, start, end, ip_id):
    sport, dport = (40000, 8081) if src == CLIENT else (8081, 40000)
    return (6, src, sport, dst, dport, seq & MASK, 0, flags, start, end, ip_id, 0, ())


def _uncovered(segments, until):
    covered = bytearray(until)
    for start, length in segments:
        covered[start:start + length] = b"\x01" * length
    first = covered.find(0)
    return covered.count(0), (until if first < 0 else first)


@FUZZ
@given(plan=_plan(), isn=ISNS, syn=st.booleans(),
       retain=st.sampled_from((4 * 1024 * 1024, 1, 100, 1500)),
       pending=st.sampled_from((8 * 1024 * 1024, 500, 1)))
@target("tcp: reassembly")
def test_reassembly(plan, isn, syn, retain, pending):
    stream, segments = plan
    done, heads = [], []

    def finished(flow):
        done.append(flow)
        heads.append(flow.halves[0].head())

    table = FlowTable(finished, Limits(retain_per_direction=retain,
                                          pending_per_direction=pending))
    ts = 0
    if syn:
        table.add(_seg(CLIENT, SERVER, isn, 0x02, 0, 0, 0), ts, b"")
        base = isn + 1
    else:
        base = isn + segments[0][0]
    for index, (start, length) in enumerate(segments, 1):
        ts += 3_000_000
        buf = stream[start:start + length]
        table.add(_seg(CLIENT, SERVER, base + start - (0 if syn else segments[0][0]), 0x18,
                       0, len(buf), index), ts, buf)
    table.finish_all()

    assert len(done) == 1
    half = done[0].halves[0]
    origin = 0 if syn else segments[0][0]
    seen = [(s - origin, n) for s, n in segments if s + n > origin]
    seen = [(max(0, s), n + min(0, s)) for s, n in seen]
    furthest = max((s + n for s, n in seen), default=0)
    assert half.unique_bytes + half.gap_bytes == furthest
    assert half.before_start <= sum(n for _, n in segments)
    missing, first_hole = _uncovered(seen, furthest)
    if pending > 3000:
        assert half.gap_bytes == missing
        assert heads == [stream[origin:origin + min(first_hole, retain)]]
    assert half.unique_bytes <= len(stream)


@FUZZ
@given(head=st.binary(min_size=1, max_size=3000), isn=ISNS,
       retain=st.sampled_from((4 * 1024 * 1024, 7, 1000)),
       order=st.randoms(use_true_random=False))
@target("tcp: reassembly head")
def test_head_is_the_stream(head, isn, retain, order):
    """With every byte sent (in any order, with duplicates), the head is the stream."""
    pieces, pos = [], 0
    while pos < len(head):
        step = order.randint(1, 400)
        pieces.append((pos, min(step, len(head) - pos)))
        pos += step
    pieces += order.sample(pieces, min(3, len(pieces)))
    order.shuffle(pieces)
    done, heads = [], []

    def finished(flow):                  # the head is dropped once the flow is handed on
        done.append(flow)
        heads.append(flow.halves[0].head())

    table = FlowTable(finished, Limits(retain_per_direction=retain))
    table.add(_seg(CLIENT, SERVER, isn, 0x02, 0, 0, 0), 0, b"")
    for index, (start, length) in enumerate(pieces, 1):
        buf = head[start:start + length]
        table.add(_seg(CLIENT, SERVER, isn + 1 + start, 0x18, 0, len(buf), index),
                  index * 3_000_000, buf)
    table.finish_all()
    half = done[0].halves[0]
    assert half.unique_bytes == len(head) and half.gap_bytes == 0
    assert heads == [head[:retain]]
    assert not [a for a in half.anomalies if a["kind"] == "conflicting-retransmission"]


@FUZZ
@given(isn=ISNS,
       steps=st.lists(st.tuples(st.integers(0, 1 << 28), st.integers(0, 3)), min_size=1,
                      max_size=40))
@target("tcp: long streams")
def test_streams_past_4_gib(isn, steps):
    """Counted-only segments (no bytes) of up to 256 MiB: offsets unwrap past 2**32."""
    table = FlowTable(lambda flow: None)
    half = Half()
    half.based, half.seq_next = True, isn
    segments, pos = [], 0
    for length, action in steps:
        segments.append((pos, length, action))
        pos += length
    sent = []
    for i, (start, length, action) in enumerate(segments):
        if action == 0:
            continue                                  # lost: becomes a gap
        sent.append((start, length))
        half.add((isn + start) & MASK, None, length, i, table)
        if action == 2 and i:                         # retransmit the one before
            prev = segments[i - 1]
            half.add((isn + prev[0]) & MASK, None, prev[1], i, table)
    half.finish(table)
    furthest = max((s + n for s, n in sent), default=0)
    assert half.unique_bytes + half.gap_bytes == furthest
    assert half.kept == 0 and half.chunks == []


@FUZZ
@given(packets=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 255),
                                  st.integers(0, MASK), st.binary(max_size=40),
                                  st.sampled_from((6, 17))), max_size=120),
       max_flows=st.integers(1, 4))
@target("tcp: flow table")
def test_flow_table(packets, max_flows):
    done = []
    table = FlowTable(done.append, Limits(max_flows=max_flows, retain_per_direction=64,
                                          retain_total=150))
    for ts, (a, b, flags, seq, payload, proto) in enumerate(packets):
        src, dst = bytes([10, 0, 0, a]), bytes([10, 0, 0, b])
        seg = (proto, src, 1000 + a, dst, 2000 + b, seq, 0, flags, 0, len(payload), ts, 0, ())
        table.add(seg, ts * 1_000_000, payload)
        assert len(table.flows) <= max_flows
        assert 0 <= table.kept_total <= 150
    table.finish_all()
    assert len(done) == table.count
    assert len({id(f) for f in done}) == len(done)
    assert table.kept_total == 0
