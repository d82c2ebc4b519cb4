"""A capture read by several processes, each keeping a share of the flows, gives the
tables one process gives: the same rows in the same order, bounds included."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

import flinkwire
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


@pytest.fixture
def always_shard(monkeypatch):
    monkeypatch.setattr(shard, "MIN_SHARD_BYTES", 0)


@pytest.mark.parametrize("name", ["s1-plaintext", "s3-full-tls-mutual-rest",
                                  "s4-plaintext-random-ports", "s6-plaintext-flink-1.20"])
def test_lab_captures_give_the_same_tables(always_shard, name):
    path = ROOT / "captures" / f"{name}.pcap"
    config = ROOT / "captures" / f"{name}.config.yaml"
    one = flinkwire.analyze(path, config=config, executor=False)
    sharded = flinkwire.analyze(path, config=config)
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


def test_full_tables_keep_the_rows_one_process_keeps(always_shard, tmp_path):
    pytest.importorskip("cryptography")
    path = tmp_path / "mix.pcap"
    load_generator().generate(path, 3_000_000, "pcap", seed=5, concurrent=30)
    # Small bounds, so every bounded table fills part way through a flow and the
    # merge must cut where one process stops, and note it for the same flow.
    limits = Limits(max_rows_per_table=300)
    one = flinkwire.analyze(path, limits=limits, executor=False)
    sharded = flinkwire.analyze(path, limits=limits)
    for name in ("snippets", "records", "rpc", "http"):
        assert len(getattr(one, name)) == 300, name
    assert len(one.findings) > 300  # 300 secrets, and the findings about channels
    full = one.anomalies[one.anomalies.detail.str.contains("table full")]
    assert len(full) >= 5
    assert_same_tables(one, sharded)


def test_small_captures_are_read_in_one_process(monkeypatch):
    calls = []
    monkeypatch.setattr("flinkwire.tables.analysis.analyze_sharded",
                        lambda *a, **k: calls.append(a))
    flinkwire.analyze(ROOT / "captures" / "s1-plaintext.pcap")
    assert calls == []
    assert shard.wants_shards([str(ROOT / "captures" / "s1-plaintext.pcap")], None) is False
