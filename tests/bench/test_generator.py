"""The benchmark's capture generator is deterministic and writes what it says it wrote."""

import hashlib
import importlib.util
import struct
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

GENERATE = Path(__file__).resolve().parents[2] / "benchmarks" / "generate.py"


def load_generator():
    spec = importlib.util.spec_from_file_location("bench_generate", GENERATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def count_pcap_records(data: bytes) -> int:
    offset, count = 24, 0
    while offset < len(data):
        caplen = struct.unpack_from("<I", data, offset + 8)[0]
        offset += 16 + caplen
        count += 1
    assert offset == len(data)
    return count


def count_pcapng_packets(data: bytes) -> int:
    offset, count = 0, 0
    while offset < len(data):
        kind, length = struct.unpack_from("<II", data, offset)
        count += kind == 6
        offset += length
    assert offset == len(data)
    return count


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_same_seed_same_bytes(tmp_path, fmt):
    generator = load_generator()
    first = generator.generate(tmp_path / f"a.{fmt}", 300_000, fmt, seed=7, concurrent=20)
    second = generator.generate(tmp_path / f"b.{fmt}", 300_000, fmt, seed=7, concurrent=20)
    other = generator.generate(tmp_path / f"c.{fmt}", 300_000, fmt, seed=8, concurrent=20)

    data = (tmp_path / f"a.{fmt}").read_bytes()
    assert first["sha256"] == second["sha256"] == hashlib.sha256(data).hexdigest()
    assert other["sha256"] != first["sha256"]
    assert first["bytes"] == len(data) >= 300_000

    counter = count_pcap_records if fmt == "pcap" else count_pcapng_packets
    assert counter(data) == first["packets"]
    assert 0 < first["tls_flows"] < first["flows"]
