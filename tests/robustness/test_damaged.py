"""Damaged captures: read to the point of damage, anomaly rows saying what and where,
and the CLI says so on stderr with exit 0 (2 only when no packet could be read).

The damaged files are the ones a peer tool flags: in the shared peers manifest, a
`file_facts.parse_error` or the categories file-read-error / invalid-timestamp;
in the shared cases, pcap-truncated-*. They are read in place, never copied.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import flinkwire
from corpus import SHARED
from flinkwire.reading import open_capture

ROOT = Path(__file__).resolve().parents[2]
DAMAGE_CATEGORIES = {"file-read-error", "invalid-timestamp"}


def _damaged():
    if not SHARED.is_dir():
        return []
    manifest = json.loads((SHARED / "peers" / "manifest.json").read_text())
    out = []
    for record in manifest["captures"]:
        facts = record["file_facts"]
        if facts.get("parse_error") or DAMAGE_CATEGORIES & set(record["categories"]):
            out.append(pytest.param(SHARED / "peers" / record["file"], facts, id=record["id"]))
    for path in sorted((SHARED / "cases").glob("pcap-truncated-*.pcap")):
        out.append(pytest.param(path, {}, id=path.stem))
    return out


DAMAGED = _damaged()


def test_the_corpus_has_damaged_files(shared_corpus):
    assert len(DAMAGED) >= 5, [p.id for p in DAMAGED]


def _reading_rows(analysis):
    return analysis.anomalies[analysis.anomalies["source"] == "reading"]


@pytest.mark.parametrize("path, facts", DAMAGED)
def test_read_to_the_point_of_damage(shared_corpus, path, facts):
    with open_capture(path) as capture:
        records = sum(1 for _ in capture)
        info = capture.info
    assert info.anomalies, "the damage is reported"
    analysis = flinkwire.analyze(path)
    rows = _reading_rows(analysis)
    assert len(rows) == len(info.anomalies)
    size = os.path.getsize(path)
    for row in rows.itertuples(index=False):
        assert row.kind and row.detail and row.file == str(path)
        assert row.offset is not None and 0 <= row.offset <= size       # where
    stated = re.search(r"at offset (\d+)", facts.get("parse_error") or "")
    if stated:
        assert int(stated.group(1)) in set(rows["offset"])               # where the peer says
    if facts.get("records_parsed"):
        assert records >= facts["records_parsed"]                        # as far as the peer
    if records:
        assert len(analysis.flows) >= 1                                  # partial results


@pytest.mark.parametrize("path, facts", DAMAGED)
def test_cli_warns_and_exits_zero(shared_corpus, path, facts):
    with open_capture(path) as capture:
        records = sum(1 for _ in capture)
    run = subprocess.run([sys.executable, "-m", "flinkwire.faces.cli", "report", "--quiet",
                          str(path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert "Traceback" not in run.stderr + run.stdout
    assert "warning" in run.stderr
    if records:
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip()
    else:
        # Nothing before the damage is a whole record: bad input, said in one line.
        assert run.returncode == 2 and "no packet could be read" in run.stderr


def test_cli_exit_two_only_when_nothing_was_read(tmp_path):
    header_only = tmp_path / "header-only.pcap"
    header_only.write_bytes((ROOT / "captures" / "s7-internal-tls13-no-suites.pcap")
                            .read_bytes()[:24])
    cut_first = tmp_path / "cut-first.pcap"
    cut_first.write_bytes((ROOT / "captures" / "s7-internal-tls13-no-suites.pcap")
                          .read_bytes()[:24 + 16 + 10])
    codes = {}
    for path in (header_only, cut_first):
        run = subprocess.run([sys.executable, "-m", "flinkwire.faces.cli", "report", "--quiet",
                              str(path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert "Traceback" not in run.stderr
        codes[path.name] = run.returncode
    # An empty but sound capture is not damage; a capture whose first record is cut is.
    assert codes == {"header-only.pcap": 0, "cut-first.pcap": 2}
