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
- Files that overlap (one capture per node sees a connection between two nodes
  at both of its ends; a file and its copy) hold the same connection twice. A
  part is such a copy when an earlier file's flow has its endpoints (either
  way round), their times overlap allowing for `CLOCK_SKEW_NS` between the
  nodes' clocks, and the sequence numbers at which each direction's stream
  starts place it within the other's stream. Where a copy saw a direction's
  SYN the other can hold nothing before it, so when both saw it the ISNs are
  equal: another connection on the same endpoints, with its own SYN, is never
  a copy, however its ISNs fall. Without sequence numbers to compare (tshark's
  rows, UDP) a copy needs the very same `flow_id` (endpoints and first packet)
  and the same packet and byte counts; a later flow that has an earlier one's
  `flow_id` and is not its copy gets an id of its own. Parts of which one is
  TLS and the other plaintext are never one flow (neither copies nor a rotated
  continuation): merging them would hide the plaintext one. A copy is counted
  once: per direction the bytes are the union of the two streams, the packets
  the larger count, the smaller one is added to `capture_duplicates` (as a
  frame recorded twice in one file is), and a row of the copy's other tables
  is dropped when the flow already has an equal one (same content and stream
  offset; timestamps may differ by the skew).
  The flow keeps the earlier file's `flow_id` and gets one
  `seen-in-several-files` anomaly saying in how many files it was seen.
  The same file named twice, or a byte-for-byte copy of it, seldom gets here:
  `distinct_paths` drops it (a tshark engine's or a caller's parts may still).

Limits: each file is reassembled alone, so a secret or a readable run that
straddles a file boundary may be missed or split (an HTTP message or RPC frame
cut by the boundary is decoded only in the part that holds its start, if at
all), and bytes retransmitted across the boundary are counted in both parts.
Reading the files in one process (`executor=False`) has none of these limits,
but it knows no copies: there a connection captured at both ends is two flows.
A copy is recognised only by sequence numbers, so two captures of one UDP
conversation stay two flows, as do copies of a TCP flow read by tshark
(`engine="tshark"`) unless their first packets have the same timestamp and their
counts agree; where
one copy saw more of a stream, its packets beyond the other's are not added.
The default process pool starts workers the platform's way: where that is
`spawn` (macOS, Windows), a script must call `analyze` under
`if __name__ == "__main__":`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from operator import itemgetter

from ..flink import roles
from ..reading.capture import open_capture
from ..tcp.build import BuildStats, build_flows
from ..tcp.flows import HALF_RANGE, MASK, Limits
from .examine import Context, Rows, examiner, ip_text

log = logging.getLogger(__name__)

DIRECTIONS = ("c2s", "s2c")
SWAP = {"c2s": "s2c", "s2c": "c2s"}
SUMMED = ("retransmitted_bytes", "readable_bytes", "capture_duplicates")
# Columns a no-payload first part takes from the first later part with payload.
CONTENT_COLUMNS = ("verdict", "tls_version", "sni", "cipher", "starttls_offset", "_content")
OTHER_TABLES = ("snippets", "anomalies", "http", "rpc", "records", "blobs")
# How far apart the clocks of two nodes capturing one connection may be.
CLOCK_SKEW_NS = 500_000_000


@dataclass
class FilePart:
    """What one worker returns for one file: its rows, its reading stats, its versions."""

    path: str
    rows: Rows
    stats: BuildStats
    flink_versions: list = field(default_factory=list)
    # flow index -> {direction: 32-bit sequence number of stream offset 0, or None}:
    # how a copy of the flow in another file is recognised and its offsets aligned.
    stream_starts: dict = field(default_factory=dict)
    # flow index -> the directions whose SYN the file holds: there stream offset 0 is
    # the ISN + 1, and a copy must start at the very same sequence number.
    syn_seen: dict = field(default_factory=dict)


def analyze_file(path: str, port_roles: dict, reveal: bool, limits: Limits | None,
                 min_snippet: int) -> FilePart:
    """Read one capture file into rows (the work of one worker; plain data out)."""
    ctx = Context(port_roles=dict(port_roles), reveal=reveal, min_snippet=min_snippet)
    rows = Rows((limits or Limits()).max_rows_per_table)
    examine = examiner(ctx, rows)
    starts, syns = {}, {}

    def on_flow(flow):
        kept = len(rows.flows)
        examine(flow)
        if len(rows.flows) > kept and flow.proto == 6:
            row = rows.flows[-1]
            starts[row["index"]], syns[row["index"]] = _stream_starts(flow, row)

    stats = build_flows([path], on_flow, limits, None)
    return FilePart(path, rows, stats, sorted(ctx.flink_versions), starts, syns)


