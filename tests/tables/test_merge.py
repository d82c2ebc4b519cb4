"""Many files in parallel: a lab capture cut into rotated files analyses as the whole does."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from corpus import split_pcap

import flinkwire
from flinkwire.tables.examine import Rows
from flinkwire.tables.merge import FilePart, is_dask_client, merge_parts
from flinkwire.tcp.build import BuildStats

ROOT = Path(__file__).resolve().parents[2]
S1 = ROOT / "captures" / "s1-plaintext.pcap"
FLOW_FACTS = ["client_ip", "client_port", "server_ip", "server_port", "role", "verdict",
              "bytes_c2s", "bytes_s2c", "packets_c2s", "packets_s2c", "gap_bytes_c2s",
              "gap_bytes_s2c", "handshake_seen", "closed", "first_ts", "last_ts"]


@pytest.fixture(scope="module")
def rotated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rotated")
    paths = [folder / f"s1-{n}.pcap" for n in range(3)]
    assert split_pcap(S1, paths) > 1000
    return paths


@pytest.fixture(scope="module")
def whole():
    return flinkwire.analyze(S1, reveal=True)


def flow_facts(analysis) -> list[tuple]:
    return sorted(map(tuple, analysis.flows[FLOW_FACTS].values.tolist()))


def readable_injected(analysis) -> set[str]:
    truth = json.loads(S1.with_name("s1-plaintext.truth.json").read_text())
    text = "\n".join(analysis.snippets["text"]) + "\n".join(map(str, analysis.findings["value"]))
    return {item["value"] for item in truth["injected"] if item["value"] in text}


def table_rows(analysis, name) -> list[tuple]:
    """A table's rows with flow ids replaced by the flow's endpoints (ids may differ)."""
    endpoints = {r.flow_id: (r.client_ip, r.client_port, r.server_ip, r.server_port)
                 for r in analysis.flows.itertuples()}
    frame = getattr(analysis, name)
    columns = [c for c in frame.columns if c != "flow_id"]
    return sorted((endpoints.get(r["flow_id"]),) + tuple(str(r[c]) for c in columns)
                  for r in frame.to_dict("records"))


def test_rotated_files_in_a_process_pool_equal_the_whole(rotated, whole):
    merged = flinkwire.analyze(rotated, reveal=True)
    assert len(merged.stats.files) == 3 and merged.stats.packets == whole.stats.packets
    assert flow_facts(merged) == flow_facts(whole)
    assert sorted(merged.flows["flow_id"]) == sorted(whole.flows["flow_id"])
    injected = readable_injected(whole)
    assert injected and readable_injected(merged) == injected
    for name in ("snippets", "findings", "http", "rpc", "records", "blobs"):
        assert table_rows(merged, name) == table_rows(whole, name), name


def test_flows_really_crossed_the_boundaries(rotated):
    """The parts alone do see the long flows more than once; the merge made them one."""
    seen = [flinkwire.analyze(p) for p in rotated]
    continued = sum(len(a.flows[~a.flows["handshake_seen"]]) for a in seen)
    assert continued >= 4


def test_thread_pool_and_sequential_agree(rotated, whole):
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = flinkwire.analyze(rotated, reveal=True, executor=pool)
    sequential = flinkwire.analyze(rotated, reveal=True, executor=False)
    assert flow_facts(threaded) == flow_facts(whole) == flow_facts(sequential)
    assert table_rows(threaded, "findings") == table_rows(whole, "findings")


def test_redacted_findings_merge_too(rotated):
    merged = flinkwire.analyze(rotated)
    whole = flinkwire.analyze(S1)
    assert table_rows(merged, "findings") == table_rows(whole, "findings")


def test_a_bad_file_is_refused_before_any_work(tmp_path, rotated):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture")
    with pytest.raises(flinkwire.CaptureError):
        flinkwire.analyze([rotated[0], bad])


def test_dask_clients_are_told_by_duck_typing():
    class Client:
        def submit(self, *a, **k): ...
        def gather(self, futures): ...

    assert is_dask_client(Client())
    assert not is_dask_client(ThreadPoolExecutor(max_workers=1))


# -- merge_parts on hand-made rows ----------------------------------------------------------


def flow_row(fid, client, server, first_ts, last_ts, *, syn, closed, c2s, s2c,
             verdict="plaintext", index=0):
    return {"flow_id": fid, "first_ts": first_ts, "last_ts": last_ts, "transport": "tcp",
            "client_ip": client[0], "client_port": client[1], "server_ip": server[0],
            "server_port": server[1], "role": "unknown", "role_evidence": "",
            "verdict": verdict, "tls_version": None, "sni": None, "cipher": None,
            "packets_c2s": 1, "packets_s2c": 1, "bytes_c2s": c2s, "bytes_s2c": s2c,
            "gap_bytes_c2s": 0, "gap_bytes_s2c": 0, "retransmitted_bytes": 0,
            "readable_bytes": 0, "handshake_seen": syn, "closed": closed,
            "client_decided_by": "SYN" if syn else "higher port", "starttls_offset": None,
            "vlan": None, "capture_duplicates": 0, "index": index, "_content": None}


def part(*flows, snippets=(), findings=()):
    rows = Rows()
    rows.flows.extend(flows)
    rows.snippets.extend(snippets)
    rows.findings.extend(findings)
    return FilePart("x.pcap", rows, BuildStats(flows=len(flows)))


def secret(fid, direction, offset, count=1):
    return {"flow_id": fid, "direction": direction, "offset": offset, "ts": 0,
            "kind": "password", "value": "hunter22", "username": None, "context": "",
            "count": count}


def test_a_later_part_seen_the_other_way_round_is_swapped_and_shifted():
    a, b = ("10.0.0.1", 40000), ("10.0.0.2", 6123)
    first = flow_row("F1", a, b, 10, 20, syn=True, closed=False, c2s=100, s2c=50)
    later = flow_row("F2", b, a, 30, 40, syn=False, closed=True, c2s=7, s2c=3)
    rows, stats = merge_parts([
        part(first, snippets=[{"flow_id": "F1", "direction": "s2c", "offset": 40,
                               "ts": 15, "text": "0123456789"}],
             findings=[secret("F1", "c2s", 5)]),
        part(later, snippets=[{"flow_id": "F2", "direction": "c2s", "offset": 0,
                               "ts": 31, "text": "abc"},
                              {"flow_id": "F2", "direction": "s2c", "offset": 1,
                               "ts": 32, "text": "xyzxyzxyz"}],
             findings=[secret("F2", "s2c", 2, count=2)]),
    ])
    assert len(rows.flows) == 1 and stats.flows == 1
    flow = rows.flows[0]
    assert (flow["flow_id"], flow["bytes_c2s"], flow["bytes_s2c"]) == ("F1", 103, 57)
    assert (flow["last_ts"], flow["closed"], flow["handshake_seen"]) == (40, True, True)
    # the later part's c2s is the first part's s2c: its run at 0 continues the one at 40
    assert [(s["direction"], s["offset"], s["text"]) for s in rows.snippets] == [
        ("s2c", 40, "0123456789abc"), ("c2s", 101, "xyzxyzxyz")]
    assert [(f["flow_id"], f["direction"], f["count"]) for f in rows.findings] == [
        ("F1", "c2s", 3)]


def test_closed_or_restarted_flows_are_not_joined():
    a, b = ("10.0.0.1", 40000), ("10.0.0.2", 8081)
    closed = flow_row("F1", a, b, 10, 20, syn=True, closed=True, c2s=10, s2c=10)
    after_close = flow_row("F2", a, b, 30, 40, syn=False, closed=True, c2s=5, s2c=5)
    open_ = flow_row("F3", a, b, 10, 50, syn=True, closed=False, c2s=10, s2c=10)
    new_syn = flow_row("F4", a, b, 60, 70, syn=True, closed=True, c2s=5, s2c=5)
    assert len(merge_parts([part(closed), part(after_close)])[0].flows) == 2
    assert len(merge_parts([part(open_), part(new_syn)])[0].flows) == 2
    early = flow_row("F5", a, b, 45, 70, syn=False, closed=True, c2s=5, s2c=5)
    assert len(merge_parts([part(open_), part(early)])[0].flows) == 2  # overlaps in time


def test_a_first_part_without_payload_takes_the_verdict_of_the_next():
    a, b = ("10.0.0.1", 40000), ("10.0.0.2", 6123)
    handshake = flow_row("F1", a, b, 10, 11, syn=True, closed=False, c2s=0, s2c=0,
                         verdict="no-payload")
    rest = flow_row("F2", a, b, 12, 40, syn=False, closed=True, c2s=500, s2c=900)
    rows, _ = merge_parts([part(handshake), part(rest)])
    (flow,) = rows.flows
    assert (flow["flow_id"], flow["verdict"], flow["bytes_s2c"]) == ("F1", "plaintext", 900)
    assert flow["role"] == "jobmanager-rpc"  # decided again from the first part's server port


@pytest.mark.parametrize("name", ["s2-internal-tls", "s3-full-tls-mutual-rest"])
def test_tls_flows_across_rotated_files_keep_their_handshake_facts(name, tmp_path):
    capture = ROOT / "captures" / f"{name}.pcap"
    paths = [tmp_path / f"{name}-{n}.pcap" for n in range(3)]
    split_pcap(capture, paths)
    whole = flinkwire.analyze(capture, reveal=True)
    merged = flinkwire.analyze(paths, reveal=True)
    for table in ("flows", "tls", "findings", "anomalies"):
        assert table_rows(merged, table) == table_rows(whole, table), table


@pytest.mark.parametrize("later_id, syn", [("F1", True), ("F2", False)])
def test_parts_whose_verdicts_disagree_are_never_merged(later_id, syn):
    """Found by the breaker (406), the safety net: a TLS part and a plaintext part that
    otherwise look like one connection (a copy with the same flow_id, or a rotated
    continuation) stay two flows, so the plaintext one is not hidden in the TLS one."""
    a, b = ("10.0.0.1", 40000), ("10.0.0.2", 8081)
    tls = flow_row("F1", a, b, 10, 20, syn=True, closed=syn, c2s=100, s2c=50,
                   verdict="tls")
    plain = flow_row(later_id, a, b, 10 if syn else 30, 40, syn=syn, closed=True, c2s=100,
                     s2c=50)
    rows, stats = merge_parts([part(tls, findings=[secret("F1", "c2s", 5)]),
                               part(plain, findings=[secret(later_id, "c2s", 5)])])
    assert stats.flows == 2
    assert sorted(f["verdict"] for f in rows.flows) == ["plaintext", "tls"]
    ids = [f["flow_id"] for f in rows.flows]
    assert len(set(ids)) == 2
    assert sorted(f["flow_id"] for f in rows.findings) == sorted(ids)
    assert rows.anomalies == []
