"""Several files that overlap: one connection captured at both of its ends, the same file
given twice. Found by the breaker (308): such flows were counted twice (bytes, findings
and channel counts doubled, silently), and the same file twice gave duplicate flow_ids."""

import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from scapy.utils import wrpcap

from builders import conversation

import flinkwire
from flinkwire.tables.merge import analyze_file, merge_parts

T0 = 1_767_225_600.0
CLIENT, SERVER = ("192.0.2.20", 40000), ("192.0.2.10", 8081)
REQUEST = (b"GET /jobs/overview?token=tok_live_abcdefghijklmnop HTTP/1.1\r\n"
           b"Host: 192.0.2.10\r\n\r\n")
RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{"password":"x1"}'
FACTS = ["client_ip", "client_port", "server_ip", "server_port", "role", "verdict",
         "bytes_c2s", "bytes_s2c", "packets_c2s", "packets_s2c", "gap_bytes_c2s",
         "gap_bytes_s2c", "handshake_seen", "closed"]


def write(path, packets, start, step=0.001):
    for n, packet in enumerate(packets):
        packet.time = start + n * step
    wrpcap(str(path), packets)
    return path


def rest_call(isn_c=1000, isn_s=5000):
    return conversation(CLIENT, SERVER, c2s=[REQUEST], s2c=[RESPONSE],
                        isn_c=isn_c, isn_s=isn_s)


@pytest.fixture
def client_node(tmp_path):
    return write(tmp_path / "client-node.pcap", rest_call(), T0)


@pytest.fixture
def one(client_node):
    return flinkwire.analyze(client_node, reveal=True)


def facts(analysis):
    return sorted(map(tuple, analysis.flows[FACTS].values.tolist()))


def rows_of(analysis, name, drop=("flow_id", "ts")):
    frame = getattr(analysis, name)
    columns = [c for c in frame.columns if c not in drop]
    return sorted(tuple(str(r[c]) for c in columns) for r in frame.to_dict("records"))


def assert_unique_ids(analysis):
    assert analysis.flows["flow_id"].is_unique
    joined = analysis.findings.merge(analysis.flows, on="flow_id")
    assert len(joined) == len(analysis.findings)


def overlap_rows(analysis):
    return analysis.anomalies[analysis.anomalies["kind"] == "seen-in-several-files"]


def assert_counted_once(merged, one, files=2):
    assert_unique_ids(merged)
    assert facts(merged) == facts(one)
    for name in ("findings", "snippets", "http"):
        assert rows_of(merged, name) == rows_of(one, name), name
    assert merged.channels["bytes"].sum() == one.channels["bytes"].sum()
    assert merged.channels["flows"].sum() == one.channels["flows"].sum() == 1
    (flow,) = merged.flows.itertuples()
    packets = int(one.flows["packets_c2s"].iloc[0] + one.flows["packets_s2c"].iloc[0])
    assert flow.capture_duplicates == packets * (files - 1)
    (seen,) = overlap_rows(merged).itertuples()
    assert (seen.flow_id, seen.length) == (flow.flow_id, files)


@pytest.mark.parametrize("executor", [None, "threads"])
@pytest.mark.parametrize("skew", [0.0001, 0.25, -0.25])
def test_both_ends_of_one_connection_are_one_flow(tmp_path, client_node, one, executor,
                                                   skew):
    server_node = write(tmp_path / "server-node.pcap", rest_call(), T0 + skew)
    if executor == "threads":
        with ThreadPoolExecutor(max_workers=2) as pool:
            merged = flinkwire.analyze([client_node, server_node], reveal=True,
                                       executor=pool)
    else:
        merged = flinkwire.analyze([client_node, server_node], reveal=True)
    assert_counted_once(merged, one)


def test_the_server_nodes_file_first_gives_the_same_counts(tmp_path, client_node, one):
    server_node = write(tmp_path / "server-node.pcap", rest_call(), T0 + 0.0001)
    merged = flinkwire.analyze([server_node, client_node], reveal=True)
    assert_counted_once(merged, one)


def test_three_nodes_that_saw_one_connection(tmp_path, client_node, one):
    server_node = write(tmp_path / "server-node.pcap", rest_call(), T0 + 0.0001)
    tap = write(tmp_path / "tap.pcap", rest_call(), T0 + 0.0002)
    merged = flinkwire.analyze([client_node, server_node, tap], reveal=True)
    assert_counted_once(merged, one, files=3)


def test_the_same_file_twice_is_read_once_with_a_warning(client_node, one, caplog,
                                                          tmp_path):
    link = tmp_path / "hard-link.pcap"
    os.link(client_node, link)
    for paths in ([client_node, client_node],
                  [client_node, tmp_path / ".." / tmp_path.name / "client-node.pcap"],
                  [client_node, link]):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="flinkwire"):
            merged = flinkwire.analyze(paths, reveal=True)
        assert merged.paths == [os.fspath(client_node)]
        assert len(merged.stats.files) == 1
        assert any("once" in r.getMessage() for r in caplog.records)
        assert_unique_ids(merged)
        assert facts(merged) == facts(one)
        assert rows_of(merged, "findings") == rows_of(one, "findings")


@pytest.mark.parametrize("executor", [None, False])
def test_a_copy_under_another_name_is_read_once(tmp_path, client_node, one, executor,
                                                caplog):
    copy = tmp_path / "copy.pcap"
    shutil.copy(client_node, copy)
    with caplog.at_level(logging.WARNING, logger="flinkwire"):
        merged = flinkwire.analyze([client_node, copy], reveal=True, executor=executor)
    assert any("same file" in r.getMessage() for r in caplog.records)
    assert len(merged.stats.files) == 1
    assert_unique_ids(merged)
    assert facts(merged) == facts(one)
    assert rows_of(merged, "findings") == rows_of(one, "findings")
    (*_, last) = flinkwire.analyze_iter([client_node, copy], reveal=True)
    assert_unique_ids(last)
    assert facts(last) == facts(one)


