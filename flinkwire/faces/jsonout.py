"""Everything machine-readable: one JSON document per analysis."""

from __future__ import annotations

import json
import math
import os

TABLES = ("flows", "channels", "findings", "snippets", "anomalies", "tls", "http", "rpc",
          "records", "blobs", "hosts")


def _clean(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def analysis_dict(analysis) -> dict:
    files = []
    for info in analysis.stats.files:
        files.append({k: _clean(getattr(info, k)) for k in (
            "path", "format", "byte_order", "timestamp_resolution", "snaplen", "linktypes",
            "compressed", "file_size", "records_total", "records_complete", "partial_records",
            "sections", "interfaces", "anomalies")})
    doc = {
        "tool": "flinkwire",
        "captures": [os.path.basename(p) for p in analysis.paths],
        "files": files,
        "flink_version": analysis.flink_version,
        "redacted": not analysis.reveal,
        "packets": analysis.stats.packets,
        "verdict": _clean(getattr(analysis, "verdict", {})),
    }
    for name in TABLES:
        frame = getattr(analysis, name, None)
        if frame is None:
            continue
        doc[name] = [_clean(row) for row in frame.to_dict(orient="records")]
    return doc


def write_json(analysis, path=None, indent: int = 2) -> str:
    text = json.dumps(analysis_dict(analysis), indent=indent, ensure_ascii=False)
    if path is not None:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return text
