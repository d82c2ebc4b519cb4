"""Akka/Pekko classic remoting: frames built byte for byte per flink-wire-facts.md 2b."""

import random

import pytest

from builders import associate, envelope, method_invocation, varint
from corpus import streams_of_role

from flinkwire.protocols import pekko


def test_associate_matches_the_documented_bytes():
    frame = associate(port=40000)
    # 00 00 00 2c 12 2a 08 01 12 26 0a 1b 0a 05 "flink" 12 09 "127.0.0.1" 18 <port> 22 03 "tcp" 11
    assert frame[:12] == bytes.fromhex("0000002c122a080112260a1b")
    assert frame[12:19] == b"\x0a\x05flink"
    assert frame[19:30] == b"\x12\x09127.0.0.1"
    assert frame[30:34] == b"\x18" + varint(40000)
    assert frame[34:39] == b"\x22\x03tcp" and frame[39] == 0x11


# The documented ASSOCIATE, written out literally (port 40000 = varint c0 b8 02).
LITERAL_ASSOCIATE = bytes.fromhex(
    "0000002c" "122a" "0801" "1226" "0a1b" "0a05" + b"flink".hex() + "1209" + b"127.0.0.1".hex()
    + "18c0b802" "2203" + b"tcp".hex() + "11" "0102030405060708")


def test_decode_literal_associate():
    frames = pekko.decode(LITERAL_ASSOCIATE, b"")
    assert frames[0] == {"direction": "c2s", "offset": 0, "length": 44, "kind": "associate",
                         "command": "ASSOCIATE", "system": "flink",
                         "advertised_host": "127.0.0.1", "advertised_port": 40000,
                         "transport": "tcp", "uid": "0807060504030201"}


def test_detect_reads_both_handshakes():
    found = pekko.detect(associate(port=40000), associate(port=6123, host=b"192.0.2.10"))
    assert found["role"] == "rpc"
    assert found["system"] == "flink"
    assert found["client_origin"]["port"] == 40000
    assert found["server_origin"] == {"system": "flink", "host": "192.0.2.10", "port": 6123,
                                      "uid": "ffffffff04030201", "transport": "tcp"}
    assert found["advertised_host"] == "192.0.2.10" and found["advertised_port"] == 6123
    assert found["advertised_side"] == "server"
    assert "ASSOCIATE flink@192.0.2.10:6123" in found["evidence"]
    assert found["rpc_library"] is None


def test_metrics_actor_system_is_metrics_rpc():
    found = pekko.detect(associate(system=b"flink-metrics"), b"")
    assert found["role"] == "metrics-rpc"
    assert found["advertised_side"] == "client"


def test_non_flink_actor_system_is_not_claimed():
    assert pekko.detect(associate(system=b"mysystem"), b"") is None


def test_rpc_library_and_methods_from_later_frames():
    recipient = b"pekko.tcp://flink@192.0.2.10:6123/user/rpc/resourcemanager_0#123"
    sender = b"pekko.tcp://flink@192.0.2.11:33221/user/rpc/taskmanager_0#9"
    body = b"\xac\xed\x00\x05 outer " + method_invocation(b"ResourceManagerGateway",
                                                        b"registerTaskExecutor")
    c2s = associate() + envelope(recipient, sender, body)
    found = pekko.detect(c2s, associate(port=6123))
    assert found["rpc_library"] == "pekko"
    assert found["c2s_endpoints"] == ["resourcemanager"]
    assert found["c2s_methods"] == ["ResourceManagerGateway.registerTaskExecutor"]

    frames = pekko.decode(c2s, b"")
    assert [f["kind"] for f in frames] == ["associate", "payload"]
    payload = frames[1]
    assert payload["recipient"] == recipient.decode()
    assert payload["sender"] == sender.decode()
    assert payload["serializer_id"] == 1 and payload["seq"] == 7
    assert payload["rpc_methods"] == ["ResourceManagerGateway.registerTaskExecutor"]
    assert ("org.apache.flink.runtime.rpc.messages.RemoteRpcInvocation$MethodInvocation"
            in payload["class_names"])
    assert payload["offset"] == len(associate())
    assert frames.anomalies == []


def test_akka_library_and_manifest():
    frame = envelope(b"akka.tcp://flink@h:6123/user/rpc/dispatcher_1", b"", b"x",
                     serializer=16, manifest=b"A")
    found = pekko.detect(associate() + frame, b"")
    assert found["rpc_library"] == "akka"
    decoded = pekko.decode(associate() + frame, b"")
    assert decoded[1]["manifest"] == "A" and decoded[1]["serializer"] == "misc"


def test_disassociate_and_heartbeat_frames():
    frames = pekko.decode(bytes.fromhex("000000041202 0804".replace(" ", ""))
                          + bytes.fromhex("0000000412020803"), b"")
    assert [(f["kind"], f["command"]) for f in frames] == [
        ("disassociate", "DISASSOCIATE_SHUTTING_DOWN"), ("heartbeat", "HEARTBEAT")]


def test_truncated_frame_is_partial_fact_and_anomaly():
    frame = associate()
    frames = pekko.decode(frame[:30], b"")
    assert frames[0]["truncated"] is True
    assert frames.anomalies[0]["kind"] == "truncated-frame"
    assert pekko.detect(frame[:30], b"") is None


