"""Snippets stay masked where a stream's secret scan could not vouch for its list.

Each capture is built here (after the breaker's findings 01, 02, 05 and 06): a
secret past the point where a scanner stopped early, or a span longer than the
old 4 KiB lookback, must not reach any output with default settings.
"""

import random
import re

import pytest

import flinkwire
from builders import conversation, pcap_bytes
from flinkwire.leakage import scan
from flinkwire.tables import examine


def _capture(tmp_path, payload: bytes, port=9999, s2c=()):
    # One segment per 1400 bytes, as a sender with a usual MSS cuts them.
    pieces = [payload[i:i + 1400] for i in range(0, len(payload), 1400)]
    packets = conversation(server=("198.51.100.2", port), c2s=pieces, s2c=s2c)
    path = tmp_path / "capture.pcap"
    path.write_bytes(pcap_bytes([bytes(p) for p in packets]))
    return path


def _everything(analysis) -> str:
    tables = ("flows", "findings", "snippets", "records", "rpc", "http", "anomalies", "blobs")
    return "\n".join(getattr(analysis, name).to_csv() for name in tables) + analysis.to_json()


def test_a_secret_after_10000_repeated_findings_is_masked(tmp_path):
    secret = "hunter2-ZebraQuokka-77"
    body = (b"\x00".join([b"ab@c.de"] * 10_050) + b"\x00\x00 db.password="
            + secret.encode() + b" \x00")
    complete = scan.scan_secrets(body)
    # The e-mail scanner stops at 10,000 and says so; the password is found all the same.
    assert complete.complete_to < len(body)
    assert secret in {s.value for s in complete.secrets}
    analysis = flinkwire.analyze(_capture(tmp_path, body))
    assert secret not in _everything(analysis)
    assert any("db.password=" in text for text in analysis.snippets.text)


