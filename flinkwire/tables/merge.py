"""Many capture files analysed apart, in parallel, then merged into one set of rows.

Theory of operation
-------------------
Each file is read by `analyze_file` in a worker of its own (a process pool, any
`concurrent.futures.Executor`, or a `dask.distributed.Client`) into plain,
picklable rows, exactly as a one-file analysis would make them. `merge_parts`
then joins the parts, in the order the files were given:

- A flow that continues across rotated files arrives as two (or more) parts:
  the earlier one was still open when its file ended (no FIN or RST), and the
  later one starts without a SYN, on the same endpoints, no earlier than the
  earlier part's last packet. Such parts become one flow. The first part gives
  the flow its `flow_id`, orientation, role, verdict and TLS facts (it saw the
  handshake and the head of the stream); packets, bytes, gaps, retransmissions
  and readable bytes are summed, `last_ts` is the latest and `closed` is the
  last part's. A first part that carried no payload (the file ended after the
  handshake) lends only its id and orientation: the verdict and content come
  from the first later part that has payload.
- Every other table's rows of a later part are re-keyed to the first part's
  `flow_id`; their directions are swapped when the later part, lacking the
  SYN, guessed the client the other way round, and their stream offsets are
  shifted by how far the earlier parts' streams reached in that direction
  (unique plus gap bytes), so offsets read as if one file had been analysed.
  A later part's own TLS row is dropped (it saw no handshake) after its
  application-data bytes and alerts are added to the first part's (after a
  handshake, as one encrypted alert per direction: the later part could not
  know its alert records were encrypted).
- A secret seen in several parts of one flow becomes one finding whose count
  is the sum; a snippet cut by the file boundary is joined again when its two
  pieces meet exactly at the boundary.

Limits: each file is reassembled alone, so a secret or a readable run that
straddles a file boundary may be missed or split (an HTTP message or RPC frame
cut by the boundary is decoded only in the part that holds its start, if at
all), and bytes retransmitted across the boundary are counted in both parts.
Reading the files in one process (`executor=False`) has none of these limits.
The default process pool starts workers the platform's way: where that is
`spawn` (macOS, Windows), a script must call `analyze` under
`if __name__ == "__main__":`.
"""

from __future__ import annotations

import logging
import os
import signal
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

from ..flink import roles
from ..reading.capture import open_capture
from ..tcp.build import BuildStats, build_flows
from ..tcp.flows import Limits
from .examine import Context, Rows, examiner

log = logging.getLogger(__name__)

DIRECTIONS = ("c2s", "s2c")
SWAP = {"c2s": "s2c", "s2c": "c2s"}
SUMMED = ("retransmitted_bytes", "readable_bytes", "capture_duplicates")
# Columns a no-payload first part takes from the first later part with payload.
CONTENT_COLUMNS = ("verdict", "tls_version", "sni", "cipher", "starttls_offset", "_content")
OTHER_TABLES = ("snippets", "anomalies", "http", "rpc", "records", "blobs")


@dataclass
class FilePart:
    """What one worker returns for one file: its rows, its reading stats, its versions."""

    path: str
    rows: Rows
    stats: BuildStats
    flink_versions: list = field(default_factory=list)


def analyze_file(path: str, port_roles: dict, reveal: bool, limits: Limits | None,
                 min_snippet: int) -> FilePart:
    """Read one capture file into rows (the work of one worker; plain data out)."""
    ctx = Context(port_roles=dict(port_roles), reveal=reveal, min_snippet=min_snippet)
    rows = Rows((limits or Limits()).max_rows_per_table)
    stats = build_flows([path], examiner(ctx, rows), limits, None)
    return FilePart(path, rows, stats, sorted(ctx.flink_versions))


def is_dask_client(executor) -> bool:
    """A `dask.distributed.Client` (or look-alike): it has `submit` and `gather`."""
    return callable(getattr(executor, "submit", None)) and \
        callable(getattr(executor, "gather", None))