def test_parts_of_a_file_and_its_copy_merge_into_one_flow(tmp_path, client_node, one):
    """Parts that reach merge_parts with the same flow ids (a copy `distinct_paths`
    did not drop, or a caller's own parts) are one flow too."""
    copy = tmp_path / "copy.pcap"
    shutil.copy(client_node, copy)
    parts = [analyze_file(os.fspath(p), {}, True, None, 8) for p in (client_node, copy)]
    alone = analyze_file(os.fspath(client_node), {}, True, None, 8).rows
    rows, stats = merge_parts(parts)
    (flow,) = rows.flows
    assert stats.flows == 1
    assert (flow["bytes_c2s"], flow["bytes_s2c"]) == (one.flows["bytes_c2s"].iloc[0],
                                                      one.flows["bytes_s2c"].iloc[0])
    assert flow["capture_duplicates"] == flow["packets_c2s"] + flow["packets_s2c"]
    for name in ("findings", "snippets", "http"):
        assert len(getattr(rows, name)) == len(getattr(alone, name)) > 0, name
    assert [(a["kind"], a["length"]) for a in rows.anomalies] == [
        ("seen-in-several-files", 2)]


def test_a_rotated_capture_is_still_joined_as_before(tmp_path, one):
    packets = rest_call()
    first = write(tmp_path / "rot-0.pcap", packets[:4], T0)
    second = write(tmp_path / "rot-1.pcap", packets[4:], T0 + 0.004)
    merged = flinkwire.analyze([first, second], reveal=True)
    assert_unique_ids(merged)
    assert facts(merged) == facts(one)
    assert overlap_rows(merged).empty
    assert merged.flows["capture_duplicates"].sum() == 0


@pytest.mark.parametrize("isn", [(1000, 5000), (777_000, 991_000)])
def test_one_five_tuple_reused_later_stays_two_flows(tmp_path, client_node, one, isn):
    later = write(tmp_path / "later.pcap", rest_call(*isn), T0 + 5)
    merged = flinkwire.analyze([client_node, later], reveal=True)
    assert_unique_ids(merged)
    assert len(merged.flows) == 2
    assert merged.flows["bytes_c2s"].sum() == 2 * one.flows["bytes_c2s"].sum()
    assert overlap_rows(merged).empty


def test_another_connection_at_the_same_time_is_not_taken_for_a_copy(tmp_path,
                                                                      client_node):
    """Same 5-tuple and time but other sequence numbers (another network, NAT)."""
    other = write(tmp_path / "other.pcap", rest_call(777_000, 991_000), T0 + 0.0001)
    merged = flinkwire.analyze([client_node, other], reveal=True)
    assert_unique_ids(merged)
    assert len(merged.flows) == 2


# A TLS connection whose streams are long enough that another connection's ISNs fall
# inside them: the record and handshake headers are what the verdict reads.
CLIENT_HELLO = (bytes.fromhex("160301002f0100002b0303") + bytes(32)
                + b"\x00\x00\x02\x00\x2f\x01\x00")
SERVER_HELLO = bytes.fromhex("160303002a020000260303") + bytes(32) + b"\x00\x00\x2f\x00"
APPLICATION_DATA = b"\x17\x03\x03\x03\x00" + bytes(range(256)) * 3


def tls_call(isn_c=1000, isn_s=5000):
    return conversation(CLIENT, SERVER, c2s=[CLIENT_HELLO, APPLICATION_DATA],
                        s2c=[SERVER_HELLO, APPLICATION_DATA], isn_c=isn_c, isn_s=isn_s)


def test_another_connection_with_its_own_syn_inside_the_sequence_range_is_not_a_copy(
        tmp_path):
    """Found by the breaker (406): two connections on one 5-tuple, one file each, both
    with their SYN and different ISNs, the later one's ISNs inside the earlier one's
    streams (a quick port reuse, 0.1 s after the first closed), were merged as copies:
    the plaintext connection vanished into the TLS one and `check` passed. Both saw
    the SYN, so copies need equal ISNs."""
    packets = tls_call()
    node_a = write(tmp_path / "node-a.pcap", packets, T0)
    node_b = write(tmp_path / "node-b.pcap", rest_call(1500, 5500),
                   T0 + len(packets) * 0.001 + 0.1)
    merged = flinkwire.analyze([node_a, node_b], reveal=True)
    assert_unique_ids(merged)
    assert sorted(merged.flows["verdict"]) == ["plaintext", "tls"]
    assert len(merged.plaintext_flows(["rest"])) == 1
    assert overlap_rows(merged).empty
    assert merged.flows["capture_duplicates"].sum() == 0


def test_the_same_first_packet_time_with_other_isns_is_not_a_copy(tmp_path, client_node):
    """Found by the breaker (406): two connections whose first packets have the very same
    timestamp (so the same flow_id) were merged whatever their ISNs; the later one gets
    an id of its own."""
    other = write(tmp_path / "other.pcap", rest_call(777_000, 991_000), T0)
    merged = flinkwire.analyze([client_node, other], reveal=True)
    assert_unique_ids(merged)
    assert len(merged.flows) == 2
    assert overlap_rows(merged).empty
    assert set(merged.findings["flow_id"]) == set(merged.flows["flow_id"])