def _stream_starts(flow, row) -> tuple[dict, tuple]:
    """The 32-bit sequence number of each direction's stream offset 0 (None when the
    direction carried no SYN and no payload), and the directions whose SYN was seen."""
    client = (row["client_ip"], row["client_port"])
    out, syns = {}, []
    for side, half in enumerate(flow.halves):
        ip, port = flow.endpoint(side)
        direction = "c2s" if (ip_text(ip), port) == client and "c2s" not in out else "s2c"
        out[direction] = (half.seq_next - half.next) & MASK if half.based else None
        if half.syn:
            syns.append(direction)
    return out, tuple(syns)


def distinct_paths(paths: list[str]) -> list[str]:
    """`paths` without the repeats of a file, each logged as a warning: the same path
    once resolved, the same inode of the same device (a hard link), or the same bytes
    (a copy; only files of equal size are read to tell)."""
    kept, seen, sizes = [], {}, {}
    for path in paths:
        names = [os.path.realpath(path)]
        try:
            status = os.stat(path)
            if status.st_ino:
                names.append((status.st_dev, status.st_ino))
        except OSError:
            status = None  # opening it will say what is wrong with it
        earlier = next((seen[name] for name in names if name in seen), None)
        if earlier is None and status is not None:
            earlier = next((other for other in sizes.get(status.st_size, ())
                            if _same_bytes(path, other)), None)
        if earlier is not None:
            log.warning("%s is the same file as %s: analysed once", path, earlier)
            continue
        seen.update(dict.fromkeys(names, path))
        if status is not None:
            sizes.setdefault(status.st_size, []).append(path)
        kept.append(path)
    return kept


def _same_bytes(path: str, other: str) -> bool:
    try:
        with open(path, "rb") as one, open(other, "rb") as two:
            while True:
                block = one.read(1 << 20)
                if block != two.read(1 << 20):
                    return False
                if not block:
                    return True
    except OSError:
        return False


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

    __slots__ = ("ends", "row", "starts", "syns", "part", "files")

    def __init__(self, row: dict, starts: dict | None, syns, part: int, path: str):
        self.row = row
        self.ends = {d: row[f"bytes_{d}"] + row[f"gap_bytes_{d}"] for d in DIRECTIONS}
        self.starts = starts or {}
        self.syns = frozenset(syns or ())
        self.part = part
        self.files = {part: path}  # the parts that saw (a copy of) the flow

    def continued_by(self, row: dict) -> bool:
        first = self.row
        return (not first["closed"] and not row["handshake_seen"]
                and row["first_ts"] >= first["last_ts"] and row["flow_id"] != first["flow_id"]
                and not _verdicts_clash(first, row))

    def copy_shift(self, row: dict, starts: dict | None, syns, swapped: bool) -> dict | None:
        """Where `row`, from another file, is this same connection: how far its streams
        start into this flow's, per direction of this flow. Else None."""
        first = self.row
        if (row["first_ts"] > first["last_ts"] + CLOCK_SKEW_NS
                or first["first_ts"] > row["last_ts"] + CLOCK_SKEW_NS
                or _verdicts_clash(first, row)):
            return None
        shift = {}
        for d in DIRECTIONS:
            f = SWAP[d] if swapped else d
            mine, theirs = self.starts.get(f), (starts or {}).get(d)
            if mine is None or theirs is None:
                continue
            shift[f] = ((theirs - mine + HALF_RANGE) & MASK) - HALF_RANGE
            # Where a copy saw the SYN its stream starts at the ISN: the other copy can
            # hold nothing before it (and both saw it: the same ISN).
            if (f in self.syns and shift[f] < 0) or (syns and d in syns and shift[f] > 0):
                return None
            if not -(row[f"bytes_{d}"] + row[f"gap_bytes_{d}"]) <= shift[f] <= self.ends[f]:
                return None
        if not shift:
            # No sequence numbers to compare (tshark's rows, UDP): only the same flow
            # (endpoints and first packet) with the same counts, as a file's copy has.
            if row["flow_id"] == first["flow_id"] and all(
                    row[f"{n}_{d}"] == first[f"{n}_{d}"]
                    for n in ("packets", "bytes") for d in DIRECTIONS):
                return {d: 0 for d in DIRECTIONS}
            return None
        return {f: shift.get(f, 0) for f in DIRECTIONS}


