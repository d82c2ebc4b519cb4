"""The shareable HTML report and the compact summary Jupyter shows for an Analysis.

The report is one file that needs nothing else: plots are embedded as base64
PNG, the style sheet is inline, there is no script, and a Content-Security-
Policy forbids scripts and every external request anyway. Everything taken
from a capture is escaped by Jinja2's autoescape (the templates never mark
captured text safe); the only markup built here is the embedded images.

Values are as redacted as the Analysis is: one built with `reveal=False` (the
default) carries redacted finding values and snippets, and the report says on
its first line which it is.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import os
from pathlib import Path

import jinja2
import pandas as pd

from ..flink import knowledge
from . import plots
from .summary import human_bytes, verdict_line

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_FINDINGS = 300      # individual rows listed; the grouped table covers all
MAX_SNIPPETS = 120
SNIPPETS_PER_FLOW = 3
SNIPPET_CHARS = 800
MAX_ANOMALIES = 300
MAX_FLOWS = 1000


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["text"] = _text
    env.filters["bytes"] = lambda n: human_bytes(int(n)) if _present(n) else "–"
    env.filters["pct"] = lambda x: f"{x:.0%}" if _present(x) else "–"
    env.filters["when"] = _when
    return env


def _present(value) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return value is not pd.NA and value is not pd.NaT


def _text(value) -> str:
    """A cell as plain text (escaping is the template's job, not this one's)."""
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value) or "–"
    if not _present(value):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _when(ns) -> str:
    if not _present(ns):
        return "–"
    moment = dt.datetime.fromtimestamp(int(ns) / 1e9, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _png(fig) -> str:
    return "data:image/png;base64," + base64.b64encode(plots.figure_png(fig)).decode("ascii")


def _records(frame: pd.DataFrame, limit: int | None = None) -> list[dict]:
    if limit is not None:
        frame = frame.head(limit)
    return frame.to_dict("records")


def _verdict_state(analysis) -> str:
    line = verdict_line(analysis)
    if "PLAINTEXT" in line:
        return "bad"
    if "ENCRYPTED" in line:
        return "good"
    return "neutral"


def _finding_groups(findings: pd.DataFrame) -> list[dict]:
    if findings.empty:
        return []
    groups = []
    keys = ["severity", "role", "kind"]
    for (severity, role, kind), group in findings.groupby(keys, sort=False, dropna=False):
        examples = list(dict.fromkeys(_text(v) for v in group["value"]))[:3]
        groups.append({"severity": severity, "role": role, "kind": kind, "count": len(group),
                       "flows": group["flow_id"].nunique(), "examples": examples,
                       "remediation": next((r for r in group["remediation"] if _present(r)),
                                           None)})
    order = {"high": 0, "medium": 1, "low": 2, "info": 3}
    groups.sort(key=lambda g: (order.get(g["severity"], 9), g["role"], g["kind"]))
    return groups


def _remedies(findings: pd.DataFrame) -> list[dict]:
    """One entry per channel: the configuration that closes it, said once, and what
    else to do about the values already exposed (the per-kind tails of the remedies)."""
    out = []
    if findings.empty:
        return out
    for role, group in findings.groupby("role", sort=True):
        texts = [t for t in dict.fromkeys(group["remediation"]) if _present(t) and t]
        if not texts:
            continue
        base = os.path.commonprefix(texts)
        if len(texts) > 1 and base not in texts:
            cut = base.rfind("; ")
            base = base[:cut] if cut > 0 else ""
        base = base.rstrip("; ")
        extras = [t[len(base):].lstrip("; ") for t in texts] if base else texts
        extras = [e for e in dict.fromkeys(extras) if e]
        lead = os.path.commonprefix(extras) if len(extras) > 1 else ""
        lead = lead[:lead.rfind(" ") + 1] if " " in lead else ""
        if lead.strip():  # "rotate the exposed card-number", "... token" -> one line
            extras = [lead + ", ".join(e[len(lead):] for e in extras)]
        out.append({"role": role, "text": base or None, "extras": extras,
                    "kinds": sorted(set(map(_text, group["kind"])))})
    return out


def _snippets(analysis) -> list[dict]:
    """A few snippets per flow, those that hold a finding first, then the longest."""
    snippets = analysis.snippets
    if snippets.empty:
        return []
    role_of = dict(zip(analysis.flows["flow_id"], analysis.flows["role"]))
    hits: dict[tuple, list] = {}
    for f in analysis.findings.itertuples(index=False):
        if _present(f.offset) and _present(f.direction):
            hits.setdefault((f.flow_id, f.direction), []).append(int(f.offset))
    frame = snippets.assign(
        length=snippets["text"].map(lambda t: len(t) if isinstance(t, str) else 0))
    frame["holds_finding"] = [
        any(int(o) <= h < int(o) + n for h in hits.get((fid, d), ()))
        if _present(o) else False
        for fid, d, o, n in zip(frame["flow_id"], frame["direction"], frame["offset"],
                                frame["length"])]
    chosen = (frame.sort_values(["holds_finding", "length"], ascending=False)
              .groupby("flow_id", sort=False).head(SNIPPETS_PER_FLOW)
              .head(MAX_SNIPPETS).sort_values("ts"))
    rows = []
    for row in chosen.itertuples(index=False):
        text = _text(row.text)
        cut = len(text) > SNIPPET_CHARS
        rows.append({"flow_id": row.flow_id, "role": role_of.get(row.flow_id, "unknown"),
                     "direction": row.direction, "offset": row.offset, "ts": row.ts,
                     "holds_finding": bool(row.holds_finding),
                     "text": text[:SNIPPET_CHARS] + (" …" if cut else "")})
    return rows


def _tls_rows(analysis) -> list[dict]:
    tls = analysis.tls
    if tls.empty:
        return []
    role_of = dict(zip(analysis.flows["flow_id"], analysis.flows["role"]))
    rows = []
    for record in tls.to_dict("records"):
        certificates = record.get("server_certificates")
        chain = []
        if isinstance(certificates, list):
            for cert in certificates:
                if isinstance(cert, dict):
                    chain.append(" · ".join(f"{k}: {_text(cert.get(k))}" for k in
                                            ("subject", "issuer", "not_after", "key")
                                            if k in cert))
        rows.append({
            "flow_id": record.get("flow_id"), "role": role_of.get(record.get("flow_id"), "–"),
            "version": record.get("version"), "cipher": record.get("cipher"),
            "group": record.get("key_exchange_group"), "sni": record.get("sni"),
            "alpn": record.get("alpn_selected"),
            "subject": record.get("server_cert_subject"),
            "issuer": record.get("server_cert_issuer"),
            "key": record.get("server_cert_key"),
            "self_signed": record.get("server_cert_self_signed"),
            "expired": record.get("server_cert_expired"),
            "requested": record.get("client_certificate_requested"),
            "sent": record.get("client_cert_sent"),
            "complete": record.get("handshake_complete"),
            "chain": chain,
        })
    return rows


def _counts(tls: pd.DataFrame, column: str) -> list[tuple[str, int]]:
    if tls.empty or column not in tls.columns:
        return []
    counts = tls[column].map(_text).value_counts()
    return [(str(k), int(v)) for k, v in counts.items()]


def _capture_context(analysis, anchor: str, with_plots: bool = True) -> dict:
    flows, findings = analysis.flows, analysis.findings
    secrets = plots.secret_findings(analysis)
    files = [{"name": os.path.basename(info.path), "size": info.file_size,
              "format": info.format, "records": info.records_complete}
             for info in analysis.stats.files]
    figures = {}
    if with_plots:
        figures = {"exposure": _png(plots.exposure(analysis)),
                   "timeline": _png(plots.timeline(analysis)),
                   "topology": _png(plots.topology(analysis))}
    severities = findings["severity"].value_counts() if len(findings) else pd.Series(dtype=int)
    return {
        "anchor": anchor,
        "name": ", ".join(f["name"] for f in files) or "no file",
        "files": files,
        "packets": analysis.stats.packets,
        "flow_count": len(flows),
        "flink_version": analysis.flink_version,
        "reveal": analysis.reveal,
        "verdict": verdict_line(analysis).removeprefix("Verdict: "),
        "verdict_state": _verdict_state(analysis),
        "channels": [dict(row, group=row.get("group") or knowledge.channel_group(row["role"]))
                     for row in _records(analysis.channels)],
        "hosts": _records(analysis.hosts),
        "finding_count": len(findings),
        "secret_count": len(secrets),
        "severities": {k: int(v) for k, v in severities.items()},
        "finding_groups": _finding_groups(findings),
        "findings": _records(findings, MAX_FINDINGS),
        "max_findings": MAX_FINDINGS,
        "remedies": _remedies(findings),
        "snippets": _snippets(analysis),
        "snippet_total": len(analysis.snippets),
        "tls": _tls_rows(analysis),
        "tls_versions": _counts(analysis.tls, "version"),
        "tls_ciphers": _counts(analysis.tls, "cipher"),
        "anomalies": _records(analysis.anomalies, MAX_ANOMALIES),
        "anomaly_total": len(analysis.anomalies),
        "flows": _records(flows, MAX_FLOWS),
        "max_flows": MAX_FLOWS,
        "figures": figures,
    }


def _comparison(before, after) -> dict:
    rows = []
    roles = sorted(set(before.flows["role"]) | set(after.flows["role"]))
    for role in roles:
        row = {"role": role, "group": knowledge.channel_group(role)}
        for key, analysis in (("before", before), ("after", after)):
            mine = analysis.flows[analysis.flows["role"] == role]
            secrets = plots.secret_findings(analysis)
            secrets = secrets[secrets["role"] == role]
            verdicts = mine["verdict"].value_counts()
            row[key] = {"flows": len(mine),
                        "verdicts": ", ".join(f"{v} {n}" for v, n in verdicts.items()) or "–",
                        "secrets": len(secrets),
                        "kinds": ", ".join(sorted(set(secrets["kind"]))) or "–"}
        rows.append(row)
    return {"rows": rows, "figure": _png(plots.compare(before, after))}


def render_html(analysis, compare_with=None, title: str | None = None) -> str:
    """The report as a string: `analysis` first, `compare_with` (the "after") second."""
    captures = [_capture_context(analysis, "capture-1")]
    comparison = None
    if compare_with is not None:
        captures.append(_capture_context(compare_with, "capture-2"))
        comparison = _comparison(analysis, compare_with)
    reveal = any(c["reveal"] for c in captures)
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=title or "flinkwire report: " + " vs ".join(c["name"] for c in captures),
        captures=captures, comparison=comparison, reveal=reveal,
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def write_html(analysis, path, compare_with=None, title: str | None = None) -> Path:
    """Write the self-contained report to `path` (UTF-8) and return the path.

    With `compare_with`, the report opens with a before/after comparison
    (`analysis` before, `compare_with` after) and then shows both captures.
    """
    path = Path(path)
    path.write_text(render_html(analysis, compare_with, title), encoding="utf-8")
    return path


def repr_html(analysis) -> str:
    """The compact summary Jupyter shows for an Analysis (escaped, no images)."""
    context = _capture_context(analysis, "summary", with_plots=False)
    return _environment().get_template("summary.html.j2").render(c=context)


__all__ = ["render_html", "repr_html", "write_html"]
