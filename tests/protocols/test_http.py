"""HTTP/1.x decoding and Flink role recognition (flink-wire-facts.md 2e)."""

import io
import random
import zipfile


import pytest

from corpus import streams_of_role

from flinkwire.protocols import http


def request(method, path, headers=(), body=b""):
    head = f"{method} {path} HTTP/1.1\r\nHost: 192.0.2.10:8081\r\n"
    for name, value in headers:
        head += f"{name}: {value}\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def response(status, body=b"", headers=(), reason="OK", length=True):
    head = f"HTTP/1.1 {status} {reason}\r\n"
    for name, value in headers:
        head += f"{name}: {value}\r\n"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def test_request_and_response_pairs():
    body = b'{"taskmanagers":2}'
    c2s = request("GET", "/v1/overview?x=1") + request("HEAD", "/config")
    s2c = (response(200, body, [("Content-Type", "application/json; charset=UTF-8")])
           + b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n")
    messages = http.decode(c2s, s2c)
    first, second, answer, head_answer = messages
    assert (first["method"], first["path"], first["query"]) == ("GET", "/v1/overview", "x=1")
    assert first["headers"]["host"] == "192.0.2.10:8081"
    assert second["offset"] == len(request("GET", "/v1/overview?x=1"))
    assert answer["status"] == 200 and answer["content_type"] == "application/json"
    assert answer["body"] == body and answer["body_size"] == len(body)
    assert s2c[answer["body_offset"]:answer["body_offset"] + len(body)] == body
    assert answer["request_index"] == 0
    # A response to HEAD has no body even with a Content-Length.
    assert head_answer["request_index"] == 1 and head_answer["body_size"] == 0
    assert messages.anomalies == []


def test_chunked_body_is_dechunked():
    s2c = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;ext=1\r\n{\"a\":\r\n3\r\n1}\n\r\n0\r\nX-Trailer: y\r\n\r\n"
           + response(204, length=False))
    messages = http.decode(request("GET", "/jobs") * 2, s2c)
    chunked, empty = [m for m in messages if m["type"] == "response"]
    assert chunked["chunked"] and chunked["complete"]
    assert chunked["body"] == b'{"a":1}\n' and chunked["body_size"] == 8
    assert [s2c[a:a + n] for a, n in chunked["body_segments"]] == [b'{"a":', b"1}\n"]
    assert empty["status"] == 204 and empty["offset"] == s2c.index(b"HTTP/1.1 204")


def test_interim_100_continue_does_not_use_up_the_request():
    s2c = response(100, length=False, reason="Continue") + response(200, b"{}")
    responses = [m for m in http.decode(request("POST", "/jars/upload", body=b"x"), s2c)
                 if m["type"] == "response"]
    assert [(r["status"], r["request_index"]) for r in responses] == [(100, 0), (200, 0)]


def test_body_until_close_and_max_body():
    messages = http.decode(b"", b"HTTP/1.0 200 OK\r\n\r\n" + b"z" * 5000, max_body=100)
    (only,) = messages
    assert only["until_close"] and only["body_size"] == 5000 and len(only["body"]) == 100


def test_multipart_job_jar_upload():
    jar_buffer = io.BytesIO()
    with zipfile.ZipFile(jar_buffer, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Main-Class: flinkwire.lab.Job\n")
    jar = jar_buffer.getvalue()
    body = (b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"jarfile\"; "
            b"filename=\"job.jar\"\r\nContent-Type: application/java-archive\r\n\r\n"
            + jar + b"\r\n--BOUNDARY--\r\n")
    c2s = request("POST", "/jars/upload",
                  [("Content-Type", "multipart/form-data; boundary=BOUNDARY")], body)
    (upload,) = http.decode(c2s, b"")
    (part,) = upload["parts"]
    assert part["name"] == "jarfile" and part["filename"] == "job.jar"
    assert part["content_type"] == "application/java-archive"
    assert part["size"] == len(jar) and part["complete"]
    assert part["zip"]["entries"] == ["META-INF/MANIFEST.MF"]


@pytest.mark.parametrize("path,role", [
    ("/v1/jobs", "rest"), ("/jobs", "rest"), ("/overview", "rest"), ("/jars/upload", "rest"),
    ("/taskmanagers", "rest"), ("/jobmanager/config", "rest"),
    ("/jobs/6096088b2d982836ede0db29cffdbb59", "rest"), ("/v1/sessions", "sql-gateway"),
    ("/v2/sessions/abc/statements", "sql-gateway"), ("/index.php", None)])
def test_flink_role_from_paths(path, role):
    assert http.flink_role(http.decode(request("GET", path), b"")) == role


def test_prometheus_reporter():
    body = b"# HELP flink_jobmanager_numRegisteredTaskManagers x\n# TYPE flink_jobm gauge\n"
    messages = http.decode(request("GET", "/metrics"), response(200, body))
    assert http.flink_role(messages) == "metrics-reporter"
    assert http.detect(request("GET", "/metrics"), response(200, b"up 1\n"))["role"] == "http"


def test_history_server_config():
    body = (b'{"refresh-interval":10000,"timezone-name":"UTC","flink-version":"2.3.0",'
            b'"features":{"web-submit":false,"web-cancel":false,"web-history":true}}')
    c2s = request("GET", "/config") + request("GET", "/jobs/overview")
    s2c = response(200, body) + response(200, b'{"jobs":[]}')
    assert http.flink_role_evidence(http.decode(c2s, s2c))[0] == "history-server"
    # The same routes with "web-history":false are the REST API's dashboard.
    rest_body = body.replace(b'"web-history":true', b'"web-history":false')
    assert http.flink_role(http.decode(c2s, response(200, rest_body))) == "rest"


def test_rest_tls_redirect_signature():
    s2c = response(301, headers=[("Location", "https://192.0.2.10:8081/")],
                   reason="Moved Permanently")
    found = http.detect(request("GET", "/"), s2c)
    assert found["role"] == "rest" and found["tls_redirect"] is True
    assert "301" in found["evidence"]


def test_detect_refuses_non_http():
    assert http.detect(b"\x16\x03\x01\x00\x05hello", b"") is None
    assert http.detect(bytes.fromhex("0000002c122a0801"), b"") is None
    assert http.detect(b"GETX / HTTP/1.1\r\n\r\n", b"") is None


def test_hostile_heads_are_bounded():
    huge = b"GET / HTTP/1.1\r\n" + b"X-A: " + b"a" * (http.MAX_HEAD + 10)
    messages = http.decode(huge, b"")
    assert len(messages) == 0 and messages.anomalies[0]["kind"] == "head-too-long"
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(500)) + b"\r\n"
    (message,) = http.decode(many, b"")
    assert len(message["headers"]) == http.MAX_HEADERS
    bad = http.decode(request("GET", "/", [("Content-Length", "-5")]), b"")
    assert bad.anomalies[0]["kind"] == "bad-content-length"
    chunks = http.decode(b"", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert chunks.anomalies[0]["kind"] == "bad-chunk-size"


def test_truncated_body():
    (message,) = http.decode(request("POST", "/jobs", body=b"x" * 100)[:-40], b"")
    assert message["truncated"] and message["body_size"] == 100 and len(message["body"]) == 60


@pytest.mark.parametrize("seed", range(30))
def test_garbage_never_raises(seed):
    rng = random.Random(seed)
    base = bytearray(request("POST", "/jars/upload", [(
        "Content-Type", "multipart/form-data; boundary=B")],
        b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nPK\x03\x04zz\r\n--B--\r\n")
        + response(200, b"{}", [("Transfer-Encoding", "chunked")], length=False))
    for _ in range(rng.randint(1, 15)):
        base[rng.randrange(len(base))] = rng.randrange(256)
    data = bytes(base[:rng.randint(0, len(base))])
    http.detect(data, data)
    http.decode(data, data, max_messages=5, max_body=rng.randint(0, 50))


# -- the real lab captures (captures/README.md), when present ----------------------------

def test_lab_rest_flows():
    paths = []
    for c2s, s2c in streams_of_role("s1-plaintext", "rest"):
        messages = http.decode(c2s, s2c)
        assert messages.anomalies == []
        assert http.flink_role(messages) == "rest"
        paths += [m["path"] for m in messages if m["type"] == "request"]
        for m in messages:
            if m.get("parts"):
                (jar,) = m["parts"]
                assert jar["name"] == "jarfile"
                assert "flinkwire/lab/FakeSecretsJob.class" in jar["zip"]["entries"]
    assert "/jars/upload" in paths and "/jobmanager/config" in paths
