"""No complete secret value leaves flinkwire by default, through any output.

Known secrets are planted in a plaintext HTTP flow and in a Flink data-plane
flow; every face (DataFrames, summary, JSON, CSV, Parquet, HTML, log lines)
is searched for them. With reveal=True they must be there, which proves the
search looks in the right places.
"""

import base64
import logging
import struct

import pandas as pd
import pytest

import flinkwire
from builders import conversation, pcap_bytes

SECRETS = {
    "password": "Plant3d-Passw0rd-x9",
    "basic": "BasicPw-Planted-77",
    "bearer": "tok_test_planted_bearer_5f3a9c",
    "card": "4111111111111111",
    "aws": "AKIAIOSFODNN7PLANTED",
    "cookie": "sess_planted_cookie_0b7e",
    "record_password": "RecordPw-Planted-42",
}


def _request():
    basic = base64.b64encode(f"deploy:{SECRETS['basic']}".encode()).decode()
    body = (f'{{"programArgsList": ["--db.password", "{SECRETS["password"]}"], '
            f'"note": "card {SECRETS["card"]} key {SECRETS["aws"]}"}}').encode()
    head = ("POST /jars/abc/run HTTP/1.1\r\nHost: 192.0.2.10:8081\r\n"
            f"Authorization: Basic {basic}\r\n"
            f"X-Forwarded-Authorization: Bearer {SECRETS['bearer']}\r\n"
            f"Cookie: ui={SECRETS['cookie']}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def _data_plane_frames():
    """A PartitionRequest and a BufferResponse (2.x layout) carrying one string record."""
    text = f"user=alice password={SECRETS['record_password']} card={SECRETS['card']}".encode()
    value = bytes([len(text) + 1]) + text  # StringValue: varint length+1, ASCII
    record = struct.pack(">I", len(value) + 1) + b"\x01" + value  # tag 1: no timestamp
    body = (b"\x11" * 16 + struct.pack(">iiiibbi", 0, 0, 0, 0, 1, 0, len(record)) + record)
    response = struct.pack(">I", 9 + len(body)) + b"\xba\xdc\x0f\xfe\x00" + body
    request_body = b"\x22" * 88
    request = struct.pack(">I", 9 + len(request_body)) + b"\xba\xdc\x0f\xfe\x02" + request_body
    return request, response


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("planted") / "planted.pcap"
    http = conversation(client=("192.0.2.20", 41000), server=("192.0.2.10", 8081),
                        c2s=[_request()], s2c=[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"])
    request, response = _data_plane_frames()
    data = conversation(client=("192.0.2.12", 42000), server=("192.0.2.11", 6121),
                        c2s=[request], s2c=[response])
    path.write_bytes(pcap_bytes([bytes(p) for p in http + data]))
    return path


def _everything(analysis, tmp_path, caplog_text):
    parts = [analysis.summary(), analysis.to_json(), caplog_text]
    for name in ("flows", "channels", "findings", "snippets", "anomalies", "tls", "http",
                 "rpc", "records", "blobs", "hosts"):
        frame = getattr(analysis, name)
        parts.append(frame.astype(str).to_csv())
    for path in analysis.to_csv(tmp_path / "csv"):
        parts.append(path.read_text())
    for path in analysis.to_parquet(tmp_path / "parquet"):
        parts.append(pd.read_parquet(path).astype(str).to_csv())
    try:
        from flinkwire.faces.html import write_html
    except ImportError:
        pass
    else:
        write_html(analysis, tmp_path / "report.html")
        parts.append((tmp_path / "report.html").read_text())
    parts.append(repr(analysis))
    return "\n".join(parts)


def test_no_secret_in_any_output_by_default(capture, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="flinkwire")
    analysis = flinkwire.analyze(capture)
    assert len(analysis.findings) >= len(SECRETS)
    shown = _everything(analysis, tmp_path, caplog.text)
    leaked = [name for name, value in SECRETS.items() if value in shown]
    assert not leaked


def test_reveal_shows_them_so_the_search_is_real(capture, tmp_path, caplog):
    analysis = flinkwire.analyze(capture, reveal=True)
    shown = _everything(analysis, tmp_path, caplog.text)
    found = {name for name, value in SECRETS.items() if value in shown}
    assert found == set(SECRETS)
    assert set(analysis.findings["value"]) >= {SECRETS["password"], SECRETS["basic"],
                                               SECRETS["bearer"], SECRETS["card"]}


def test_csv_neutralises_formulas(tmp_path):
    from flinkwire.faces.export import neutralise

    assert neutralise("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    for start in "+-@\t\r":
        assert neutralise(start + "1+1").startswith("'")
    assert neutralise("plain text") == "plain text"
    assert neutralise(42) == 42


def test_decoded_rows_are_masked_when_the_scan_was_skipped(tmp_path):
    # A first flow fills the findings and snippets tables (5 rows each), so the
    # planted flows after it are not scanned for findings; their decoded rows still
    # fit in the http and records tables and must be masked all the same.
    lines = b"".join(b"filler.password=Filler-%02d-secret\x00\x00" % n for n in range(10))
    filler = conversation(client=("192.0.2.30", 43000), server=("192.0.2.31", 7000),
                          c2s=[lines], s2c=[])
    http = conversation(client=("192.0.2.20", 41000), server=("192.0.2.10", 8081),
                        c2s=[_request()], s2c=[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"])
    request, response = _data_plane_frames()
    data = conversation(client=("192.0.2.12", 42000), server=("192.0.2.11", 6121),
                        c2s=[request], s2c=[response])
    # A record whose key and value are strings of their own: the value's field
    # shows no hint of a secret, so only the stream scan's values can mask it.
    lone = "Lone-Value-Planted-58"
    pair = b"".join(bytes([len(t) + 1]) + t for t in (b"password", lone.encode()))
    record = struct.pack(">I", len(pair) + 1) + b"\x01" + pair
    body = b"\x11" * 16 + struct.pack(">iiiibbi", 0, 0, 0, 0, 1, 0, len(record)) + record
    response = struct.pack(">I", 9 + len(body)) + b"\xba\xdc\x0f\xfe\x00" + body
    data += conversation(client=("192.0.2.12", 42002), server=("192.0.2.11", 6121),
                         c2s=[request], s2c=[response])
    path = tmp_path / "full.pcap"
    path.write_bytes(pcap_bytes([bytes(p) for p in filler + http + data]))
    from flinkwire.tcp.flows import Limits
    limits = Limits(max_rows_per_table=5)

    for reveal in (False, True):
        analysis = flinkwire.analyze(path, limits=limits, reveal=reveal)
        filler_id = analysis.flows.flow_id[analysis.flows.server_port == 7000].iloc[0]
        assert set(analysis.snippets.flow_id) == {filler_id} and len(analysis.snippets) == 5
        assert (analysis.findings.flow_id == filler_id).sum() == 5
        decoded = analysis.http.astype(str).to_csv() + analysis.records.astype(str).to_csv()
        assert len(analysis.records) == 2
        shown = {name for name, value in {**SECRETS, "lone": lone}.items() if value in decoded}
        if reveal:
            assert shown >= {"password", "record_password", "card", "lone"}
        else:
            assert not shown
