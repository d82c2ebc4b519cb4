"""The blob protocol, per flink-wire-facts.md 2c, including jar listing and a zip bomb."""

import hashlib
import io
import random
import struct
import zipfile


import pytest

from corpus import streams_of_role

from flinkwire.protocols import blob

JOB = bytes.fromhex("00112233445566778899aabbccddeeff")
CONTENT = b"blob-secret-content db.password=swordfish\n"
# Seen on the wire ([PCAP 2.3.0]): PUT, job-related, JobID, permanent, one 42-byte chunk, end.
OBSERVED_PUT = (bytes.fromhex("0002" "00112233445566778899aabbccddeeff" "00" "2a000000")
                + CONTENT + bytes.fromhex("ffffffff"))


def key_for(content, kind=0):
    return hashlib.sha1(content).digest() + bytes([kind]) + bytes(range(16))


def put(content, context=b"\x02" + JOB, chunk=65536):
    body = b""
    for start in range(0, len(content), chunk):
        piece = content[start:start + chunk]
        body += struct.pack("<i", len(piece)) + piece
    return b"\x00" + context + b"\x00" + body + b"\xff\xff\xff\xff"


def test_observed_put_and_its_reply():
    assert put(CONTENT) == OBSERVED_PUT
    reply = b"\x00" + key_for(CONTENT)
    ops = blob.decode(OBSERVED_PUT, reply)
    assert ops.anomalies == []
    (op,) = ops
    assert op["op"] == "PUT" and op["context"] == "job" and op["job_id"] == JOB.hex()
    assert op["blob_type"] == "permanent" and op["size"] == 42 and op["complete"]
    assert op["content_segments"] == [(23, 42)]
    assert OBSERVED_PUT[23:23 + 42] == CONTENT
    assert op["blob_key"] == f"p-{hashlib.sha1(CONTENT).hexdigest()}-{bytes(range(16)).hex()}"
    assert op["sha1_matches_key"] is True

    found = blob.detect(OBSERVED_PUT, reply)
    assert found["role"] == "blob"
    assert found["operations"][0]["op"] == "PUT"
    assert JOB.hex() in found["evidence"]


def test_put_then_get_on_one_connection_with_ack():
    key = key_for(CONTENT, kind=1)
    c2s = put(CONTENT, context=b"\x00") + b"\x01\x00" + key + b"\x00"
    s2c = b"\x00" + key + b"\x00" + struct.pack("<i", len(CONTENT)) + CONTENT
    ops = blob.decode(c2s, s2c)
    assert [o["op"] for o in ops] == ["PUT", "GET"]
    get = ops[1]
    assert get["context"] == "job-unrelated" and get["blob_key"].startswith("t-")
    assert get["content_direction"] == "s2c" and get["acknowledged"] is True
    start, length = get["content_segments"][0]
    assert s2c[start:start + length] == CONTENT
    assert blob.content_of(s2c, get) == CONTENT


def test_multi_chunk_upload_and_application_context():
    content = bytes(range(256)) * 600  # 153600 bytes: three chunks
    c2s = put(content, context=b"\x03" + JOB)
    (op,) = blob.decode(c2s, b"")
    assert op["application_id"] == JOB.hex()
    assert len(op["content_segments"]) == 3 and op["size"] == len(content)
    assert blob.content_of(c2s, op) == content


def test_error_reply_gives_class_names():
    error = b"\xac\xed\x00\x05\x73\x72\x00\x13java.io.IOException" + b"\x00" * 10
    s2c = b"\x01" + struct.pack("<i", len(error)) + error
    (op,) = blob.decode(put(CONTENT), s2c)
    assert op["status"] == "error" and op["error_classes"] == ["java.io.IOException"]


