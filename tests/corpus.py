"""Paths and loaders for the test corpora, shared by the test modules."""

import hashlib
import json
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
CASES = DATA / "cases"
SHARED = ROOT.parent / "shared" / "corpus"


def case_names():
    return sorted(p.name[: -len(".expect.json")] for p in CASES.glob("*.expect.json"))


def load_case(name):
    expect = json.loads((CASES / f"{name}.expect.json").read_text())
    return CASES / expect["capture"], expect


def endpoint_text(ip: bytes, port: int) -> str:
    if len(ip) == 4:
        return f"{socket.inet_ntop(socket.AF_INET, ip)}:{port}"
    return f"[{socket.inet_ntop(socket.AF_INET6, ip)}]:{port}"


def collect_streams(paths, limits=None):
    """Run the flow builder and keep, per flow, what a test needs (heads hashed)."""
    from flinkwire.tcp.build import build_flows

    seen = []

    def keep(flow):
        side = flow.client if flow.client is not None else 0
        client, server = flow.halves[side], flow.halves[1 - side]
        seen.append({
            "index": flow.index,
            "client": endpoint_text(*flow.endpoint(side)),
            "server": endpoint_text(*flow.endpoint(1 - side)),
            "c2s": client.head(), "s2c": server.head(),
            "frames": {"c2s": client.frames, "s2c": server.frames},
            "payload_bytes": {"c2s": client.unique_bytes, "s2c": server.unique_bytes},
            "gap_bytes": {"c2s": client.gap_bytes, "s2c": server.gap_bytes},
            "anomalies": {"c2s": list(client.anomalies), "s2c": list(server.anomalies)},
            "dups": client.capture_duplicates + server.capture_duplicates,
            "first_ts": flow.first_ts, "last_ts": flow.last_ts,
        })

    stats = build_flows([str(p) for p in paths], keep, limits)
    seen.sort(key=lambda f: f["index"])
    return stats, seen


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
