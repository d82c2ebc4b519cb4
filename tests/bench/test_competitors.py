"""The benchmark's contestants count what the generator says it wrote.

The runner trusts each contestant's answer only as a check; these tests hold the two
pure-Python contestants (the floor loop and dpkt, where installed) to the generator's
manifest on a small capture, so a contestant that skips packets cannot look fast.
"""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "small.pcap"
    manifest = load("generate").generate(path, 400_000, "pcap", seed=3, concurrent=20)
    return path, manifest


def test_floor_loop_agrees_with_the_manifest(capture):
    path, manifest = capture
    answer = load("competitors").run_pyloop(str(path))
    assert answer == {"packets": manifest["packets"], "flows": manifest["flows"],
                      "tls_flows": manifest["tls_flows"]}


def test_floor_loop_and_dpkt_agree(capture):
    pytest.importorskip("dpkt")
    path, _ = capture
    competitors = load("competitors")
    assert competitors.run_pyloop(str(path)) == competitors.run_dpkt(str(path))


def test_floor_loop_refuses_pcapng(tmp_path):
    path = tmp_path / "small.pcapng"
    load("generate").generate(path, 100_000, "pcapng", seed=3, concurrent=5)
    with pytest.raises(SystemExit, match="little-endian microsecond pcap only"):
        load("competitors").run_pyloop(str(path))
