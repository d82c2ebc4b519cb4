"""Scanners and decoders on megabytes of near-matches finish in bounded time.

Each input is about 4 MB of text built to almost match what a scanner looks for
(a key with no value, a base64 run with no end, an address with no domain, ...),
which is where a backtracking regular expression goes quadratic or worse. The
bound is CPU time of this process, so other load on the machine does not count,
and loose: linear code needs a few seconds here, quadratic code hours.
"""

import os
import struct
import time

import pytest

from flinkwire.leakage.scan import find_secrets, readable_runs
from flinkwire.protocols import http, pekko

MB = 1 << 20
SIZE = 4 * MB
BOUND_S = 10.0


def _fill(unit: bytes, prefix: bytes = b"") -> bytes:
    return prefix + unit * ((SIZE - len(prefix)) // len(unit))


def _printable_noise() -> bytes:
    return os.urandom(SIZE).translate(bytes(32 + b % 95 for b in range(256)))


NEAR_MATCHES = {
    "printable noise": _printable_noise,
    "keys without values": lambda: _fill(b"password="),
    "config keys, colon": lambda: _fill(b"fs.s3a.secret.key: "),
    "quoted keys": lambda: _fill(b'"password": "'),
    "REST key/value shells": lambda: _fill(b'{"key":"password","value":'),
    "program arguments": lambda: _fill(b"--password "),
    "serialized strings": lambda: _fill(b"t\x00\x08password"),
    "endless basic auth": lambda: _fill(b"A", b"Authorization: Basic "),
    "endless bearer": lambda: _fill(b"a", b"Authorization: Bearer "),
    "e-mail without domain": lambda: _fill(b"a@"),
    "e-mail dots": lambda: _fill(b"a@b."),
    "digit groups": lambda: _fill(b"4111 "),
    "digit dashes": lambda: _fill(b"4-"),
    "PEM without end": lambda: _fill(b"A", b"-----BEGIN PRIVATE KEY-----\n"),
    "JWT without dots": lambda: _fill(b"A", b"eyJ"),
    "JWT dots": lambda: _fill(b"eyJa."),
    "URL user without host": lambda: _fill(b"http://u:"),
    "URL credentials": lambda: _fill(b"://a:b@"),
    "percent escapes": lambda: _fill(b"%41"),
    "FTP logins": lambda: _fill(b"USER a\r\nPASS "),
    "cookies": lambda: _fill(b"Cookie: a="),
    "key prefixes": lambda: _fill(b"AKIAghp_xoxb-"),
    "whitespace": lambda: _fill(b" \t"),
    "line ends": lambda: _fill(b"a\r\n"),
}


def _cpu(run):
    began = time.process_time()
    result = run()
    return time.process_time() - began, result


@pytest.fixture(scope="module", params=sorted(NEAR_MATCHES))
def near_match(request):
    return request.param, NEAR_MATCHES[request.param]()


def test_find_secrets_is_linear_enough(near_match):
    name, data = near_match
    spent, found = _cpu(lambda: find_secrets(data))
    assert spent < BOUND_S, f"find_secrets on 4 MB of {name}: {spent:.1f} s CPU"
    assert len(found) <= 10_000


def test_readable_runs_is_linear_enough(near_match):
    name, data = near_match
    spent, runs = _cpu(lambda: readable_runs(data))
    assert spent < BOUND_S, f"readable_runs on 4 MB of {name}: {spent:.1f} s CPU"
    assert len(runs) <= 10_000


HTTP_NEAR_MATCHES = {
    "endless header value": b"GET / HTTP/1.1\r\nX-A: " + b"a" * SIZE,
    "endless request line": b"GET /" + b"a" * SIZE,
    "many header lines": b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * (SIZE // 8),
    "header names without colon": b"GET / HTTP/1.1\r\n" + b"aaaa\r\n" * (SIZE // 6),
    "endless chunk size": (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                           + b"f" * SIZE),
    "one-byte chunks": (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + b"1\r\na\r\n" * (SIZE // 6)),
    "multipart without boundary end": (
        b"POST /jars/upload HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        + b"Content-Length: %d\r\n\r\n" % SIZE + b"--b\r\n" * (SIZE // 5)),
    "status lines": b"HTTP/1.1 200 " * (SIZE // 13),
}


@pytest.mark.parametrize("name", sorted(HTTP_NEAR_MATCHES))
def test_http_decoder_is_linear_enough(name):
    data = HTTP_NEAR_MATCHES[name]
    spent, messages = _cpu(lambda: (http.decode(data, data), http.detect(data, data)))
    assert spent < BOUND_S, f"http on 4 MB of {name}: {spent:.1f} s CPU"


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


PEKKO_NEAR_MATCHES = {
    "actor paths without host": _fill(b"pekko.tcp://flink@"),
    "actor paths in a frame": _frame(_fill(b"akka.tcp://flink@a:1/user/rpc/")[:SIZE - 8]),
    "class descriptors": _frame(_fill(b"\x72\x00\x05aaaa.")[:SIZE - 8]),
    "writeUTF pairs": _frame(_fill(b"\x00\x04a.b\x00")[:SIZE - 8]),
    "nested protobuf": _frame(_fill(b"\x0a\xff\xff\xff\x01")[:SIZE - 8]),
    "empty frames": b"\x00\x00\x00\x00" * (SIZE // 4),
    "tiny frames": _fill(b"\x00\x00\x00\x01\x0a"),
}


@pytest.mark.parametrize("name", sorted(PEKKO_NEAR_MATCHES))
def test_pekko_decoder_is_linear_enough(name):
    data = PEKKO_NEAR_MATCHES[name]
    spent, _ = _cpu(lambda: (pekko.decode(data, data), pekko.detect(data, data),
                             pekko.actor_paths(data)))
    assert spent < BOUND_S, f"pekko on 4 MB of {name}: {spent:.1f} s CPU"
