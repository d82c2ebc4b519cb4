"""The Netty data plane: frames and records built per flink-wire-facts.md 2a."""

import random
import struct


import pytest

from builders import flink_string_value
from corpus import streams_of_role

from flinkwire.protocols import netty

MAGIC = bytes.fromhex("badc0ffe")
RECEIVER = bytes.fromhex("00112233445566778899aabbccddeeff")
# Seen on the wire ([PCAP 2.3.0] and [PCAP 1.17.2]).
RECORD_BRAVO = (bytes.fromhex("00000024" "00" "8000000000000000" "1b")
                + b"bravo password=hunter2 two")
RECORD_ALPHA = bytes.fromhex("0000001d" "01" "1c") + b"alpha SECRET-TOKEN-1234 one"


def frame(msg_id, body):
    return struct.pack(">I", 9 + len(body)) + MAGIC + bytes([msg_id]) + body


def buffer_response(payload, layout="38", data_type=1, compressed=0, receiver=RECEIVER,
                    partial=()):
    if layout == "30":
        header = receiver + struct.pack(">iiBBi", 3, 0, data_type, compressed, len(payload))
    elif layout == "34":
        header = receiver + struct.pack(">iiiBBi", 1, 3, 0, data_type, compressed, len(payload))
    else:
        header = (receiver + struct.pack(">iiiiBBi", 1, len(partial), 3, 0, data_type,
                                         compressed, len(payload))
                  + b"".join(struct.pack(">i", p) for p in partial))
    return frame(0, header + payload)


def partition_request(length):
    return frame(2, bytes(range(20)) + b"\x00" * (length - 9 - 20 - 20) + RECEIVER
                 + struct.pack(">i", 2))


def test_record_bytes_are_the_documented_ones():
    assert len(RECORD_BRAVO) == 4 + 0x24
    assert len(RECORD_ALPHA) == 4 + 0x1D


@pytest.mark.parametrize("length,hint", [(0x45, "1.15"), (0x5D, "1.16-1.18"), (0x61, "1.19+")])
def test_partition_request_length_gives_the_version(length, hint):
    found = netty.detect(partition_request(length), b"")
    assert found["role"] == "data"
    assert found["flink_version_hint"] == hint
    assert found["first_message"] == "PartitionRequest"
    message = netty.decode(partition_request(length), b"")["messages"][0]
    assert message["name"] == "PartitionRequest" and message["length"] == length
    assert message["receiver_id"] == RECEIVER.hex() and message["credit"] == 2


@pytest.mark.parametrize("layout,event_frame,hint", [
    ("30", 43, "1.15-1.18"), ("34", 47, "1.19-1.20"), ("38", 51, "2.0+")])
def test_buffer_header_layout_is_found_from_the_frames(layout, event_frame, hint):
    event = buffer_response(b"\x00\x00\x00\x05", layout=layout, data_type=6)
    assert struct.unpack(">I", event[:4])[0] == event_frame  # the documented frame lengths
    s2c = buffer_response(RECORD_ALPHA, layout=layout) + event
    decoded = netty.decode(b"", s2c)
    assert decoded["buffer_layout"] == layout
    assert decoded["messages"][1]["event"] == "END_OF_OUTPUT_CHANNEL_STATE"
    assert decoded["records"][0]["fields"] == ["alpha SECRET-TOKEN-1234 one"]
    assert netty.detect(b"", s2c)["flink_version_hint"] == hint


def test_1_19_partition_request_narrowed_by_header():
    found = netty.detect(partition_request(0x61), buffer_response(RECORD_ALPHA, layout="34"))
    assert found["flink_version_hint"] == "1.19-1.20"


def test_records_with_and_without_timestamp():
    decoded = netty.decode(b"", buffer_response(RECORD_BRAVO + RECORD_ALPHA))
    bravo, alpha = decoded["records"]
    assert bravo == {"direction": "s2c", "offset": 47, "length": 36,
                     "receiver_id": RECEIVER.hex(), "tag": 0, "kind": "record",
                     "timestamp": -(2 ** 63), "fields": ["bravo password=hunter2 two"]}
    assert alpha["tag"] == 1 and alpha["timestamp"] is None
    assert alpha["offset"] == 47 + len(RECORD_BRAVO)
    assert decoded["anomalies"] == []