def make_jar(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_jar_entries_and_text_are_listed():
    jar = make_jar([("META-INF/MANIFEST.MF", "Main-Class: flinkwire.lab.Job\n"),
                    ("flinkwire/lab/Job.class", b"\xca\xfe\xba\xbe"),
                    ("app.properties", "db.password=fake\n")])
    (op,) = blob.decode(put(jar), b"\x00" + key_for(jar))
    assert op["content_kind"] == "zip"
    assert op["zip"]["entries"] == ["META-INF/MANIFEST.MF", "flinkwire/lab/Job.class",
                                    "app.properties"]
    assert op["zip"]["text_entries"]["app.properties"] == "db.password=fake\n"
    assert "flinkwire/lab/Job.class" not in op["zip"]["text_entries"]


def test_zip_bomb_is_reported_not_inflated():
    bomb = make_jar([("config.yaml", b"\x00" * (64 << 20))])  # 64 MiB of zeros, ~64 KiB packed
    assert len(bomb) < 200_000
    ops = blob.decode(put(bomb), b"")
    zip_facts = ops[0]["zip"]
    assert zip_facts["entries"] == ["config.yaml"]
    assert zip_facts["text_entries"] == {}
    assert [a["kind"] for a in ops.anomalies] == ["zip-bomb"]


def test_text_entries_are_read_within_limits():
    jar = make_jar([("big.txt", b"a" * (3 << 20))])  # ratio ~1000: a bomb
    facts, anomalies = blob.list_zip(jar)
    assert facts["text_entries"] == {} and anomalies[0]["kind"] == "zip-bomb"
    rng = random.Random(1)
    text = bytes(rng.randrange(32, 127) for _ in range(blob.ZIP_ENTRY_READ + 500))
    plain = make_jar([("notes.txt", text)])
    facts, anomalies = blob.list_zip(plain)
    assert len(facts["text_entries"]["notes.txt"]) == blob.ZIP_ENTRY_READ
    assert anomalies[0]["kind"] == "zip-entry-limit"


def test_truncated_jar_falls_back_to_local_headers():
    jar = make_jar([("a/B.class", b"x" * 100), ("c/D.class", b"y" * 100)])
    facts, anomalies = blob.list_zip(jar[:len(jar) - 30])
    assert facts["source"] == "local-headers"
    assert facts["entries"] == ["a/B.class", "c/D.class"]
    assert anomalies[0]["kind"] == "zip-unreadable"


def test_truncated_upload_is_partial():
    (op,) = blob.decode(OBSERVED_PUT[:40], b"")
    assert op["truncated"] is True and op["size"] == 40 - 23
    assert blob.detect(OBSERVED_PUT[:40], b"")["role"] == "blob"


def test_bad_chunk_length_is_an_anomaly():
    c2s = b"\x00\x00\x00" + struct.pack("<i", 70000) + b"x" * 10
    ops = blob.decode(c2s, b"")
    assert ops.anomalies[0]["kind"] == "bad-chunk-length"
    assert blob.detect(c2s, b"") is None


@pytest.mark.parametrize("stream", [
    b"", b"\x00", b"\x05\x00\x00", bytes.fromhex("0000002c122a0801"),
    bytes.fromhex("00000033badc0ffe00"), b"GET / HTTP/1.1\r\n\r\n"])
def test_other_protocols_are_not_blob(stream):
    assert blob.detect(stream, b"") is None


@pytest.mark.parametrize("seed", range(30))
def test_garbage_never_raises(seed):
    rng = random.Random(seed)
    mutated = bytearray(put(CONTENT) + b"\x01\x02" + JOB + key_for(CONTENT))
    for _ in range(rng.randint(1, 10)):
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    data = bytes(mutated[:rng.randint(0, len(mutated))])
    reply = bytes(rng.randrange(256) for _ in range(rng.randint(0, 80)))
    blob.detect(data, reply)
    ops = blob.decode(data, reply)
    assert len(ops) <= 3


def test_get_content_is_checked_against_the_key():
    key = key_for(CONTENT)
    s2c = b"\x00" + struct.pack("<i", len(CONTENT)) + CONTENT
    (good,) = blob.decode(b"\x01\x02" + JOB + key + b"\x00", s2c)
    assert good["sha1_matches_key"] is True
    (bad,) = blob.decode(b"\x01\x02" + JOB + key_for(b"other") + b"\x00", s2c)
    assert bad["sha1_matches_key"] is False


# -- the real lab captures (captures/README.md), when present ----------------------------

def test_lab_job_jar_download():
    for c2s, s2c in streams_of_role("s1-plaintext", "blob"):
        found = blob.detect(c2s, s2c)
        assert found["role"] == "blob"
        ops = blob.decode(c2s, s2c)
        jars = [o for o in ops if o.get("content_kind") == "zip"]
        assert jars and jars[0]["op"] == "GET" and jars[0]["sha1_matches_key"] is True
        assert "flinkwire/lab/FakeSecretsJob.class" in jars[0]["zip"]["entries"]