def _verdicts_clash(first: dict, row: dict) -> bool:
    """One part TLS and the other plaintext: whatever else they share, they are not one
    connection, and merging them would hide the plaintext one."""
    return {first["verdict"], row["verdict"]} == {"tls", "plaintext"}


@dataclass
class _Rekey:
    flow_id: str
    swapped: bool
    shift: dict            # direction of the later part -> offset shift
    adopted: bool          # the merged flow's verdict came from this part
    copy: bool = False     # the part is the same stretch of the flow, seen in another file


def _endpoints(row: dict):
    return (row["transport"], frozenset(((row["client_ip"], row["client_port"]),
                                         (row["server_ip"], row["server_port"]))))


def merge_parts(parts: list[FilePart], port_roles: dict | None = None) -> tuple[Rows, BuildStats]:
    """One set of rows and stats from the parts of several files, in the given order."""
    out = Rows()
    stats = BuildStats()
    chains: dict = {}
    every: dict = {}  # endpoints -> every chain on them, for copies in later files
    seen_secrets: dict = {}
    tails: dict = {}  # (flow_id, direction) -> last snippet, to join one the boundary cut
    base_index = 0
    ids: set = set()  # the flow ids out.flows holds
    for number, part in enumerate(parts):
        rows = part.rows
        rekey: dict[str, _Rekey] = {}
        latest: dict = {}
        for row in sorted(rows.flows, key=lambda r: (r["first_ts"], r["index"])):
            starts = part.stream_starts.get(row["index"])
            syns = part.syn_seen.get(row["index"])
            row["index"] += base_index
            key = _endpoints(row)
            chain = None if key in latest else chains.get(key)
            if chain is not None and chain.continued_by(row):
                rekey[row["flow_id"]] = _join(chain, row, port_roles or {})
            else:
                chain, move = _copied(every.get(key, ()), row, starts, syns, number,
                                      port_roles)
                if move is not None:
                    chain.files[number] = part.path
                    rekey[row["flow_id"]] = move
                else:
                    if row["flow_id"] in ids:
                        # Another connection that began at the same time on the same
                        # endpoints, in another file: an id of its own.
                        own = row["flow_id"]
                        rekey[own] = _renamed(row, number, ids)
                    chain = _Chain(row, starts, syns, number, part.path)
                    every.setdefault(key, []).append(chain)
                    out.flows.append(row)
                    ids.add(row["flow_id"])
            latest[key] = chain
        chains.update(latest)
        base_index += part.stats.flows

        # Rows the flows copied from this part already have: (table, content) keys.
        copied = {move.flow_id for move in rekey.values() if move.copy}
        had = set()
        if copied:
            had = {(name, _content(item)) for name in OTHER_TABLES
                   for item in getattr(out, name) if item.get("flow_id") in copied}
            had.update(("tls", t["flow_id"]) for t in out.tls if t["flow_id"] in copied)
        for t in rows.tls:
            move = rekey.get(t["flow_id"])
            if move is None:
                out.tls.append(t)
            elif move.copy:
                if ("tls", move.flow_id) not in had:
                    had.add(("tls", move.flow_id))
                    out.tls.append({**t, "flow_id": move.flow_id})
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
                    if move.copy and (name, _content(item)) in had:
                        continue
                    if (name == "snippets" and not move.copy
                            and _joined_snippet(tails, item, move)):
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
                if move is not None and move.copy:  # the copy saw the same repeats
                    earlier[1]["count"] = max(earlier[1]["count"], secret["count"])
                else:
                    earlier[1]["count"] += secret["count"]
                continue
            seen_secrets.setdefault(key, (number, secret))
            out.findings.append(secret)
        _add_stats(stats, part.stats)
    stats.flows = len(out.flows)
    _note_copies(out, every)
    return out, stats


def _renamed(row: dict, number: int, ids: set) -> _Rekey:
    """Give `row` (of file `number`) a flow id no earlier flow has; say how to re-key
    the rest of its rows."""
    salt = number
    while True:
        fid = "F" + hashlib.blake2s(f"{row['flow_id']}|{salt}".encode(),
                                    digest_size=6).hexdigest()
        if fid not in ids:
            break
        salt = fid
    row["flow_id"] = fid
    return _Rekey(fid, False, {d: 0 for d in DIRECTIONS}, adopted=True)


