"""The flow table and per-direction TCP reassembly.

Theory of operation
-------------------
A flow is keyed by its two endpoints in a canonical order, so both directions
land in one `Flow`; `Flow.halves[i]` holds what endpoint `i` of the key sent.
Each `Half` turns segments into a byte stream addressed by *stream offset*
(0 = first byte after the SYN, or the first byte seen when the handshake was
not captured). Sequence numbers are unwrapped against the next expected offset,
so 32-bit wraparound and streams beyond 4 GiB need no special case.

Guarantees, per direction:

- every sequence byte is counted once (`unique_bytes`), whatever the
  retransmissions, duplicates and overlaps;
- reordering is repaired: a segment ahead of the stream waits in `pending`
  until the hole before it fills, or until the flow ends, when the hole is
  declared a gap (`gap_bytes`, an anomaly with its offset and length);
- on overlap the first-seen bytes are kept; a retransmission whose bytes
  differ from what was kept is a `conflicting-retransmission` anomaly;
- a frame recorded twice by `tcpdump -i any` (same headers and checksum within
  a few milliseconds) is dropped and counted in `capture_duplicates`, not
  counted as a retransmission.

Memory: only the first `Limits.retain_per_direction` bytes of each direction
are kept (as chunks, since gaps leave holes); later bytes are counted, not
stored. Out-of-order data waits in `pending` up to `Limits.pending_per_direction`
bytes, after which the hole is given up as a gap. The table holds at most
`Limits.max_flows` flows; when it is full the least recently active tenth is
evicted (finished and handed on), and each eviction is counted. What a direction
holds besides its payload does not grow with its segment count: small segments
are joined into larger parts (`Chunk`), and the segment times kept for dating
findings are thinned past `MAX_MARKS` (`Half.timestamp_at`).
"""

from __future__ import annotations

import logging
import struct
from bisect import bisect_right
from dataclasses import dataclass

log = logging.getLogger(__name__)

MASK = 0xFFFFFFFF
HALF_RANGE = 1 << 31
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
DUPLICATE_WINDOW_NS = 2_000_000
MAX_MARKS = 1024  # per direction; past it they are thinned out (see `Half.timestamp_at`)
JOIN_PARTS = 64   # a chunk looks at its open parts every this many (see `Chunk`)
MIN_PART = 512    # open parts smaller than this on average are joined into one
MAX_PENDING_SEGMENTS = 4096
HEAD_GUARANTEE = 8192  # bytes per direction kept even when retain_total is spent
OUT_OF_WINDOW = 1 << 30  # the largest TCP window (scale 14) is just under this


_ports = struct.Struct("!HH")


def wire_key(src: bytes, sport: int, dst: bytes, dport: int) -> bytes:
    """A segment's addresses and ports as its IPv4 or IPv6 and TCP headers carry them
    (source address, destination address, source port, destination port): the flow
    table finds a segment's flow and side by these bytes, which the packet loop reads
    from the frame in one piece."""
    return src + dst + _ports.pack(sport, dport)


def split_wire(wire: bytes):
    """(src, sport, dst, dport) of a `wire_key`."""
    size = (len(wire) - 4) >> 1
    sport, dport = _ports.unpack_from(wire, 2 * size)
    return wire[:size], sport, wire[size:2 * size], dport


@dataclass
class Limits:
    """Bounds on what one analysis keeps in memory (all configurable)."""

    retain_per_direction: int = 1024 * 1024
    retain_total: int = 128 * 1024 * 1024
    pending_per_direction: int = 8 * 1024 * 1024
    max_flows: int = 200_000
    # A closed flow is finished this long (capture time) after its last packet,
    # and any flow after `idle_timeout_s` of silence: their payload is then
    # examined and dropped, so memory follows the flows alive at once.
    # Rows kept per table (snippets, findings, records, RPC frames, ...); past it
    # rows are counted in one `limit` anomaly per table, so the tables stay
    # bounded however long the capture.
    max_rows_per_table: int = 20_000
    close_grace_s: float = 10.0
    idle_timeout_s: float = 900.0


