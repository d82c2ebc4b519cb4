"""The HTML report: self-contained, redacted by default, and captured text is only text.

A synthetic capture plants script-like text where the report shows it (an HTTP
request and response on the REST port, a TLS server name); the report must
carry it escaped, and headless Chromium must render it as text: no injected
element in the DOM, every section present, a screenshot that is not blank.
"""

import html.parser
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest
from scapy.layers.l2 import Ether

import flinkwire
from flinkwire.faces.cli import main
from flinkwire.faces.html import render_html, write_html
from tests.builders import conversation, pcap_bytes

ROOT = Path(__file__).resolve().parents[2]
S1 = ROOT / "captures" / "s1-plaintext.pcap"
S1_CONFIG = ROOT / "captures" / "s1-plaintext.config.yaml"
TLS_CAPTURE = ROOT / "captures" / "s3-full-tls-mutual-rest.pcap"

SCRIPT = "<script>alert('x')</script>"
IMG = "<img src=x onerror=alert(1)>"
SNI = "a<svg onload=alert(2)>.example"
# fake values of the lab (captures/README.md): none may reach a redacted report
LAB_SECRETS = ("hunter2-fake", "tok_live_fake_4eC39HqLyjWDarjtT1zdp7dc", "4111111111111111",
               "s3cr3t-fake-db-pass-7Q2x", "tok_live_fake_jobparam_9Zy8Xw7V",
               "alice.fakeperson@example.com")
SECTIONS = ("channels", "plots", "findings", "snippets", "tls", "anomalies", "flows")


def _client_hello(sni: str) -> bytes:
    name = sni.encode("latin-1")
    server_name = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    extensions = struct.pack("!HH", 0, len(server_name)) + server_name
    body = (b"\x03\x03" + bytes(32) + b"\x00" + struct.pack("!H", 4) + b"\xc0\x2f\x00\x9c"
            + b"\x01\x00" + struct.pack("!H", len(extensions)) + extensions)
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def _hostile_capture(directory: Path) -> Path:
    request = (f"POST /jars/upload HTTP/1.1\r\nHost: 192.0.2.10:8081\r\n"
               f"X-Note: {SCRIPT}\r\nContent-Type: text/plain\r\nContent-Length: 60\r\n\r\n"
               f"{IMG} and {SCRIPT} again").encode()
    response = (f"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n\r\n"
                f"<html><body>{SCRIPT}{IMG}</body></html>").encode()
    packets = conversation(client=("192.0.2.20", 41000), server=("192.0.2.10", 8081),
                           c2s=[request], s2c=[response])
    packets += conversation(client=("192.0.2.11", 42000), server=("192.0.2.10", 6123),
                            c2s=[_client_hello(SNI)], isn_c=7000, isn_s=9000)
    for packet in packets:
        # explicit addresses: scapy would otherwise try to resolve them (slow, and ARP)
        packet[Ether].src, packet[Ether].dst = "02:00:00:00:00:01", "02:00:00:00:00:02"
    path = directory / "hostile.pcap"
    path.write_bytes(pcap_bytes(packets))
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hostile")
    capture = _hostile_capture(directory)
    analysis = flinkwire.analyze(capture)
    report = write_html(analysis, directory / "report.html")
    return analysis, report


def test_planted_text_reaches_the_analysis(hostile):
    # otherwise the escaping tests below would prove nothing
    analysis, _ = hostile
    assert analysis.snippets["text"].str.contains("<script>", regex=False).any()
    assert analysis.snippets["text"].str.contains("onerror", regex=False).any()
    assert (analysis.tls["sni"] == SNI).any()


def test_report_escapes_captured_text(hostile):
    _, report = hostile
    text = report.read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert "<img src=x" not in text and "<svg" not in text.lower()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "a&lt;svg onload=alert(2)&gt;.example" in text


