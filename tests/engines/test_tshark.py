"""engine="tshark" against flinkwire's own engine: the same flows, the same verdicts.

Wireshark cannot tell readable from opaque bytes on Flink's ports, so its
`plaintext` stands for "not TLS": flinkwire's `plaintext` and `opaque` both
match it. TLS versions and SNI are compared where both engines have one.
"""

import math
import shutil
from pathlib import Path

import pytest

import flinkwire

if shutil.which("tshark") is None:
    pytest.skip("tshark is not installed (CI installs it: apt-get install tshark)",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
LAB = sorted((ROOT / "captures").glob("*.pcap"))
CASES = sorted((ROOT / "tests" / "data" / "cases").glob("*.pcap"))
PEERS = ROOT.parent / "shared" / "corpus" / "peers" / "captures"
NOT_TLS = {"plaintext": "not TLS", "opaque": "not TLS"}


def _value(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _flow(r) -> str:
    return f"{r.client_ip}:{r.client_port} -> {r.server_ip}:{r.server_port}"


def disagreements(path: Path) -> tuple[int, list[str]]:
    """How many TCP flows were compared, and every difference between the engines."""
    theirs = flinkwire.analyze(path, engine="tshark").flows
    ours = flinkwire.analyze(path).flows
    ours = ours[ours["transport"] == "tcp"]
    by_tshark = {r.flow_id: r for r in theirs.itertuples()}
    by_us = {r.flow_id: r for r in ours.itertuples()}
    found = []
    for fid in sorted(set(by_tshark) | set(by_us)):
        t, f = by_tshark.get(fid), by_us.get(fid)
        if t is None or f is None:
            r = t if f is None else f
            found.append(f"{path.name} {_flow(r)}: only in "
                         f"{'tshark' if f is None else 'flinkwire'} ({r.verdict})")
            continue
        if NOT_TLS.get(t.verdict, t.verdict) != NOT_TLS.get(f.verdict, f.verdict):
            found.append(f"{path.name} {_flow(f)}: verdict tshark {t.verdict}, "
                         f"flinkwire {f.verdict}")
        for column in ("tls_version", "sni"):
            a, b = _value(getattr(t, column)), _value(getattr(f, column))
            if a and b and a != b:
                found.append(f"{path.name} {_flow(f)}: {column} tshark {a}, flinkwire {b}")
    return len(by_us), found


@pytest.mark.parametrize("capture", LAB, ids=lambda p: p.stem)
def test_lab_captures_have_no_disagreement(capture):
    compared, found = disagreements(capture)
    assert compared >= 5
    assert not found, f"{len(found)} disagreements:\n" + "\n".join(found)


def test_shared_cases_have_no_disagreement():
    found, compared = [], 0
    for capture in CASES:
        count, more = disagreements(capture)
        compared += count
        found += more
    assert compared >= len(CASES)
    assert not found, f"{len(found)} disagreements:\n" + "\n".join(found)


def test_peer_corpus_has_no_disagreement():
    if not PEERS.is_dir():
        pytest.skip(f"{PEERS} is absent: the shared peer corpus lives beside the repo")
    found, compared = [], 0
    for capture in sorted(PEERS.iterdir()):
        if capture.suffix not in (".pcap", ".pcapng", ".cap"):
            continue
        count, more = disagreements(capture)
        compared += count
        found += more
    assert compared > 100
    assert not found, f"{len(found)} disagreements:\n" + "\n".join(found)


def test_tls_is_decided_by_the_bytes_not_the_port():
    """The pitfall of `tshark -Y tls`: TLS on 8081 and plaintext on 443."""
    flows = flinkwire.analyze(ROOT / "tests" / "data" / "cases" / "tls-8081-plain-443.pcap",
                              engine="tshark").flows.set_index("server_port")
    assert flows.loc[8081, "verdict"] == "tls" and flows.loc[8081, "sni"] == "flink.example.com"
    assert flows.loc[443, "verdict"] == "plaintext"


def test_the_faces_take_a_tshark_analysis(tmp_path):
    analysis = flinkwire.analyze(LAB[0], engine="tshark")
    assert analysis.summary() and analysis.to_dict()["packets"] == analysis.stats.packets
    assert set(analysis.channels["role"]) >= {"rest"}
    with pytest.raises(ValueError):
        flinkwire.analyze(LAB[0], engine="wireshark")


def test_a_file_tshark_cannot_read_is_a_capture_error(tmp_path):
    bad = tmp_path / "notes.pcap"
    bad.write_text("not a capture at all")
    with pytest.raises(flinkwire.CaptureError):
        flinkwire.analyze(bad, engine="tshark")
