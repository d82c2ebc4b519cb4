"""Tables out to files: CSV (spreadsheet-safe) and Parquet.

A CSV opened in a spreadsheet runs any cell that starts with `=`, `+`, `-`,
`@`, a tab or a carriage return as a formula. Captured text is attacker
controlled, so every such cell is written with a leading apostrophe, the
neutralisation spreadsheets themselves honour. Values are already redacted
unless the analysis was made with `reveal=True`.
"""

from __future__ import annotations

import json
from pathlib import Path

from .jsonout import TABLES

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A cell value that a spreadsheet will show as text, never evaluate."""
    if isinstance(value, (list, tuple, dict)):
        value = json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _tables(analysis, directory):
    """(name, frame, folder) for every non-empty table; the folder is created."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        frame = getattr(analysis, name, None)
        if frame is not None and not frame.empty:
            yield name, frame, out


def write_csv(analysis, directory) -> list[Path]:
    """One `<table>.csv` per non-empty table in `directory`; returns the paths."""
    written = []
    for name, frame, out in _tables(analysis, directory):
        safe = frame.map(neutralise)
        path = out / f"{name}.csv"
        safe.to_csv(path, index=False)
        written.append(path)
    return written


def write_parquet(analysis, directory) -> list[Path]:
    """One `<table>.parquet` per non-empty table (nested values as JSON text)."""
    written = []
    for name, frame, out in _tables(analysis, directory):
        flat = frame.copy()
        for column in flat.columns:
            if flat[column].dtype == object:
                flat[column] = flat[column].map(
                    lambda v: json.dumps(v, default=str, ensure_ascii=False)
                    if isinstance(v, (list, tuple, dict)) else v).astype("string")
        path = out / f"{name}.parquet"
        flat.to_parquet(path, index=False)
        written.append(path)
    return written