def test_record_spanning_buffers_of_one_channel():
    other = bytes(16)
    s2c = (buffer_response(RECORD_BRAVO[:13])
           + buffer_response(RECORD_ALPHA, receiver=other)
           + buffer_response(RECORD_BRAVO[13:]))
    records = netty.decode(b"", s2c)["records"]
    assert [r["fields"] for r in records] == [["alpha SECRET-TOKEN-1234 one"],
                                              ["bravo password=hunter2 two"]]
    assert records[1]["offset"] == 47  # where its length prefix was, in the first buffer


def test_compressed_buffer_is_not_split():
    decoded = netty.decode(b"", buffer_response(RECORD_BRAVO, compressed=1))
    assert decoded["records"] == []
    assert decoded["messages"][0]["compressed"] is True


def test_partial_buffer_sizes_in_2x_header():
    decoded = netty.decode(b"", buffer_response(RECORD_ALPHA, partial=(len(RECORD_ALPHA),)))
    assert decoded["messages"][0]["header_size"] == 42
    assert decoded["records"][0]["fields"] == ["alpha SECRET-TOKEN-1234 one"]


def test_watermark_record():
    watermark = struct.pack(">I", 9) + b"\x02" + bytes.fromhex("7fffffffffffffff")
    record = netty.decode(b"", buffer_response(watermark))["records"][0]
    assert record["kind"] == "watermark" and record["timestamp"] == 2 ** 63 - 1


def test_flink_char_scheme():
    # "café": length 4+1, then c a f and é = U+00E9 written as E9 01.
    assert netty.read_string_value(b"\x05caf\xe9\x01") == ("café", 6)
    assert netty.read_string_value(b"\x00rest") == (None, 1)
    assert netty.read_string_value(b"\x05ab") is None          # cut short
    assert netty.read_string_value(b"\x03a\x01") is None       # control character
    assert netty.readable_strings(b"\x1b" + b"bravo password=hunter2 two" + b"\x00\x00\x00\x07"
                                  + b"\x06alpha") == ["bravo password=hunter2 two", "alpha"]


def test_string_value_bytes_at_the_length_and_char_boundaries():
    # Per Flink's StringValue.writeString: length + 1 as 7-bit groups, low first, high bit
    # set while more follow; each UTF-16 char the same way.
    assert netty.read_string_value(b"\x7f" + b"a" * 126) == ("a" * 126, 127)
    assert netty.read_string_value(b"\x80\x01" + b"b" * 127) == ("b" * 127, 129)
    assert netty.read_string_value(b"\x81\x01" + b"c" * 128) == ("c" * 128, 130)
    # 2-byte chars: U+00E4 is E4 01, U+20AC is AC 41; 3-byte: U+4E2D is AD 9C 01.
    assert netty.read_string_value(b"\x04\xe4\x01\xac\x41\xad\x9c\x01") == ("ä€中", 8)
    # U+1F600 is the pair D83D DE00, each 3 bytes: one character, two in the length.
    assert netty.read_string_value(b"\x03\xbd\xb0\x03\x80\xbc\x03") == ("\U0001f600", 7)
    assert netty.read_string_value(b"\x02\xbd\xb0\x03") is None        # lone high surrogate
    assert netty.read_string_value(b"\x02\x80\xbc\x03") is None        # lone low surrogate
    assert netty.read_string_value(b"\x00") == (None, 1)                  # null
    assert netty.read_string_value(b"") is None
    assert netty.read_string_value(b"\x80") is None                       # length cut short
    assert netty.read_string_value(b"\x80\x01" + b"b" * 126) is None      # chars cut short
    assert netty.read_string_value(b"\x03\xe4") is None                   # char cut short
    assert netty.read_string_value(b"\x02\xff\xff\x07") is None         # char past 0xFFFF
    assert netty.read_string_value(b"\x02\x80\x80\x80\x01") is None     # char of 4 bytes
    assert netty.read_string_value(b"\x80" * 6 + b"\x01") is None         # overlong length
    # A hostile length (2^31) is refused before any char is read.
    assert netty.read_string_value(b"\x80\x80\x80\x80\x08" + b"a" * 64) is None


