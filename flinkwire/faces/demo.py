"""`flinkwire demo`: the same Flink cluster recorded in plaintext and with TLS, side by side.

Both captures are bundled in `captures/` of the source tree (real traffic of a
three-JVM cluster with fake secrets, see captures/README.md). The comparison is
printed on the terminal; `--html OUT` also writes the report of both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import FlinkwireError
from ..tables.analysis import analyze, default_capture
from .summary import _cell, human_bytes, secret_findings, verdict_line

BEFORE = "s1-plaintext"
AFTER = ("s3-full-tls-mutual-rest", "s2-internal-tls")


def demo_captures(directory: Path | None = None) -> tuple[tuple[Path, Path | None], ...]:
    """((plaintext pcap, its config), (TLS pcap, its config)) from the bundled captures.

    Raises FlinkwireError naming the directory when either is missing (an
    installed wheel carries no captures; run from a clone of the repository).
    """
    directory = Path(directory) if directory else default_capture().parent
    chosen = []
    for names in ((BEFORE,), AFTER):
        for name in names:
            pcap = directory / f"{name}.pcap"
            if pcap.is_file():
                config = directory / f"{name}.config.yaml"
                chosen.append((pcap, config if config.is_file() else None))
                break
        else:
            raise FlinkwireError(f"{directory}: the demo capture {names[0]}.pcap is missing "
                                 "(the demo needs the captures/ directory of a clone)")
    return tuple(chosen)


def progress_callback(path_or_paths, quiet: bool = False, min_size: int = 32 * 1024 * 1024):
    """A callable(bytes_done) for `analyze(..., progress=)` drawing a bar with tqdm.auto
    (a widget in Jupyter, text elsewhere), or None when quiet, when the captures are
    smaller than `min_size` bytes (they read in seconds) or when tqdm is missing.
    Call `.close()` on the returned callable when done."""
    if quiet:
        return None
    from ..tcp.build import total_size
    paths = [path_or_paths] if isinstance(path_or_paths, (str, os.PathLike)) \
        else list(path_or_paths)
    size = total_size([os.fspath(p) for p in paths])
    if size < min_size:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    bar = tqdm(total=size, unit="B", unit_scale=True, desc="reading", leave=False)

    def update(done: int) -> None:
        bar.update(max(0, min(done, bar.total) - bar.n))

    update.close = bar.close
    return update


def _secrets_by_role(analysis) -> dict:
    secrets = secret_findings(analysis)
    if secrets.empty:
        return {}
    return {role: group for role, group in secrets.groupby("role")}


def _verdicts(flows) -> str:
    if flows.empty:
        return "-"
    counts = flows["verdict"].value_counts()
    return ", ".join(f"{verdict} {count}" for verdict, count in counts.items())


def compare_text(before, after) -> str:
    """The before/after comparison as terminal text, one line per channel."""
    names = [", ".join(os.path.basename(p) for p in a.paths) for a in (before, after)]
    lines = [f"before: {names[0]}", f"  {verdict_line(before)}",
             f"after:  {names[1]}", f"  {verdict_line(after)}", ""]
    header = (f"{'channel':<16} {'before':<16} {'secrets':>7}   {'after':<16} {'secrets':>7}"
              "  readable before")
    lines += [header, "-" * len(header)]
    secrets = [_secrets_by_role(a) for a in (before, after)]
    roles = sorted(set(before.flows["role"]) | set(after.flows["role"]))
    for role in roles:
        cells = []
        for analysis, found in zip((before, after), secrets):
            flows = analysis.flows[analysis.flows["role"] == role]
            cells.append((_cell(_verdicts(flows), 16), len(found.get(role, ()))))
        readable = secrets[0].get(role)
        found_kinds = ", ".join(sorted(set(readable["kind"]))) if readable is not None else "-"
        lines.append(f"{_cell(role, 16):<16} {cells[0][0]:<16} {cells[0][1]:>7}   "
                     f"{cells[1][0]:<16} {cells[1][1]:>7}  {_cell(found_kinds, 48)}")
    lines.append("")
    totals = []
    for analysis in (before, after):
        size = int((analysis.flows["bytes_c2s"] + analysis.flows["bytes_s2c"]).sum()) \
            if len(analysis.flows) else 0
        plain = analysis.flows[analysis.flows["verdict"] == "plaintext"]
        plain_size = int((plain["bytes_c2s"] + plain["bytes_s2c"]).sum()) if len(plain) else 0
        totals.append((human_bytes(plain_size), human_bytes(size),
                       sum(len(g) for g in _secrets_by_role(analysis).values())))
    lines.append(f"Readable on the wire: {totals[0][0]} of {totals[0][1]} before, "
                 f"{totals[1][0]} of {totals[1][1]} after; secret values found: "
                 f"{totals[0][2]} before, {totals[1][2]} after.")
    revealed = before.reveal or after.reveal
    lines.append("Values are " + ("REVEALED" if revealed else "redacted") + " in all output.")
    return "\n".join(lines)


def run_demo(html=None, quiet: bool = False, directory=None, stream=None) -> int:
    """Analyse both bundled captures, print the comparison, optionally write the report."""
    stream = stream or sys.stdout
    (before_pcap, before_config), (after_pcap, after_config) = demo_captures(directory)
    from .progress import progress_for
    analyses = []
    for pcap, config in ((before_pcap, before_config), (after_pcap, after_config)):
        with progress_for([str(pcap)], quiet=quiet) as progress:
            analyses.append(analyze(str(pcap), config=config, reveal=False, progress=progress))
    before, after = analyses
    print(compare_text(before, after), file=stream)
    if html:
        from .html import write_html
        write_html(before, html, compare_with=after)
        print(f"\nHTML report of both written to {html}", file=stream)
    return 0


__all__ = ["compare_text", "demo_captures", "progress_callback", "run_demo"]