def test_the_tail_of_a_long_pem_key_is_masked_in_every_snippet(tmp_path):
    rng = random.Random(1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    lines = ["".join(rng.choice(alphabet) for _ in range(64)) for _ in range(130)]
    pem = ("-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines)
           + "\n-----END RSA PRIVATE KEY-----\n")
    request = (f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {len(pem)}\r\n\r\n"
               f"{pem}").encode()
    path = _capture(tmp_path, request, port=8081,
                    s2c=[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    analysis = flinkwire.analyze(path)
    shown = _everything(analysis)
    assert [line for line in lines if line in shown] == []
    assert "-----END RSA PRIVATE KEY-----" not in "".join(analysis.snippets.text)


def test_a_secret_after_the_keyword_budget_is_masked_and_found(tmp_path):
    secret = "AfterBudget-Zq81Lm0x"
    data = b"password reset requested\n" * 20_050 + b"db.password=" + secret.encode() + b"\n"
    assert scan.scan_secrets(data).complete_to < len(data)
    analysis = flinkwire.analyze(_capture(tmp_path, data))
    assert secret not in _everything(analysis)
    assert "password" in set(analysis.findings.kind)
    assert any(kind == "limit" and source == "leakage" for kind, source
               in zip(analysis.anomalies.kind, analysis.anomalies.source))


def test_snippets_no_window_vouches_for_are_withheld():
    # Past MAX_TAIL_WINDOWS windows the snippets are withheld, not shown unscanned.
    data = b"x" * 10 + b" db.password=Later-Secret-99 " + b"y" * 10
    tail = examine._TailScan(data, 0, set(), lambda secret: None)
    tail.windows = examine.MAX_TAIL_WINDOWS
    assert tail.spans(data.decode(), 0, examine._SecretSpans([])) is None


def _chain_values(count=2_000, chain=40):
    rng = random.Random(2)
    alphabet = "abcdefghijkmnopqrstuvwxyz23456789"
    values = {"".join(rng.choice(alphabet) for _ in range(10)) for _ in range(count)}
    return values | {"Q" * (4 + i) for i in range(chain)}


def test_a_deep_prefix_chain_is_not_masked_by_a_flat_alternation():
    values = frozenset(_chain_values())
    matcher = examine._compiled_values(values)
    # A `re` pattern here would be the flat alternation, tried value by value at every
    # position; the automaton costs the same whatever the values.
    assert not isinstance(matcher, re.Pattern)
    masker = examine.Masker(values)
    for value in sorted(values):
        shown = masker.text(f"pwd={value} z")
        assert value not in shown, value


@pytest.mark.parametrize("seed", range(20))
def test_the_automaton_masks_what_the_flat_alternation_masks(seed):
    rng = random.Random(seed)
    values = {"".join(rng.choice("ab") for _ in range(rng.randint(4, 9))) for _ in range(30)}
    values |= {"a" * n for n in range(4, 4 + rng.randint(0, 40))}
    flat = re.compile("|".join(map(re.escape, sorted(values, key=len, reverse=True))))
    automaton = examine._ValuesAutomaton(values)
    for _ in range(50):
        text = "".join(rng.choice("ab ") for _ in range(rng.randint(0, 80)))
        assert automaton.sub(lambda m: f"<{m.group(0)}>", text) == \
            flat.sub(lambda m: f"<{m.group(0)}>", text)
        assert bool(automaton.search(text)) == bool(flat.search(text))


# After the breaker's findings 202-204: in a flow whose stream scan stopped early, every
# decoded field is scanned again, and snippets are masked with every value the flow's
# scans found (main scan and all windows), whichever came first in the stream.
TOKEN = "ghp_" + "Z9Q7" * 9
SECRET = "hunter2-ZebraQuokka-77"


def _http_after_token_flood():
    body = " ".join("ghp_%036d" % i for i in range(10_001)).encode()
    flood = (b"POST /jars/upload HTTP/1.1\r\nHost: jm\r\nContent-Length: %d\r\n\r\n" % len(body)
             + body)
    later = b"GET /jobs HTTP/1.1\r\nHost: jm\r\nX-Request-Id: " + TOKEN.encode() + b"\r\n\r\n"
    assert scan.scan_secrets(flood + later).complete_to < len(flood)
    pieces = [flood[i:i + 1400] for i in range(0, len(flood), 1400)] + [later]
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    return conversation(client=("192.0.2.1", 40001), server=("198.51.100.2", 8081),
                        c2s=pieces, s2c=[answer, answer])


def _jobs_headers(analysis):
    return analysis.http.loc[analysis.http.path == "/jobs", "headers"].tolist()


def test_a_token_in_a_header_past_an_early_stop_is_masked(tmp_path):
    path = tmp_path / "capture.pcap"
    path.write_bytes(pcap_bytes([bytes(p) for p in _http_after_token_flood()]))
    analysis = flinkwire.analyze(path)
    assert len(_jobs_headers(analysis)) == 1
    assert TOKEN not in _everything(analysis)


def test_a_token_past_an_early_stop_is_masked_once_the_secret_tables_are_full(
        tmp_path, monkeypatch):
    # A first flow fills the findings and snippets tables (2 rows each), so the HTTP flow's
    # decoded rows are masked with `_secret_values`, not with the snippet scan's values.
    filler = [b"\x00 mail a@bc.de \x00 mail f@gh.ij \x00 mail k@lm.no \x00"]
    first = conversation(client=("192.0.2.1", 40000), server=("198.51.100.2", 9999), c2s=filler)
    path = tmp_path / "capture.pcap"
    path.write_bytes(pcap_bytes([bytes(p) for p in first + _http_after_token_flood()]))
    calls = []
    plain = examine._secret_values
    monkeypatch.setattr(examine, "_secret_values", lambda *a: calls.append(a) or plain(*a))
    analysis = flinkwire.analyze(path, limits=flinkwire.Limits(max_rows_per_table=2))
    assert calls and len(_jobs_headers(analysis)) == 1
    assert TOKEN not in _everything(analysis)


def test_a_copy_before_the_early_stop_is_masked_with_a_value_found_after_it(tmp_path):
    data = (b"\x00\x01 user note: " + SECRET.encode() + b" \x00\x02" + b"pass " * 20_010
            + b"\x00\x03 db.password=" + SECRET.encode() + b" \x00")
    analysis = flinkwire.analyze(_capture(tmp_path, data))
    assert SECRET not in _everything(analysis)
    assert any("user note:" in text for text in analysis.snippets.text)


def test_a_value_found_in_one_window_is_masked_in_a_later_window(tmp_path):
    filler = b"lorem ipsum dolor sit amet " * 8000
    data = (b"\x00\x02" + b"pass " * 20_010 + b"\x00\x03 db.password=" + SECRET.encode()
            + b" \x00" + filler + b"\x00 note: " + SECRET.encode() + b" \x00")
    analysis = flinkwire.analyze(_capture(tmp_path, data))
    assert SECRET not in _everything(analysis)
    assert any(" note: " in text for text in analysis.snippets.text)


def test_an_incomplete_flow_rescans_fields_without_a_hint_word():
    assert examine.Masker(set()).text(f"id {TOKEN}") == f"id {TOKEN}"
    assert TOKEN not in examine.Masker(set(), complete=False).text(f"id {TOKEN}")
    lazy = examine.Masker(lambda: (set(), False))
    assert TOKEN not in lazy.header("x-request-id", TOKEN)
