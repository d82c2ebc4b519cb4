"""ZooKeeper client connections as Flink's HA services make them."""

import random
import struct

import pytest

from flinkwire.protocols import zookeeper


def packet(body):
    return struct.pack(">i", len(body)) + body


def connect_request(read_only=True):
    body = struct.pack(">iqiqi", 0, 0, 60000, 0, 16) + b"\x00" * 16
    return packet(body + (b"\x00" if read_only else b""))


def connect_response():
    return packet(struct.pack(">iiqi", 0, 40000, 0x0123456789ABCDEF, 16) + b"\x11" * 16 + b"\x00")


def path_request(xid, op, path):
    return packet(struct.pack(">ii", xid, op) + struct.pack(">i", len(path)) + path + b"\x01")


def test_connect_and_flink_znodes():
    c2s = (connect_request() + path_request(1, 4, b"/flink/default/leader/resource_manager")
           + path_request(2, 12, b"/flink/default/jobs")
           + packet(struct.pack(">iii", -4, 100, 0) + struct.pack(">i", 6) + b"digest"
                    + struct.pack(">i", 10) + b"user:secret"[:10]))
    leader = (b"\xac\xed\x00\x05w\x3b\x00\x39"
              b"pekko.tcp://flink@192.0.2.10:6123/user/rpc/resourcemanager_0")
    s2c = connect_response() + packet(struct.pack(">iqi", 1, 5, 0) + struct.pack(">i", len(leader))
                                      + leader)
    found = zookeeper.detect(c2s, s2c)
    assert found["role"] == "zookeeper"
    assert found["flink_paths"] == ["/flink/default/leader/resource_manager",
                                    "/flink/default/jobs"]
    assert found["auth_schemes"] == ["digest"]
    assert found["session_id"] == "0123456789abcdef"
    assert found["rpc_addresses"] == [
        "pekko.tcp://flink@192.0.2.10:6123/user/rpc/resourcemanager_0"]
    decoded = zookeeper.decode(c2s, s2c)
    assert [r["op"] for r in decoded["requests"]] == ["getData", "getChildren2", "auth"]
    assert decoded["connect"]["timeout_ms"] == 60000 and decoded["connect"]["read_only"] is False


def test_connect_without_read_only_flag():
    assert zookeeper.detect(connect_request(read_only=False), b"")["role"] == "zookeeper"


@pytest.mark.parametrize("stream", [b"", b"\x00\x00\x00\x2c" + b"\x01" * 44,
                                    bytes.fromhex("0000002c122a080112260a1b") + b"\x00" * 40])
def test_not_zookeeper(stream):
    assert zookeeper.detect(stream, b"") is None


def test_bad_packet_length_is_an_anomaly():
    decoded = zookeeper.decode(connect_request() + struct.pack(">i", 1 << 30) + b"\x00" * 12, b"")
    assert decoded["anomalies"][0]["kind"] == "bad-packet-length"


@pytest.mark.parametrize("seed", range(20))
def test_garbage_never_raises(seed):
    rng = random.Random(seed)
    mutated = bytearray(connect_request() + path_request(1, 4, b"/flink/x"))
    for _ in range(rng.randint(1, 8)):
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    data = bytes(mutated[:rng.randint(0, len(mutated))])
    zookeeper.detect(data, data)
    zookeeper.decode(data, data)
