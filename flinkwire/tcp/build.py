"""The per-packet loop: capture files -> decoded segments -> flow table.

This is the only code every packet of a capture passes through, so it is one
loop (`read_packets`, which `analyze_iter` runs too) with its lookups bound to
locals. It walks a classic pcap's records itself (any other capture through the
capture's generator). An untagged Ethernet/IPv4/TCP frame, nearly every frame of
a Flink capture, is read in the loop itself with one precompiled unpack and
handed to `FlowTable.add_tcp`; every other frame goes through `Decoder.decode`
and `FlowTable.add`, with the same result. Files given together are read in the
order given into one flow table, so a flow that continues across rotated files
stays one flow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..packets.decode import ETH_IPV4, ETH_IPV4_TCP_WIRE, TCP, Decoder
from ..reading.capture import CaptureInfo, open_capture, pcap_block, pcap_stop
from .flows import FlowTable, Limits, ShardTable


@dataclass
class BuildStats:
    files: list[CaptureInfo] = field(default_factory=list)
    packets: int = 0
    segments: int = 0
    skipped: dict = field(default_factory=dict)
    flows: int = 0
    evicted: int = 0
    port_reuse: int = 0
    vxlan: int = 0
    bytes_read: int = 0


def build_flows(paths, on_flow, limits: Limits | None = None, progress=None,
                shard: tuple[int, int] | None = None) -> BuildStats:
    """Read every file in `paths`, calling `on_flow(flow)` for each finished flow.

    `progress`, when given, is called with the number of file bytes read so far
    (about every 64k packets) and once at the end of each file. `shard=(k, n)`
    keeps only shard k of n of the flows, and calls `on_flow(flow, finish_key)`
    (see `ShardTable`).
    Raises `CaptureError` for a path that is not a capture (before reading any).
    """
    stats = BuildStats()
    captures = [open_capture(p) for p in paths]
    table = FlowTable(on_flow, limits) if shard is None else ShardTable(on_flow, limits, *shard)
    decoder = Decoder()
    try:
        for _ in read_packets(captures, stats, decoder, table, progress):
            pass
    finally:
        for capture in captures:
            capture.close()
    settle(stats, decoder, table)
    return stats


def read_packets(captures, stats: BuildStats, decoder: Decoder, table: FlowTable, progress,
                 every_packets: int | None = None, every_ns: int | None = None):
    """Feed every packet of `captures`, in order, into `table`, then finish all flows.

    A generator: it yields (with `stats.packets` brought up to date) every
    `every_packets` packets read and/or every `every_ns` of capture time,
    whichever comes first, so `analyze_iter` can take a snapshot; with both None
    it yields nothing. Each capture is closed once read.
    """
    decode = decoder.decode
    add = table.add
    add_tcp = table.add_tcp
    eth_ipv4_tcp = ETH_IPV4_TCP_WIRE
    pausing = every_packets is not None or every_ns is not None
    next_packet = every_packets
    next_ts = None
    read = 0
    done_bytes = 0
    for capture in captures:
        info = capture.info
        stats.files.append(info)
        packets = 0
        pcap = capture.pcap_records()
        records = iter(capture) if pcap is None else None
        if pcap is not None:
            linktype, header, scale, frac_limit, limit = pcap
            # buf holds the file from offset base; pos is the next record's place in it
            buf, base, pos, end, bad_frac = b"", 24, 0, 0, 0
        while True:
            if records is None:
                # A classic pcap's records are walked here, as `_walk_pcap` walks them
                # (the same checks, the same block reads, the same anomalies through
                # `pcap_stop`), with no generator to resume and no record tuple per
                # packet: 0.04 s of the 0.6 s packet path on the benchmark capture.
                if pos + 16 > end:
                    base += pos
                    buf = pcap_block(capture, base, limit, bad_frac=bad_frac)
                    if buf is None:
                        break
                    pos, end = 0, len(buf)
                sec, frac, caplen, _ = header(buf, pos)
                off = pos + 16
                pos = off + caplen
                if caplen > limit or pos > end:
                    if caplen > limit:
                        pcap_stop(info, base + off - 16, base + end, limit, caplen)
                        break
                    base += off - 16
                    buf = pcap_block(capture, base, limit, caplen)
                    if buf is None:
                        break
                    off, pos, end = 16, 16 + caplen, len(buf)
                if frac >= frac_limit:
                    bad_frac += 1
                ts = sec * 1_000_000_000 + frac * scale
            else:
                record = next(records, None)
                if record is None:
                    break
                ts, linktype, buf, off, caplen, _ = record
            packets += 1
            # The shape of nearly every packet of a Flink capture (untagged Ethernet,
            # a 20-byte IPv4 header, TCP) is read here with one unpack and handed to
            # `add_tcp` field by field (the addresses and ports as they are on the
            # wire, see `wire_key`), with no call to the decoder and no segment
            # tuple built and taken apart again (~5% of the loop on the benchmark
            # capture). It mirrors the first lines of `Decoder.decode`, which takes
            # every other frame; tests/tcp/test_packet_loop.py holds the two equal.
            fast = False
            if linktype == 1 and caplen >= 54:
                (etype, vihl, total, ip_id, frag, proto, wire, seq, ack, doff, flags,
                 csum) = eth_ipv4_tcp(buf, off + 12)
                # The IP total length bounds the payload (Ethernet padding), unless it
                # is zero (TSO) or promises more than was captured.
                ip_end = off + 14 + total
                if total < 20 or ip_end > off + caplen:
                    ip_end = off + caplen
                start = off + 34 + (doff >> 4) * 4
                fast = (etype == ETH_IPV4 and vihl == 0x45 and proto == TCP
                        and not frag & 0x3FFF and doff >= 0x50 and start <= ip_end)
                if fast:
                    add_tcp(wire, seq, ack, flags, start, ip_end, ip_id, csum, (), ts, buf)
            if not fast:
                seg = decode(linktype, buf, off, caplen)
                if seg is not None:
                    add(seg, ts, buf)
            if not packets & 0xFFFF and progress is not None:
                progress(done_bytes + capture.block_offset + off)
            if pausing:
                if every_ns is not None and next_ts is None:
                    next_ts = ts + every_ns
                if ((next_packet is not None and read + packets >= next_packet)
                        or (next_ts is not None and ts >= next_ts)):
                    stats.packets = read + packets
                    if records is None:
                        info.records_total = info.records_complete = packets
                    yield
                    if next_packet is not None:
                        next_packet = read + packets + every_packets
                    if next_ts is not None:
                        next_ts = ts + every_ns
        if records is None:
            info.records_total = info.records_complete = packets
        read += packets
        stats.packets = read
        done_bytes += capture.info.file_size
        stats.bytes_read = done_bytes
        if progress is not None:
            progress(done_bytes)
        capture.close()
    table.finish_all()


def settle(stats: BuildStats, decoder: Decoder, table: FlowTable) -> None:
    """Copy the decoder's and the table's counters into `stats`."""
    stats.skipped = dict(decoder.skipped)
    stats.segments = stats.packets - sum(decoder.skipped.values())
    stats.flows = table.count
    stats.evicted = table.evicted
    stats.port_reuse = table.reused
    stats.vxlan = decoder.vxlan


def total_size(paths) -> int:
    size = 0
    for path in paths:
        try:
            size += os.path.getsize(path)
        except OSError:
            pass
    return size