def analyze_parallel(paths, ctx: Context, limits: Limits | None = None, progress=None,
                     executor=None) -> tuple[Rows, BuildStats]:
    """Analyse each file of `paths` in a worker and merge the parts.

    `executor` is a `concurrent.futures.Executor`, a `dask.distributed.Client`,
    or None for a local process pool of `min(len(paths), os.cpu_count())`
    workers (shut down before returning). Raises `CaptureError` for a path that
    is not a capture, before any file is analysed. The versions the parts saw
    are added to `ctx.flink_versions`.
    """
    paths = [os.fspath(p) for p in paths]
    for path in paths:
        open_capture(path).close()
    args = (dict(ctx.port_roles), ctx.reveal, limits, ctx.min_snippet)
    own = executor is None
    if own:
        executor = ProcessPoolExecutor(max_workers=max(1, min(len(paths), os.cpu_count() or 1)),
                                       initializer=worker_signals)
    try:
        if is_dask_client(executor) and not isinstance(executor, Executor):
            futures = [executor.submit(analyze_file, path, *args, pure=False)
                       for path in paths]
            parts = executor.gather(futures)
            if progress is not None:
                progress(sum(part.stats.bytes_read for part in parts))
        else:
            futures = [executor.submit(analyze_file, path, *args) for path in paths]
            done = 0
            for future in as_completed(futures):
                done += future.result().stats.bytes_read
                if progress is not None:
                    progress(done)
            parts = [future.result() for future in futures]
    except BaseException:
        if own:
            # Interrupted or failed: the running files' work is of no use, and
            # waiting for it would hold the user up. The pool keeps its processes
            # in `_processes` (CPython's own attribute; nothing public ends them).
            for process in list(getattr(executor, "_processes", {}).values()):
                process.terminate()
        raise
    finally:
        if own:
            executor.shutdown(wait=True, cancel_futures=True)
    for part in parts:
        ctx.flink_versions.update(part.flink_versions)
    return merge_parts(parts, ctx.port_roles)


