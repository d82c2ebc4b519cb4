"""Limits: hitting one is an anomaly row, never silent and never fatal, and memory
follows the limits, not the capture."""

import struct
import tracemalloc

import pytest

import flinkwire
from flinkwire.reading import open_capture
from flinkwire.tcp.build import build_flows
from flinkwire.tcp.flows import HEAD_GUARANTEE
from synth import PCAP_HEADER, one_big_flow, pcap, syn_scan, tcp_frame


def test_retention_limit_is_an_anomaly_and_counting_goes_on(tmp_path):
    payload = bytes(range(256)) * 40                       # 10240 bytes client to server
    path = tmp_path / "big-flow.pcap"
    path.write_bytes(one_big_flow(payload))
    analysis = flinkwire.analyze(path, limits=flinkwire.Limits(retain_per_direction=1000))
    (flow,) = analysis.flows.itertuples(index=False)
    assert flow.bytes_c2s == len(payload)                  # counted past the limit
    limit = analysis.anomalies[analysis.anomalies["kind"] == "limit"]
    assert list(limit["flow_id"]) == [flow.flow_id]
    assert list(limit["offset"]) == [1000] and list(limit["source"]) == ["limits"]


def test_within_the_limit_no_limit_row(tmp_path):
    path = tmp_path / "small-flow.pcap"
    path.write_bytes(one_big_flow(b"x" * 900))
    analysis = flinkwire.analyze(path, limits=flinkwire.Limits(retain_per_direction=1000))
    assert "limit" not in set(analysis.anomalies["kind"])


def test_total_retention_limit_is_reported_per_flow(tmp_path):
    """The shared budget (retain_total) runs out in the first flow; the second still
    keeps its guaranteed head (tcp.flows.HEAD_GUARANTEE), and both say where they were cut."""
    path = tmp_path / "two-flows.pcap"
    frames = []
    for port in (40000, 40001):
        for i in range(20):
            frames.append(tcp_frame(b"\xc0\x00\x02\x01", port, b"\xc0\x00\x02\x02", 9999,
                                    1 + 1000 * i, 0x18, bytes([65 + i]) * 1000))
    path.write_bytes(pcap(frames))
    analysis = flinkwire.analyze(path, limits=flinkwire.Limits(retain_total=10_000))
    assert analysis.flows["bytes_c2s"].tolist() == [20_000, 20_000]
    limit = analysis.anomalies[analysis.anomalies["kind"] == "limit"]
    assert sorted(limit["flow_id"]) == sorted(analysis.flows["flow_id"])
    assert sorted(limit["offset"]) == [HEAD_GUARANTEE, 10_000]


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("syn-scan")
    paths = {}
    for flows in (5_000, 10_000, 25_000, 50_000):
        paths[flows] = folder / f"scan-{flows}.pcap"
        paths[flows].write_bytes(syn_scan(flows))
    return paths


def _peak(run):
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_syn_scan_evicts_and_counts(scans):
    limits = flinkwire.Limits(max_flows=1000)
    analysis = flinkwire.analyze(scans[50_000], limits=limits)
    # Past the first 10,000, unanswered SYNs are counted per server, not kept as rows.
    counted = analysis.anomalies[analysis.anomalies["kind"] == "unanswered-syn"]
    assert len(analysis.flows) == 10_000
    assert len(analysis.flows) + int(counted["length"].sum()) == 50_000
    (limit,) = analysis.anomalies[analysis.anomalies["kind"] == "limit"].itertuples()
    # A full table sheds its least recent tenth at once, so up to a tenth more go early.
    assert 49_000 <= limit.length <= 49_100 and limit.source == "limits"
    assert analysis.stats.evicted == limit.length


