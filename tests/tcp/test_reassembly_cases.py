"""Flow building and reassembly against the shared cases' exact answers."""

import pytest

from corpus import case_names, collect_streams, load_case, sha256


@pytest.mark.parametrize("name", case_names())
def test_flows_and_streams_match_the_case(name):
    path, expect = load_case(name)
    _, flows = collect_streams([path])
    assert len(flows) == len(expect["tcp_flows"])
    for got, want in zip(flows, expect["tcp_flows"]):
        assert got["frames"] == want["frames"]
        assert got["payload_bytes"] == want["payload_bytes"]
        assert got["gap_bytes"] == want["gap_bytes"]
        if want.get("handshake_seen"):
            assert (got["client"], got["server"]) == (want["client"], want["server"])
        # Without a handshake the builder does not guess; the analysis orients the
        # flow by content, which tests/tables checks.
        assert {sha256(got["c2s"]), sha256(got["s2c"])} == {
            want["stream_sha256"]["c2s"], want["stream_sha256"]["s2c"]}
        if "duration_ns" in want:
            assert got["last_ts"] - got["first_ts"] == want["duration_ns"]
