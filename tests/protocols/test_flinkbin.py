"""Queryable state and the collect-sink socket (flink-wire-facts.md 2d, 2f)."""

import random
import struct

import pytest

from flinkwire.protocols import flinkbin

JOB = bytes.fromhex("00112233445566778899aabbccddeeff")
UUID = b"3f2c1a9e-8d4b-4c1e-9f0a-1b2c3d4e5f60"


def qs_frame(kind, request_id, body):
    inner = b"\x79\xa1\xb7\x10" + struct.pack(">I", kind) + struct.pack(">q", request_id) + body
    return struct.pack(">I", len(inner)) + inner


def kv_request(name=b"last-record", key=b"\x07acct=7"):
    return qs_frame(0, 42, JOB + struct.pack(">i", len(name)) + name + struct.pack(">i", 7)
                    + struct.pack(">i", len(key)) + key)


def test_queryable_state_request_and_result():
    value = b"\x1bbravo password=hunter2 two"
    s2c = qs_frame(1, 42, struct.pack(">i", len(value)) + value)
    found = flinkbin.detect(kv_request(), s2c)
    assert found["role"] == "queryable-state"
    assert found["state_names"] == ["last-record"]
    decoded = flinkbin.decode_queryable_state(kv_request(), s2c)
    request, result = decoded["messages"]
    assert request["type"] == "REQUEST" and request["request_id"] == 42
    assert request["job_id"] == JOB.hex() and request["key_hash"] == 7
    assert request["key_strings"] == ["acct=7"]
    assert result["type"] == "REQUEST_RESULT" and result["value_size"] == len(value)
    assert result["value_strings"] == ["bravo password=hunter2 two"]
    assert decoded["anomalies"] == []


def test_queryable_state_truncated_and_bad():
    decoded = flinkbin.decode_queryable_state(kv_request()[:30], b"\x00\x00\x00\x10nope....")
    assert decoded["messages"][0]["truncated"]
    assert {a["kind"] for a in decoded["anomalies"]} == {"truncated-frame", "bad-frame"}


def collect_request(offset=5):
    return b"\x25" + UUID + struct.pack(">q", offset)


def test_collect_sink_request_and_rows():
    rows = [b"\x1calpha SECRET-TOKEN-1234 one", b"\x00\x00\x00\x07"]
    s2c = (b"\x25" + UUID + struct.pack(">qi", 3, len(rows))
           + b"".join(struct.pack(">i", len(r)) + r for r in rows))
    found = flinkbin.detect(collect_request(), s2c)
    assert found["role"] == "collect-sink" and found["version"] == UUID.decode()
    assert found["rows"] == 2
    decoded = flinkbin.decode_collect_sink(collect_request() * 2, s2c)
    assert [r["offset_requested"] for r in decoded["requests"]] == [5, 5]
    (response,) = decoded["responses"]
    assert response["last_checkpointed_offset"] == 3 and response["count"] == 2
    assert response["rows"][0]["strings"] == ["alpha SECRET-TOKEN-1234 one"]


def test_collect_sink_count_beyond_bytes():
    s2c = b"\x25" + UUID + struct.pack(">qi", 0, 1_000_000) + struct.pack(">i", 99) + b"ab"
    decoded = flinkbin.decode_collect_sink(collect_request(), s2c)
    assert decoded["responses"][0]["truncated"]
    assert decoded["anomalies"][0]["kind"] == "truncated-row"


@pytest.mark.parametrize("stream", [b"", b"\x25not-a-uuid" + b"x" * 40,
                                    bytes.fromhex("0000002c122a0801"), b"GET / HTTP/1.1\r\n"])
def test_not_flinkbin(stream):
    assert flinkbin.detect(stream, b"") is None


@pytest.mark.parametrize("seed", range(20))
def test_garbage_never_raises(seed):
    rng = random.Random(seed)
    for base in (kv_request(), collect_request() + b"\x25" + UUID + b"\x00" * 12):
        mutated = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        data = bytes(mutated[:rng.randint(0, len(mutated))])
        flinkbin.detect(data, data)
        flinkbin.decode_queryable_state(data, data)
        flinkbin.decode_collect_sink(data, data)
