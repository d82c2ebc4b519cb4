"""One large capture read by several processes at once, each examining a share of its flows.

Theory of operation
-------------------
Examining flows (secret scans, decoders, masking) is most of an analysis, and it
is per flow, so a capture can be split by flow: each of `shards` processes reads
the whole file into a `tcp.flows.ShardTable` that keeps only the flows whose
port sum falls in its shard, and examines those. Reading every packet twice
costs little next to the examination it splits (on the 100 MB benchmark
capture, the packet loop is under a tenth of the work).

Every shard finishes each of its flows at the packet where one table would
(the sweep cadence counts every packet), and tells that moment as a
`finish_key`. `merge_shards` lays the shards' rows out in finish-key order,
which is the order one process examines the flows in, so the tables are the
ones a single reading gives: the same rows in the same order, with the same
per-table bounds applied (the first `max_rows_per_table` rows in that order,
and one `limit` anomaly for the flow whose row was the first refused).

Limits: where a memory bound binds, each shard applies it to its own flows:
`max_flows` and `retain_total` per shard, so which flows are evicted or cut
short can differ from one process; unanswered SYNs beyond the first 10,000
are counted per server either way, but which servers are named once more than
1,000 are seen can differ.

Cost: every shard reads every packet, and each fills its own tables before the
merge cuts them, so the shards together spend about 40% more CPU than one
process. On the 2-core benchmark machine two shards finished the 100 MB capture
10-25% sooner on a quiet machine and later on a busy one, with a quarter more
memory (`benchmarks/results.md`), so reading in one process is the default and
`analyze(path, shards=N)` is the choice of a user with idle cores.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
from dataclasses import dataclass, field, replace

from ..errors import WorkerError
from ..reading.capture import open_capture
from ..tcp.build import BuildStats, build_flows
from ..tcp.flows import Limits
from .examine import (BOUNDED_TABLES, MAX_UNANSWERED_ROWS, OTHER_SERVERS, Context, Rows,
                      count_unanswered, examiner, is_unanswered, unanswered_server)
from .merge import worker_signals

log = logging.getLogger(__name__)


# Anomalies go last, so the `limit` anomaly of a table found full while merging a
# flow's rows lands among that flow's anomalies, as one process would emit it.
TABLES = ("flows", "tls", "snippets", "findings", "http", "rpc", "records", "blobs",
          "anomalies")
BOUNDED = BOUNDED_TABLES
TABLE_FULL = re.compile(r"^(\w+) table full at \d+ rows")
FLOW_FULL = re.compile(r"^more than \d+ (\w+) rows in one flow")


@dataclass
class ShardPart:
    """What one shard returns: its rows, where each flow's rows start, its counters."""

    rows: Rows
    stats: BuildStats
    pieces: list = field(default_factory=list)  # (finish_key, row counts before the flow)
    flink_versions: list = field(default_factory=list)
    unanswered: dict = field(default_factory=dict)        # server -> SYNs counted
    unanswered_first: dict = field(default_factory=dict)  # server -> key of the first


def analyze_shard(path: str, shard: int, shards: int, port_roles: dict, reveal: bool,
                  limits: Limits | None, min_snippet: int, progress=None) -> ShardPart:
    """Read `path`, examining only shard `shard` of `shards` of its flows."""
    ctx = Context(port_roles=dict(port_roles), reveal=reveal, min_snippet=min_snippet)
    rows = Rows((limits or Limits()).max_rows_per_table)
    examine_flow = examiner(ctx, rows)
    pieces = []
    first = {}

    def on_flow(flow, finish_key):
        kept = len(rows.flows)
        pieces.append((finish_key, tuple(len(getattr(rows, name)) for name in TABLES)))
        examine_flow(flow)
        if len(rows.flows) == kept and is_unanswered(flow):
            # Counted, not kept: remember when each server was first counted, so the
            # merge can list the servers in the order one process would.
            server = unanswered_server(flow)
            first.setdefault(server if server in ctx.unanswered else OTHER_SERVERS,
                             finish_key)

    stats = build_flows([path], on_flow, limits, progress, shard=(shard, shards))
    return ShardPart(rows, stats, pieces, sorted(ctx.flink_versions), dict(ctx.unanswered),
                     first)


def analyze_sharded(path: str, ctx: Context, limits: Limits | None = None, progress=None,
                    shards: int = 2) -> tuple[Rows, BuildStats]:
    """Analyse one capture in `shards` processes (this one among them) and merge.

    Raises `CaptureError` for a file that is not a capture (before any worker
    starts, or from a worker if the file changed meanwhile) and `WorkerError` when
    a worker dies without its part (killed, out of memory).
    """
    open_capture(path).close()
    args = (dict(ctx.port_roles), ctx.reveal, limits, ctx.min_snippet)
    # fork where there is one: the workers start with flinkwire imported.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    workers = []
    try:
        for number in range(1, shards):
            receiver, sender = context.Pipe(duplex=False)
            worker = context.Process(target=_shard_worker, daemon=True,
                                     args=(sender, (path, number, shards, *args)))
            worker.start()
            sender.close()
            workers.append((worker, receiver))
        parts = [analyze_shard(path, 0, shards, *args, progress=progress)]
        parts += [_received(path, worker, receiver) for worker, receiver in workers]
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM in the CLI) or failed: the other shards' work
        # is of no use, and waiting for it would hold the user up.
        for worker, _ in workers:
            worker.terminate()
        raise
    finally:
        for worker, receiver in workers:
            worker.join(5)
            if worker.is_alive():
                worker.kill()
                worker.join()
            receiver.close()
    max_rows = (limits or Limits()).max_rows_per_table
    return merge_shards(parts, ctx, max_rows)


