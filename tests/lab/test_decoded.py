"""Issue 4's bar on the real lab captures: what each Flink-aware table shows."""

import json
from pathlib import Path

import pytest

import flinkwire

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def _analysis(name, reveal=True):
    truth = json.loads((CAPTURES / f"{name}.truth.json").read_text())
    return truth, flinkwire.analyze(CAPTURES / truth["capture"],
                                    config=CAPTURES / truth["config_file"], reveal=reveal)


@pytest.fixture(scope="module")
def plain():
    return _analysis("s1-plaintext")


def _flows_of(analysis, role):
    return set(analysis.flows.loc[analysis.flows["role"] == role, "flow_id"])


def test_records_hold_the_injected_values_on_the_data_plane(plain):
    truth, a = plain
    data = _flows_of(a, "data")
    fields = " ".join(" ".join(r) for r in a.records.loc[a.records["flow_id"].isin(data),
                                                          "fields"])
    for item in truth["injected"]:
        if "data" in item["readable_on_roles"]:
            assert item["value"] in fields, item["value"]


def test_rpc_shows_task_submission_to_both_taskmanagers(plain):
    _, a = plain
    rpc = a.rpc.dropna(subset=["rpc_methods"])
    submitted = {fid for fid, methods in zip(rpc["flow_id"], rpc["rpc_methods"])
                 if "TaskExecutorGateway.submitTask" in methods}
    tm_ips = set(a.hosts.loc[a.hosts["component"] == "taskmanager", "ip"])
    flows = a.flows.set_index("flow_id")
    reached = {flows.loc[f, "client_ip"] for f in submitted} | \
        {flows.loc[f, "server_ip"] for f in submitted}
    assert len(tm_ips) == 2 and tm_ips <= reached


def test_blobs_list_the_job_jar_classes(plain):
    _, a = plain
    entries = [e for z in a.blobs["zip"].dropna() for e in z.get("entries", [])]
    assert "flinkwire/lab/FakeSecretsJob.class" in entries


def test_http_lists_every_rest_call(plain):
    truth, a = plain
    rest = [c for c in truth["connections"] if c["server_role"] == "rest"]
    requests = a.http[a.http["type"] == "request"]
    assert len(requests) >= len(rest)
    paths = set(requests["path"])
    assert {"/jars/upload", "/overview", "/jobmanager/config", "/taskmanagers"} <= paths


@pytest.mark.parametrize("name", ["s2-internal-tls", "s3-full-tls-mutual-rest",
                                  "s5-internal-tls13"])
def test_tls_captures_show_handshakes_not_content(name):
    truth, a = _analysis(name)
    internal = a.flows[a.flows["role"].isin(
        ["jobmanager-rpc", "taskmanager-rpc", "metrics-rpc", "blob", "data"])
        & (a.flows["verdict"] == "tls")]
    assert len(internal) >= 6
    tls = a.tls.set_index("flow_id")
    for fid in internal["flow_id"]:
        row = tls.loc[fid]
        assert row["version"] in ("TLS 1.2", "TLS 1.3")
        assert row["cipher"]
        if row["version"] == "TLS 1.2":
            assert row["server_cert_subject"] == "CN=flink.internal.lab.example"
            assert bool(row["client_certificate_requested"]) and bool(row["client_cert_sent"])
    tls_flows = set(a.flows.loc[a.flows["verdict"] == "tls", "flow_id"])
    for table in (a.records, a.blobs, a.http, a.rpc):
        assert not set(table["flow_id"]) & tls_flows
    assert a.verdict["internal_tls"] == "on"


def test_cluster_verdicts():
    assert _analysis("s1-plaintext")[1].verdict == {
        "internal_tls": "off", "internal_mutual_auth": "n/a",
        "rest_tls": "off", "rest_mutual_auth": "n/a"}
    s3 = _analysis("s3-full-tls-mutual-rest")[1].verdict
    assert (s3["internal_tls"], s3["rest_tls"], s3["rest_mutual_auth"]) == ("on", "on", "yes")
