"""The Analysis object: one DataFrame per concern, every row keyed by `flow_id`.

`analyze` runs the whole pipeline (reading -> packets -> tcp -> per-flow
examination), then settles what needs all flows at once: roles of TLS flows on
random ports, JobManager versus TaskManager RPC, hosts, the Flink version, and
the findings with their remedies. Nothing here prints; the faces do.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
from collections import Counter
from operator import attrgetter, itemgetter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ..flink import knowledge, roles
from ..flink.config import load_config
from ..flink.remediation import remedy
from ..tcp.build import build_flows, total_size
from ..tcp.flows import Limits
from .arguments import check_arguments
from .examine import Context, FixedRow, RowList, Rows, examiner

log = logging.getLogger(__name__)

FLOW_COLUMNS = [
    "flow_id", "first_ts", "last_ts", "transport", "client_ip", "client_port", "server_ip",
    "server_port", "role", "role_evidence", "verdict", "tls_version", "sni", "cipher",
    "packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c", "gap_bytes_c2s", "gap_bytes_s2c",
    "retransmitted_bytes", "readable_bytes", "handshake_seen", "established", "closed",
    "client_decided_by",
    "starttls_offset", "vlan", "capture_duplicates",
]
FINDING_COLUMNS = ["flow_id", "role", "severity", "kind", "value", "evidence", "remediation",
                   "direction", "offset", "ts", "count"]
SNIPPET_COLUMNS = ["flow_id", "direction", "offset", "ts", "text"]
ANOMALY_COLUMNS = ["flow_id", "direction", "offset", "ts", "kind", "length", "source",
                   "detail", "file"]
CHANNEL_COLUMNS = ["role", "group", "flows", "bytes", "tls_flows", "plaintext_flows",
                   "opaque_flows", "no_payload_flows", "tls_share", "plaintext_share",
                   "readable"]

CHANNEL_READS = ("flow_id", "role", "verdict", "bytes_c2s", "bytes_s2c")

SEVERITY_OF_KIND = {
    "card-number": "high", "password": "high", "config-secret": "high", "token": "high",
    "api-key": "high", "bearer-token": "high", "basic-auth": "high", "cookie": "medium",
    "private-key": "high", "aws-access-key": "high", "jwt": "high", "email": "medium",
    "job-code": "high",
}
OLD_TLS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1")
WEAK_CIPHER_PARTS = ("_RC4_", "_DES_", "_3DES_", "_NULL_", "_EXPORT", "_anon_", "_MD5")
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}
EMPTY_CONNECTION_EVIDENCE = (
    "TCP connection opened and closed without one payload byte: typical of a TLS handshake "
    "that failed before its first record (no shared protocol or suite) or a refused peer")


def default_capture() -> Path:
    """The bundled plaintext sample from a real Flink cluster (see captures/README.md)."""
    here = Path(__file__).resolve().parents[2] / "captures" / "s1-plaintext.pcap"
    return here


def prepare(path_or_paths, config, reveal: bool, min_snippet: int):
    """(paths, FlinkConfig or None, Context): what every way of analysing starts from."""
    if isinstance(path_or_paths, (str, os.PathLike)):
        paths = [os.fspath(path_or_paths)]
    else:
        paths = [os.fspath(p) for p in path_or_paths]
    if len(paths) > 1:
        from .merge import distinct_paths  # the same file given twice is read once
        paths = distinct_paths(paths)
    flink_config = load_config(config) if config is not None else None
    port_roles = dict(flink_config.port_roles()) if flink_config is not None else {}
    return paths, flink_config, Context(port_roles=port_roles, reveal=reveal,
                                        min_snippet=min_snippet)


def analyze(path_or_paths, config=None, reveal: bool = False, *, limits: Limits | None = None,
            progress=None, min_snippet: int = 8, executor=None,
            engine: str = "flinkwire", shards: int = 1) -> "Analysis":
    """Analyse one capture or several (rotated files, one per node) as one analysis.

    `config` is a Flink config file (`config.yaml` or `flink-conf.yaml`) whose
    ports name the channels. With `reveal=False` (the default) every finding
    value and snippet is redacted. Raises `CaptureError` for a file that is not
    a capture and `ConfigError` for an unreadable config; damage inside a
    capture becomes rows of `anomalies` instead.

    Several files are analysed in parallel, one per worker, and merged (a flow
    continuing across rotated files stays one flow; see `tables.merge`):
    `executor` is a `concurrent.futures.Executor`, a `dask.distributed.Client`,
    None for a local process pool, or False to read the files in order into
    one flow table in this process. With `shards=N` (N > 1), one file is read
    by N processes, each examining a share of its flows, into the tables one
    process makes (see `tables.shard`). `engine="tshark"` builds the `flows`
    table from Wireshark's dissectors instead (see `engines.tshark`). Refuses
    (TypeError, ValueError, naming the argument) a `reveal` that is not a bool, an
    open file or bytes for the path, an empty list, a config that is not a path and
    a `shards` that is not an int of 1 or more.
    """
    path_or_paths = check_arguments(path_or_paths, config, reveal, min_snippet, limits,
                                    shards)
    paths, flink_config, ctx = prepare(path_or_paths, config, reveal, min_snippet)
    if engine == "tshark":
        from ..engines.tshark import tshark_rows
        rows, stats = tshark_rows(paths, ctx, progress=progress)
        return Analysis(paths, rows, stats, ctx, flink_config, reveal)
    if engine != "flinkwire":
        raise ValueError(f"unknown engine {engine!r}: 'flinkwire' or 'tshark'")
    if len(paths) > 1 and executor is not False:
        from .merge import analyze_parallel
        rows, stats = analyze_parallel(paths, ctx, limits, progress, executor)
        return Analysis(paths, rows, stats, ctx, flink_config, reveal)
    if shards > 1 and len(paths) == 1:
        from .shard import analyze_sharded
        rows, stats = analyze_sharded(paths[0], ctx, limits, progress, shards)
        return Analysis(paths, rows, stats, ctx, flink_config, reveal)
    rows = Rows((limits or Limits()).max_rows_per_table)
    rows.early_frames = EARLY_FRAMES
    on_flow = examiner(ctx, rows)

    stats = build_flows(paths, on_flow, limits, progress)
    return Analysis(paths, rows, stats, ctx, flink_config, reveal)


class Analysis:
    """Everything flinkwire learned from the capture(s), as DataFrames."""

    def __init__(self, paths, rows: Rows, stats, ctx: Context, config, reveal: bool):
        with _collector_paused():
            self._build(paths, rows, stats, ctx, config, reveal)

    def _build(self, paths, rows: Rows, stats, ctx: Context, config, reveal: bool):
        _hand_back()
        self.paths = list(paths)
        self.stats = stats
        self.config = config
        self.reveal = reveal
        self.flink_version = self._flink_version(rows, ctx, config)

        # Analysis takes the rows over: each list is let go as soon as its table is a
        # frame, not kept beside it (on a 1 GB capture of 19,845 flows the flow and TLS
        # rows alone were 56 MB).
        flow_rows = sorted(rows.flows, key=_row_reader(rows.flows, ("first_ts", "index")))
        rows.flows = []
        refined = roles.refine_roles([
            {"flow_id": r["flow_id"], "server_ip": r["server_ip"],
             "server_port": r["server_port"], "client_ip": r["client_ip"], "role": r["role"],
             "evidence": r["role_evidence"], "verdict": r["verdict"],
             "pekko": (r["_content"] if (r["_content"] or {}).get("kind") == "pekko" else None)}
            for r in flow_rows
        ], in_place=True)  # the dicts are made for the call: no second copy per flow
        for row, new in zip(flow_rows, refined):
            row["role"] = new["role"]
            row["role_evidence"] = new["evidence"] if isinstance(new["evidence"], str) \
                else "; ".join(new["evidence"])
        flow_tuples = _read_rows(flow_rows, FLOW_COLUMNS)
        del flow_rows
        self.flows = _frame_of_tuples(flow_tuples, FLOW_COLUMNS)
        # The settling below reads the flows a value at a time: from the tuples the frame
        # was made of, since reading the frame's Arrow string columns back costs a Python
        # object per value (a tenth of the tables' time, 36 ms of 365 on the 100 MB capture).
        flows = _columns_as_read(self.flows, (
            "flow_id", "first_ts", "transport", "client_ip", "client_port", "server_ip",
            "server_port", "role", "role_evidence", "verdict", "bytes_c2s", "bytes_s2c",
            "established"), flow_tuples)
        del flow_tuples
        role_of = dict(zip(flows["flow_id"], flows["role"]))

        # The refined copies hold every key hosts_from reads, with the settled role.
        self.hosts = _frame(roles.hosts_from(refined), ["ip", "component", "evidence"])
        del refined

        # Findings read the TLS, HTTP, blob and secret rows: made (as tuples) before
        # those rows become frames and go.
        self.verdict = self._cluster_verdict(flows, rows.tls)
        findings = self._findings(flows, rows, role_of, rows.tls)
        # Only what _channels reads is kept while the findings become a frame, the
        # peak of this step (8.8 MiB traced on the 100 MB capture, 9.2 at main).
        flows = {name: flows[name] for name in CHANNEL_READS}
        self.findings = _frame_of_tuples(findings, FINDING_COLUMNS, categories=("remediation",))
        rows.findings = []
        read = _columns_as_read(self.findings, ("flow_id", "kind"), findings)
        del findings
        channels = self._channels(flows, read["flow_id"], read["kind"])
        del flows, read
        _hand_back()

        self.snippets = _frame(rows.snippets, SNIPPET_COLUMNS)
        rows.snippets = []
        for name in ("tls", "http", "rpc", "records", "blobs"):
            setattr(self, name, _frame(getattr(rows, name), ["flow_id"]))
            setattr(rows, name, [])
            _hand_back()

        anomalies = list(rows.anomalies)
        rows.anomalies = []
        for info in stats.files:
            for a in info.anomalies:
                anomalies.append({"flow_id": None, "direction": None,
                                  "offset": a.get("file_offset"), "ts": None,
                                  "kind": a["kind"], "length": a.get("incl_len"),
                                  "source": "reading", "detail": a["detail"],
                                  "file": info.path})
        for reason, count in sorted(stats.skipped.items()):
            if reason.startswith(("IP protocol", "not IP")):
                continue  # ARP, ICMP and friends are not damage
            anomalies.append({"flow_id": None, "direction": None, "offset": None, "ts": None,
                              "kind": "undecoded-packets", "length": count,
                              "source": "packets", "detail": f"{count} packets: {reason}"})
        for server, count in sorted(ctx.unanswered.items(), key=lambda kv: -kv[1]):
            anomalies.append({"flow_id": None, "direction": None, "offset": None, "ts": None,
                              "kind": "unanswered-syn", "length": count, "source": "limits",
                              "detail": f"{count} more unanswered connection attempts to "
                                        f"{server} (a scan?) counted, not kept as flows"})
        if stats.evicted:
            anomalies.append({"flow_id": None, "direction": None, "offset": None, "ts": None,
                              "kind": "limit", "length": stats.evicted, "source": "limits",
                              "detail": f"{stats.evicted} flows evicted from a full flow "
                                        "table (max_flows); each was finished early"})
        self.anomalies = _frame(anomalies, ANOMALY_COLUMNS)
        del anomalies

        self.channels = _frame(channels, CHANNEL_COLUMNS)

    # -- settled over all flows ---------------------------------------------

    @staticmethod
    def _flink_version(rows, ctx, config):
        if ctx.flink_versions:
            return sorted(ctx.flink_versions)[-1]
        hints = Counter()
        for row in rows.flows:
            content = row.get("_content") or {}
            if content.get("flink_version_hint"):
                hints[content["flink_version_hint"]] += 1
        if hints:
            return hints.most_common(1)[0][0]
        if config is not None and getattr(config, "major_version", None):
            return config.major_version
        return None

    def _remedy(self, role, kind) -> str:
        """`remedy` for this analysis's Flink version, one string per (role, kind): a
        flow finding each repeats a remedy of a few hundred characters (42,253 findings
        on a 1 GB capture)."""
        key = (role, kind)
        text = self._remedies.get(key)
        if text is None:
            text = self._remedies[key] = remedy(role, kind, self.flink_version)
        return text

    def _findings(self, flows: dict, rows: Rows, role_of: dict, tls_rows) -> list[tuple]:
        """The findings as tuples in FINDING_COLUMNS order, most severe first (a tuple
        is a sixth of an eleven-key dict). `flows` is `_columns_as_read` of the flows."""
        self._remedies = {}
        findings = []
        for (flow_id, role, verdict, transport, established, client_ip, client_port,
             server_ip, server_port, first_ts, bytes_c2s, bytes_s2c, role_evidence) in zip(
                flows["flow_id"], flows["role"], flows["verdict"], flows["transport"],
                flows["established"], flows["client_ip"], flows["client_port"],
                flows["server_ip"], flows["server_port"], flows["first_ts"],
                flows["bytes_c2s"], flows["bytes_s2c"], flows["role_evidence"]):
            if verdict != "plaintext" and verdict != "no-payload":
                continue
            group = knowledge.channel_group(role)
            if (verdict == "no-payload" and transport == "tcp" and established
                    and group in ("internal", "rest")):
                findings.append((
                    flow_id, role, "medium", "empty-connection",
                    f"{client_ip}:{client_port} -> {server_ip}:{server_port}",
                    EMPTY_CONNECTION_EVIDENCE, self._remedy(role, "tls-handshake-failed"),
                    None, None, first_ts, 1))
                continue
            if verdict != "plaintext":
                continue
            if group in ("internal", "rest"):
                severity = "high"
                kind = "plaintext-channel"
            elif group == "unencryptable":
                severity = "medium"
                kind = "unencryptable-channel"
            elif group == "external-service":
                severity = "medium"
                kind = "plaintext-channel"
            else:
                continue
            findings.append((
                flow_id, role, severity, kind,
                f"{client_ip}:{client_port} -> {server_ip}:{server_port}",
                f"{role} flow in plaintext ({bytes_c2s + bytes_s2c} "
                f"bytes readable on the wire); {role_evidence}",
                self._remedy(role, kind), None, None, first_ts, 1))
        findings += self._tls_findings(flows, role_of, tls_rows)
        findings += self._job_code_findings(role_of, rows)
        for secret in rows.findings:
            role = role_of.get(secret["flow_id"], "unknown")
            findings.append((
                secret["flow_id"], role, SEVERITY_OF_KIND.get(secret["kind"], "medium"),
                secret["kind"], secret["value"],
                f"{secret['direction']} stream offset {secret['offset']}: {secret['context']}"
                + (f"; seen {secret['count']} times" if secret["count"] > 1 else "")
                + (f" (user {secret['username']})" if secret.get("username") else ""),
                self._remedy(role, secret["kind"]), secret["direction"], secret["offset"],
                secret["ts"], secret["count"]))
        findings.sort(key=lambda f: (SEVERITY_ORDER.get(f[2], 9), f[9] or 0))
        del self._remedies
        return findings

    def _cluster_verdict(self, flows: dict, tls_rows) -> dict:
        """Internal TLS and REST TLS: on, off, partial or not seen; mutual authentication.
        `flows` is `_columns_as_read` of the flows."""
        # In Python over three columns: selecting rows of the frame copies them into
        # Arrow buffers the allocator keeps (16 MB on a 1 GB capture).
        groups = list(map(knowledge.channel_group, flows["role"]))
        verdict = {}
        tls_by_flow = {t["flow_id"]: t for t in tls_rows}
        for group in ("internal", "rest"):
            carrying = [(fid, kind) for fid, kind, mine in zip(flows["flow_id"],
                                                               flows["verdict"], groups)
                        if mine == group and kind != "no-payload"]
            if not carrying:
                state = "not seen"
            elif all(kind == "tls" for _, kind in carrying):
                state = "on"
            elif any(kind == "tls" for _, kind in carrying):
                state = "partial"
            else:
                state = "off"
            verdict[f"{group}_tls"] = state
            rows = [tls_by_flow[fid] for fid, _ in carrying if fid in tls_by_flow]
            requested = [r.get("client_certificate_requested") for r in rows]
            if not rows:
                mutual = "n/a"
            elif all(r is True for r in requested):
                mutual = "yes"
            elif any(r is False for r in requested):
                mutual = "no" if not any(r is True for r in requested) else "partial"
            else:
                mutual = "not visible (TLS 1.3)"
            verdict[f"{group}_mutual_auth"] = mutual
        return verdict

    def _job_code_findings(self, role_of: dict, rows: Rows) -> list[tuple]:
        """Job jars readable on the wire: blob transfers and REST uploads."""
        out = []
        seen = set()
        sources = [("blobs", row, row.get("zip")) for row in _rows_with(rows.blobs, "zip")]
        for row in _rows_with(rows.http, "parts"):
            for part in row.get("parts") or []:
                if isinstance(part, dict):
                    sources.append(("http", row, part.get("zip")))
        for table, row, archive in sources:
            if not isinstance(archive, dict) or not archive.get("entries"):
                continue
            fid = row["flow_id"]
            entries = [e for e in archive["entries"] if isinstance(e, str)]
            key = (fid, tuple(entries[:50]))
            if key in seen:
                continue
            seen.add(key)
            classes = [e for e in entries if e.endswith(".class")]
            role = role_of.get(fid, "unknown")
            out.append((
                fid, role, "high", "job-code",
                f"{len(entries)} entries, {len(classes)} classes: "
                + ", ".join(classes[:3]) + ("…" if len(classes) > 3 else ""),
                f"a JAR crossed the {role} channel in plaintext "
                f"({table} table, offset {row.get('offset')})",
                self._remedy(role, "plaintext-channel"), row.get("direction"),
                row.get("offset"), row.get("ts"), 1))
        return out

    def _tls_findings(self, flows: dict, role_of: dict, tls_rows) -> list[tuple]:
        """How sound the TLS is: version, suite, certificates, client auth, failures."""
        out = []
        if not tls_rows:
            return out
        first_ts = dict(zip(flows["flow_id"], flows["first_ts"]))

        def add(fid, severity, kind, value, evidence):
            role = role_of.get(fid, "unknown")
            out.append((fid, role, severity, kind, value, evidence, self._remedy(role, kind),
                        None, None, first_ts.get(fid), 1))

        for t in tls_rows:
            fid = t["flow_id"]
            role = role_of.get(fid, "unknown")
            version, cipher = t.get("version"), str(t.get("cipher") or "")
            if version in OLD_TLS:
                add(fid, "high", "old-tls-version", version,
                    f"negotiated {version}; TLS below 1.2 has known attacks")
            if cipher.startswith("TLS_RSA_") or cipher.startswith("SSL_RSA_"):
                add(fid, "medium", "rsa-key-exchange", cipher,
                    "RSA key exchange: no forward secrecy, so whoever obtains the server key "
                    "can decrypt this recorded flow")
            elif any(weak in cipher for weak in WEAK_CIPHER_PARTS):
                add(fid, "medium", "weak-cipher", cipher, "cipher suite is considered weak")
            for cert in (t.get("server_certificates") or [])[:1]:
                subject = cert.get("subject") or "?"
                if cert.get("expired"):
                    add(fid, "high", "expired-certificate", subject,
                        f"server certificate expired on {cert.get('not_after')}")
                if cert.get("not_yet_valid"):
                    add(fid, "medium", "not-yet-valid-certificate", subject,
                        f"server certificate valid only from {cert.get('not_before')}")
                if cert.get("self_signed"):
                    internal = knowledge.channel_group(role) == "internal"
                    add(fid, "info" if internal else "medium", "self-signed-certificate",
                        subject, "self-signed server certificate" + (
                            " (usual for Flink's shared internal certificate)" if internal
                            else ": clients cannot verify the server"))
                bits, key_type = cert.get("key_bits"), cert.get("key_type")
                if bits and ((key_type in ("RSA", "DSA") and bits < 2048)
                             or (key_type == "EC" and bits < 256)):
                    add(fid, "medium", "weak-key", f"{key_type} {bits}",
                        f"server key {key_type} {bits} bits is below today's minimum")
            if (knowledge.channel_group(role) == "rest" and version
                    and version != "TLS 1.3" and t.get("client_certificate_requested") is False):
                add(fid, "medium", "no-client-auth", role,
                    "REST TLS without a CertificateRequest: any client may call the API")
            if t.get("client_hello_seen") and not t.get("handshake_complete"):
                alerts = ", ".join(a.get("description", "?") for a in t.get("alerts") or [])
                add(fid, "medium", "tls-handshake-failed", version or "no ServerHello",
                    "TLS handshake did not complete" + (f" (alerts: {alerts})" if alerts
                                                        else ""))
        return out

    def _channels(self, flows: dict, finding_flow_ids, finding_kinds) -> list[dict]:
        """The channels table's rows, from `_columns_as_read` of the flows and findings."""
        out = []
        if not flows["flow_id"]:
            return out
        kinds_by_flow = {}
        for fid, kind in zip(finding_flow_ids, finding_kinds):
            if kind in SEVERITY_OF_KIND:  # what was read, not how the channel is set up
                kinds_by_flow.setdefault(fid, set()).add(kind)
        # One pass in Python over five columns: a pandas groupby here peaked at 36 MB
        # more (45 MB on the 1 GB benchmark capture) for a few thousand rows.
        groups: dict = {}
        for fid, role, verdict, c2s, s2c in zip(flows["flow_id"], flows["role"],
                                                 flows["verdict"], flows["bytes_c2s"],
                                                 flows["bytes_s2c"]):
            group = groups.get(role)
            if group is None:
                group = groups[role] = {"bytes": 0, "tls": 0, "plaintext": 0,
                                        "verdicts": Counter(), "readable": set()}
            total = int(c2s) + int(s2c)
            group["bytes"] += total
            if verdict in ("tls", "plaintext"):
                group[verdict] += total
            group["verdicts"][verdict] += 1
            group["readable"] |= kinds_by_flow.get(fid, set())
        for role in sorted(groups):
            group = groups[role]
            all_bytes, verdicts = group["bytes"], group["verdicts"]
            out.append({
                "role": role, "group": knowledge.channel_group(role),
                "flows": sum(verdicts.values()), "bytes": all_bytes,
                "tls_flows": verdicts["tls"],
                "plaintext_flows": verdicts["plaintext"],
                "opaque_flows": verdicts["opaque"],
                "no_payload_flows": verdicts["no-payload"],
                "tls_share": group["tls"] / all_bytes if all_bytes else 0.0,
                "plaintext_share": group["plaintext"] / all_bytes if all_bytes else 0.0,
                "readable": ", ".join(sorted(group["readable"])),
            })
        return out

    # -- faces ----------------------------------------------------------------

    @property
    def plot(self):
        """The pictures: `analysis.plot.exposure()`, `.timeline()`, `.topology()`,
        `.compare(other)`; each returns a matplotlib Figure."""
        from ..faces.plots import PlotAccessor
        return PlotAccessor(self)

    def _repr_html_(self) -> str:
        from ..faces.html import repr_html
        return repr_html(self)

    def to_html(self, path, compare_with=None) -> None:
        """Write the self-contained HTML report (see `flinkwire.faces.html`)."""
        from ..faces.html import write_html
        write_html(self, path, compare_with=compare_with)

    def summary(self) -> str:
        from ..faces.summary import render_summary
        return render_summary(self)

    def to_dict(self) -> dict:
        from ..faces.jsonout import analysis_dict
        return analysis_dict(self)

    def to_json(self, path=None, indent: int = 2) -> str:
        from ..faces.jsonout import write_json
        return write_json(self, path, indent)

    def to_csv(self, directory) -> list:
        """Write every table as CSV, with formula-like cells neutralised."""
        from ..faces.export import write_csv
        return write_csv(self, directory)

    def to_parquet(self, directory) -> list:
        """Write every table as Parquet (needs pyarrow)."""
        from ..faces.export import write_parquet
        return write_parquet(self, directory)

    def tls_flows(self, groups=("internal", "rest")) -> pd.DataFrame:
        """Flows of the given channel groups that carried TLS."""
        flows = self.flows
        if flows.empty:
            return flows
        mask = flows["role"].map(knowledge.channel_group).isin(list(groups))
        return flows[mask & (flows["verdict"] == "tls")]

    def plaintext_flows(self, groups=("internal", "rest")) -> pd.DataFrame:
        """Flows of the given channel groups that are not TLS (what `check` fails on)."""
        flows = self.flows
        if flows.empty:
            return flows
        mask = flows["role"].map(knowledge.channel_group).isin(list(groups))
        return flows[mask & flows["verdict"].isin(["plaintext", "opaque"])]

    def __repr__(self) -> str:
        flows = len(getattr(self, "flows", ()))
        findings = len(getattr(self, "findings", ()))
        names = ", ".join(os.path.basename(p) for p in self.paths)
        return f"<Analysis of {names}: {flows} flows, {findings} findings>"


