"""flinkwire against the peer corpus: 80 captures from nDPI, Zeek, Suricata and
tcpdump, labelled from those tools' own expected outputs (read in place)."""

import json

import pytest

import flinkwire

VERSION = {"TLSv1.0": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2",
           "TLSv1.3": "TLS 1.3", "SSLv3": "SSL 3.0", "SSLv2": "SSL 2.0"}


def _labelled(corpus):
    manifest = json.loads((corpus / "peers" / "manifest.json").read_text())
    for capture in manifest["captures"]:
        flows = [f for f in capture["flows"]
                 if f.get("l4") == "tcp" and f.get("proto") in ("tls", "plaintext")]
        if flows:
            yield capture, flows


def _key(client, server):
    return (client, server)


def _endpoint(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def test_peer_labels(shared_corpus):
    checked = {"verdict": 0, "version": 0, "sni": 0}
    wrong = []
    for capture, labelled in _labelled(shared_corpus):
        analysis = flinkwire.analyze(shared_corpus / "peers" / capture["file"])
        rows = {}
        for r in analysis.flows.itertuples():
            a, b = _endpoint(r.client_ip, r.client_port), _endpoint(r.server_ip, r.server_port)
            rows.setdefault(frozenset((a, b)), []).append(r)
        for label in labelled:
            found = rows.get(frozenset((label["client"], label["server"])))
            where = f"{capture['id']} {label['client']} -> {label['server']}"
            if not found:
                wrong.append(f"{where}: flow missing")
                continue
            verdicts = {r.verdict for r in found}
            checked["verdict"] += 1
            if label["proto"] not in verdicts:
                wrong.append(f"{where}: verdict {verdicts}, label {label['proto']}")
            tls_rows = [r for r in found if r.verdict == "tls"]
            if label["proto"] == "tls" and tls_rows:
                want = VERSION.get(label.get("tls_version") or "", label.get("tls_version"))
                if want and not str(want).startswith("TLSv1.3-draft"):
                    checked["version"] += 1
                    if want not in {r.tls_version for r in tls_rows}:
                        wrong.append(f"{where}: version {[r.tls_version for r in tls_rows]}, "
                                     f"label {want}")
                if label.get("sni"):
                    checked["sni"] += 1
                    if label["sni"] not in {r.sni for r in tls_rows}:
                        wrong.append(f"{where}: sni {[r.sni for r in tls_rows]}, "
                                     f"label {label['sni']}")
    assert checked["verdict"] > 100 and checked["version"] > 40 and checked["sni"] > 30
    assert not wrong, f"{len(wrong)} disagreements:\n" + "\n".join(wrong)
