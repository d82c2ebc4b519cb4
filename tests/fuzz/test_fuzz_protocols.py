"""Fuzz the plaintext decoders: HTTP, Pekko remoting, the Netty data plane, the blob
protocol (with ZIP bombs), queryable state / collect sink, and ZooKeeper.

Seeds are the lab captures' streams of each kind, the leakage test streams and
small synthetic connections. Invariants: decode and detect raise nothing and
swallow nothing, anomaly offsets lie inside the stream, and results stay within
a multiple of the input (plus, for archives, the decompression budget).
"""

import hashlib
import io
import struct
import zipfile

from hypothesis import given
from hypothesis import strategies as st

from fuzzing import (FUZZ, assert_bounded, lab_streams, mutated, no_swallowed_errors,
                     stream_files, target)
from flinkwire.protocols import blob, flinkbin, http, netty, pekko, zookeeper

JOB = bytes.fromhex("00112233445566778899aabbccddeeff")


def _pairs(kind, pattern=None, synthetic=()):
    pairs = list(lab_streams(kind)) + list(synthetic)
    if pattern:
        c2s, s2c = stream_files(pattern + ".c2s*"), stream_files(pattern + ".s2c*")
        pairs += list(zip(c2s, s2c)) + [(c, b"") for c in c2s] + [(b"", s) for s in s2c]
    return [p for p in pairs if p[0] or p[1]]


def _both(pairs):
    """A seed pair with either or both sides mutated, or two sides of different seeds."""
    sides_c = [c for c, _ in pairs] or [b""]
    sides_s = [s for _, s in pairs] or [b""]
    return st.one_of(
        st.tuples(mutated(sides_c), st.sampled_from(sides_s)),
        st.tuples(st.sampled_from(sides_c), mutated(sides_s)),
        st.tuples(mutated(sides_c, max_mutations=3), mutated(sides_s, max_mutations=3)),
        st.sampled_from(pairs).flatmap(
            lambda p: st.tuples(mutated([p[0] or b"\x00"]), mutated([p[1] or b"\x00"]))),
    )


def _offsets_inside(anomalies, c2s, s2c):
    for a in anomalies:
        size = len(c2s) if a.get("direction") != "s2c" else len(s2c)
        offset = a.get("offset")
        assert offset is None or 0 <= offset <= size, a


# -- HTTP ----------------------------------------------------------------------------

_CHUNKED = (b"POST /jars/upload HTTP/1.1\r\nHost: jm:8081\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: multipart/form-data; boundary=XyZ\r\n\r\n"
            b"2f\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\r\n"
            b"10\r\nsecret=1234567\r\n\r\n9\r\n--XyZ--\r\n\r\n0\r\n\r\n")
_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n"
             b'{"flink-version":"1.19.1"}\n')
HTTP = _pairs("http", "*rest", [(_CHUNKED, _RESPONSE),
                                (b"GET /overview HTTP/1.1\r\n\r\n", b"HTTP/1.1 101 Up\r\n\r\n")])


@FUZZ
@given(pair=_both(HTTP), max_body=st.sampled_from((8 << 20, 10, 0)))
@target("http: decode")
def test_http(pair, max_body):
    c2s, s2c = pair
    with no_swallowed_errors():
        messages = http.decode(c2s, s2c, max_body=max_body)
        http.detect(c2s, s2c)
        http.flink_role(list(messages))
    _offsets_inside(messages.anomalies, c2s, s2c)
    for message in messages:
        assert len(message.get("body") or b"") <= max_body
        assert len(message.get("headers") or {}) <= http.MAX_HEADERS
    assert_bounded(messages, len(c2s) + len(s2c))


# -- Pekko ---------------------------------------------------------------------------

PEKKO = _pairs("pekko", "*rpc")


@FUZZ
@given(pair=_both(PEKKO))
@target("pekko: decode")
def test_pekko(pair):
    c2s, s2c = pair
    with no_swallowed_errors():
        frames = pekko.decode(c2s, s2c)
        pekko.detect(c2s, s2c)
        pekko.actor_paths(c2s)
        at = pekko.resync(s2c)
    assert at is None or 0 <= at <= len(s2c)
    _offsets_inside(frames.anomalies, c2s, s2c)
    assert_bounded(frames, len(c2s) + len(s2c))


# -- Netty data plane --------------------------------------------------------------------

NETTY = _pairs("netty", "*data")


@FUZZ
@given(pair=_both(NETTY), hint=st.sampled_from((None, "1.15", "1.17", "1.19", "2.0", "x")))
@target("netty: decode")
def test_netty(pair, hint):
    c2s, s2c = pair
    with no_swallowed_errors():
        decoded = netty.decode(c2s, s2c, version_hint=hint)
        netty.detect(c2s, s2c)
    assert len(decoded["records"]) <= 2 * netty.MAX_RECORDS
    _offsets_inside(decoded["anomalies"], c2s, s2c)
    assert_bounded(decoded, len(c2s) + len(s2c))


# -- blob protocol and archives ------------------------------------------------------------

def _put(content, context=b"\x02" + JOB, chunk=65536):
    body = b"".join(struct.pack("<i", len(content[i:i + chunk])) + content[i:i + chunk]
                    for i in range(0, len(content), chunk))
    return b"\x00" + context + b"\x00" + body + b"\xff\xff\xff\xff"


