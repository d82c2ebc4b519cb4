"""Rebuild the reassembled TCP streams the leakage tests read, using tshark.

Run from the repository root: ``python3 tests/data/leakage/extract_streams.py``.
For every shared corpus case (/work/shared/corpus/cases) each direction of each
flow is written as ``<case>.flow<N>.<c2s|s2c>.bin`` and checked against the
case's ``stream_sha256``; a mismatch stops the script, so a committed file is
always the stream the expect.json describes. A few peer captures with labelled
credentials are written the same way and listed in ``peers.json`` (no hash to
check there: their labels come from nDPI/Zeek, not from a stream hash).
"""

import hashlib
import json
import pathlib
import subprocess
import sys

CORPUS = pathlib.Path("/work/shared/corpus")
HERE = pathlib.Path(__file__).resolve().parent
LAB = HERE.parent.parent.parent / "captures"
LAB_SCENARIOS = ("s1-plaintext", "s6-plaintext-flink-1.20")

# peer id -> flow index in manifest.json whose credentials the tests check
PEER_FLOWS = {
    "ndpi__ftp": 0,
    "ndpi__imap": 0,
    "ndpi__pop3": 1,
    "ndpi__http_auth": 0,
    "zeek__http__basic-auth-with-colon": 0,
    "zeek__ftp__ipv4": 0,
    "suricata__base64-issue-5223": 0,
}


def follow(capture: pathlib.Path, selector: str) -> tuple[str, bytes, str, bytes]:
    """(node0, bytes node0 sent, node1, bytes node1 sent) of one TCP conversation."""
    out = subprocess.run(
        ["tshark", "-r", str(capture), "-q", "-z", f"follow,tcp,raw,{selector}"],
        capture_output=True, text=True, check=False,
    ).stdout
    nodes, sent = [], {0: bytearray(), 1: bytearray()}
    body = False
    for line in out.splitlines():
        if line.startswith("Node "):
            nodes.append(line.split(": ", 1)[1].strip())
            body = len(nodes) == 2
            continue
        if line.startswith("====="):
            body = False if nodes else body
            continue
        if body and line.strip():
            # tshark indents what node 1 sent with a tab
            who = 1 if line.startswith("\t") else 0
            sent[who] += bytes.fromhex(line.strip())
    if len(nodes) < 2:
        return "", b"", "", b""
    return nodes[0], bytes(sent[0]), nodes[1], bytes(sent[1])


def tshark_addr(endpoint: str) -> str:
    """The expect.json endpoint as tshark's follow selector wants it (no brackets)."""
    return endpoint.replace("[", "").replace("]", "")


def main() -> int:
    written = 0
    for expect_path in sorted((CORPUS / "cases").glob("*.expect.json")):
        expect = json.loads(expect_path.read_text())
        capture = CORPUS / "cases" / expect["capture"]
        for index, flow in enumerate(expect["tcp_flows"]):
            node0, sent0, node1, sent1 = follow(capture, str(index))
            # tshark prints IPv6 node names with brackets, as expect.json does
            client = flow["client"]
            if node0 == client:
                c2s, s2c = sent0, sent1
            elif node1 == client:
                c2s, s2c = sent1, sent0
            else:
                print(f"{expect['case']} flow {index}: client {client} not in {node0}, {node1}")
                return 1
            for direction, stream in (("c2s", c2s), ("s2c", s2c)):
                digest = hashlib.sha256(stream).hexdigest()
                if digest != flow["stream_sha256"][direction]:
                    print(f"{expect['case']} flow {index} {direction}: sha256 mismatch")
                    return 1
                out = HERE / f"{expect['case']}.flow{index}.{direction}.bin"
                out.write_bytes(stream)
                written += 1

    manifest = json.loads((CORPUS / "peers" / "manifest.json").read_text())
    peers = {}
    for capture_record in manifest["captures"]:
        if capture_record["id"] not in PEER_FLOWS:
            continue
        index = PEER_FLOWS[capture_record["id"]]
        flow = capture_record["flows"][index]
        client, server = tshark_addr(flow["client"]), tshark_addr(flow["server"])
        capture = CORPUS / "peers" / capture_record["file"]
        node0, sent0, node1, sent1 = follow(capture, f"{client},{server}")
        c2s, s2c = (sent0, sent1) if node0 in (client, flow["client"]) else (sent1, sent0)
        name = capture_record["id"]
        (HERE / f"{name}.c2s.bin").write_bytes(c2s)
        (HERE / f"{name}.s2c.bin").write_bytes(s2c)
        peers[name] = {
            "flow": flow,
            "source": capture_record["source"],
            "sha256": {
                "c2s": hashlib.sha256(c2s).hexdigest(),
                "s2c": hashlib.sha256(s2c).hexdigest(),
            },
        }
        written += 2
    (HERE / "peers.json").write_text(json.dumps(peers, indent=1, sort_keys=True) + "\n")
    written += lab_excerpts()
    print(f"wrote {written} stream files")
    return 0


