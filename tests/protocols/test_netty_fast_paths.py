"""The data plane's frame walk reads what the plain walk it replaced read.

The walk reads frames in place, splits records straight from the stream (joining in a
channel's pending bytes only a record begun in an earlier buffer) and only counts the
records past those a caller keeps. `plain_decode` below is the walk as it was: every
frame copied, every buffer appended to its channel's pending bytes and split there,
every record made. Both are run on streams built to sit at the edges: records cut
across buffers at every byte (the length prefix too), channels interleaved, bad record
lengths, cut frames, garbage, and small record and pending bounds so they bind.
"""

import struct

import pytest
from hypothesis import given, settings, strategies as st

from flinkwire.protocols import netty

MAGIC = netty.MAGIC
RECEIVERS = (bytes(range(16)), bytes(16), b"\xff" * 16)


# -- the plain walk ---------------------------------------------------------------------

def plain_layout_read(layout, frame):
    body = netty.FRAME_HEADER
    if len(frame) < body + layout.base_header:
        return None
    frame_length = struct.unpack_from(">I", frame, 0)[0]
    n_partial = 0
    if layout.partial is not None:
        n_partial = struct.unpack_from(">i", frame, body + layout.partial)[0]
        if not 0 <= n_partial <= 1024:
            return None
    seq, backlog = struct.unpack_from(">ii", frame, body + layout.seq)
    data_type = frame[body + layout.seq + 8]
    compressed = frame[body + layout.seq + 9]
    size = struct.unpack_from(">i", frame, body + layout.seq + 10)[0]
    header = layout.base_header + 4 * n_partial
    if data_type not in netty.DATA_TYPES or compressed > 1 or size < 0:
        return None
    if netty.FRAME_HEADER + header + size != frame_length:
        return None
    fields = {"receiver_id": frame[body:body + 16].hex(), "sequence": seq, "backlog": backlog,
              "data_type": data_type, "data_type_name": netty.DATA_TYPES[data_type],
              "compressed": bool(compressed), "buffer_size": size, "header_size": header,
              "layout": layout.name}
    if layout.subpartition is not None:
        fields["subpartition"] = struct.unpack_from(">i", frame, body + layout.subpartition)[0]
    if layout.partial is not None:
        fields["partial_buffers"] = n_partial
    return fields


class PlainChannel:
    def __init__(self):
        self.pending = bytearray()
        self.segments = []

    def offset_of(self, index):
        found = -1
        for i, (start, _) in enumerate(self.segments):
            if start <= index:
                found = i
        if found < 0:
            return -1
        start, at = self.segments[found]
        return at + (index - start)

    def drop(self, count):
        del self.pending[:count]
        if not self.pending:
            self.segments = []
            return
        kept = []
        for start, at in self.segments:
            if start - count <= 0:
                kept = [(0, at + (count - start))]
            else:
                kept.append((start - count, at))
        self.segments = kept


def plain_split(channel, direction, receiver, records, anomalies, fields_for):
    buf = channel.pending
    pos = 0
    while len(buf) - pos >= 4 and len(records) < netty.MAX_RECORDS:
        length = struct.unpack_from(">I", buf, pos)[0]
        if length == 0 or length > netty.MAX_RECORD:
            anomalies.append(netty._bad_length(direction, channel.offset_of(pos), length,
                                               receiver))
            pos = len(buf)
            break
        if len(buf) - pos - 4 < length:
            break
        records.append(netty._record(bytes(buf[pos + 4:pos + 4 + length]), direction,
                                     channel.offset_of(pos), receiver,
                                     len(records) < fields_for))
        pos += 4 + length
    channel.drop(pos)