def test_long_and_non_ascii_record_fields():
    strings = ["password", "K" + "x7Qp" * 40, "Pässwort-Geheim-42", "中文-secret-\U0001f600"]
    value = b"".join(map(flink_string_value, strings))
    record = struct.pack(">I", len(value) + 1) + b"\x01" + value
    assert netty.decode(b"", buffer_response(record))["records"][0]["fields"] == strings


def test_control_messages():
    c2s = (frame(6, struct.pack(">i", 5) + RECEIVER) + frame(5, b"")
           + frame(4, RECEIVER) + frame(11, struct.pack(">ii", 1, 2) + RECEIVER))
    messages = netty.decode(c2s, b"")["messages"]
    assert [(m["name"], m["length"]) for m in messages] == [
        ("AddCredit", 29), ("CloseRequest", 9), ("CancelPartitionRequest", 25),
        ("SegmentId", 33)]
    assert messages[0]["credit"] == 5 and messages[3]["segment"] == 2


def test_truncated_and_garbage_streams_are_anomalies():
    good = buffer_response(RECORD_BRAVO)
    decoded = netty.decode(b"\x00\x00\x00\x09junk!", good[:60])
    kinds = sorted(a["kind"] for a in decoded["anomalies"])
    assert "bad-frame" in kinds and "truncated-frame" in kinds
    assert netty.detect(b"\x00\x00\x00\x09junk!", b"") is None


def test_resynchronizes_on_next_magic():
    s2c = b"\x01\x02\x03garbage" + buffer_response(RECORD_ALPHA)
    decoded = netty.decode(b"", s2c)
    assert decoded["records"][0]["fields"] == ["alpha SECRET-TOKEN-1234 one"]
    assert decoded["anomalies"][0]["kind"] == "bad-frame"


def test_huge_record_length_drops_the_channel():
    bogus = struct.pack(">I", 0x7FFFFFFF) + b"abcd"
    decoded = netty.decode(b"", buffer_response(bogus))
    assert decoded["records"] == []
    assert decoded["anomalies"][0]["kind"] == "bad-record-length"


@pytest.mark.parametrize("seed", range(30))
def test_garbage_never_raises(seed):
    rng = random.Random(seed)
    base = partition_request(0x61) + buffer_response(RECORD_BRAVO + RECORD_ALPHA)
    mutated = bytearray(base)
    for _ in range(rng.randint(1, 12)):
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    data = bytes(mutated[:rng.randint(0, len(mutated))])
    netty.detect(data, data)
    decoded = netty.decode(data, data, version_hint=rng.choice([None, "1.15", "2.3", "x"]))
    assert len(decoded["records"]) <= 4


# -- the real lab captures (captures/README.md), when present ----------------------------

@pytest.mark.parametrize("name,layout,hint", [
    ("s1-plaintext", "38", "2.0+"), ("s6-plaintext-flink-1.20", "34", "1.19-1.20")])
def test_lab_records_are_readable(name, layout, hint):
    fields = []
    for c2s, s2c in streams_of_role(name, "data"):
        found = netty.detect(c2s, s2c)
        assert found["role"] == "data" and found["flink_version_hint"] == hint
        decoded = netty.decode(c2s, s2c, version_hint=found["flink_version_hint"])
        assert decoded["buffer_layout"] == layout
        assert not [a for a in decoded["anomalies"] if a["kind"] != "unfinished-record"]
        fields += [f for r in decoded["records"] for f in r["fields"]]
    assert any("card=4111111111111111" in f and "password=hunter2-fake" in f for f in fields)
    assert all(f.startswith("acct=") for f in fields)