class Chunk:
    """Retained bytes from stream offset `start` on, with no hole inside.

    Segments are kept as a list and joined on first read: growing one
    bytearray per flow reallocates and copies as thousands of flows grow at
    once, which made appends quadratic on large captures.

    A part costs about 50 bytes besides its payload (the `bytes` header, its
    rounding and the list slot), so a stream of 1-byte segments held 50 times its
    payload. Every `JOIN_PARTS` appends (`join_at`) the parts after the sealed ones
    are looked at (`compact`): if they average at least `MIN_PART` bytes they are
    sealed as they are (no copy, the usual case); else they are joined into one part,
    which stays open to the next group. Held memory is then within about 10% of the
    payload, plus at most `JOIN_PARTS` open parts, whatever the segment size.
    """

    __slots__ = ("start", "parts", "size", "sealed", "sealed_size", "join_at")

    def __init__(self, start: int, part: bytes):
        self.start = start
        self.parts = [part]
        self.size = len(part)
        self.sealed = 0           # parts[:sealed] are never joined again while growing
        self.sealed_size = 0      # their bytes
        self.join_at = JOIN_PARTS  # compact when the parts reach this count

    def compact(self) -> None:
        """Seal the open parts, or join them into one when they are small on average."""
        parts = self.parts
        sealed = self.sealed
        if self.size - self.sealed_size >= (len(parts) - sealed) * MIN_PART:
            sealed = len(parts)
            self.sealed_size = self.size
        else:
            parts[sealed:] = [b"".join(parts[sealed:])]
        self.sealed = sealed
        self.join_at = sealed + JOIN_PARTS

    @property
    def end(self) -> int:
        return self.start + self.size

    def append(self, part: bytes) -> None:
        parts = self.parts
        parts.append(part)
        self.size += len(part)
        if len(parts) >= self.join_at:
            self.compact()

    def data(self) -> bytes:
        if len(self.parts) != 1:
            self.parts = [b"".join(self.parts)]
            self.sealed = 1
            self.sealed_size = self.size
            self.join_at = 1 + JOIN_PARTS
        return self.parts[0]

    def read(self, at: int, length: int) -> bytes:
        """The `length` bytes from `at` (relative to `start`, within the chunk).

        A retransmission is compared with what is held while the chunk is still
        growing; joining the whole chunk for that, then again for every later
        retransmission and at the end, copied up to 1 MiB each time (3% of the packet
        path on the benchmark capture). Only the parts that hold the bytes are read,
        counted from the end, where retransmitted bytes usually are.
        """
        parts = self.parts
        if len(parts) == 1 or length <= 0:
            return parts[0][at:at + length] if len(parts) == 1 else b""
        first = len(parts)
        part_start = self.size
        while part_start > at:
            first -= 1
            part_start -= len(parts[first])
        last = first
        part_end = part_start + len(parts[first])
        while part_end < at + length:
            last += 1
            part_end += len(parts[last])
        held = parts[first] if first == last else b"".join(parts[first:last + 1])
        return held[at - part_start:at - part_start + length]