def worker_signals() -> None:
    """In a worker process of ours: the parent handles Ctrl-C (which a terminal sends
    to the whole process group) and SIGTERM, and ends its workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _Chain:
    """The merged flow row and how far its streams reach, while parts may still join it."""

    __slots__ = ("ends", "row")

    def __init__(self, row: dict):
        self.row = row
        self.ends = {d: row[f"bytes_{d}"] + row[f"gap_bytes_{d}"] for d in DIRECTIONS}

    def continued_by(self, row: dict) -> bool:
        first = self.row
        return (not first["closed"] and not row["handshake_seen"]
                and row["first_ts"] >= first["last_ts"])


@dataclass
class _Rekey:
    flow_id: str
    swapped: bool
    shift: dict            # direction of the later part -> offset shift
    adopted: bool          # the merged flow's verdict came from this part


def _endpoints(row: dict):
    return (row["transport"], frozenset(((row["client_ip"], row["client_port"]),
                                         (row["server_ip"], row["server_port"]))))


def merge_parts(parts: list[FilePart], port_roles: dict | None = None) -> tuple[Rows, BuildStats]:
    """One set of rows and stats from the parts of several files, in the given order."""
    out = Rows()
    stats = BuildStats()
    chains: dict = {}
    seen_secrets: dict = {}
    tails: dict = {}  # (flow_id, direction) -> last snippet, to join one the boundary cut
    base_index = 0
    for number, part in enumerate(parts):
        rows = part.rows
        rekey: dict[str, _Rekey] = {}
        latest: dict = {}
        for row in sorted(rows.flows, key=lambda r: (r["first_ts"], r["index"])):
            row["index"] += base_index
            key = _endpoints(row)
            chain = None if key in latest else chains.get(key)
            if chain is not None and chain.continued_by(row):
                rekey[row["flow_id"]] = _join(chain, row, port_roles or {})
            else:
                chain = _Chain(row)
                out.flows.append(row)
            latest[key] = chain
        chains.update(latest)
        base_index += part.stats.flows

        for t in rows.tls:
            move = rekey.get(t["flow_id"])
            if move is None:
                out.tls.append(t)
            elif move.adopted:
                out.tls.append({**t, "flow_id": move.flow_id})
            else:
                _add_application_data(out.tls, move, t)
        for name in OTHER_TABLES:
            target = getattr(out, name)
            for item in getattr(rows, name):
                move = rekey.get(item.get("flow_id"))
                if move is not None:
                    item = _moved(item, move)
                    if name == "snippets" and _joined_snippet(tails, item, move):
                        continue
                target.append(item)
                if name == "snippets":
                    tails[(item["flow_id"], item["direction"])] = item
        for secret in rows.findings:
            move = rekey.get(secret["flow_id"])
            if move is not None:
                secret = _moved(secret, move)
            key = (secret["flow_id"], secret["direction"], secret["kind"], secret["value"])
            earlier = seen_secrets.get(key)
            if earlier is not None and earlier[0] < number:
                earlier[1]["count"] += secret["count"]
                continue
            seen_secrets.setdefault(key, (number, secret))
            out.findings.append(secret)
        _add_stats(stats, part.stats)
    stats.flows = len(out.flows)
    return out, stats


def _join(chain: _Chain, row: dict, port_roles: dict) -> _Rekey:
    """Fold the later part `row` into `chain`; say how to re-key its other rows."""
    first = chain.row
    swapped = (row["client_ip"], row["client_port"]) != (first["client_ip"],
                                                          first["client_port"])
    to_first = SWAP if swapped else {d: d for d in DIRECTIONS}
    shift = {d: chain.ends[to_first[d]] for d in DIRECTIONS}
    for d in DIRECTIONS:
        f = to_first[d]
        first[f"packets_{f}"] += row[f"packets_{d}"]
        first[f"bytes_{f}"] += row[f"bytes_{d}"]
        first[f"gap_bytes_{f}"] += row[f"gap_bytes_{d}"]
        chain.ends[f] += row[f"bytes_{d}"] + row[f"gap_bytes_{d}"]
    for name in SUMMED:
        first[name] = (first.get(name) or 0) + (row.get(name) or 0)
    first["last_ts"] = max(first["last_ts"], row["last_ts"])
    first["closed"] = row["closed"]

    adopted = first["verdict"] == "no-payload" and row["verdict"] != "no-payload"
    if adopted:
        for name in CONTENT_COLUMNS:
            first[name] = row.get(name)
        role, evidence = roles.decide_role(first["server_port"], row.get("_content"),
                                           row["verdict"] == "tls", port_roles)
        first["role"] = role
        first["role_evidence"] = "; ".join(evidence)
    return _Rekey(first["flow_id"], swapped, shift, adopted)


def _moved(item: dict, move: _Rekey) -> dict:
    item = dict(item, flow_id=move.flow_id)
    direction = item.get("direction")
    if direction in SWAP:
        if move.swapped:
            item["direction"] = direction = SWAP[direction]
        offset = item.get("offset")
        if isinstance(offset, int) and not isinstance(offset, bool):
            item["offset"] = offset + move.shift[SWAP[direction] if move.swapped
                                                 else direction]
    return item


def _joined_snippet(tails: dict, item: dict, move: _Rekey) -> bool:
    """Append `item`'s text to the earlier part's last snippet when the two meet at the
    file boundary (a readable run the boundary cut in two)."""
    direction = item["direction"]
    boundary = move.shift[SWAP[direction] if move.swapped else direction]
    earlier = tails.get((item["flow_id"], direction))
    if (item["offset"] != boundary or earlier is None
            or earlier["offset"] + len(earlier["text"]) != boundary):
        return False
    earlier["text"] += item["text"]
    return True


def _add_application_data(tls_rows: list, move: _Rekey, later: dict) -> None:
    """Count a later part's TLS records into the first part's TLS row: application
    data bytes, and the alerts (a close_notify usually comes at the very end)."""
    for t in reversed(tls_rows):
        if t["flow_id"] != move.flow_id:
            continue
        for d in DIRECTIONS:
            f = SWAP[d] if move.swapped else d
            t[f"application_data_bytes_{f}"] = ((t.get(f"application_data_bytes_{f}") or 0)
                                               + (later.get(f"application_data_bytes_{d}")
                                                  or 0))
        alerts = [dict(a, direction=SWAP.get(a.get("direction"), a.get("direction")))
                  if move.swapped else a for a in later.get("alerts") or ()]
        if alerts and t.get("client_hello_seen"):
            # Without the handshake the later part took encrypted alert records for
            # plaintext ones; after a handshake they are encrypted: one per direction.
            directions = dict.fromkeys(a.get("direction") for a in alerts)
            alerts = [{"direction": d, "level": None, "description": "encrypted"}
                      for d in directions]
        if alerts:
            t["alerts"] = list(t.get("alerts") or ()) + alerts
        return


def _add_stats(total: BuildStats, part: BuildStats) -> None:
    total.files.extend(part.files)
    total.packets += part.packets
    total.segments += part.segments
    for reason, count in part.skipped.items():
        total.skipped[reason] = total.skipped.get(reason, 0) + count
    total.evicted += part.evicted
    total.port_reuse += part.port_reuse
    total.vxlan += part.vxlan
    total.bytes_read += part.bytes_read


__all__ = ["FilePart", "analyze_file", "analyze_parallel", "is_dask_client", "merge_parts"]
