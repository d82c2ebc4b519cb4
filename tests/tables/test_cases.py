"""The whole analysis against the shared cases: verdicts, TLS facts, secrets."""

import pytest

import flinkwire
from corpus import case_names, load_case


def _endpoint(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@pytest.fixture(scope="module", params=case_names())
def case(request):
    path, expect = load_case(request.param)
    return expect, flinkwire.analyze(path, reveal=True), flinkwire.analyze(path)


def test_flows_oriented_and_classified(case):
    expect, analysis, _ = case
    flows = analysis.flows.sort_values("first_ts").reset_index(drop=True)
    assert len(flows) == len(expect["tcp_flows"])
    for row, want in zip(flows.itertuples(), expect["tcp_flows"]):
        assert _endpoint(row.client_ip, row.client_port) == want["client"]
        assert _endpoint(row.server_ip, row.server_port) == want["server"]
        assert row.verdict == want["classification"]
        assert (row.bytes_c2s, row.bytes_s2c) == (want["payload_bytes"]["c2s"],
                                                 want["payload_bytes"]["s2c"])
        assert (row.packets_c2s, row.packets_s2c) == (want["frames"]["c2s"],
                                                     want["frames"]["s2c"])


def test_tls_facts(case):
    expect, analysis, _ = case
    flows = analysis.flows.sort_values("first_ts").reset_index(drop=True)
    for row, want in zip(flows.itertuples(), expect["tcp_flows"]):
        if not want["tls"]:
            assert analysis.tls[analysis.tls.flow_id == row.flow_id].empty
            continue
        tls = analysis.tls[analysis.tls.flow_id == row.flow_id].iloc[0]
        for key in ("version", "cipher", "cipher_id", "sni", "alpn_selected",
                    "key_exchange_group", "client_certificate_requested"):
            assert tls[key] == want["tls"][key], key
        assert tls["alpn_offered"] == want["tls"]["alpn_offered"]
        subjects = [c["subject"] for c in tls["server_certificates"]]
        assert subjects == [c["subject"] for c in want["tls"]["server_certificates"]]


def _values(analysis):
    return set(analysis.findings["value"])


def test_secrets_found_where_expected(case):
    expect, analysis, _ = case
    flows = analysis.flows.sort_values("first_ts").reset_index(drop=True)
    for item in expect["secrets"]["must_find"]:
        fid = flows.loc[item["flow"], "flow_id"]
        mine = analysis.findings[(analysis.findings.flow_id == fid)
                                 & (analysis.findings.direction == item["direction"])]
        assert item["value"] in set(mine["value"]), item


def test_secrets_that_must_not_be_found(case):
    expect, analysis, _ = case
    for item in expect["secrets"].get("must_not_find", []):
        if item["scope"] == "findings":
            assert item["value"] not in _values(analysis)
        else:
            assert not any(item["value"] in v for v in _values(analysis))
            assert not any(item["value"] in t for t in analysis.snippets["text"])


def test_redacted_by_default(case):
    expect, _, redacted = case
    shown = redacted.to_json() + redacted.summary()
    for item in expect["secrets"]["must_find"]:
        if item["kind"] != "email":
            assert item["value"] not in shown, item["value"]