def _jar(entries, method=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _key(content):
    return hashlib.sha1(content).digest() + b"\x00" + bytes(range(16))


JAR = _jar([("META-INF/MANIFEST.MF", "Main-Class: lab.Job\n"), ("app.properties",
            "db.password=fake-password\n"), ("lab/Job.class", b"\xca\xfe\xba\xbe" * 20)])
BOMB = _jar([("config.yaml", b"\x00" * (16 << 20))])                     # ratio ~1000
# Declares a small size but holds 16 MiB: ZipExtFile must stop at the declared size.
LIAR = bytearray(_jar([("notes.txt", b"a" * (16 << 20))]))
for header in (b"PK\x03\x04", b"PK\x01\x02"):
    at = LIAR.find(header)
    size_at = at + (22 if header == b"PK\x03\x04" else 24)
    struct.pack_into("<I", LIAR, size_at, 1000)
LIAR = bytes(LIAR)
MANY = _jar([(f"conf/{i}.yaml", b"k: v\n" * 400) for i in range(64)])
ARCHIVES = [JAR, BOMB, LIAR, MANY]
BLOB = _pairs("blob", "*blob", [(_put(a), b"\x00" + _key(a)) for a in ARCHIVES] + [
    (b"\x01\x00" + _key(JAR) + b"\x00", b"\x00" + struct.pack("<i", len(JAR)) + JAR)])


@FUZZ
@given(pair=_both(BLOB))
@target("blob: decode")
def test_blob(pair):
    c2s, s2c = pair
    with no_swallowed_errors():
        ops = blob.decode(c2s, s2c)
        blob.detect(c2s, s2c)
    _offsets_inside(ops.anomalies, c2s, s2c)
    for op in ops:
        texts = (op.get("zip") or {}).get("text_entries") or {}
        assert sum(len(t) for t in texts.values()) <= blob.ZIP_TOTAL_READ * 3
    assert_bounded(ops, len(c2s) + len(s2c), slack=blob.ZIP_TOTAL_READ * 3 + (64 << 10))


@FUZZ
@given(archive=mutated(ARCHIVES, max_mutations=6))
@target("blob: zip listing")
def test_zip_listing(archive):
    facts, anomalies = blob.list_zip(archive)
    assert len(facts["entries"]) <= blob.ZIP_MAX_ENTRIES
    read = sum(len(t.encode("utf-8", "surrogatepass")) for t in facts["text_entries"].values())
    assert read <= blob.ZIP_TOTAL_READ * 3   # replacement characters can triple a byte


# -- queryable state, collect sink, ZooKeeper ------------------------------------------------

def _qs(kind, request_id, body):
    inner = flinkbin.QS_VERSION + struct.pack(">Iq", kind, request_id) + body
    return struct.pack(">I", len(inner)) + inner


_UUID = b"3f2c1a9e-8d4b-4c1e-9f0a-1b2c3d4e5f60"
_ROWS = [b"\x1calpha SECRET-TOKEN-1234 one", b"\x00\x00\x00\x07"]
FLINKBIN = [
    (_qs(0, 42, JOB + struct.pack(">i", 11) + b"last-record" + struct.pack(">i", 7)
         + struct.pack(">i", 7) + b"\x07acct=7"),
     _qs(1, 42, struct.pack(">i", 9) + b"\x08bravo pw") + _qs(2, 43, b"\xac\xed\x00\x05")),
    (b"\x25" + _UUID + struct.pack(">q", 5),
     b"\x25" + _UUID + struct.pack(">qi", 3, len(_ROWS))
     + b"".join(struct.pack(">i", len(r)) + r for r in _ROWS)),
]


def _zk(body):
    return struct.pack(">i", len(body)) + body


ZOOKEEPER = [(
    _zk(struct.pack(">iqiqi", 0, 0, 60000, 0, 16) + b"\x00" * 16 + b"\x00")
    + _zk(struct.pack(">ii", 1, 4) + struct.pack(">i", 10) + b"/flink/jm1" + b"\x01")
    + _zk(struct.pack(">iii", -4, 100, 0) + struct.pack(">i", 6) + b"digest"
          + struct.pack(">i", 9) + b"user:pass"),
    _zk(struct.pack(">iiqi", 0, 40000, 0x0123456789ABCDEF, 16) + b"\x11" * 16 + b"\x00")
    + _zk(struct.pack(">iqi", 1, 5, 0) + b"pekko.tcp://flink@192.0.2.10:6123/user/rpc/rm_0"),
)]


@FUZZ
@given(pair=_both(FLINKBIN))
@target("flinkbin: detect")
def test_flinkbin(pair):
    c2s, s2c = pair
    with no_swallowed_errors():
        found = flinkbin.detect(c2s, s2c)
        state = flinkbin.decode_queryable_state(c2s, s2c)
        sink = flinkbin.decode_collect_sink(c2s, s2c)
    for result in (found, state, sink):
        assert_bounded(result, len(c2s) + len(s2c))


@FUZZ
@given(pair=_both(ZOOKEEPER))
@target("zookeeper: detect")
def test_zookeeper(pair):
    c2s, s2c = pair
    with no_swallowed_errors():
        found = zookeeper.detect(c2s, s2c)
        decoded = zookeeper.decode(c2s, s2c)
    _offsets_inside(decoded["anomalies"], c2s, s2c)
    for result in (found, decoded):
        assert_bounded(result, len(c2s) + len(s2c))
