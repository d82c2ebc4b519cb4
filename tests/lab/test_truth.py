"""The bar for the main job: every real lab capture against the lab's own truth file.

The truth files come from what the lab knew while it ran Flink (listening
sockets, config, logs, an independent tshark pass), never from flinkwire.
"""

import json
from pathlib import Path

import pytest

import flinkwire

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
TRUTHS = sorted(CAPTURES.glob("*.truth.json"))


def _load(truth_path):
    truth = json.loads(truth_path.read_text())
    config = truth.get("config_file")
    config = CAPTURES / config if config else None
    return truth, CAPTURES / truth["capture"], config


def _endpoint(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@pytest.fixture(scope="module", params=TRUTHS, ids=[p.name.split(".")[0] for p in TRUTHS])
def lab(request):
    truth, capture, config = _load(request.param)
    analysis = flinkwire.analyze(capture, config=config, reveal=True)
    return truth, analysis


def test_there_are_lab_captures():
    assert TRUTHS, "captures/*.truth.json missing: the lab records them (make lab)"


def test_every_connection_has_its_role_and_verdict(lab):
    truth, analysis = lab
    tcp = analysis.flows[analysis.flows["transport"] == "tcp"]
    got = {(_endpoint(r.client_ip, r.client_port), _endpoint(r.server_ip, r.server_port)):
           (r.role, r.verdict) for r in tcp.itertuples()}
    want = {(c["client"], c["server"]): (c["server_role"], c["expected_verdict"])
            for c in truth["connections"]}
    assert set(got) == set(want), "flows and truth connections differ"
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not wrong, f"(got, want) role/verdict: {wrong}"


def _texts_by_role(analysis):
    """Per role, the readable text flinkwire shows (adjacent snippets joined)."""
    role_of = dict(zip(analysis.flows["flow_id"], analysis.flows["role"]))
    out = {}
    snippets = analysis.snippets.sort_values(["flow_id", "direction", "offset"])
    last = {}
    for s in snippets.itertuples():
        key = (s.flow_id, s.direction)
        role = role_of[s.flow_id]
        joined = last.get(key) == s.offset
        out.setdefault(role, []).append(("" if joined else "\n") + s.text)
        last[key] = s.offset + len(s.text)
    return {role: "".join(parts) for role, parts in out.items()}


def test_injected_strings_readable_exactly_where_the_wire_shows_them(lab):
    truth, analysis = lab
    texts = _texts_by_role(analysis)
    for item in truth["injected"]:
        seen = {role for role, text in texts.items() if item["value"] in text}
        assert seen == set(item["readable_on_roles"]), item["value"]


def test_redacted_by_default_no_injected_secret_in_full(lab):
    truth, _ = lab
    capture, config = _load(CAPTURES / f"{truth['scenario']}.truth.json")[1:]
    analysis = flinkwire.analyze(capture, config=config)
    shown = analysis.to_json() + analysis.summary()
    for item in truth["injected"]:
        if item["kind"] == "name":
            continue  # a person's name has no shape a scanner can know
        secret = item["value"].split("=", 1)[-1]
        assert secret not in shown, item["value"]
