"""The reader against the shared cases: container facts and damage, exactly."""

import pytest

from corpus import case_names, load_case
from flinkwire.reading import open_capture


@pytest.mark.parametrize("name", case_names())
def test_file_facts_match_the_case(name):
    path, expect = load_case(name)
    want = expect["file"]
    with open_capture(path) as capture:
        stamps = [ts for ts, *_ in capture]
        info = capture.info
    assert info.format == want["format"]
    assert info.byte_order == want["byte_order"]
    assert info.timestamp_resolution == want["timestamp_resolution"]
    assert info.linktypes == want["linktypes"]
    assert info.snaplen == want["snaplen"]
    assert info.records_total == want["records_total"]
    assert info.records_complete == want["records_complete"]
    assert info.partial_records == want.get("partial_records", 0)
    assert len(stamps) == want["records_complete"]
    got = [{k: v for k, v in a.items() if k != "detail"} for a in info.anomalies]
    for a in got:
        a["type"] = a.pop("kind")
    assert got == want["anomalies"]
    if "packet_timestamps_ns" in want:
        assert [str(ts) for ts in stamps] == want["packet_timestamps_ns"]
    if "first_ts_ns" in want:
        assert str(stamps[0]) == want["first_ts_ns"]