class Half:
    """One direction of a flow."""

    __slots__ = (
        "based", "seq_next", "next", "chunks", "kept", "pending", "pending_bytes",
        "unique_bytes", "gap_bytes", "frames", "payload_frames", "dup_bytes",
        "out_of_order", "syn", "fin", "rst", "first_ts", "last_ts", "marks", "mark_ts",
        "mark_next", "mark_cap", "mark_gap",        "last_sig", "last_sig_ts", "capture_duplicates", "anomalies", "retain_cut",
        "before_start", "ack_padding",
    )

    def __init__(self):
        self.based = False        # stream offset 0 has been tied to a sequence number
        self.seq_next = 0         # 32-bit sequence number of stream offset `next`
        self.next = 0             # next expected stream offset
        self.chunks = []          # Chunk of retained bytes, in stream order
        self.kept = 0
        self.pending = {}         # offset -> (bytes or None, length, ts)
        self.pending_bytes = 0
        self.unique_bytes = 0
        self.gap_bytes = 0
        self.frames = 0
        self.payload_frames = 0
        self.dup_bytes = 0
        self.out_of_order = 0
        self.syn = False
        self.fin = False
        self.rst = False
        self.first_ts = None
        self.last_ts = None
        # Where retained segments start: stream offsets, and their timestamps at the
        # same index. Two flat lists rather than one of (offset, ts) pairs: a pair
        # per payload segment was ~5% of the packet path on the benchmark capture.
        self.marks = []
        self.mark_ts = []
        self.mark_next = 0        # the next retained segment at or past this offset is marked
        self.mark_cap = MAX_MARKS  # `_space_marks` is called when the marks reach this count
        self.mark_gap = 0         # bytes between marks once thinned (0: every segment)
        self.last_sig = None
        self.last_sig_ts = 0
        self.capture_duplicates = 0
        self.anomalies = []
        self.retain_cut = False   # retention limit reached: later bytes not kept
        self.before_start = 0     # bytes that precede stream offset 0
        self.ack_padding = 0      # bare ACKs whose zero-byte payload was taken as padding

    # -- the byte stream ---------------------------------------------------

    def head(self) -> bytes:
        """The retained bytes from offset 0 up to the first hole."""
        if not self.chunks or self.chunks[0].start != 0:
            return b""
        return self.chunks[0].data()

    def regions(self):
        """(start offset, bytes) of every retained run, in stream order."""
        for chunk in self.chunks:
            yield chunk.start, chunk.data()

    def head_complete(self) -> bool:
        """True when `head()` is the whole stream (nothing cut, no hole after it)."""
        return (not self.retain_cut and len(self.chunks) <= 1
                and self.gap_bytes == 0 and not self.pending)

    def timestamp_at(self, offset: int):
        """Timestamp (ns) of the segment that carried stream byte `offset`.

        Exact while the direction kept at most `MAX_MARKS` segments (up to 1 MiB of
        segments over 1 KiB, the usual case). Past that the marks are thinned
        (`_space_marks`), so the time is that of a segment up to `mark_gap` bytes
        before `offset` (about `kept / 512` bytes): the marks cost a fixed amount
        per direction, not one entry per segment.
        """
        index = bisect_right(self.marks, offset)
        return self.mark_ts[index - 1] if index else self.first_ts

    def _space_marks(self) -> None:
        """Past `MAX_MARKS` marks keep every other one, and from then on mark only the
        segments at least `mark_gap` bytes (their mean spacing) after the last mark."""
        marks = self.marks
        if len(marks) >= MAX_MARKS:
            del marks[1::2]
            del self.mark_ts[1::2]
            self.mark_gap = max(1, (marks[-1] - marks[0]) // (len(marks) - 1))
            self.mark_cap = 0
        self.mark_next = marks[-1] + self.mark_gap

    def _held(self, offset: int, length: int):
        for chunk in self.chunks:
            if chunk.start <= offset and offset + length <= chunk.end:
                return chunk.read(offset - chunk.start, length)
        return None

    def _check_overlap(self, offset: int, payload, ts) -> None:
        if payload is None:
            return
        held = self._held(offset, len(payload))
        if held is not None and held != payload:
            self.anomalies.append({
                "kind": "conflicting-retransmission",
                "offset": offset,
                "length": len(payload),
                "ts": ts,
                "detail": f"retransmitted bytes {offset}-{offset + len(payload)} differ "
                          "from the first copy; the first copy is kept",
            })

    def _append(self, offset: int, payload, length: int, ts, table) -> None:
        # `offset == self.next` here: the bytes extend the stream. Nearly every
        # payload segment ends here, so the last chunk is extended in place rather
        # than through `Chunk.end` and `Chunk.append` (~2% of the packet loop).
        if payload is not None and not self.retain_cut:
            kept = self.kept
            room = table.retain_per_direction - kept
            total_room = table.retain_total - table.kept_total
            if total_room < room:
                # The shared budget never takes a stream's first bytes: the verdict
                # and the channel are read from them, whatever other flows hold.
                if total_room < HEAD_GUARANTEE - kept:
                    total_room = HEAD_GUARANTEE - kept
                if total_room < room:
                    room = total_room
            if room <= 0:
                self.retain_cut = True
            else:
                part = payload if length <= room else payload[:room]
                size = len(part)
                chunks = self.chunks
                last = chunks[-1] if chunks else None
                if last is not None and last.start + last.size == offset:
                    parts = last.parts
                    parts.append(part)
                    last.size += size
                    if len(parts) >= last.join_at:
                        last.compact()
                else:
                    chunks.append(Chunk(offset, part))
                self.kept = kept + size
                table.kept_total += size
                if offset >= self.mark_next:
                    marks = self.marks
                    marks.append(offset)
                    self.mark_ts.append(ts)
                    if len(marks) >= self.mark_cap:
                        self._space_marks()
                if size < length:
                    self.retain_cut = True
        self.seq_next = (self.seq_next + length) & MASK
        self.next = offset + length
        self.unique_bytes += length

    def add(self, seq: int, payload, length: int, ts, table) -> None:
        """Place `length` payload bytes that start at 32-bit `seq`."""
        if not self.based:
            self.based = True
            self.seq_next = seq
            self.next = 0
        delta = ((seq - self.seq_next + HALF_RANGE) & MASK) - HALF_RANGE
        offset = self.next + delta
        end = offset + length
        if offset < 0:
            # Bytes from before the point where this stream was first seen
            # (mid-stream capture, or a reordered first segment).
            cut = min(-offset, length)
            self.before_start += cut
            if end <= 0:
                return
            payload = payload[cut:] if payload is not None else None
            length -= cut
            offset = 0
            end = length
        if end <= self.next:
            self.dup_bytes += length
            self._check_overlap(offset, payload, ts)
            return
        if offset < self.next:
            skip = self.next - offset
            if payload is not None:
                self._check_overlap(offset, payload[:skip], ts)
                payload = payload[skip:]
            self.dup_bytes += skip
            length -= skip
            offset = self.next
        if offset == self.next:
            self._append(offset, payload, length, ts, table)
            if self.pending:
                self._drain(table)
            return
        if offset - self.next > OUT_OF_WINDOW:
            # No TCP window spans this far: a stray or forged segment, not a gap.
            self.anomalies.append({
                "kind": "out-of-window", "offset": offset, "length": length, "ts": ts,
                "detail": f"segment {offset - self.next} bytes ahead of the stream ignored",
            })
            return
        self._park(offset, payload, length, ts, table)

    def _park(self, offset, payload, length, ts, table) -> None:
        self.out_of_order += 1
        old = self.pending.get(offset)
        if old is not None:
            if old[1] >= length:
                self.dup_bytes += length
                if old[0] is not None and payload is not None and old[0][:length] != payload:
                    self.anomalies.append({
                        "kind": "conflicting-retransmission", "offset": offset,
                        "length": length, "ts": ts,
                        "detail": f"two different copies of bytes {offset}-{offset + length} "
                                  "arrived out of order; the first is kept",
                    })
                return
            self.pending_bytes -= old[1]
        keep = payload if offset < table.limits.retain_per_direction else None
        self.pending[offset] = (bytes(keep) if keep is not None else None, length, ts)
        self.pending_bytes += length
        if (self.pending_bytes > table.limits.pending_per_direction
                or len(self.pending) > MAX_PENDING_SEGMENTS):
            self.skip_gap(table)

    def _drain(self, table) -> None:
        pending = self.pending
        while pending:
            first = min(pending)
            if first > self.next:
                return
            payload, length, ts = pending.pop(first)
            self.pending_bytes -= length
            end = first + length
            if end <= self.next:
                self.dup_bytes += length
                self._check_overlap(first, payload, ts)
                continue
            skip = self.next - first
            if skip:
                if payload is not None:
                    self._check_overlap(first, payload[:skip], ts)
                    payload = payload[skip:]
                self.dup_bytes += skip
            self._append(self.next, payload, length - skip, ts, table)

    def skip_gap(self, table) -> None:
        """Declare the hole before the first pending segment lost, and go on."""
        if not self.pending:
            return
        first = min(self.pending)
        hole = first - self.next
        if hole > 0:
            self.gap_bytes += hole
            self.anomalies.append({
                "kind": "gap", "offset": self.next, "length": hole,
                "ts": self.pending[first][2],
                "detail": f"{hole} bytes never captured at stream offset {self.next}",
            })
            self.next = first
            self.seq_next = (self.seq_next + hole) & MASK
        self._drain(table)

    def finish(self, table) -> None:
        while self.pending:
            self.skip_gap(table)


class Flow:
    """Both directions of one TCP connection (or one UDP conversation)."""

    __slots__ = (
        "key", "proto", "halves", "client", "syn_seen", "synack_seen", "first_ts",
        "last_ts", "vlan", "index", "isn", "closed",
    )

    def __init__(self, key, proto: int, ts, vlan, index: int):
        self.key = key              # (ip0, port0, ip1, port1), endpoint 0 sorts first
        self.proto = proto
        self.halves = (Half(), Half())
        self.client = None          # 0 or 1: which endpoint of the key opened the flow
        self.syn_seen = False
        self.synack_seen = False
        self.first_ts = ts
        self.last_ts = ts
        self.vlan = vlan
        self.index = index          # order of the first packet in the analysis
        self.isn = [None, None]
        self.closed = False         # a FIN or RST was seen: a new SYN starts a new flow

    def endpoint(self, side: int):
        return (self.key[0], self.key[1]) if side == 0 else (self.key[2], self.key[3])


class FlowTable:
    """Holds live flows; hands each finished flow to `on_done(flow)`."""

    def __init__(self, on_done, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.retain_per_direction = self.limits.retain_per_direction
        self.retain_total = self.limits.retain_total
        self.on_done = on_done
        self.flows: dict = {}
        # wire_key of each direction of every flow in `flows` -> (flow, side), so a
        # segment finds its flow with one lookup of the bytes it carries, not a key
        # tuple put in order (7% fewer instructions in the packet path).
        self.wired: dict = {}
        self.kept_total = 0
        self.count = 0
        self.evicted = 0
        self.reused = 0
        self.swept = 0
        self.packets = 0
        self.close_grace = int(self.limits.close_grace_s * 1e9)
        self.idle_timeout = int(self.limits.idle_timeout_s * 1e9)

    def add(self, seg, ts: int, buf) -> None:
        """Feed one decoded segment (see `packets.Segment`) seen at `ts`."""
        proto, src, sport, dst, dport, seq, ack, flags, start, end, ip_id, csum, vlan = seg
        if proto == 6:
            self.add_tcp(wire_key(src, sport, dst, dport), seq, ack, flags, start, end, ip_id,
                         csum, vlan, ts, buf)
            return
        self.packets += 1
        if not self.packets & 0x3FFF:
            self.sweep(ts)
        flow, side = self._flow(src, sport, dst, dport, proto, seq, flags, ts, vlan)
        half = flow.halves[side]
        length = end - start
        half.frames += 1
        if half.first_ts is None:
            half.first_ts = ts
        half.last_ts = ts
        if length > 0:
            half.payload_frames += 1
            payload = buf[start:end] if half.kept < self.limits.retain_per_direction else None
            half._append(half.next, payload, length, ts, self)

    def add_tcp(self, wire, seq, ack, flags, start, end, ip_id, csum, vlan, ts: int,
                buf) -> None:
        """`add` for a TCP segment, its fields passed one by one (no tuple to unpack);
        `wire` is its addresses and ports (`wire_key`).

        The packet loop calls this for nearly every packet, so the common case (a
        known flow, no SYN/FIN/RST, the next bytes of the stream) takes no detour:
        flow creation and port reuse (`_flow`), control flags (`_control`) and
        out-of-order bytes (`Half.add`) are calls made only when needed. Split out
        of one `add` doing all of it, this took the packet loop on the 100 MB
        benchmark capture from about 1.1 s to 0.95 s.
        """
        self.packets = packets = self.packets + 1
        if not packets & 0x3FFF:
            self.sweep(ts)
        known = self.wired.get(wire)
        if known is None or flags & (SYN | ACK) == SYN:
            flow, side = self._flow(*split_wire(wire), 6, seq, flags, ts, vlan)
        else:
            flow, side = known
            if ts > flow.last_ts:
                flow.last_ts = ts
            elif ts < flow.first_ts:  # first_ts <= last_ts, so only when not later
                flow.first_ts = ts

        half = flow.halves[side]
        length = end - start
        if flags & 0x3F == ACK and length <= 6 and (not length or not any(buf[start:end])):
            # A bare ACK whose "payload" is a few zero bytes is link padding that a
            # device counted into the IP length; the real data follows at the same
            # sequence number and must not be shadowed by it.
            half.ack_padding += 1
            length = 0
        sig = (seq, ack, flags, length, ip_id, csum)
        if sig == half.last_sig and 0 <= ts - half.last_sig_ts < DUPLICATE_WINDOW_NS:
            half.capture_duplicates += 1
            return
        half.last_sig = sig
        half.last_sig_ts = ts
        half.frames += 1
        if half.first_ts is None:
            half.first_ts = ts
        half.last_ts = ts

        if flags & (SYN | FIN | RST):
            seq = self._control(flow, half, side, seq, flags)
        if length <= 0:
            return
        half.payload_frames += 1
        in_order = seq == half.seq_next and half.based
        if in_order:
            offset = half.next
            kept = half.kept + length
            chunks = half.chunks
            last = chunks[-1] if chunks else None
            if (last is not None and last.start + last.size == offset
                    and kept <= self.retain_per_direction and not half.retain_cut
                    and self.kept_total + length <= self.retain_total):
                # Nearly every payload segment: the next bytes of the stream, within
                # both budgets, extending the last chunk. This is what `Half._append`
                # does for them, without the call and the budget arithmetic (the
                # packet path on the benchmark capture: 4% fewer instructions).
                parts = last.parts
                parts.append(buf[start:end])
                last.size += length
                if len(parts) >= last.join_at:
                    last.compact()
                half.kept = kept
                self.kept_total += length
                if offset >= half.mark_next:
                    marks = half.marks
                    marks.append(offset)
                    half.mark_ts.append(ts)
                    if len(marks) >= half.mark_cap:
                        half._space_marks()
                half.seq_next = (seq + length) & MASK
                half.next = offset + length
                half.unique_bytes += length
                if half.pending:
                    half._drain(self)
                return
        payload = None
        if not half.retain_cut and half.kept < self.retain_per_direction:
            payload = buf[start:end]
        if in_order:
            # What `Half.add` would do, without its offset arithmetic.
            half._append(half.next, payload, length, ts, self)
            if half.pending:
                half._drain(self)
        else:
            half.add(seq, payload, length, ts, self)

    def _flow(self, src, sport, dst, dport, proto, seq, flags, ts, vlan):
        """(flow, side) for a segment: the flow of its key, or a new one.

        A SYN on a known key is a retransmitted SYN or the port reused; the
        latter finishes the old flow and starts a new one.
        """
        if (src, sport) <= (dst, dport):
            key = (src, sport, dst, dport)
            side = 0
        else:
            key = (dst, dport, src, sport)
            side = 1
        flows = self.flows
        flow = flows.get(key)
        if proto == 6 and flags & SYN and not flags & ACK and flow is not None:
            if flow.closed or (flow.isn[side] is not None and flow.isn[side] != seq):
                self._finish(flow)
                self.reused += 1
                flow = None
        if flow is None:
            flow = Flow(key, proto, ts, vlan, self.count)
            self.count += 1
            flows[key] = flow
            # Side 0 last: a flow from an endpoint to itself has one wire key.
            self.wired[wire_key(key[2], key[3], key[0], key[1])] = (flow, 1)
            self.wired[wire_key(*key)] = (flow, 0)
            if len(flows) > self.limits.max_flows:
                self._evict()
        elif ts < flow.first_ts:
            flow.first_ts = ts
        if ts > flow.last_ts:
            flow.last_ts = ts
        return flow, side

    @staticmethod
    def _control(flow: Flow, half: Half, side: int, seq: int, flags: int) -> int:
        """Note a SYN, FIN or RST; returns the sequence number of the first payload byte."""
        if flags & SYN:
            if flags & ACK:
                flow.synack_seen = True
                if flow.client is None:
                    flow.client = 1 - side
            else:
                flow.syn_seen = True
                flow.client = side
            flow.isn[side] = seq
            half.syn = True
            if not half.based:
                half.based = True
                half.seq_next = (seq + 1) & MASK
                half.next = 0
            seq = (seq + 1) & MASK
        if flags & (FIN | RST):
            if flags & FIN:
                half.fin = True
            if flags & RST:
                half.rst = True
            flow.closed = True
        return seq

    def sweep(self, now: int) -> None:
        """Finish closed flows past their grace time and flows idle too long."""
        grace, idle = now - self.close_grace, now - self.idle_timeout
        done = [f for f in self.flows.values()
                if f.last_ts < idle or (f.closed and f.last_ts < grace)]
        for flow in done:
            self.swept += 1
            self._finish(flow)

    def _evict(self) -> None:
        """Finish the least recently active tenth of the table at once.

        Evicting in batches keeps the per-packet path free of LRU bookkeeping;
        a full table costs one sort per tenth of `max_flows` new flows.
        """
        flows = sorted(self.flows.values(), key=lambda f: f.last_ts)
        for flow in flows[:max(1, len(flows) // 10)]:
            self.evicted += 1
            self._finish(flow)

    def _finish(self, flow: Flow) -> None:
        key = flow.key
        self.flows.pop(key, None)
        self.wired.pop(wire_key(*key), None)
        self.wired.pop(wire_key(key[2], key[3], key[0], key[1]), None)
        for half in flow.halves:
            half.finish(self)
        self.on_done(flow)
        for half in flow.halves:
            self.kept_total -= half.kept
            half.chunks = []
            half.kept = 0

    def finish_all(self) -> None:
        for flow in list(self.flows.values()):
            self._finish(flow)


class ShardTable(FlowTable):
    """A flow table that keeps only shard `k` of `n` of the flows (see `shard_of`).

    Several processes each read the whole capture into a `ShardTable` of their own,
    so the flows (and their examination, most of the work) are split between them,
    and every flow lands whole in one shard (both directions have the same ports).
    Packets of other shards still count towards the sweep cadence, so each shard
    finishes its flows at the packet where one table holding all flows
    would: `finish_key` tells that moment, so the parts can be merged back into
    one table's order. A shard's flows are numbered by the packet that opened
    them, which orders them as one table's count would.

    Where a bound binds (`max_flows`, `retain_total`), each shard applies it to
    its own flows, so what is evicted or cut can differ from one table.
    """

    def __init__(self, on_done, limits: Limits | None, shard: int, shards: int):
        # `on_done(flow, finish_key)`
        super().__init__(lambda flow: on_done(flow, self.finish_key), limits)
        self.shard = shard
        self.shards = shards
        self.finish_key = None
        self._phase = 1

    @staticmethod
    def shard_of(sport: int, dport: int, shards: int) -> int:
        """The shard of a flow between these ports (either way round).

        The port sum is multiplied through (Knuth's multiplicative hash) before it
        is cut into shards: Linux picks even ports for connect(), so the parity of
        the sum alone is the server port's, and every flow to one server would land
        in one shard.
        """
        return ((sport + dport) * 2654435761 >> 16) % shards

    def _elsewhere(self, sport: int, dport: int, ts: int) -> bool:
        """True for another shard's packet, which still counts towards the sweeps."""
        if self.shard_of(sport, dport, self.shards) == self.shard:
            return False
        self.packets += 1
        if not self.packets & 0x3FFF:
            self.sweep(ts)
        return True

    def add_tcp(self, wire, *rest) -> None:
        sport, dport = _ports.unpack_from(wire, len(wire) - 4)
        if not self._elsewhere(sport, dport, rest[-2]):  # rest ends with ts, buf
            FlowTable.add_tcp(self, wire, *rest)

    def add(self, seg, ts: int, buf) -> None:
        # TCP goes on to add_tcp, which tells the shard itself.
        if seg[0] == 6 or not self._elsewhere(seg[2], seg[4], ts):
            FlowTable.add(self, seg, ts, buf)

    def _flow(self, *args):
        count = self.count
        flow, side = FlowTable._flow(self, *args)
        if self.count != count:
            flow.index = self.packets
        return flow, side

    def sweep(self, now: int) -> None:
        self._phase = 0
        try:
            FlowTable.sweep(self, now)
        finally:
            self._phase = 1

    def _evict(self) -> None:
        self._phase = 2
        try:
            FlowTable._evict(self)
        finally:
            self._phase = 1

    def finish_all(self) -> None:
        self._phase = 3
        FlowTable.finish_all(self)

    def _finish(self, flow: Flow) -> None:
        # One table finishes the flows of a sweep, and of finish_all, in the order they
        # were opened; an eviction by last activity; a reused port's flow alone, after
        # that packet's sweep.
        self.finish_key = (self.packets, self._phase,
                           flow.last_ts if self._phase == 2 else 0, flow.index)
        FlowTable._finish(self, flow)