@pytest.mark.slow
def test_syn_scan_flow_table_memory_is_bounded(scans):
    """The flow table itself holds at most max_flows flows: its peak does not grow."""
    limits = flinkwire.Limits(max_flows=1000)
    peaks = {}
    for flows in (10_000, 50_000):
        path, handed = scans[flows], []
        _, peaks[flows] = _peak(lambda: build_flows([str(path)], lambda f: handed.append(1),
                                                    limits))
        assert len(handed) == flows
    growth = (peaks[50_000] - peaks[10_000]) / 40_000
    assert growth < 200, f"{growth:.0f} bytes per flow in the flow table"


@pytest.mark.slow
def test_syn_scan_analysis_memory_per_flow_is_small(scans):
    """With the result rows kept, memory grows by the rows only (loosely < 3 KB per flow)."""
    limits = flinkwire.Limits(max_flows=1000)
    peaks = {}
    for flows in (5_000, 25_000):
        _, peaks[flows] = _peak(lambda: flinkwire.analyze(scans[flows], limits=limits))
    growth = (peaks[25_000] - peaks[5_000]) / 20_000
    assert growth < 3 * 1024, f"{growth:.0f} bytes per flow"


# -- length fields that promise more than the file holds -------------------------------

def _records(*frames):
    return b"".join(struct.pack("<IIII", 1_767_225_600, i, len(f), len(f)) + f
                    for i, f in enumerate(frames))


FRAME = tcp_frame(b"\xc0\x00\x02\x01", 40000, b"\xc0\x00\x02\x02", 8081, 1, 0x18, b"hello")


@pytest.mark.parametrize("tail, kind", [
    (struct.pack("<IIII", 1_767_225_600, 9, 5000, 5000) + b"\x00" * 100,
     "truncated_record_data"),
    (struct.pack("<IIII", 1_767_225_600, 9, 0x7FFFFFFF, 60) + b"\x00" * 100,
     "bad_record_length"),
    (struct.pack("<II", 1_767_225_600, 9), "truncated_record_header"),
])
def test_pcap_length_past_the_end(tmp_path, tail, kind):
    path = tmp_path / "promise.pcap"
    good = PCAP_HEADER + _records(FRAME, FRAME)
    path.write_bytes(good + tail)
    with open_capture(path) as capture:
        assert len(list(capture)) == 2
        (anomaly,) = capture.info.anomalies
    assert anomaly["kind"] == kind and anomaly["file_offset"] == len(good)
    analysis = flinkwire.analyze(path)
    rows = analysis.anomalies[analysis.anomalies["source"] == "reading"]
    assert list(rows["kind"]) == [kind] and list(rows["offset"]) == [len(good)]
    assert len(analysis.flows) == 1


def _block(btype, body):
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def test_pcapng_block_length_past_the_end(tmp_path):
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(1, struct.pack("<HHI", 1, 0, 262144))
    epb = _block(6, struct.pack("<IIIII", 0, 0, 1, len(FRAME), len(FRAME)) + FRAME)
    good = shb + idb + epb
    liar = struct.pack("<II", 6, 1 << 20) + b"\x00" * 64       # claims 1 MiB, holds 72 bytes
    path = tmp_path / "promise.pcapng"
    path.write_bytes(good + liar)
    analysis = flinkwire.analyze(path)
    rows = analysis.anomalies[analysis.anomalies["source"] == "reading"]
    assert list(rows["kind"]) == ["truncated_record_data"]
    assert list(rows["offset"]) == [len(good)]
    assert len(analysis.flows) == 1


def test_epb_captured_length_past_its_block(tmp_path):
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(1, struct.pack("<HHI", 1, 0, 262144))
    lying = _block(6, struct.pack("<IIIII", 0, 0, 1, 4000, 4000) + FRAME)
    epb = _block(6, struct.pack("<IIIII", 0, 0, 2, len(FRAME), len(FRAME)) + FRAME)
    path = tmp_path / "epb.pcapng"
    path.write_bytes(shb + idb + lying + epb)
    with open_capture(path) as capture:
        assert len(list(capture)) == 1                      # the block after it is read
        (anomaly,) = capture.info.anomalies
    assert anomaly["kind"] == "bad_record_length"
    assert anomaly["file_offset"] == len(shb + idb)