def _frame_of_tuples(rows: list[tuple], columns, categories=()) -> pd.DataFrame:
    """`pd.DataFrame(rows, columns=columns)` for rows given as tuples in `columns` order
    (a tuple is a sixth of an eleven-key dict), built a column at a time.

    pandas infers each column's dtype from its values alone, the same from a list as
    from its column of the tuples' object matrix. A column of strings only is laid out
    here (`_string_array`): pandas grows an Arrow string buffer by doubling as the
    strings arrive, and the findings of the 1 GB benchmark capture (42,253 rows, 18 MiB
    of remediation text alone) peaked 58 MiB above the rows to make a 21 MiB frame,
    the whole process's peak (246 MiB; 215 with this and `RowList.freeze`).

    The columns named in `categories` are pandas categoricals: a text of a small fixed
    vocabulary (remediation: one of a few dozen sentences, repeated on every finding)
    is stored once, each row holding a code (1 GB capture peak 214 -> 205 MiB).
    """
    if not rows:
        return _frame([], columns)
    with _arrow_memory():
        data = {}
        for place, name in enumerate(columns):
            values = list(map(itemgetter(place), rows))
            if name in categories:
                values = _categorical(values)
            elif set(map(type, values)) == {str}:
                values = _string_array(values)
            data[name] = values
        return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