def test_report_is_self_contained_and_says_it_is_redacted(hostile):
    _, report = hostile
    text = report.read_text(encoding="utf-8")
    for attribute, url in re.findall(r'\b(src|href|action|srcset)="([^"]*)"', text):
        assert url.startswith(("data:image/png;base64,", "#")), (attribute, url[:60])
    assert "url(" not in text and "@import" not in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert "Values are redacted" in text
    assert text.count('src="data:image/png;base64,') == 3  # exposure, topology, timeline


def test_report_of_a_real_capture_is_redacted(tmp_path):
    analysis = flinkwire.analyze(S1, config=S1_CONFIG)
    assert analysis.reveal is False
    text = write_html(analysis, tmp_path / "s1.html").read_text(encoding="utf-8")
    for secret in LAB_SECRETS:
        assert secret not in text, secret
    assert "Verdict: PLAINTEXT" in text
    for section in SECTIONS:
        assert f'id="capture-1-{section}"' in text


def test_revealed_report_warns(tmp_path):
    analysis = flinkwire.analyze(_hostile_capture(tmp_path), reveal=True)
    text = render_html(analysis)
    assert "Values are REVEALED" in text and "Do not share it" in text


@pytest.mark.skipif(not TLS_CAPTURE.exists(), reason="TLS capture s3 not bundled")
def test_comparison_report(tmp_path):
    before = flinkwire.analyze(S1, config=S1_CONFIG)
    after = flinkwire.analyze(TLS_CAPTURE, config=TLS_CAPTURE.with_suffix(".config.yaml"))
    text = write_html(before, tmp_path / "both.html", compare_with=after).read_text("utf-8")
    assert 'id="comparison"' in text and 'id="capture-2-tls"' in text
    assert "Verdict: ENCRYPTED" in text
    assert text.count('src="data:image/png;base64,') == 7


def test_repr_html_is_escaped(hostile):
    analysis, _ = hostile
    text = analysis._repr_html_()
    assert "<script" not in text.lower() and "flinkwire" in text
    assert "values redacted" in text


def test_cli_report_html(tmp_path, capsys):
    out = tmp_path / "cli.html"
    status = main(["report", str(_hostile_capture(tmp_path)), "--html", str(out), "--quiet"])
    assert status == 0
    assert out.exists() and "HTML report written to" in capsys.readouterr().out


# -- in a real browser --------------------------------------------------------

def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run_chromium(binary: str, *args: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="flinkwire-chromium-")
    try:
        return subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class _Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.ids, self.handlers, self.text = [], set(), [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        for name, value in attrs:
            if name == "id":
                self.ids.add(value)
            if name.startswith("on"):
                self.handlers.append((tag, name, value))

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.skipif(_chromium() is None,
                    reason="chromium is not installed (Debian package 'chromium'; .ci/run "
                           "installs it)")
def test_chromium_renders_the_report_and_runs_nothing(hostile):
    _, report = hostile
    binary = _chromium()
    url = report.resolve().as_uri()

    shot = report.with_name("report.png")
    result = _run_chromium(binary, f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert shot.exists(), result.stderr[-2000:]
    from PIL import Image
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        colours = image.convert("RGB").resize((64, 100)).getcolors(64 * 100)
        assert colours is not None and len(colours) > 20  # not a blank page

    result = _run_chromium(binary, "--dump-dom", url)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = _Dom()
    dom.feed(result.stdout)
    tags = [tag for tag, _ in dom.tags]
    assert "script" not in tags and "svg" not in tags and "iframe" not in tags
    assert not dom.handlers
    images = [attrs.get("src", "") for tag, attrs in dom.tags if tag == "img"]
    assert len(images) == 3 and all(src.startswith("data:image/png;base64,") for src in images)
    for section in SECTIONS:
        assert f"capture-1-{section}" in dom.ids
    text = "".join(dom.text)
    assert SCRIPT in text and IMG in text and SNI in text  # shown as text, not run
    assert "Values are redacted" in text