def lab_excerpts() -> int:
    """Excerpts of the real Flink lab captures (captures/, README there) and lab.json.

    Whole REST exchanges that carry or mask the job parameters and config, the
    start of a data-plane stream, windows of the JobManager RPC stream around
    the deployed config and a checkpoint acknowledgement, and the start of a
    metrics-RPC and a blob stream (which hold no injected value: they test that
    nothing is reported from them). lab.json lists, per excerpt, where it was
    cut from (with the hash of the whole stream) and which injected values occur
    in it literally.
    """
    excerpts = {}
    written = 0
    for scenario in LAB_SCENARIOS:
        truth = json.loads((LAB / f"{scenario}.truth.json").read_text())
        capture = LAB / truth["capture"]
        injected = [i["value"] for i in truth["injected"]]
        taken = set()
        for index, connection in enumerate(truth["connections"]):
            role = connection["server_role"]
            selector = f"{connection['client']},{connection['server']}"
            node0, sent0, node1, sent1 = follow(capture, selector)
            c2s, s2c = (sent0, sent1) if node0 == connection["client"] else (sent1, sent0)
            for direction, data in (("c2s", c2s), ("s2c", s2c)):
                windows = []
                if role == "rest" and (b"/run HTTP" in c2s or b"/config HTTP" in c2s):
                    windows.append((0, len(data)))
                elif role == "data" and role not in taken and len(data) > 8192:
                    windows.append((0, 12288))
                elif role == "jobmanager-rpc" and role not in taken:
                    for marker, before, after in ((b"s3.secret-key", 2048, 4096),
                                                  (b"password=hunter2-fake", 1024, 1024)):
                        at = data.find(marker)
                        if at >= 0:
                            windows.append((max(0, at - before), at + after))
                elif role in ("metrics-rpc", "blob") and role not in taken and direction == "s2c":
                    windows.append((0, 6144))
                for start, end in windows:
                    piece = data[start:end]
                    name = f"lab-{scenario}-{index:02d}-{role}.{direction}.{start}.bin"
                    (HERE / name).write_bytes(piece)
                    written += 1
                    excerpts[name] = {
                        "scenario": scenario, "connection": index, "role": role,
                        "client": connection["client"], "server": connection["server"],
                        "direction": direction, "start": start, "length": len(piece),
                        "stream_sha256": hashlib.sha256(data).hexdigest(),
                        "sha256": hashlib.sha256(piece).hexdigest(),
                        "injected_present": [v for v in injected if v.encode() in piece],
                    }
            if any(e["role"] == role and e["scenario"] == scenario for e in excerpts.values()):
                if role != "rest":
                    taken.add(role)
    (HERE / "lab.json").write_text(json.dumps(excerpts, indent=1, sort_keys=True) + "\n")
    return written


if __name__ == "__main__":
    sys.exit(main())
