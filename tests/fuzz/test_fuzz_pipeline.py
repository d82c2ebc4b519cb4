"""Fuzz the whole pipeline: mutated captures through `flinkwire.analyze` and its faces.

This is where the layers meet (a damaged frame reaching a decoder through
reassembly), so a bug any guard swallows is a failure here: no `internal-error`
or `decoder-error` anomaly, nothing logged with a traceback, and the terminal
summary and JSON view render.
"""

import json

import pytest
from hypothesis import given

import flinkwire
from fuzzing import budget, capture_files, mutated, no_swallowed_errors, read_seeds, target

SEEDS = read_seeds(capture_files(small_only=48 * 1024))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-pipeline") / "input.pcap"


@budget(0.25)
@given(data=mutated(SEEDS, max_mutations=6))
@target("pipeline: analyze")
def test_analyze(scratch, data):
    scratch.write_bytes(data)
    with no_swallowed_errors():
        try:
            analysis = flinkwire.analyze(scratch)
        except flinkwire.CaptureError:
            return
        kinds = set(analysis.anomalies["kind"])
        assert not kinds & {"internal-error", "decoder-error"}, analysis.anomalies
        analysis.summary()
        json.dumps(analysis.to_dict(), default=str)
