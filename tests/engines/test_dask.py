"""Many files on a local Dask cluster (loopback only) analyse as the whole capture does."""

import struct
from pathlib import Path

import pytest

import flinkwire

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'flinkwire[dask]')")

ROOT = Path(__file__).resolve().parents[2]
S1 = ROOT / "captures" / "s1-plaintext.pcap"
FLOW_FACTS = ["client_ip", "client_port", "server_ip", "server_port", "role", "verdict",
              "bytes_c2s", "bytes_s2c", "packets_c2s", "packets_s2c", "closed"]


def split_pcap(source: Path, targets: list[Path]) -> None:
    """Cut a classic pcap into files of equal packet counts, as a rotating capture."""
    data = source.read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    records, pos = [], 24
    while pos + 16 <= len(data):
        (incl_len,) = struct.unpack_from(order + "I", data, pos + 8)
        records.append(data[pos:pos + 16 + incl_len])
        pos += 16 + incl_len
    per_file = -(-len(records) // len(targets))
    for number, target in enumerate(targets):
        chunk = records[number * per_file:(number + 1) * per_file]
        target.write_bytes(data[:24] + b"".join(chunk))


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
