"""The terminal summary: a channel table, the findings and what closes them."""

from __future__ import annotations

import os
import re
import textwrap

from ..flink import knowledge
from ..flink.remediation import remedy

MAX_FINDING_LINES = 30
FLOW_KINDS = ("plaintext-channel", "unencryptable-channel", "empty-connection")
SECRET_KINDS = frozenset({"card-number", "password", "config-secret", "token", "api-key",
                          "bearer-token", "basic-auth", "cookie", "private-key",
                          "aws-access-key", "jwt", "email"})
SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2, "info": 3}


def secret_findings(analysis):
    """The rows of `analysis.findings` that are values read off a stream (a password, a
    card number, ...), as opposed to facts about a channel (plaintext, a self-signed
    certificate): the former carry the direction and offset where they were read.
    Here rather than in `plots` so that `flinkwire demo` does not load matplotlib."""
    findings = analysis.findings
    if findings.empty:
        return findings
    return findings[findings["direction"].notna()]


def _grouped(findings):
    """(severity, role, kind, value, flows, occurrences), most severe first."""
    groups = {}
    for f in findings.itertuples(index=False):
        value = "" if f.kind in FLOW_KINDS else f.value
        key = (f.severity, f.role, f.kind, value)
        flows, count = groups.get(key, (set(), 0))
        flows.add(f.flow_id)
        groups[key] = (flows, count + int(getattr(f, "count", 1) or 1))
    rows = [(sev, role, kind, value, len(flows), count)
            for (sev, role, kind, value), (flows, count) in groups.items()]
    rows.sort(key=lambda r: (SEVERITY_RANK.get(r[0], 9), r[2] not in FLOW_KINDS, r[1], r[2]))
    return rows


def _remedies(findings, flink_version=None):
    """(scope, text): one remedy per gap; internal channels share one; no rotation suffix."""
    scopes = {}
    internal = sorted({f.role for f in findings.itertuples(index=False)
                       if f.kind in FLOW_KINDS and knowledge.channel_group(f.role) == "internal"})
    if len(internal) > 1:
        text = remedy("internal", "tls-disabled-channel", flink_version)
        scopes.setdefault(text, set()).update(internal)
    for f in findings.itertuples(index=False):
        if f.role in internal and len(internal) > 1 and (
                f.kind in FLOW_KINDS or f.kind in SECRET_KINDS):
            continue
        text = (f.remediation or "").split("; rotate the exposed ")[0]
        if not text:
            continue
        scope = f.role if f.kind in FLOW_KINDS or f.kind in SECRET_KINDS else \
            f"{f.role} ({f.kind})"
        scopes.setdefault(text, set()).add(scope)
    return [(", ".join(sorted(found)), text) for text, found in scopes.items()]


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text) -> str:
    """Captured text made safe for a terminal: every C0/C1 control byte becomes '?'."""
    return CONTROL.sub("?", "" if text is None else str(text))


def _cell(text, width: int) -> str:
    text = printable(text)
    return text if len(text) <= width else text[:width - 1] + "…"


def verdict_line(analysis) -> str:
    flows = analysis.flows
    if flows.empty:
        return "Verdict: no TCP or UDP flows in the capture"
    flink = flows[flows["role"].map(knowledge.channel_group).isin(["internal", "rest"])]
    plain = flink[flink["verdict"].isin(["plaintext", "opaque"])]
    carrying = flink[flink["verdict"] != "no-payload"]
    roles = sorted(set(carrying["role"]))
    plain_roles = sorted(set(plain["role"]))
    empty = len(flink) - len(carrying)
    if carrying.empty:
        return ("Verdict: no Flink internal or REST channel carried data"
                + (f" ({empty} connections without payload)" if empty else ""))
    if plain.empty:
        return (f"Verdict: ENCRYPTED: all {len(carrying)} data-carrying flows of {len(roles)} "
                "Flink channels use TLS"
                + (f"; {empty} connections carried no payload" if empty else ""))
    return (f"Verdict: PLAINTEXT: {len(plain)} of {len(flink)} Flink flows readable on the "
            f"wire ({', '.join(plain_roles)})")


def render_summary(analysis) -> str:
    stats = analysis.stats
    lines = []
    names = printable(", ".join(os.path.basename(p) for p in analysis.paths))
    size = sum(info.file_size for info in stats.files)
    version = f", Flink {analysis.flink_version}" if analysis.flink_version else ""
    lines.append(f"flinkwire: {names} ({human_bytes(size)}, {stats.packets:,} packets, "
                 f"{len(analysis.flows):,} flows{version})")
    lines.append(verdict_line(analysis))
    v = getattr(analysis, "verdict", {}) or {}
    if v:
        lines.append(f"Internal TLS: {v.get('internal_tls')} (mutual: "
                     f"{v.get('internal_mutual_auth')}); REST TLS: {v.get('rest_tls')} "
                     f"(client certificates: {v.get('rest_mutual_auth')})")
    lines.append("")

    header = f"{'channel':<17} {'flows':>5} {'bytes':>9} {'TLS':>5} {'plain':>5}  readable"
    lines.append(header)
    lines.append("-" * len(header))
    for ch in analysis.channels.itertuples(index=False):
        lines.append(f"{_cell(ch.role, 17):<17} {ch.flows:>5} {human_bytes(ch.bytes):>9} "
                     f"{ch.tls_share:>5.0%} {ch.plaintext_share:>5.0%}  "
                     f"{_cell(ch.readable or '-', 60)}")
    lines.append("")

    findings = analysis.findings
    redacted = "" if analysis.reveal else "; values redacted, --reveal shows them"
    lines.append(f"Findings: {len(findings)}{redacted}")
    grouped = _grouped(findings)
    for severity, role, kind, value, flows, count in grouped[:MAX_FINDING_LINES]:
        where = f"{flows} flows" if flows > 1 else "1 flow"
        times = f", seen {count}x" if count > flows else ""
        shown = "" if kind in FLOW_KINDS else _cell(value, 40)
        lines.append(f"  {severity.upper():<6} {_cell(role, 15):<15} {_cell(kind, 24):<24} "
                     f"{shown:<40} {where}{times}")
    if len(grouped) > MAX_FINDING_LINES:
        lines.append(f"  ... {len(grouped) - MAX_FINDING_LINES} more groups (see --json)")

    remedies = _remedies(findings, analysis.flink_version)
    if remedies:
        lines.append("")
        lines.append("What closes it:")
        for scope, text in remedies:
            wrapped = textwrap.wrap(text, width=96, initial_indent="    ",
                                    subsequent_indent="    ")
            lines.append(f"  {scope}:")
            lines.extend(wrapped)
        if any(kind in SECRET_KINDS for kind in findings["kind"]):
            lines.append("  and rotate every credential listed above: it has been on the wire.")

    anomalies = analysis.anomalies
    if len(anomalies):
        kinds = anomalies["kind"].value_counts()
        listed = ", ".join(f"{k} {v}" for k, v in kinds.items())
        lines.append("")
        lines.append(f"Anomalies: {len(anomalies)} ({listed})")
    return "\n".join(lines)