def _copied(candidates, row: dict, starts: dict | None, syns, number: int,
            port_roles: dict | None) -> tuple:
    """(chain, _Rekey) when `row` is a copy of a flow of an earlier file (the nearest in
    time, if several could be), having folded it in; else (None, None)."""
    best = None
    for chain in candidates:
        if chain.part == number or number in chain.files:
            continue  # a flow of this very file, or one this file already has a copy of
        first = chain.row
        swapped = (row["client_ip"], row["client_port"]) != (first["client_ip"],
                                                              first["client_port"])
        shift = chain.copy_shift(row, starts, syns, swapped)
        distance = abs(row["first_ts"] - first["first_ts"])
        if shift is not None and (best is None or distance < best[0]):
            best = (distance, chain, swapped, shift)
    if best is None:
        return None, None
    _, chain, swapped, shift = best
    return chain, _fold_copy(chain, row, swapped, shift, port_roles or {})


def _fold_copy(chain: _Chain, row: dict, swapped: bool, shift: dict,
               port_roles: dict) -> _Rekey:
    """Count the copy `row` into `chain` once: the union of the streams, the larger
    packet count, the smaller one as capture duplicates."""
    first = chain.row
    to_first = SWAP if swapped else {d: d for d in DIRECTIONS}
    duplicates = row.get("capture_duplicates") or 0
    for d in DIRECTIONS:
        f = to_first[d]
        at, reach = shift[f], row[f"bytes_{d}"] + row[f"gap_bytes_{d}"]
        # What the copy holds before and after this flow's stream is new to it.
        grown = max(0, -at) + max(0, at + reach - chain.ends[f])
        first[f"bytes_{f}"] = max(first[f"bytes_{f}"] + grown, row[f"bytes_{d}"])
        chain.ends[f] = max(chain.ends[f], at + reach)
        duplicates += min(first[f"packets_{f}"], row[f"packets_{d}"])
        first[f"packets_{f}"] = max(first[f"packets_{f}"], row[f"packets_{d}"])
    first["capture_duplicates"] = (first.get("capture_duplicates") or 0) + duplicates
    for name in ("retransmitted_bytes", "readable_bytes"):
        first[name] = max(first.get(name) or 0, row.get(name) or 0)
    for name in ("handshake_seen", "established", "closed"):
        first[name] = bool(first.get(name) or row.get(name))
    first["first_ts"] = min(first["first_ts"], row["first_ts"])
    first["last_ts"] = max(first["last_ts"], row["last_ts"])
    adopted = _adopt(first, row, port_roles)
    return _Rekey(first["flow_id"], swapped, {d: shift[to_first[d]] for d in DIRECTIONS},
                  adopted, copy=True)


def _content(item) -> str:
    """A row's content and stream offset, without its timestamps (which differ by the
    capturing nodes' clocks)."""
    return repr([(name, value) for name, value in sorted(item.items(), key=itemgetter(0))
                 if name != "ts" and not name.endswith("_ts")])


def _note_copies(out: Rows, every: dict) -> None:
    """One anomaly per flow seen in several files, one warning for them all."""
    copies = 0
    for chains in every.values():
        for chain in chains:
            if len(chain.files) < 2:
                continue
            copies += 1
            files = list(chain.files.values())
            out.anomalies.append({
                "flow_id": chain.row["flow_id"], "direction": None, "offset": None,
                "ts": chain.row["first_ts"], "kind": "seen-in-several-files",
                "length": len(files), "source": "merge",
                "detail": f"the same connection was captured in {len(files)} files "
                          f"({', '.join(map(os.path.basename, files))}): counted once"})
    if copies:
        log.warning("%d flow(s) captured in more than one file (one capture per node?): "
                    "each is counted once", copies)


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
    return _Rekey(first["flow_id"], swapped, shift, _adopt(first, row, port_roles))


def _adopt(first: dict, row: dict, port_roles: dict) -> bool:
    """A first part without payload takes the verdict and content of `row`, if it has
    some; True when it did."""
    adopted = first["verdict"] == "no-payload" and row["verdict"] != "no-payload"
    if adopted:
        for name in CONTENT_COLUMNS:
            first[name] = row.get(name)
        role, evidence = roles.decide_role(first["server_port"], row.get("_content"),
                                           row["verdict"] == "tls", port_roles)
        first["role"] = role
        first["role_evidence"] = "; ".join(evidence)
    return adopted


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


__all__ = ["FilePart", "analyze_file", "analyze_parallel", "distinct_paths", "is_dask_client",
           "merge_parts"]