def _shard_worker(sender, args) -> None:
    """A worker's life: its shard, sent back whole (or the error that stopped it)."""
    worker_signals()
    # Every shard reads every packet: the reading warnings are the parent's to give.
    logging.getLogger("flinkwire.reading").setLevel(logging.ERROR)
    try:
        result = ("part", analyze_shard(*args))
    except Exception as exc:  # sent back to be raised in the parent
        result = ("error", exc)
    try:
        sender.send(result)
    except Exception as exc:  # an error that does not pickle
        sender.send(("error", WorkerError(f"shard worker failed: {exc!r}")))
    finally:
        sender.close()


def _received(path: str, worker, receiver) -> ShardPart:
    # A worker that dies (killed, out of memory) closes its end of the pipe, or at
    # least stops being alive: either way the wait ends.
    while not receiver.poll(0.2):
        if not worker.is_alive() and not receiver.poll():
            break
    try:
        kind, payload = receiver.recv()
    except EOFError:
        worker.join(5)
        raise WorkerError(f"{path}: a worker process ended (exit code {worker.exitcode}) "
                          "before returning its share of the flows") from None
    if kind == "error":
        raise payload
    return payload


def merge_shards(parts: list[ShardPart], ctx: Context, max_rows: int) -> tuple[Rows, BuildStats]:
    """The rows one process would have made, from the shards' parts."""
    out = Rows(max_rows)
    order = []
    for number, part in enumerate(parts):
        ends = [start for _, start in part.pieces[1:]]
        ends.append(tuple(len(getattr(part.rows, name)) for name in TABLES))
        for (key, start), end in zip(part.pieces, ends):
            order.append((key, number, start, end))
    order.sort(key=lambda item: item[0])

    unanswered_rows = 0
    counted: dict = {}  # server -> [SYNs counted, key of the first]
    for key, number, start, end in order:
        rows = parts[number].rows
        cut = {}  # table -> the flow of its first row refused
        flow_rows = rows.flows[start[0]:end[0]]
        if len(flow_rows) == 1 and _unanswered_row(flow_rows[0]):
            if unanswered_rows >= MAX_UNANSWERED_ROWS:
                # One process counts it and keeps no row of it at all.
                _count(counted, flow_rows[0]["server_ip"], 1, key)
                continue
            unanswered_rows += 1
        for index, name in enumerate(TABLES):
            items = getattr(rows, name)[start[index]:end[index]]
            if name in BOUNDED:
                room = max_rows - len(getattr(out, name))
                if len(items) > room:
                    cut[name] = items[max(room, 0)]["flow_id"]
                    items = items[:max(room, 0)]
            elif name == "anomalies":
                # A shard that refused this flow's rows itself held all the rows one
                # process would keep before them: the merged table is full here too.
                for anomaly in items:
                    full = _table_full(anomaly)
                    if full and full not in cut:
                        cut[full] = anomaly["flow_id"]
                items = [a for a in items if not _refusal_to_redo(a, cut)]
            getattr(out, name).extend(items)
        for name, refused in cut.items():
            out.room(name, refused)  # a table's first refusal, noted as one process does
        out.flush_refusals()
    for part in parts:
        ctx.flink_versions.update(part.flink_versions)
        for server, count in part.unanswered.items():
            _count(counted, server, count, part.unanswered_first.get(server, ()))
    # Servers in the order they were first counted, named up to the bound, as one
    # process lists them.
    for server, (count, _) in sorted(counted.items(), key=lambda item: item[1][1]):
        count_unanswered(ctx.unanswered, server, count)
    return out, _merged_stats(parts)


def _table_full(anomaly: dict) -> str | None:
    """The table a shard's own "table full" note is about, else None."""
    if anomaly.get("kind") != "limit" or anomaly.get("source") != "limits":
        return None
    full = TABLE_FULL.match(anomaly.get("detail") or "")
    return full.group(1) if full else None


def _refusal_to_redo(anomaly: dict, cut: dict) -> bool:
    """A shard's own note of a full table (merging notes it again where one process
    would), or a per-flow bound that one process would not have reached because the
    table filled first (this flow's rows were cut)."""
    if _table_full(anomaly):
        return True
    if anomaly.get("kind") != "limit" or anomaly.get("source") != "limits":
        return False
    flow_full = FLOW_FULL.match(anomaly.get("detail") or "")
    return bool(flow_full) and flow_full.group(1) in cut


def _unanswered_row(row: dict) -> bool:
    """The row of an unanswered SYN (a SYN, no SYN-ACK, no byte either way)."""
    return (row["transport"] == "tcp" and row["handshake_seen"] and not row["established"]
            and not row["bytes_c2s"] and not row["bytes_s2c"])


def _count(counted: dict, server: str, count: int, key) -> None:
    entry = counted.get(server)
    if entry is None:
        counted[server] = [count, key]
    else:
        entry[0] += count
        entry[1] = min(entry[1], key)


def _merged_stats(parts: list[ShardPart]) -> BuildStats:
    # Every shard read every packet: the reading counters are the first shard's.
    first = parts[0].stats
    stats = replace(first, files=list(first.files), skipped=dict(first.skipped))
    stats.flows = sum(part.stats.flows for part in parts)
    stats.evicted = sum(part.stats.evicted for part in parts)
    stats.port_reuse = sum(part.stats.port_reuse for part in parts)
    return stats


__all__ = ["ShardPart", "analyze_shard", "analyze_sharded", "merge_shards"]
