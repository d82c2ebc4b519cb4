"""Tables out to files: CSV (spreadsheet-safe) and Parquet.

A CSV opened in a spreadsheet runs any cell that starts with `=`, `+`, `-`,
`@`, a tab or a carriage return as a formula. Captured text is attacker
controlled, so every such cell is written with a leading apostrophe, the
neutralisation spreadsheets themselves honour. Values are already redacted
unless the analysis was made with `reveal=True`.

A CSV is also read in a terminal (`cat`, `head`, `column`, a CI log), where a
captured ESC or BEL would be obeyed (set the window title, clear the screen). Every
control character but tab and line ends (which CSV quoting keeps in their cell) is
written the way the JSON export writes it, `\\u001b`: visible and still telling which
byte was captured. The terminal summary, which has no room for that, shows `?`
instead. Parquet keeps the captured text as it is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .jsonout import TABLES

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# C0 controls but tab, LF and CR; DEL; C1 controls (U+009B is a terminal's CSI); and a
# CR that ends no line, which would move the cursor back over the cell's own text
TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")


def _escape_control(match) -> str:
    return f"\\u{ord(match.group()):04x}"


def neutralise(value):
    """A cell value that a spreadsheet will show as text, never evaluate, and that a
    terminal will print, never obey."""
    if isinstance(value, (list, tuple, dict)):
        value = json.dumps(value, default=str, ensure_ascii=False)
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_START):
        value = "'" + value
    return TERMINAL_CONTROL.sub(_escape_control, value)


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
