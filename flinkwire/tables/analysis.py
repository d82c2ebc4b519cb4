"""The Analysis object: one DataFrame per concern, every row keyed by `flow_id`.

`analyze` runs the whole pipeline (reading -> packets -> tcp -> per-flow
examination), then settles what needs all flows at once: roles of TLS flows on
random ports, JobManager versus TaskManager RPC, hosts, the Flink version, and
the findings with their remedies. Nothing here prints; the faces do.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import pandas as pd

from ..flink import knowledge, roles
from ..flink.config import load_config
from ..flink.remediation import remedy
from ..tcp.build import build_flows, total_size
from ..tcp.flows import Limits
from .examine import Context, Rows, examiner
from .shard import analyze_sharded, wants_shards

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

SEVERITY_OF_KIND = {
    "card-number": "high", "password": "high", "config-secret": "high", "token": "high",
    "api-key": "high", "bearer-token": "high", "basic-auth": "high", "cookie": "medium",
    "private-key": "high", "aws-access-key": "high", "jwt": "high", "email": "medium",
    "job-code": "high",
}
OLD_TLS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1")
WEAK_CIPHER_PARTS = ("_RC4_", "_DES_", "_3DES_", "_NULL_", "_EXPORT", "_anon_", "_MD5")
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}


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
    flink_config = load_config(config) if config is not None else None
    port_roles = dict(flink_config.port_roles()) if flink_config is not None else {}
    return paths, flink_config, Context(port_roles=port_roles, reveal=reveal,
                                        min_snippet=min_snippet)


def analyze(path_or_paths, config=None, reveal: bool = False, *, limits: Limits | None = None,
            progress=None, min_snippet: int = 8, executor=None,
            engine: str = "flinkwire") -> "Analysis":
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
    one flow table in this process. One file of 32 MiB or more is read by two
    processes, each examining half of its flows, into the same tables (see
    `tables.shard`), unless `executor` is given. `engine="tshark"` builds the
    `flows` table from Wireshark's dissectors instead (see `engines.tshark`).
    """
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
    if wants_shards(paths, executor):
        rows, stats = analyze_sharded(paths[0], ctx, limits, progress)
        return Analysis(paths, rows, stats, ctx, flink_config, reveal)
    rows = Rows((limits or Limits()).max_rows_per_table)
    on_flow = examiner(ctx, rows)

    stats = build_flows(paths, on_flow, limits, progress)
    return Analysis(paths, rows, stats, ctx, flink_config, reveal)


