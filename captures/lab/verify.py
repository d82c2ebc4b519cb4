#!/usr/bin/env python3
"""Check every captures/*.truth.json against its pcap, using tshark only.

  python3 captures/lab/verify.py [DIR]  # DIR defaults to captures/; exit 1 on any mismatch

Checks: the JSON parses and has the schema's keys, roles and verdicts are from the
allowed sets, the capture is under 5 MB, and the connections list is exactly the
set of TCP connections in the pcap (one per SYN without ACK, by 4-tuple), with
`no-payload` exactly where tshark counts zero TCP payload bytes.
"""
import glob
import json
import os
import subprocess
import sys

CAPTURES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLES = {"jobmanager-rpc", "taskmanager-rpc", "metrics-rpc", "blob", "data", "rest", "unknown"}
VERDICTS = {"tls", "plaintext", "no-payload"}
MAX_BYTES = 5 * 1024 * 1024


def tshark(pcap, *args):
    r = subprocess.run(["tshark", "-r", pcap] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True, timeout=300, check=True)
    return r.stdout


def check(truth_path):
    errs = []
    t = json.load(open(truth_path))
    for k in ("scenario", "flink_version", "capture", "config_file", "processes", "connections", "injected"):
        if k not in t:
            errs.append("missing key " + k)
    pcap = os.path.join(CAPTURES, t["capture"])
    if not os.path.exists(os.path.join(CAPTURES, t["config_file"])):
        errs.append("config file missing")
    size = os.path.getsize(pcap)
    if size > MAX_BYTES:
        errs.append("capture too big: %d" % size)
    for p in t["processes"]:
        for e in p["listening"]:
            if e["role"] not in ROLES:
                errs.append("bad role %r" % e["role"])
    syns = tshark(pcap, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0", "-T", "fields",
                  "-e", "tcp.stream", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport")
    wire = {}
    for line in syns.splitlines():
        st, a, ap, b, bp = line.split("\t")
        wire.setdefault(int(st), ("%s:%s" % (a, ap), "%s:%s" % (b, bp)))
    pay = {}
    for line in tshark(pcap, "-Y", "tcp", "-T", "fields", "-e", "tcp.stream", "-e", "tcp.len").splitlines():
        st, _, ln = line.partition("\t")
        pay[int(st)] = pay.get(int(st), 0) + int(ln or 0)
    truth_pairs = [(c["client"], c["server"]) for c in t["connections"]]
    if sorted(truth_pairs) != sorted(wire.values()):
        errs.append("connections differ: truth %d, pcap SYNs %d" % (len(truth_pairs), len(wire)))
    if len(set(pay)) != len(wire):
        errs.append("pcap has %d TCP streams but %d SYNs" % (len(set(pay)), len(wire)))
    by_pair = {v: k for k, v in wire.items()}
    for c in t["connections"]:
        if c["server_role"] not in ROLES or c["expected_verdict"] not in VERDICTS:
            errs.append("bad role/verdict in %s" % c)
        st = by_pair.get((c["client"], c["server"]))
        if st is None:
            continue
        if (pay.get(st, 0) == 0) != (c["expected_verdict"] == "no-payload"):
            errs.append("no-payload mismatch for %s -> %s" % (c["client"], c["server"]))
    for i in t["injected"]:
        if not set(i["readable_on_roles"]) <= ROLES:
            errs.append("bad roles in injected %s" % i)
    return t, size, errs


def main():
    global CAPTURES
    if len(sys.argv) > 1:
        CAPTURES = sys.argv[1]
    bad = 0
    for tp in sorted(glob.glob(os.path.join(CAPTURES, "*.truth.json"))):
        t, size, errs = check(tp)
        print("%-34s %8d bytes %3d connections  %s" % (t["scenario"], size, len(t["connections"]),
                                                        "OK" if not errs else "FAIL"))
        for e in errs:
            print("    " + e)
        bad += bool(errs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