def test_huge_length_and_artery_are_anomalies():
    frames = pekko.decode(b"\x7f\xff\xff\xff" + b"\x00" * 10, b"AKKA\x01rest")
    kinds = {a["kind"]: a["direction"] for a in frames.anomalies}
    assert kinds == {"bad-frame-length": "c2s", "artery": "s2c"}


def test_frame_limit_is_respected():
    stream = bytes.fromhex("0000000412020803") * 50
    frames = pekko.decode(stream, b"", max_frames=10)
    assert len(frames) == 10
    assert frames.anomalies[-1]["kind"] == "frame-limit"


def test_rpc_methods_ignores_non_identifiers():
    blob = b"MethodInvocation\x77\x08\x00\x02a b\x00\x01c"
    assert pekko.rpc_methods(blob) == []


def test_protobuf_reader_is_bounded():
    fields, error = pekko.protobuf_fields(b"\x0a\xff\xff\xff\xff\x0f")
    assert fields == [] and "exceeds" in error
    fields, error = pekko.protobuf_fields(b"\x08" * 600)
    assert error is not None


@pytest.mark.parametrize("seed", range(30))
def test_garbage_never_raises(seed):
    rng = random.Random(seed)
    base = associate() + envelope(b"pekko.tcp://flink@h:1/user/rpc/x_1", b"s",
                                  method_invocation(b"G", b"m"))
    mutated = bytearray(base)
    for _ in range(rng.randint(1, 20)):
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    data = bytes(mutated[:rng.randint(0, len(mutated))])
    pekko.detect(data, data[::-1])
    frames = pekko.decode(data, bytes(rng.randrange(256) for _ in range(200)))
    assert all(f["offset"] < len(data) for f in frames if f["direction"] == "c2s")


# -- the real lab captures (captures/README.md), when present ----------------------------

def test_lab_taskmanager_registers_at_the_jobmanager():
    for c2s, s2c in streams_of_role("s1-plaintext", "jobmanager-rpc"):
        found = pekko.detect(c2s, s2c)
        assert found["role"] == "rpc" and found["rpc_library"] == "pekko"
        assert found["server_origin"]["host"] == "192.0.2.10"
        assert found["server_origin"]["port"] == 6123
        assert "ResourceManagerGateway.registerTaskExecutor" in found["c2s_methods"]
        assert "resourcemanager" in found["c2s_endpoints"]
        assert "TaskExecutorGateway.submitTask" in found["s2c_methods"]
        frames = pekko.decode(c2s, s2c)
        assert frames.anomalies == []
        assert frames[0]["kind"] == "associate"


def test_lab_metrics_actor_system():
    for c2s, s2c in streams_of_role("s1-plaintext", "metrics-rpc"):
        assert pekko.detect(c2s, s2c)["role"] == "metrics-rpc"


def test_lab_flink_1_20_is_pekko_too():
    for c2s, s2c in streams_of_role("s6-plaintext-flink-1.20", "jobmanager-rpc"):
        assert pekko.detect(c2s, s2c)["rpc_library"] == "pekko"


def test_empty_frame_ends_a_real_association():
    frames = pekko.decode(bytes.fromhex("0000000412020804" "00000000"), b"")
    assert [f["kind"] for f in frames] == ["disassociate", "empty"]
    assert frames.anomalies == []


def test_mid_stream_capture_is_resynchronized():
    recipient = b"pekko.tcp://flink@192.0.2.10:6123/user/rpc/resourcemanager_0#1"
    body = method_invocation(b"ResourceManagerGateway", b"sendSlotReport")
    frame = envelope(recipient, b"", body)
    reply = envelope(b"pekko.tcp://flink@192.0.2.11:6122/user/rpc/taskmanager_0#2", b"",
                     method_invocation(b"TaskExecutorGateway", b"requestSlot"))
    # The capture starts 20 bytes into a frame, in both directions.
    c2s = frame[20:] + frame + frame
    s2c = reply[20:] + reply
    assert pekko.resync(c2s) == len(frame) - 20
    found = pekko.detect(c2s, s2c)
    assert found["mid_stream"] is True and found["role"] == "rpc"
    assert found["server_origin"]["host"] == "192.0.2.10"
    assert found["server_origin"]["port"] == 6123
    assert found["client_origin"]["port"] == 6122
    assert found["c2s_methods"] == ["ResourceManagerGateway.sendSlotReport"]
    assert "no handshake captured" in found["evidence"]
    frames = pekko.decode(c2s, b"")
    assert [f["offset"] for f in frames] == [len(frame) - 20, 2 * len(frame) - 20]
    assert frames.anomalies[0]["kind"] == "mid-stream"


def test_actor_path_text_alone_is_not_rpc():
    # A REST answer or a ZooKeeper znode can quote an actor path without being remoting.
    text = b'{"path":"pekko.tcp://flink@192.0.2.11:6122/user/rpc/taskmanager_0"}'
    assert pekko.resync(text) is None
    assert pekko.detect(text, b"") is None


def test_lab_stream_cut_anywhere_is_still_recognized():
    (c2s, s2c), *_ = streams_of_role("s1-plaintext", "jobmanager-rpc")
    for cut in (1, 777, 5000, 20011):
        found = pekko.detect(c2s[cut:], s2c[cut:])
        assert found["role"] == "rpc" and found["mid_stream"]
        assert found["server_origin"]["host"] == "192.0.2.10"
        assert found["server_origin"]["port"] == 6123
