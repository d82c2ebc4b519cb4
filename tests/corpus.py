"""Paths and loaders for the test corpora, shared by the test modules."""

import functools
import hashlib
import ipaddress
import json
import socket
import struct
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


# -- streams of the real lab captures (captures/README.md) ------------------------------

CAPTURES = ROOT / "captures"


@functools.lru_cache(maxsize=None)
def lab_streams(name):
    """{(client, server): (c2s, s2c)} and the truth of a lab capture, or skip the test."""
    import pytest

    from flinkwire.tcp.build import build_flows

    path = CAPTURES / f"{name}.pcap"
    if not path.exists():
        pytest.skip(f"{path} absent")
    streams = {}

    def keep(flow):
        side = flow.client if flow.client is not None else 0
        ends = [flow.endpoint(i) for i in (side, 1 - side)]
        key = tuple(f"{ipaddress.ip_address(ip)}:{port}" for ip, port in ends)
        streams[key] = (flow.halves[side].head(), flow.halves[1 - side].head())

    build_flows([str(path)], keep)
    truth = json.loads((CAPTURES / f"{name}.truth.json").read_text())
    return streams, truth


def streams_of_role(name, role):
    """The (c2s, s2c) heads of every plaintext flow of `role` in a lab capture."""
    import pytest

    streams, truth = lab_streams(name)
    found = [streams[(c["client"], c["server"])] for c in truth["connections"]
             if c["server_role"] == role and c.get("expected_verdict") == "plaintext"
             and (c["client"], c["server"]) in streams]
    if not found:
        pytest.skip(f"no plaintext {role} flow in {name}")
    return found


def split_pcap(source: Path, targets: list[Path]) -> int:
    """Cut a classic pcap into len(targets) files of equal packet counts, like a
    rotating tcpdump -C/-G would (same file header, records in order)."""
    data = source.read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    records, pos = [], 24
    while pos + 16 <= len(data):
        (incl_len,) = struct.unpack_from(order + "I", data, pos + 8)
        records.append(data[pos:pos + 16 + incl_len])
        pos += 16 + incl_len
    per_file = -(-len(records) // len(targets))
    for number, target in enumerate(targets):
        target.write_bytes(data[:24] + b"".join(records[number * per_file:
                                                        (number + 1) * per_file]))
    return len(records)
