"""analyze_iter: partial analyses while reading, and a last one equal to analyze()'s."""

from pathlib import Path

import pytest

import flinkwire

ROOT = Path(__file__).resolve().parents[2]
S1 = ROOT / "captures" / "s1-plaintext.pcap"
S2 = ROOT / "captures" / "s2-internal-tls.pcap"
TABLES = ("flows", "findings", "snippets", "anomalies", "tls", "http", "rpc", "records",
          "blobs", "hosts", "channels")


@pytest.mark.parametrize("capture", [S1, S2], ids=lambda p: p.stem)
def test_partials_come_first_and_the_last_equals_analyze(capture):
    steps = list(flinkwire.analyze_iter(capture, reveal=True, every_packets=300))
    *partials, final = steps
    assert len(partials) >= 2
    assert all(a.partial for a in partials) and final.partial is False
    whole = flinkwire.analyze(capture, reveal=True)
    for name in TABLES:
        assert getattr(final, name).equals(getattr(whole, name)), name
    assert final.flink_version == whole.flink_version

    read = [a.packets_read for a in steps]
    assert read == sorted(read) and read[-1] == whole.stats.packets
    # flows only appear and grow; a partial already names the channels it has seen
    assert [len(a.flows) for a in steps] == sorted(len(a.flows) for a in steps)
    assert set(partials[-1].flows["flow_id"]) <= set(final.flows["flow_id"])
    assert partials[0].flows["role"].ne("unknown").any()
    for a in partials:
        assert a.live_flows <= set(a.flows["flow_id"])


def test_live_flows_count_only_so_far():
    steps = list(flinkwire.analyze_iter(S1, every_packets=500))
    first, final = steps[0], steps[-1]
    assert first.live_flows and not final.live_flows
    bytes_then = first.flows.set_index("flow_id")[["bytes_c2s", "bytes_s2c"]].sum(axis=1)
    bytes_end = final.flows.set_index("flow_id")[["bytes_c2s", "bytes_s2c"]].sum(axis=1)
    common = bytes_then.index.intersection(bytes_end.index)
    assert len(common) and (bytes_then[common] <= bytes_end[common]).all()
    assert bytes_then.sum() < bytes_end.sum()


def test_snapshots_by_capture_time():
    whole = flinkwire.analyze(S1)
    span = (whole.flows["last_ts"].max() - whole.flows["first_ts"].min()) / 1e9
    steps = list(flinkwire.analyze_iter(S1, every_packets=None, every_seconds=span / 4))
    assert len(steps) >= 3 and steps[-1].flows.equals(whole.flows)


def test_refusals_come_before_the_first_item(tmp_path):
    bad = tmp_path / "empty.pcap"
    bad.write_bytes(b"")
    with pytest.raises(flinkwire.CaptureError):
        flinkwire.analyze_iter(bad)
    with pytest.raises(ValueError):
        flinkwire.analyze_iter(S1, every_packets=0)
