"""Captured text in role evidence is masked like the flow's decoded rows.

A flow's role evidence quotes what it saw (HTTP request paths, the host an
actor system advertises, the RPC methods called) and reaches flows.role_evidence
and the plaintext-channel finding's evidence, hence every face. Secrets the scan
found there must be masked as in the http and rpc tables, and shown with reveal.
"""

import pytest

import flinkwire
from builders import associate, conversation, envelope, method_invocation, pcap_bytes

PATH_SECRETS = ("hunter2-ZebraQuokka", "ghp_Z9Q7Z9Q7Z9Q7Z9Q7Z9Q7Z9Q7Z9Q7Z9Q7Z9Q7")
HOST_SECRET = "password=Assoc1ate-Hunter-77"
METHOD_SECRET = "ghp_M3th0dM3th0dM3th0dM3th0dM3th0dM3th"


def _http_requests():
    return [f"GET /d/password={PATH_SECRETS[0]} HTTP/1.1\r\nHost: jm\r\n\r\n".encode(),
            f"GET /api/{PATH_SECRETS[1]} HTTP/1.1\r\nHost: jm\r\n\r\n".encode()]


def _rpc_streams():
    recipient = b"pekko.tcp://flink@192.0.2.10:6123/user/rpc/worker_2#5"
    sender = b"pekko.tcp://flink@192.0.2.11:33221/user/rpc/taskmanager_0#9"
    body = b"\xac\xed\x00\x05 outer " + method_invocation(b"JobMasterGateway",
                                                        METHOD_SECRET.encode())
    c2s = associate(host=HOST_SECRET.encode(), port=33221) + envelope(recipient, sender, body)
    return c2s, associate(host=b"192.0.2.10", port=6123)


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("evidence") / "evidence.pcap"
    http = conversation(client=("10.0.0.1", 40000), server=("10.0.0.2", 8081),
                        c2s=_http_requests(),
                        s2c=[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"] * 2)
    c2s, s2c = _rpc_streams()
    rpc = conversation(client=("192.0.2.11", 41000), server=("192.0.2.10", 6123),
                       c2s=[c2s], s2c=[s2c])
    path.write_bytes(pcap_bytes(http + rpc))
    return path


def _evidence_texts(analysis) -> str:
    findings = analysis.findings
    return "\n".join([*analysis.flows.role_evidence, *findings.evidence,
                      *analysis.hosts.evidence])


def test_secrets_in_captured_evidence_are_masked(capture, tmp_path):
    analysis = flinkwire.analyze(capture)
    secrets = (*PATH_SECRETS, HOST_SECRET, METHOD_SECRET)
    # The scan found each one, so the decoded rows mask them ...
    assert set(analysis.http.path.dropna()) == {"/d/password=h…a", "/api/ghp…9Q7"}
    # ... and the evidence quotes those rows' masked text, in every face.
    evidence = _evidence_texts(analysis)
    assert "HTTP requests /d/password=h…a, /api/ghp…9Q7" in evidence
    analysis.to_json(tmp_path / "out.json")
    analysis.to_html(tmp_path / "out.html")
    analysis.to_csv(tmp_path / "csv")
    faces = [evidence, (tmp_path / "out.json").read_text(), (tmp_path / "out.html").read_text(),
             *(p.read_text() for p in (tmp_path / "csv").iterdir())]
    for secret in secrets:
        assert not [face for face in faces if secret in face], secret


def test_reveal_shows_captured_evidence_whole(capture):
    evidence = _evidence_texts(flinkwire.analyze(capture, reveal=True))
    assert f"HTTP requests /d/password={PATH_SECRETS[0]}, /api/{PATH_SECRETS[1]}" in evidence
    assert f"flink@{HOST_SECRET}:33221" in evidence
    assert f"client calls JobMasterGateway.{METHOD_SECRET} on the server" in evidence
