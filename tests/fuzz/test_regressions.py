"""Every crash, hang or blow-up the fuzzers (and the robustness tests) found, minimised.

Each test names the finding, the fix, and holds the smallest input that showed it.
"""

import gzip
import struct

from flinkwire.leakage.redact import redact_text
from flinkwire.reading import open_capture
from flinkwire.reading.capture import MAX_ANOMALIES_PER_KIND

FRAME = bytes.fromhex("020000000002020000000001" "0800" "45000028000140004006"
                      "0000c0000201c0000202" "9c401f9100000001000000005018ffff00000000")


def _pcap(count):
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    return header + b"".join(struct.pack("<IIII", 1, i, len(FRAME), len(FRAME)) + FRAME
                             for i in range(count))


def test_cut_gzip_keeps_what_was_inflated(tmp_path):
    """Found: a .pcap.gz cut short gave `CaptureError: is empty` (or lost up to 1 MiB):
    GzipFile.read raised at the cut and dropped the bytes of that read. Fixed in
    reading/capture.py `_gunzip`: inflate with zlib, writing everything before the cut."""
    raw = _pcap(200)
    packed = gzip.compress(raw, compresslevel=1)
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(packed[:len(packed) * 3 // 4])
    with open_capture(path) as capture:
        records = len(list(capture))
        kinds = [a["kind"] for a in capture.info.anomalies]
    assert records > 100
    assert kinds[0] == "truncated-gzip"


def test_gzip_members_and_zero_padding(tmp_path):
    """The zlib inflater must keep what GzipFile did: several members, trailing zeros."""
    raw = _pcap(30)
    path = tmp_path / "members.pcap.gz"
    path.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]) + b"\x00" * 8)
    with open_capture(path) as capture:
        assert len(list(capture)) == 30
        assert capture.info.anomalies == []


def test_kept_mask_characters_do_not_rebuild_a_repeating_value():
    """Found by the redact_text target (long run): a span over a repeating value
    ("rsrs…rs", 58 characters) inside a longer run of the same pattern came out as
    "r" + "rsr…srs" + "rsrs…": the three characters the mask keeps joined the unmasked
    rest of the run into the whole value again. Fixed in leakage/redact.py
    `redact_text`: when the assembled text still holds a value, every span is masked
    without kept characters."""
    text = "r" + "rs" * 57 + "\x00:org.apache.flink.runtime.clusterframework.types.ResourceID"
    value = text[1:59]
    shown = redact_text(text, [(1, 59)])
    assert value not in shown
    assert shown.endswith("ResourceID")


def _block(btype, body):
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def test_per_block_damage_is_counted_not_listed(tmp_path):
    """Found by the pcapng target (long run): a mutated merge capture whose interface
    block was destroyed gave one anomaly row (and one log warning) per packet, 144 for
    a 7 KB file: a damaged gigabyte would hold millions. Fixed in reading/capture.py
    `CaptureInfo.anomaly`: after MAX_ANOMALIES_PER_KIND rows of a kind the rest are
    counted and summed up in one closing row."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    broken_idb = _block(0x0BAD0001, struct.pack("<HHI", 1, 0, 262144))
    epbs = b"".join(_block(6, struct.pack("<IIIII", 0, 0, i, len(FRAME), len(FRAME)) + FRAME)
                    for i in range(100))
    path = tmp_path / "no-interface.pcapng"
    path.write_bytes(shb + broken_idb + epbs)
    with open_capture(path) as capture:
        assert list(capture) == []
        rows = capture.info.anomalies
    assert len(rows) == MAX_ANOMALIES_PER_KIND + 1
    assert {row["kind"] for row in rows} == {"unknown_interface"}
    assert rows[-1]["unlisted"] == 100 - MAX_ANOMALIES_PER_KIND
    assert rows[-1]["file_offset"] == len(shb + broken_idb) + MAX_ANOMALIES_PER_KIND * len(
        _block(6, struct.pack("<IIIII", 0, 0, 0, len(FRAME), len(FRAME)) + FRAME))
