"""Containers and link types that the shared cases do not cover, built here."""

import struct

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import CookedLinuxV2, Dot1AD, Dot1Q, Ether

from builders import conversation, gz, pcap_bytes, pcapng_bytes
from corpus import collect_streams
from flinkwire.errors import CaptureError
from flinkwire.reading import open_capture

REQUEST = b"GET /overview HTTP/1.1\r\nHost: jm\r\n\r\n"
RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'


def _streams(tmp_path, data, name="x.pcap"):
    path = tmp_path / name
    path.write_bytes(data)
    return collect_streams([path])


def test_pcapng_sections_and_interfaces_keep_their_own_resolution(tmp_path):
    frames = [bytes(p) for p in conversation(c2s=[REQUEST], s2c=[RESPONSE])]
    raw_ip = [bytes(p[IP]) for p in conversation(client=("192.0.2.9", 41000), c2s=[REQUEST])]
    data = pcapng_bytes([
        [(1, 6, [(1_767_225_600_000_000 + i, f) for i, f in enumerate(frames)])],
        [(101, 9, [(1_767_225_601_000_000_000 + i, f) for i, f in enumerate(raw_ip)]),
         (1, 3, [])],
    ])
    stats, flows = _streams(tmp_path, data, "multi.pcapng")
    info = stats.files[0]
    assert (info.format, info.sections, info.interfaces) == ("pcapng", 2, 3)
    assert info.linktypes == [1, 101]
    assert info.records_complete == len(frames) + len(raw_ip)
    assert len(flows) == 2
    assert flows[0]["first_ts"] == 1_767_225_600_000_000_000
    assert flows[1]["first_ts"] == 1_767_225_601_000_000_000
    assert flows[0]["c2s"] == REQUEST and flows[0]["s2c"] == RESPONSE
    assert flows[1]["c2s"] == REQUEST


@pytest.mark.parametrize("nanos,big", [(False, False), (True, False), (False, True),
                                       (True, True)])
def test_classic_pcap_in_both_orders_and_resolutions(tmp_path, nanos, big):
    frames = [bytes(p) for p in conversation(c2s=[REQUEST], s2c=[RESPONSE])]
    stats, flows = _streams(tmp_path, pcap_bytes(frames, nanos=nanos, big=big))
    info = stats.files[0]
    assert info.byte_order == ("big" if big else "little")
    assert info.timestamp_resolution == ("ns" if nanos else "us")
    step = 1_000_000  # 1 ms between frames either way
    assert flows[0]["last_ts"] - flows[0]["first_ts"] == step * (len(frames) - 1)
    assert flows[0]["c2s"] == REQUEST


def test_gzip_compressed_capture_is_read_and_its_temp_file_removed(tmp_path):
    import tempfile, os
    before = set(os.listdir(tempfile.gettempdir()))
    frames = [bytes(p) for p in conversation(c2s=[REQUEST], s2c=[RESPONSE])]
    stats, flows = _streams(tmp_path, gz(pcap_bytes(frames)), "x.pcap.gz")
    assert stats.files[0].compressed and flows[0]["s2c"] == RESPONSE
    after = set(os.listdir(tempfile.gettempdir()))
    assert not [n for n in after - before if n.startswith("flinkwire-")]


def test_qinq_sll2_and_null_link_types(tmp_path):
    base = conversation(c2s=[REQUEST], s2c=[RESPONSE])
    qinq = [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1AD(vlan=200) / Dot1Q(vlan=300) / p[IP] for p in base]
    _, flows = _streams(tmp_path, pcap_bytes([bytes(p) for p in qinq]), "qinq.pcap")
    assert flows[0]["c2s"] == REQUEST

    sll2 = [bytes(CookedLinuxV2(proto=0x0800) / p[IP]) for p in base]
    _, flows = _streams(tmp_path, pcap_bytes(sll2, linktype=276), "sll2.pcap")
    assert flows[0]["s2c"] == RESPONSE

    null = [struct.pack("<I", 2) + bytes(p[IP]) for p in base]
    _, flows = _streams(tmp_path, pcap_bytes(null, linktype=0), "null.pcap")
    assert flows[0]["c2s"] == REQUEST


@pytest.mark.parametrize("content,reason", [
    (b"", "is empty"),
    (b"this is a text file, not a capture\n", "is not a pcap or pcapng capture"),
])
def test_not_a_capture_raises_one_typed_error_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(CaptureError) as err:
        open_capture(path)
    assert str(path) in str(err.value) and reason in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CaptureError, match="no such file"):
        open_capture(tmp_path / "absent.pcap")
    with pytest.raises(CaptureError, match="directory"):
        open_capture(tmp_path)


def test_impossible_record_length_stops_the_walk_with_an_anomaly(tmp_path):
    frames = [bytes(p) for p in conversation(c2s=[REQUEST])]
    data = bytearray(pcap_bytes(frames))
    # Corrupt the third record's captured length.
    off = 24
    for _ in range(2):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        off += 16 + incl
    struct.pack_into("<I", data, off + 8, 0x7FFFFFFF)
    stats, flows = _streams(tmp_path, bytes(data))
    info = stats.files[0]
    assert info.records_complete == 2
    assert [a["kind"] for a in info.anomalies] == ["bad_record_length"]
    assert info.anomalies[0]["file_offset"] == off
