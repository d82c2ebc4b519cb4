"""`analyze` and `analyze_iter` refuse wrong arguments up front, naming them.

Found by the breaker (310): `analyze(p, reveal="False")` revealed every secret (a
non-empty string is true), and wrong types failed deep inside with Python's own words,
an open file adding "Exception ignored in Capture.__del__". Every capture is built here.
"""

import gc
import sys

import pytest

import flinkwire
from builders import conversation, pcap_bytes

SECRET = "hunter2-prod-secret"
BASIC = "YWRtaW46aHVudGVyMi1wcm9kLXNlY3JldA=="  # admin:hunter2-prod-secret


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    request = f"GET /jobs HTTP/1.1\r\nHost: jm\r\nAuthorization: Basic {BASIC}\r\n\r\n"
    path = tmp_path_factory.mktemp("args") / "c.pcap"
    path.write_bytes(pcap_bytes(conversation(c2s=[request.encode()])))
    return path


def _values(analysis) -> str:
    return " ".join(map(str, analysis.findings["value"]))


@pytest.mark.parametrize("reveal", ["False", "0", "no", "", 1, 0, None])
def test_reveal_must_be_a_bool(capture, reveal):
    """Found by the breaker (310): reveal="False" (from os.environ, a papermill raw
    parameter, a widget) showed every secret; only the bools are taken now."""
    with pytest.raises(TypeError, match="^reveal must be True or False"):
        flinkwire.analyze(capture, reveal=reveal)
    with pytest.raises(TypeError, match="^reveal must be True or False"):
        flinkwire.analyze_iter(capture, reveal=reveal)


def test_the_bools_still_redact_and_reveal(capture):
    assert SECRET not in _values(flinkwire.analyze(capture))
    assert SECRET not in _values(flinkwire.analyze(capture, reveal=False))
    revealed = flinkwire.analyze(capture, reveal=True)
    assert SECRET in _values(revealed) and revealed.reveal is True


def test_wrong_paths_are_refused_by_name(capture, monkeypatch):
    """Found by the breaker (310): bytes were iterated as ints, an empty list gave an
    empty analysis, an open file gave a TypeError and an AttributeError from
    `Capture.__del__` ("Exception ignored")."""
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(TypeError, match="^path_or_paths .* not bytes"):
        flinkwire.analyze(bytes(capture))
    with pytest.raises(ValueError, match="^path_or_paths is empty"):
        flinkwire.analyze([])
    with pytest.raises(TypeError, match="^path_or_paths .* not 42"):
        flinkwire.analyze([capture, 42])
    with pytest.raises(TypeError, match="^path_or_paths must be a str"):
        flinkwire.analyze(7)
    with open(capture, "rb") as handle:
        with pytest.raises(TypeError, match="^path_or_paths .* not an open file"):
            flinkwire.analyze(handle)
        with pytest.raises(TypeError, match="^path_or_paths .* not an open file"):
            flinkwire.analyze_iter(handle)
    gc.collect()
    assert unraisable == []


def test_other_wrong_arguments_are_refused_by_name(capture):
    with pytest.raises(TypeError, match="^config must be the path of a Flink config file"):
        flinkwire.analyze(capture, config={"rest.port": 8081})
    with pytest.raises(TypeError, match="^shards must be an int, not '2'"):
        flinkwire.analyze(capture, shards="2")
    with pytest.raises(ValueError, match="^shards must be 1 or more"):
        flinkwire.analyze(capture, shards=0)
    with pytest.raises(TypeError, match="^min_snippet must be an int"):
        flinkwire.analyze(capture, min_snippet=8.5)
    with pytest.raises(TypeError, match="^limits must be a flinkwire.Limits"):
        flinkwire.analyze(capture, limits={"max_flows": 10})


def test_a_generator_of_paths_is_read_once(capture):
    analysis = flinkwire.analyze(p for p in [capture])
    assert len(analysis.flows) == 1
