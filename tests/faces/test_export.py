"""CSV export: safe in a spreadsheet and in a terminal. Every capture is built here."""

import re

import pandas as pd

import flinkwire
from builders import conversation, pcap_bytes
from flinkwire.faces.export import neutralise

RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]|\r(?!\n)")


def test_csv_escapes_captured_terminal_controls(tmp_path):
    """Found by the breaker (309): a REST path and User-Agent holding `ESC ] 0 ; ... BEL`
    (set the window title), `ESC [2J` (clear the screen) and colour codes reached
    flows.csv, findings.csv and http.csv raw, so `head flows.csv` obeyed them. They are
    written as JSON writes them (`\\u001b`); tab and line ends stay in their cell."""
    evil = "/jobs/\x1b]0;title-set-by-capture\x07\x1b[2J\x1b[31mRED\x1b[0m\x9b6n\x7fx"
    request = (f"GET {evil} HTTP/1.1\r\nHost: jm\r\nUser-Agent: {evil}\r\n"
               "Authorization: Basic dXNlcjpodW50ZXIyLXByb2Qtc2VjcmV0\r\n\r\n")
    path = tmp_path / "c.pcap"
    path.write_bytes(pcap_bytes(conversation(c2s=[request.encode("utf-8")])))
    analysis = flinkwire.analyze(path)
    assert "\x1b" in analysis.http.astype(str).to_csv()  # the tables keep what was captured

    written = analysis.to_csv(tmp_path / "csv")
    assert {p.name for p in written} >= {"flows.csv", "http.csv", "snippets.csv"}
    for csv in written:
        raw = csv.read_bytes()
        assert not RAW_CONTROL.search(raw), (csv.name, RAW_CONTROL.search(raw))
    http = (tmp_path / "csv" / "http.csv").read_text(encoding="utf-8")
    assert "/jobs/\\u001b]0;title-set-by-capture\\u0007\\u001b[2J" in http
    assert "\\u009b6n\\u007fx" in http
    snippets = pd.read_csv(tmp_path / "csv" / "snippets.csv")
    assert snippets["text"].str.contains("\r\n", regex=False).any()


def test_neutralise_escapes_controls_and_formulas():
    assert neutralise("\x1b=cmd") == "\\u001b=cmd"
    assert neutralise("=cmd\x07") == "'=cmd\\u0007"
    assert neutralise("\ta\tb") == "'\ta\tb"
    assert neutralise({"h": "\x9b"}) == '{"h": "\\u009b"}'
    assert neutralise("ok\rspoof\r\n") == "ok\\u000dspoof\r\n"
    assert neutralise("\r=1") == "'\\u000d=1"
    assert neutralise(7) == 7
