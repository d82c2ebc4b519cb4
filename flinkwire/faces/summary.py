"""The terminal summary: a channel table, the findings and what closes them."""

from __future__ import annotations

import os

from ..flink import knowledge

MAX_FINDING_LINES = 25


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def _cell(text, width: int) -> str:
    text = "" if text is None else str(text)
    text = text.replace("\n", " ").replace("\r", " ").replace("\x1b", "?")
    return text if len(text) <= width else text[:width - 1] + "…"


def verdict_line(analysis) -> str:
    flows = analysis.flows
    if flows.empty:
        return "Verdict: no TCP or UDP flows in the capture"
    flink = flows[flows["role"].map(knowledge.channel_group).isin(["internal", "rest"])]
    plain = flink[flink["verdict"].isin(["plaintext", "opaque"])]
    roles = sorted(set(flink["role"]))
    plain_roles = sorted(set(plain["role"]))
    if flink.empty:
        return "Verdict: no Flink internal or REST channel recognised"
    if plain.empty:
        return f"Verdict: ENCRYPTED: all {len(flink)} flows of {len(roles)} Flink channels use TLS"
    return (f"Verdict: PLAINTEXT: {len(plain)} of {len(flink)} Flink flows readable on the "
            f"wire ({', '.join(plain_roles)})")


def render_summary(analysis) -> str:
    stats = analysis.stats
    lines = []
    names = ", ".join(os.path.basename(p) for p in analysis.paths)
    size = sum(info.file_size for info in stats.files)
    version = f", Flink {analysis.flink_version}" if analysis.flink_version else ""
    lines.append(f"flinkwire: {names} ({human_bytes(size)}, {stats.packets:,} packets, "
                 f"{len(analysis.flows):,} flows{version})")
    lines.append(verdict_line(analysis))
    lines.append("")

    header = f"{'channel':<17} {'flows':>5} {'bytes':>9} {'TLS':>5} {'plain':>5}  readable"
    lines.append(header)
    lines.append("-" * len(header))
    for ch in analysis.channels.itertuples(index=False):
        lines.append(f"{_cell(ch.role, 17):<17} {ch.flows:>5} {human_bytes(ch.bytes):>9} "
                     f"{ch.tls_share:>5.0%} {ch.plaintext_share:>5.0%}  "
                     f"{_cell(ch.readable or '-', 48)}")
    lines.append("")

    findings = analysis.findings
    redacted = "" if analysis.reveal else "; values redacted, --reveal shows them"
    lines.append(f"Findings: {len(findings)}{redacted}")
    for f in findings.head(MAX_FINDING_LINES).itertuples(index=False):
        lines.append(f"  {f.severity.upper():<6} {_cell(f.role, 15):<15} {_cell(f.kind, 20):<20} "
                     f"{_cell(f.value, 44)}")
    if len(findings) > MAX_FINDING_LINES:
        lines.append(f"  ... {len(findings) - MAX_FINDING_LINES} more (see --json)")
    remedies = [r for r in dict.fromkeys(findings["remediation"]) if r] if len(findings) else []
    if remedies:
        lines.append("")
        lines.append("What closes it:")
        for text in remedies[:8]:
            lines.append(f"  - {_cell(text, 200)}")

    anomalies = analysis.anomalies
    if len(anomalies):
        kinds = anomalies["kind"].value_counts()
        listed = ", ".join(f"{k} {v}" for k, v in kinds.items())
        lines.append("")
        lines.append(f"Anomalies: {len(anomalies)} ({listed})")
    return "\n".join(lines)