class Analysis:
    """Everything flinkwire learned from the capture(s), as DataFrames."""

    def __init__(self, paths, rows: Rows, stats, ctx: Context, config, reveal: bool):
        self.paths = list(paths)
        self.stats = stats
        self.config = config
        self.reveal = reveal
        self.flink_version = self._flink_version(rows, ctx, config)

        flow_rows = sorted(rows.flows, key=lambda r: (r["first_ts"], r["index"]))
        refined = roles.refine_roles([
            {"flow_id": r["flow_id"], "server_ip": r["server_ip"],
             "server_port": r["server_port"], "client_ip": r["client_ip"], "role": r["role"],
             "evidence": r["role_evidence"], "verdict": r["verdict"],
             "pekko": (r["_content"] if (r["_content"] or {}).get("kind") == "pekko" else None)}
            for r in flow_rows
        ])
        for row, new in zip(flow_rows, refined):
            row["role"] = new["role"]
            row["role_evidence"] = new["evidence"] if isinstance(new["evidence"], str) \
                else "; ".join(new["evidence"])
        self.flows = _frame([{k: r.get(k) for k in FLOW_COLUMNS} for r in flow_rows],
                            FLOW_COLUMNS)
        role_of = dict(zip(self.flows["flow_id"], self.flows["role"]))

        self.hosts = _frame(roles.hosts_from([
            {"flow_id": r["flow_id"], "server_ip": r["server_ip"], "client_ip": r["client_ip"],
             "server_port": r["server_port"], "role": r["role"], "verdict": r["verdict"],
             "pekko": (r["_content"] if (r["_content"] or {}).get("kind") == "pekko" else None)}
            for r in flow_rows]), ["ip", "component", "evidence"])
        self.snippets = _frame(rows.snippets, SNIPPET_COLUMNS)
        self.tls = _frame(rows.tls, ["flow_id"])
        self.http = _frame(rows.http, ["flow_id"])
        self.rpc = _frame(rows.rpc, ["flow_id"])
        self.records = _frame(rows.records, ["flow_id"])
        self.blobs = _frame(rows.blobs, ["flow_id"])

        anomalies = list(rows.anomalies)
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

        self._tls_rows = rows.tls
        self._decoded_rows = {"blobs": rows.blobs, "http": rows.http}
        self.findings = _frame(self._findings(rows, role_of), FINDING_COLUMNS)
        self.channels = _frame(self._channels(), CHANNEL_COLUMNS)
        self.verdict = self._cluster_verdict()

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

    def _findings(self, rows: Rows, role_of: dict) -> list[dict]:
        findings = []
        for row in self.flows.itertuples(index=False):
            group = knowledge.channel_group(row.role)
            if (row.verdict == "no-payload" and row.transport == "tcp" and row.established
                    and group in ("internal", "rest")):
                findings.append({
                    "flow_id": row.flow_id, "role": row.role, "severity": "medium",
                    "kind": "empty-connection",
                    "value": f"{row.client_ip}:{row.client_port} -> "
                             f"{row.server_ip}:{row.server_port}",
                    "evidence": "TCP connection opened and closed without one payload byte: "
                                "typical of a TLS handshake that failed before its first "
                                "record (no shared protocol or suite) or a refused peer",
                    "remediation": remedy(row.role, "tls-handshake-failed", self.flink_version),
                    "direction": None, "offset": None, "ts": row.first_ts, "count": 1,
                })
                continue
            if row.verdict != "plaintext":
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
            findings.append({
                "flow_id": row.flow_id, "role": row.role, "severity": severity, "kind": kind,
                "value": f"{row.client_ip}:{row.client_port} -> {row.server_ip}:{row.server_port}",
                "evidence": f"{row.role} flow in plaintext ({row.bytes_c2s + row.bytes_s2c} "
                            f"bytes readable on the wire); {row.role_evidence}",
                "remediation": remedy(row.role, kind, self.flink_version),
                "direction": None, "offset": None, "ts": row.first_ts, "count": 1,
            })
        findings += self._tls_findings(role_of)
        findings += self._job_code_findings(role_of)
        for secret in rows.findings:
            role = role_of.get(secret["flow_id"], "unknown")
            findings.append({
                "flow_id": secret["flow_id"], "role": role,
                "severity": SEVERITY_OF_KIND.get(secret["kind"], "medium"),
                "kind": secret["kind"], "value": secret["value"],
                "evidence": f"{secret['direction']} stream offset {secret['offset']}: "
                            f"{secret['context']}"
                            + (f"; seen {secret['count']} times" if secret["count"] > 1 else "")
                            + (f" (user {secret['username']})" if secret.get("username") else ""),
                "remediation": remedy(role, secret["kind"], self.flink_version),
                "direction": secret["direction"], "offset": secret["offset"],
                "ts": secret["ts"], "count": secret["count"],
            })
        findings.sort(key=lambda f: (SEVERITY_ORDER.get(f["severity"], 9), f["ts"] or 0))
        return findings

    def _cluster_verdict(self) -> dict:
        """Internal TLS and REST TLS: on, off, partial or not seen; mutual authentication."""
        flows = self.flows
        verdict = {}
        tls_by_flow = {t["flow_id"]: t for t in self._tls_rows}
        for group in ("internal", "rest"):
            mine = flows[flows["role"].map(knowledge.channel_group) == group] \
                if not flows.empty else flows
            carrying = mine[mine["verdict"] != "no-payload"] if not mine.empty else mine
            if carrying.empty:
                state = "not seen"
            elif (carrying["verdict"] == "tls").all():
                state = "on"
            elif (carrying["verdict"] == "tls").any():
                state = "partial"
            else:
                state = "off"
            verdict[f"{group}_tls"] = state
            rows = [tls_by_flow[f] for f in carrying["flow_id"] if f in tls_by_flow] \
                if not carrying.empty else []
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

    def _job_code_findings(self, role_of: dict) -> list[dict]:
        """Job jars readable on the wire: blob transfers and REST uploads."""
        out = []
        seen = set()
        sources = [("blobs", row, row.get("zip")) for row in self._decoded("blobs")]
        for row in self._decoded("http"):
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
            out.append({
                "flow_id": fid, "role": role, "severity": "high", "kind": "job-code",
                "value": f"{len(entries)} entries, {len(classes)} classes: "
                         + ", ".join(classes[:3]) + ("…" if len(classes) > 3 else ""),
                "evidence": f"a JAR crossed the {role} channel in plaintext "
                            f"({table} table, offset {row.get('offset')})",
                "remediation": remedy(role, "plaintext-channel", self.flink_version),
                "direction": row.get("direction"), "offset": row.get("offset"),
                "ts": row.get("ts"), "count": 1,
            })
        return out

    def _decoded(self, name):
        return getattr(self, "_decoded_rows", {}).get(name, [])

    def _tls_findings(self, role_of: dict) -> list[dict]:
        """How sound the TLS is: version, suite, certificates, client auth, failures."""
        out = []
        if not self._tls_rows:
            return out
        first_ts = dict(zip(self.flows["flow_id"], self.flows["first_ts"]))

        def add(fid, severity, kind, value, evidence):
            role = role_of.get(fid, "unknown")
            out.append({"flow_id": fid, "role": role, "severity": severity, "kind": kind,
                        "value": value, "evidence": evidence,
                        "remediation": remedy(role, kind, self.flink_version),
                        "direction": None, "offset": None, "ts": first_ts.get(fid),
                        "count": 1})

        for t in self._tls_rows:
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

    def _channels(self) -> list[dict]:
        out = []
        flows = self.flows
        if flows.empty:
            return out
        kinds_by_flow = {}
        for fid, kind in zip(self.findings["flow_id"], self.findings["kind"]):
            if kind in SEVERITY_OF_KIND:  # what was read, not how the channel is set up
                kinds_by_flow.setdefault(fid, set()).add(kind)
        for role, group in flows.groupby("role", sort=True):
            total = group["bytes_c2s"] + group["bytes_s2c"]
            all_bytes = int(total.sum())
            tls_bytes = int(total[group["verdict"] == "tls"].sum())
            plain_bytes = int(total[group["verdict"] == "plaintext"].sum())
            readable = set()
            for fid in group["flow_id"]:
                readable |= kinds_by_flow.get(fid, set())
            verdicts = group["verdict"].value_counts()
            out.append({
                "role": role, "group": knowledge.channel_group(role), "flows": len(group),
                "bytes": all_bytes,
                "tls_flows": int(verdicts.get("tls", 0)),
                "plaintext_flows": int(verdicts.get("plaintext", 0)),
                "opaque_flows": int(verdicts.get("opaque", 0)),
                "no_payload_flows": int(verdicts.get("no-payload", 0)),
                "tls_share": tls_bytes / all_bytes if all_bytes else 0.0,
                "plaintext_share": plain_bytes / all_bytes if all_bytes else 0.0,
                "readable": ", ".join(sorted(readable)),
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


def _frame(rows, columns) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in columns:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype="object")
    ordered = [c for c in columns if c in frame.columns]
    rest = [c for c in frame.columns if c not in ordered]
    return frame[ordered + rest]


__all__ = ["Analysis", "analyze", "default_capture", "total_size"]