def _categorical(values: list) -> pd.Categorical:
    """`pd.Categorical(values)` (None missing), the codes counted here: pandas first
    makes a string array of all the values, the very memory this saves and more
    (1 GB capture peak 236 MiB with pd.Categorical, 205 with this, 214 as strings)."""
    codes: dict = {None: -1}
    numbers = np.fromiter((codes.setdefault(value, len(codes) - 1) for value in values),
                          dtype=np.int32, count=len(values))
    del codes[None]
    uniques = list(codes)
    if not uniques:
        return pd.Categorical(values)    # nothing but None: as pandas types it
    order = sorted(range(len(uniques)), key=uniques.__getitem__)  # pandas sorts them
    recode = np.empty(len(uniques) + 1, dtype=np.int32)
    recode[order] = np.arange(len(uniques), dtype=np.int32)
    recode[-1] = -1                                                 # None stays missing
    return pd.Categorical.from_codes(recode[numbers], [uniques[i] for i in order])


def _string_array(values: list):
    """The pandas string array of `values` (all `str`), as pandas makes it (Arrow
    large_string, no missing value), its bytes written into one buffer of the final
    size. `values` itself where a string cannot be encoded (pandas then decides)."""
    dtype = pd.StringDtype(na_value=np.nan)
    if dtype.storage != "pyarrow":  # strings set to be Python objects: pandas makes them
        return values
    count = len(values)
    try:
        encoded = None if all(map(str.isascii, values)) else [v.encode() for v in values]
    except UnicodeError:
        return values
    sizes = np.fromiter(map(len, encoded or values), dtype=np.int64, count=count)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    data = bytearray(int(offsets[-1]))
    view = memoryview(data)
    for start, end, value in zip(offsets[:-1].tolist(), offsets[1:].tolist(),
                                 encoded or values):
        view[start:end] = value if encoded else value.encode("ascii")
    array = pa.Array.from_buffers(pa.large_string(), count,
                                  [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return pd.arrays.ArrowStringArray(pa.chunked_array([array]), dtype=dtype)


def _frame(rows, columns) -> pd.DataFrame:
    if isinstance(rows, RowList) and rows.frame is not None:
        return rows.frame  # made by this function when the table filled up
    with _arrow_memory():
        frame = _frame_by_columns(rows)
        for column in columns:
            if column not in frame.columns:
                frame[column] = pd.Series(dtype="object")
        ordered = [c for c in columns if c in frame.columns]
        rest = [c for c in frame.columns if c not in ordered]
        return frame[ordered + rest]


def _rows_with(rows, key) -> list:
    """The rows whose `key` is true (all the rows would do, but a full table's rows
    are in its frame by now; see Rows.early_frames)."""
    if isinstance(rows, RowList):
        return rows.rows_with(key)
    return [row for row in rows if row.get(key)]


# Rows.early_frames of analyze: each bounded table's frame, as Analysis makes it, and the
# key of the rows _job_code_findings reads.
EARLY_FRAMES = {
    "snippets": (lambda rows: _frame(rows, SNIPPET_COLUMNS), None),
    "http": (lambda rows: _frame(rows, ["flow_id"]), "parts"),
    "rpc": (lambda rows: _frame(rows, ["flow_id"]), None),
    "records": (lambda rows: _frame(rows, ["flow_id"]), None),
    "blobs": (lambda rows: _frame(rows, ["flow_id"]), "zip"),
}


def _frame_by_columns(rows) -> pd.DataFrame:
    """`pd.DataFrame(rows)` for a list of mappings, built a column at a time.

    The same frame (columns in order of first appearance, NaN where a row lacks a
    key), without pandas' row-by-row object matrix: building the 20,000-row HTTP
    table that way peaked 47 MB above the frame it made.
    """
    missing = float("nan")
    if isinstance(rows, RowList):
        return pd.DataFrame(rows.columns(missing), index=pd.RangeIndex(len(rows)))
    kinds = set(map(type, rows))
    if len(kinds) == 1 and issubclass(next(iter(kinds)), FixedRow):
        # Every row has the class's keys: read by attrgetter, where FixedRow.get is a
        # Python call per value (flows and TLS tables, 10 ms of 13 ms on the 100 MB
        # capture). A slot left unset reads as missing, below.
        with contextlib.suppress(AttributeError):
            return pd.DataFrame({key: list(map(attrgetter(key), rows))
                                 for key in next(iter(kinds)).__slots__},
                                index=pd.RangeIndex(len(rows)))
    # A row repeats the keys of the rows before it: each distinct key order once.
    shapes = dict.fromkeys(map(tuple, rows))
    keys = dict.fromkeys(key for shape in shapes for key in shape)
    # A key every dict row holds is read by itemgetter.
    everywhere = set(keys).intersection(*shapes) if kinds == {dict} else set()
    return pd.DataFrame({key: list(map(itemgetter(key), rows)) if key in everywhere
                         else [row.get(key, missing) for row in rows] for key in keys},
                        index=pd.RangeIndex(len(rows)))


def _row_reader(rows, keys, missing=...):
    """A function of a row giving its `keys` (two or more) as a tuple: `row[key]` each, or with
    `missing` given `row.get(key, missing)`. operator.attrgetter where every row is one
    FixedRow class holding the keys (FixedRow's item access is a Python call per value);
    a slot left unset raises AttributeError there, which `_read_rows` answers."""
    kinds = set(map(type, rows))
    if len(kinds) == 1 and issubclass(next(iter(kinds)), FixedRow) \
            and next(iter(kinds))._keys.issuperset(keys):
        return attrgetter(*keys)
    if missing is ...:
        return itemgetter(*keys)
    return lambda row: tuple([row.get(key, missing) for key in keys])


def _read_rows(rows, keys, missing=None) -> list[tuple]:
    """`[tuple(row.get(key, missing) for key in keys) for row in rows]`, at C speed where
    `_row_reader` can (the flows: 1,933 rows of 29 columns, 7 ms to 1 ms)."""
    fast = _row_reader(rows, keys, missing)
    try:
        return list(map(fast, rows))
    except AttributeError:  # a FixedRow slot left unset: its default
        return [tuple([row.get(key, missing) for key in keys]) for row in rows]


def _columns_as_read(frame: pd.DataFrame, names, tuples) -> dict:
    """{name: the values of the column as iterating the frame's column gives them} for a
    frame made by `_frame_of_tuples(tuples, ...)`: the tuples' own objects where the frame
    gives back equal ones (object, int, bool and NA-free string columns; 0.01 µs a value),
    otherwise the frame's (iterating an Arrow string column is 0.6 µs a value)."""
    out = {}
    for name in names:
        column = frame[name]
        dtype = column.dtype
        same = (isinstance(dtype, pd.StringDtype) and not column.hasnans) or \
            (isinstance(dtype, np.dtype) and dtype.kind in "Oib")
        if tuples and same:
            out[name] = list(map(itemgetter(frame.columns.get_loc(name)), tuples))
        else:
            out[name] = column.tolist()
    return out


@contextlib.contextmanager
def _collector_paused():
    """Python's cyclic garbage collector off for the block, then as it was.

    Building the tables allocates containers by the row (tuples, lists, dicts) but
    makes no reference cycles (gc.collect() right after finds none), and what it
    allocates is bounded by the tables' row limits. The allocations still set off
    a full collection that walks every row the examination kept: on the 100 MB
    capture one such collection took 80 ms of Analysis's 0.38 s and freed nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _hand_back():
    """Return the free heap pages to the system (glibc's malloc_trim; nothing elsewhere).

    The rows a table is built from go once it is a frame, and the flows' payload went
    during the read; their pages stay mapped unless trimmed. Arrow's
    `release_unused` on its system pool was meant to do this and does nothing in the
    pyarrow wheels (a test that frees 88 MiB of small buffers: 0 returned by it, 82 by
    malloc_trim). Trimmed before the tables are built and after each table's rows go,
    the 1 GB benchmark capture peaked at 245 MiB instead of 263 (the 100 MB one at
    149-157 instead of 183). A trim costs a few milliseconds.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; musl and macOS have none
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim()


@contextlib.contextmanager
def _arrow_memory():
    """Build a frame's Arrow string columns with the C library's allocator, then hand
    back what the build freed.

    pandas grows each string column's buffer as the strings arrive; the mimalloc pool
    Arrow uses by default keeps every outgrown buffer, and the findings table of a
    1 GB capture (42,253 rows, 23 MB of strings) took 76 MB to build with it, 36 MB
    with malloc. A pool the user chose (ARROW_DEFAULT_MEMORY_POOL, or set to other
    than mimalloc) is left alone. Buffers remember their pool, so switching for the
    build changes no frame.
    """
    chosen = pa.default_memory_pool()
    switch = chosen.backend_name == "mimalloc" and "ARROW_DEFAULT_MEMORY_POOL" not in os.environ
    if switch:
        pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        if switch:
            pa.set_memory_pool(chosen)
            _hand_back()  # also the pages of the row lists Analysis has let go
        else:
            chosen.release_unused()


__all__ = ["Analysis", "analyze", "default_capture", "total_size"]
