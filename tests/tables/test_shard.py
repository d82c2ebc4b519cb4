"""A capture read by several processes, each keeping a share of the flows, gives the
tables one process gives: the same rows in the same order, bounds included."""

import importlib.util
import multiprocessing
import os
import pickle
from pathlib import Path

import pandas as pd
import pytest

import flinkwire
from flinkwire.errors import CaptureError, WorkerError
from flinkwire.tables import shard
from flinkwire.tcp.flows import Limits, ShardTable

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("flows", "snippets", "findings", "anomalies", "tls", "http", "rpc", "records",
          "blobs", "hosts", "channels")


def assert_same_tables(one, sharded):
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(one, name).reset_index(drop=True),
                                      getattr(sharded, name).reset_index(drop=True),
                                      obj=name)
    assert one.verdict == sharded.verdict
    assert one.stats.packets == sharded.stats.packets
    assert one.stats.flows == sharded.stats.flows


@pytest.mark.parametrize("name", ["s1-plaintext", "s3-full-tls-mutual-rest",
                                  "s4-plaintext-random-ports", "s6-plaintext-flink-1.20"])
def test_lab_captures_give_the_same_tables(name):
    path = ROOT / "captures" / f"{name}.pcap"
    config = ROOT / "captures" / f"{name}.config.yaml"
    one = flinkwire.analyze(path, config=config, executor=False)
    sharded = flinkwire.analyze(path, config=config, shards=2)
    assert_same_tables(one, sharded)
    # Both shards had flows to examine: the split is real.
    shards = {ShardTable.shard_of(c, s, 2)
              for c, s in zip(one.flows.client_port, one.flows.server_port)}
    assert shards == {0, 1}


def load_generator():
    spec = importlib.util.spec_from_file_location("bench_generate",
                                                  ROOT / "benchmarks" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_full_tables_keep_the_rows_one_process_keeps(tmp_path):
    pytest.importorskip("cryptography")
    path = tmp_path / "mix.pcap"
    load_generator().generate(path, 3_000_000, "pcap", seed=5, concurrent=30)
    # Small bounds, so every bounded table fills part way through a flow and the
    # merge must cut where one process stops, and note it for the same flow.
    limits = Limits(max_rows_per_table=300)
    one = flinkwire.analyze(path, limits=limits, executor=False)
    sharded = flinkwire.analyze(path, limits=limits, shards=2)
    for name in ("snippets", "records", "rpc", "http"):
        assert len(getattr(one, name)) == 300, name
    assert len(one.findings) > 300  # 300 secrets, and the findings about channels
    full = one.anomalies[one.anomalies.detail.str.contains("table full")]
    assert len(full) >= 5
    assert_same_tables(one, sharded)


def test_one_process_is_the_default(monkeypatch):
    calls = []
    monkeypatch.setattr(shard, "analyze_sharded",
                        lambda *a, **k: calls.append(a))
    flinkwire.analyze(ROOT / "captures" / "s1-plaintext.pcap")
    assert calls == []


def test_three_shards_give_the_same_tables():
    path = ROOT / "captures" / "s1-plaintext.pcap"
    assert_same_tables(flinkwire.analyze(path), flinkwire.analyze(path, shards=3))


def test_unanswered_syns_past_the_bound_are_counted_in_one_process_order(monkeypatch, tmp_path):
    from builders import pcap_bytes, tcp_packet
    from flinkwire.tables import examine

    monkeypatch.setattr(examine, "MAX_UNANSWERED_ROWS", 20)
    monkeypatch.setattr(shard, "MAX_UNANSWERED_ROWS", 20)
    frames = []
    port = 20000
    # 30 SYNs to one server, each with a segment so far ahead of the stream that it is
    # ignored (an anomaly, no bytes), then 5 SYNs to each of two more servers that
    # land in different shards: the counts tie, and the first counted is listed first.
    servers = ["198.51.100.1"] * 30 + ["198.51.100.7"] * 5 + ["198.51.100.9"] * 5
    for server in servers:
        frames.append(tcp_packet("192.0.2.5", port, server, 6123, 1000, flags="S"))
        if server == "198.51.100.1":
            frames.append(tcp_packet("192.0.2.5", port, server, 6123, 1001 + (1 << 30) + 5000,
                                     flags="PA", payload=b"x" * 10))
        port += 1
    path = tmp_path / "syns.pcap"
    path.write_bytes(pcap_bytes([bytes(f) for f in frames]))
    one = flinkwire.analyze(path)
    sharded = flinkwire.analyze(path, shards=2)
    assert len(one.flows) == 20
    counted = one.anomalies[one.anomalies.kind == "unanswered-syn"]
    assert list(counted.length) == [10, 5, 5]
    assert_same_tables(one, sharded)


def _dies(path, number, *args, **kwargs):
    if number:
        os._exit(9)
    return real_analyze_shard(path, number, *args, **kwargs)


real_analyze_shard = shard.analyze_shard


def test_a_worker_that_dies_is_an_error_not_a_hang(monkeypatch):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("the dying worker is patched in through fork")
    monkeypatch.setattr(shard, "analyze_shard", _dies)
    with pytest.raises(WorkerError, match="exit code 9"):
        flinkwire.analyze(ROOT / "captures" / "s1-plaintext.pcap", shards=2)


def test_capture_errors_cross_processes_intact():
    error = pickle.loads(pickle.dumps(CaptureError("/x.pcap", "not a capture")))
    assert (type(error), error.path, error.reason, str(error)) == \
        (CaptureError, "/x.pcap", "not a capture", "/x.pcap: not a capture")


def test_cli_report_with_shards_prints_the_same_summary():
    import subprocess
    import sys

    def report(*extra):
        run = subprocess.run([sys.executable, "-m", "flinkwire.faces.cli", "report", "--quiet",
                              *extra, str(ROOT / "captures" / "s1-plaintext.pcap")],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert run.returncode == 0, run.stderr
        return run.stdout

    assert report("--shards", "2") == report()
