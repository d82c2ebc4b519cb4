"""Progressive results: partial analyses while a long capture is still being read.

Theory of operation
-------------------
`analyze_iter` runs the same reading loop as `tcp.build.build_flows` (the
same decoder and flow table, fed the same packets in the same order), and
every `every_packets` packets, or every `every_seconds` of capture time,
pauses to take a snapshot:

- the rows of the flows the flow table has handed on so far (evicted, or
  ended by a reused port), as they are (their dicts are copied, because
  `Analysis` settles roles in place);
- every flow still in the table, examined as if it had ended now. The table
  keeps a closed flow until the capture ends (late ACKs and retransmissions
  still count), so until the last item most flows are of this kind.
  Examination only reads a flow (its retained head, counters and anomalies),
  so the table goes on undisturbed; the snapshot's rows land in a separate
  `Rows`. A flow that received no packet since the previous snapshot is not
  examined again: its rows from then are reused.

Each snapshot becomes an `Analysis` with `partial = True`, `live_flows` (the
ids of the flows still in the table, whose counts are only so far) and
`packets_read`; the last item is the complete analysis (`partial = False`),
equal to what `analyze(path, executor=False)` returns.

Limits: a live flow seen without its handshake is oriented from what arrived
so far, so its `flow_id` and direction can change in a later snapshot; bytes
waiting behind a hole in a live stream are not in its snapshot. Each snapshot
examines again every flow that grew since the last one (its retained head, up
to the retention limit per direction), so with many busy long flows fewer,
larger steps are cheaper.
"""

from __future__ import annotations

import logging

from ..packets.decode import Decoder
from ..reading.capture import open_capture
from ..tcp.build import BuildStats, read_packets, settle
from ..tcp.flows import FlowTable, Limits
from .analysis import Analysis, prepare
from .arguments import check_arguments
from .examine import Rows, examine, examiner

log = logging.getLogger(__name__)

TABLES = ("flows", "snippets", "findings", "anomalies", "tls", "http", "rpc", "records", "blobs")


def analyze_iter(path_or_paths, config=None, reveal: bool = False, *,
                 limits: Limits | None = None, min_snippet: int = 8,
                 every_packets: int | None = 50_000, every_seconds: float | None = None,
                 progress=None):
    """Yield partial `Analysis` objects as the capture is read, the complete one last.

    A snapshot is taken every `every_packets` packets read and/or every
    `every_seconds` seconds of capture time (packet timestamps, not the
    wall clock), whichever comes first; give None to either to turn it off.
    Several files are read in order into one flow table, as with
    `analyze(paths, executor=False)`. Raises `CaptureError` and `ConfigError`
    as `analyze` does, before the first item.
    """
    if every_packets is not None and every_packets <= 0:
        raise ValueError("every_packets must be a positive number of packets, or None")
    if every_seconds is not None and every_seconds <= 0:
        raise ValueError("every_seconds must be a positive number of seconds, or None")
    path_or_paths = check_arguments(path_or_paths, config, reveal, min_snippet, limits)
    paths, flink_config, ctx = prepare(path_or_paths, config, reveal, min_snippet)
    captures = [open_capture(p) for p in paths]
    return _steps(paths, captures, ctx, flink_config, limits, every_packets,
                  every_seconds, progress)


def _steps(paths, captures, ctx, flink_config, limits, every_packets, every_seconds,
           progress):
    rows = Rows((limits or Limits()).max_rows_per_table)
    on_flow = examiner(ctx, rows)

    stats = BuildStats()
    table = FlowTable(on_flow, limits)
    decoder = Decoder()
    every_ns = int(every_seconds * 1e9) if every_seconds is not None else None
    seen: dict = {}  # flow index -> (packet signature, its rows at the last snapshot)
    try:
        for _ in read_packets(captures, stats, decoder, table, progress, every_packets,
                              every_ns):
            yield _snapshot(paths, rows, stats, decoder, table, ctx, flink_config, seen)
    finally:
        for capture in captures:
            capture.close()
    settle(stats, decoder, table)
    final = Analysis(paths, rows, stats, ctx, flink_config, ctx.reveal)
    final.partial = False
    final.live_flows = frozenset()
    final.packets_read = stats.packets
    yield final


def _snapshot(paths, rows: Rows, stats: BuildStats, decoder, table, ctx, flink_config,
              seen: dict) -> Analysis:
    """A partial Analysis of what was read so far; the running state is left as it was."""
    snap = Rows()
    for name in TABLES:
        getattr(snap, name).extend(getattr(rows, name))
    snap.flows = [dict(row) for row in rows.flows]
    live_ids = []
    still = {}
    for flow in list(table.flows.values()):
        first, second = flow.halves
        signature = (first.frames, second.frames, first.capture_duplicates,
                     second.capture_duplicates, flow.first_ts)
        cached = seen.get(flow.index)
        if cached is not None and cached[0] == signature:
            examined = cached[1]
        else:
            examined = Rows()
            try:
                examine(flow, ctx, examined)
            except Exception:
                log.exception("examining a live flow failed")
        still[flow.index] = (signature, examined)
        for name in TABLES[1:]:
            getattr(snap, name).extend(getattr(examined, name))
        for row in examined.flows:  # copied: Analysis settles roles in place
            snap.flows.append(dict(row))
            live_ids.append(row["flow_id"])
    seen.clear()
    seen.update(still)
    now = BuildStats(files=list(stats.files), packets=stats.packets,
                     bytes_read=stats.bytes_read)
    settle(now, decoder, table)
    analysis = Analysis(paths, snap, now, ctx, flink_config, ctx.reveal)
    analysis.partial = True
    analysis.live_flows = frozenset(live_ids)
    analysis.packets_read = now.packets
    return analysis


__all__ = ["analyze_iter"]