def plain_walk(stream, direction, hint, out, fields_for):
    messages, records, anomalies = out["messages"], out["records"], out["anomalies"]
    anomaly = netty._anomaly
    channels = {}
    preferred = None
    pos = 0
    size = len(stream)
    resyncs = 0
    pending_total = 0
    while pos < size:
        if size - pos < netty.FRAME_HEADER:
            anomalies.append(anomaly("truncated-frame-header", direction, pos,
                                     f"{size - pos} bytes left, {netty.FRAME_HEADER} needed"))
            return
        frame_length = struct.unpack_from(">I", stream, pos)[0]
        msg_id = stream[pos + 8]
        if stream[pos + 4:pos + 8] != MAGIC or msg_id > 11 or not (
                netty.FRAME_HEADER <= frame_length <= netty.MAX_FRAME):
            nxt = stream.find(MAGIC, pos + 5)
            resyncs += 1
            anomalies.append(anomaly("bad-frame", direction, pos,
                                     "no BADC0FFE frame here" + (
                                         f"; resynchronizing at {nxt - 4}"
                                         if nxt >= 4 and resyncs <= netty.MAX_RESYNC else "")))
            if nxt < 4 or resyncs > netty.MAX_RESYNC:
                return
            pos = nxt - 4
            continue
        frame = stream[pos:pos + frame_length]
        cut = len(frame) < frame_length
        message = {"direction": direction, "offset": pos, "id": msg_id,
                   "name": netty.MESSAGE_NAMES[msg_id], "length": frame_length}
        if cut:
            message["truncated"] = True
            anomalies.append(anomaly("truncated-frame", direction, pos,
                                     f"frame of {frame_length} bytes, {len(frame)} present"))
        if msg_id == 0:
            header = None
            for layout in netty._layout_order(hint, preferred):
                header = plain_layout_read(layout, frame)
                if header:
                    preferred = layout.name
                    break
            if header is None:
                anomalies.append(anomaly("bad-buffer-header", direction, pos,
                                         "no BufferResponse layout (30/34/38+4n) fits"))
            else:
                message.update(header)
                start = pos + netty.FRAME_HEADER + header["header_size"]
                payload = stream[start:min(pos + frame_length, size)]
                if header["data_type"] in netty.RECORD_DATA_TYPES and not header["compressed"]:
                    channel = channels.setdefault(header["receiver_id"], PlainChannel())
                    if pending_total + len(payload) > netty.MAX_PENDING:
                        anomalies.append(anomaly("pending-limit", direction, start,
                                                 f"over {netty.MAX_PENDING} unfinished bytes"))
                    else:
                        before = len(channel.pending)
                        channel.segments.append((before, start))
                        channel.pending += payload
                        plain_split(channel, direction, header["receiver_id"], records,
                                    anomalies, fields_for)
                        pending_total += len(channel.pending) - before
                elif header["data_type"] not in netty.RECORD_DATA_TYPES and not cut:
                    message["event"] = netty._event(payload)
        else:
            message.update(netty._request_fields(frame, msg_id, frame_length))
        if len(messages) < netty.MAX_RECORDS:
            messages.append(message)
        pos += frame_length
    for receiver, channel in channels.items():
        if channel.pending:
            anomalies.append(anomaly("unfinished-record", direction, channel.offset_of(0),
                                     f"{len(channel.pending)} bytes of a record on channel "
                                     f"{receiver} never completed"))


def plain_decode(c2s, s2c, hint, fields_for):
    out = {"messages": [], "records": [], "anomalies": []}
    plain_walk(c2s, "c2s", hint, out, fields_for)
    plain_walk(s2c, "s2c", hint, out, fields_for)
    layouts = {m["layout"] for m in out["messages"] if "layout" in m}
    out["buffer_layout"] = layouts.pop() if len(layouts) == 1 else None
    return out


# -- streams at the edges ---------------------------------------------------------------

def frame(msg_id, body):
    return struct.pack(">I", 9 + len(body)) + MAGIC + bytes([msg_id]) + body


def buffer_response(payload, layout, receiver, data_type=1, compressed=0):
    if layout == "30":
        header = receiver + struct.pack(">iiBBi", 3, 0, data_type, compressed, len(payload))
    elif layout == "34":
        header = receiver + struct.pack(">iiiBBi", 1, 3, 0, data_type, compressed, len(payload))
    else:
        header = receiver + struct.pack(">iiiiBBi", 1, 0, 3, 0, data_type, compressed,
                                        len(payload))
    return frame(0, header + payload)


