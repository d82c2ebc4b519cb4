"""Many files on a local Dask cluster (loopback only) analyse as the whole capture does."""

from pathlib import Path

import pytest

from corpus import split_pcap

import flinkwire

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'flinkwire[dask]')")

ROOT = Path(__file__).resolve().parents[2]
S1 = ROOT / "captures" / "s1-plaintext.pcap"
FLOW_FACTS = ["client_ip", "client_port", "server_ip", "server_port", "role", "verdict",
              "bytes_c2s", "bytes_s2c", "packets_c2s", "packets_s2c", "closed"]


def facts(analysis):
    return sorted(map(tuple, analysis.flows[FLOW_FACTS].values.tolist()))


def test_rotated_files_on_a_local_dask_cluster(tmp_path):
    paths = [tmp_path / f"s1-{n}.pcap" for n in range(3)]
    split_pcap(S1, paths)
    whole = flinkwire.analyze(S1, reveal=True)

    cluster = distributed.LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1,
                                       processes=True, dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            assert all(address.startswith("tcp://127.0.0.1:")
                       for address in [client.scheduler.address,
                                       *client.scheduler_info()["workers"]])
            merged = flinkwire.analyze(paths, reveal=True, executor=client)
    finally:
        cluster.close()

    assert len(merged.stats.files) == 3
    assert facts(merged) == facts(whole)
    assert sorted(merged.flows["flow_id"]) == sorted(whole.flows["flow_id"])
    assert sorted(merged.findings["value"]) == sorted(whole.findings["value"])
    assert sorted(merged.snippets["text"]) == sorted(whole.snippets["text"])
