"""The per-packet loop: capture files -> decoded segments -> flow table.

This is the only code every packet of a capture passes through, so it is one
loop with its lookups bound to locals. Files given together are read in the
order given into one flow table, so a flow that continues across rotated files
stays one flow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..packets.decode import Decoder
from ..reading.capture import CaptureInfo, open_capture
from .flows import FlowTable, Limits


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


def build_flows(paths, on_flow, limits: Limits | None = None, progress=None) -> BuildStats:
    """Read every file in `paths`, calling `on_flow(flow)` for each finished flow.

    `progress`, when given, is called with the number of file bytes read so far
    (about every 64k packets) and once at the end of each file.
    Raises `CaptureError` for a path that is not a capture (before reading any).
    """
    stats = BuildStats()
    captures = [open_capture(p) for p in paths]
    table = FlowTable(on_flow, limits)
    decoder = Decoder()
    decode = decoder.decode
    add = table.add
    done_bytes = 0
    try:
        for capture in captures:
            stats.files.append(capture.info)
            packets = 0
            for ts, linktype, buf, off, caplen, _ in capture:
                packets += 1
                seg = decode(linktype, buf, off, caplen)
                if seg is not None:
                    add(seg, ts, buf)
                if progress is not None and not packets & 0xFFFF:
                    progress(done_bytes + off)
            stats.packets += packets
            done_bytes += capture.info.file_size
            stats.bytes_read = done_bytes
            if progress is not None:
                progress(done_bytes)
            capture.close()
        table.finish_all()
    finally:
        for capture in captures:
            capture.close()
    stats.skipped = dict(decoder.skipped)
    stats.segments = stats.packets - sum(decoder.skipped.values())
    stats.flows = table.count
    stats.evicted = table.evicted
    stats.port_reuse = table.reused
    stats.vxlan = decoder.vxlan
    return stats


def total_size(paths) -> int:
    size = 0
    for path in paths:
        try:
            size += os.path.getsize(path)
        except OSError:
            pass
    return size