RECORDS = st.sampled_from([
    b"\x01\x1cSECRET-TOKEN-1234 one two ok",
    b"\x00" + bytes(8) + b"\x06alpha",
    b"\x02" + bytes(8), b"\x05\x01", b"\x07junk", b"", b"x" * 300])
LENGTH_ODDITY = st.sampled_from([None] * 12 + [0, 1 << 30])


@st.composite
def channel_bytes(draw):
    """One channel's record bytes: length-prefixed records, now and then a bad length."""
    out = b""
    for record in draw(st.lists(RECORDS, max_size=8)):
        oddity = draw(LENGTH_ODDITY)
        length = len(record) if oddity is None else oddity
        out += struct.pack(">I", length) + record
    return out


@st.composite
def stream(draw):
    """Frames of one direction: each channel's bytes cut into buffers at drawn points,
    the buffers of the channels interleaved, with events, requests and damage."""
    layout = draw(st.sampled_from(["30", "34", "38"]))
    pieces = []
    for receiver in RECEIVERS[:draw(st.integers(1, 3))]:
        data = draw(channel_bytes())
        cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
        bounds = [0, *cuts, len(data)]
        pieces.append([(receiver, data[a:b]) for a, b in zip(bounds, bounds[1:])])
    frames = []
    while any(pieces):
        queue = draw(st.sampled_from([p for p in pieces if p]))
        receiver, payload = queue.pop(0)
        kind = draw(st.sampled_from(["data", "data", "data", "clear-end", "compressed",
                                     "event", "request", "garbage", "other-layout"]))
        if kind == "data":
            frames.append(buffer_response(payload, layout, receiver))
        elif kind == "clear-end":
            frames.append(buffer_response(payload, layout, receiver, data_type=8))
        elif kind == "compressed":
            frames.append(buffer_response(payload, layout, receiver, compressed=1))
        elif kind == "event":
            frames.append(buffer_response(struct.pack(">i", 1), layout, receiver, data_type=2))
        elif kind == "request":
            frames.append(frame(6, struct.pack(">i", 5) + receiver))
        elif kind == "garbage":
            frames.append(b"\x00\x01\x02garbage" + buffer_response(payload, layout, receiver))
        else:
            other = {"30": "38", "34": "30", "38": "34"}[layout]
            frames.append(buffer_response(payload, other, receiver))
    data = b"".join(frames)
    return data[:draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


def _same(c2s, s2c, hint, fields_for, max_records):
    plain = plain_decode(c2s, s2c, hint, fields_for)
    fast = netty.decode(c2s, s2c, version_hint=hint, fields_for=fields_for,
                        max_records=max_records)
    assert fast["record_count"] == len(plain["records"])
    assert fast["records"] == plain["records"][:max_records]
    assert {k: v for k, v in fast.items() if k not in ("records", "record_count")} == \
        {k: v for k, v in plain.items() if k != "records"}
    lean = netty.decode(c2s, s2c, version_hint=hint, fields_for=fields_for,
                        max_records=max_records, messages_wanted=False)
    assert lean["messages"] == [] and lean["buffer_layout"] is None
    assert (lean["records"], lean["anomalies"]) == (fast["records"], fast["anomalies"])


@settings(max_examples=300, deadline=None)
@given(c2s=stream(), s2c=stream(), hint=st.sampled_from([None, "1.15", "1.19-1.20", "2.3"]),
       fields_for=st.integers(0, 12), max_records=st.integers(0, 30))
def test_walk_equals_the_plain_walk(c2s, s2c, hint, fields_for, max_records):
    _same(c2s, s2c, hint, fields_for, max_records)


@settings(max_examples=300, deadline=None)
@given(c2s=stream(), s2c=stream(), hint=st.sampled_from([None, "2.3"]),
       fields_for=st.integers(0, 12), max_records=st.integers(0, 30))
def test_walk_equals_the_plain_walk_where_the_bounds_bind(c2s, s2c, hint, fields_for,
                                                          max_records):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(netty, "MAX_RECORDS", 4)
        patch.setattr(netty, "MAX_PENDING", 600)
        patch.setattr(netty, "MAX_RECORD", 400)
        _same(c2s, s2c, hint, fields_for, max_records)
