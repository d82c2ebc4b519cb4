"""Secrets in Flink data-plane records written as StringValues the plain reading missed:
a length of two varint bytes (127+ chars), a length byte that reads as a letter, digit or
separator, chars past ASCII (7-bit groups with a continuation bit). Each must be masked in
every output by default, as a short ASCII one is."""

import struct

import pytest

import flinkwire
from builders import conversation, flink_string_value, pcap_bytes

SECRETS = {
    "long": "K" + "x7Qp" * 40,                      # 161 chars: length A2 01
    "non_ascii": "Pässwort-Geheim-42",              # ä is E4 01
    "hex_token": "9f" * 32,                         # 64 chars: length byte "A"
    "base64_key": "dGhpcyBpcyBhIHRlc3Qga2V5IGZvciBmbGluayAzMmI=",   # 44 chars: length "-"
    "cjk": "中文-Geheimnis-€-7Qp",                  # 3-byte and 2-byte chars
    "short": "ShortPw-x7Qpx7Qp",                    # the control the plain reading caught
}


def _record(strings) -> bytes:
    value = b"".join(map(flink_string_value, strings))
    return struct.pack(">I", len(value) + 1) + b"\x01" + value   # tag 1: no timestamp


def _frames():
    payload = b"".join(_record(["password", secret]) for secret in SECRETS.values())
    body = b"\x11" * 16 + struct.pack(">iiiibbi", 0, 0, 0, 0, 1, 0, len(payload)) + payload
    response = struct.pack(">I", 9 + len(body)) + b"\xba\xdc\x0f\xfe\x00" + body
    request = struct.pack(">I", 97) + b"\xba\xdc\x0f\xfe\x02" + b"\x22" * 88
    return request, response


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("string-values") / "records.pcap"
    request, response = _frames()
    packets = conversation(client=("10.0.0.1", 40000), server=("10.0.0.2", 6121),
                           c2s=[request], s2c=[response])
    path.write_bytes(pcap_bytes([bytes(p) for p in packets]))
    return path


def _shown(analysis, tmp_path) -> str:
    parts = [analysis.summary(), analysis.to_json()]
    for name in ("records", "snippets", "findings", "flows", "anomalies"):
        parts.append(getattr(analysis, name).astype(str).to_csv())
    for path in analysis.to_csv(tmp_path / "csv"):
        parts.append(path.read_text(encoding="utf-8"))
    return "\n".join(parts)


def test_string_value_secrets_are_masked_in_every_output(capture, tmp_path):
    analysis = flinkwire.analyze(capture)
    shown = _shown(analysis, tmp_path)
    assert [name for name, value in SECRETS.items() if value in shown] == []
    fields = analysis.records["fields"].tolist()
    assert len(fields) == len(SECRETS)
    assert all(row[0] == "password" and row[1] not in SECRETS.values() for row in fields)


def test_reveal_shows_them_whole(capture, tmp_path):
    analysis = flinkwire.analyze(capture, reveal=True)
    assert [list(row) for row in analysis.records["fields"]] == [
        ["password", value] for value in SECRETS.values()]
    assert set(analysis.findings["value"]) >= set(SECRETS.values())
