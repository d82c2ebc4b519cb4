"""Flink's two small binary protocols that have no TLS at all: queryable state and collect sink.

Queryable state (client <-> proxy <-> server): frames ``uint32 BE length (not counting itself)
· 79 A1 B7 10 · uint32 message type · int64 request id (not in SERVER_FAILURE) · body``. A
REQUEST body is JobID(16) · int32 n + UTF-8 state name · int32 key hash · int32 n + key bytes;
a REQUEST_RESULT body is int32 n + the serialized state value.

Collect sink (JobManager coordinator -> the TaskManager running the sink): the request is the
StringValue of a random UUID (so ``25`` + 36 characters) and an int64 offset; the reply is the
same UUID, an int64 last-checkpointed offset, an int32 count and [int32 n + n bytes] per result
row. Those rows are the actual answer of a SQL-client ``SELECT``.

Both are decoded within the captured bytes only; any length beyond them ends that direction
with an anomaly.
"""

from __future__ import annotations

import logging
import re
import struct

from flinkwire.protocols.netty import readable_strings
from flinkwire.protocols.pekko import java_class_names

log = logging.getLogger(__name__)

__all__ = ["detect", "decode_queryable_state", "decode_collect_sink"]

QS_VERSION = b"\x79\xa1\xb7\x10"
QS_TYPES = {0: "REQUEST", 1: "REQUEST_RESULT", 2: "REQUEST_FAILURE", 3: "SERVER_FAILURE"}
MAX_FRAME = 64 << 20
MAX_MESSAGES = 10_000
MAX_ROWS = 10_000
_UUID = re.compile(rb"\x25[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _anomaly(kind: str, direction: str, offset: int, detail: str) -> dict:
    return {"kind": kind, "direction": direction, "offset": offset, "detail": detail}


def _sized(buf: bytes, pos: int, end: int) -> tuple[bytes, int] | None:
    if pos + 4 > end:
        return None
    n = struct.unpack_from(">i", buf, pos)[0]
    if n < 0 or pos + 4 + n > end:
        return None
    return buf[pos + 4:pos + 4 + n], pos + 4 + n


def decode_queryable_state(c2s: bytes, s2c: bytes) -> dict:
    """Decode queryable-state frames of both directions.

    Returns {"messages": [...], "anomalies": [...]}; a message has direction, offset, length,
    type, request_id and, as present, job_id, state_name, key_hash, key_size, value_size,
    value_strings (readable StringValues in the value) and class_names (failures).
    """
    messages: list[dict] = []
    anomalies: list[dict] = []
    for direction, stream in (("c2s", bytes(c2s or b"")), ("s2c", bytes(s2c or b""))):
        pos = 0
        while pos < len(stream) and len(messages) < MAX_MESSAGES:
            if pos + 12 > len(stream):
                anomalies.append(_anomaly("truncated-frame", direction, pos,
                                          f"{len(stream) - pos} bytes left"))
                break
            length = struct.unpack_from(">I", stream, pos)[0]
            if stream[pos + 4:pos + 8] != QS_VERSION or not 8 <= length <= MAX_FRAME:
                anomalies.append(_anomaly("bad-frame", direction, pos,
                                          "no 79A1B710 frame here"))
                break
            end = min(len(stream), pos + 4 + length)
            kind = struct.unpack_from(">I", stream, pos + 8)[0]
            message = {"direction": direction, "offset": pos, "length": length,
                       "type": QS_TYPES.get(kind, f"unknown({kind})")}
            body = pos + 12
            if kind != 3 and body + 8 <= end:
                message["request_id"] = struct.unpack_from(">q", stream, body)[0]
                body += 8
            if end < pos + 4 + length:
                message["truncated"] = True
                anomalies.append(_anomaly("truncated-frame", direction, pos,
                                          f"frame of {length} bytes, {end - pos - 4} present"))
            if kind == 0 and body + 16 <= end:
                message["job_id"] = stream[body:body + 16].hex()
                name = _sized(stream, body + 16, end)
                if name:
                    message["state_name"] = name[0].decode("utf-8", "replace")
                    if name[1] + 4 <= end:
                        message["key_hash"] = struct.unpack_from(">i", stream, name[1])[0]
                        key = _sized(stream, name[1] + 4, end)
                        if key:
                            message["key_size"] = len(key[0])
                            message["key_strings"] = readable_strings(key[0], min_len=2)
            elif kind == 1:
                value = _sized(stream, body, end)
                if value:
                    message["value_size"] = len(value[0])
                    message["value_strings"] = readable_strings(value[0], min_len=2)
            elif kind in (2, 3):
                message["class_names"] = java_class_names(stream[body:end])
            messages.append(message)
            pos += 4 + length
    return {"messages": messages, "anomalies": anomalies}


def decode_collect_sink(c2s: bytes, s2c: bytes) -> dict:
    """Decode collect-sink requests (client) and replies (server).

    Returns {"requests": [...], "responses": [...], "anomalies": [...]}: a request has offset,
    version (the UUID) and offset_requested; a response has offset, version,
    last_checkpointed_offset, count and rows ([{"offset", "size", "strings"}], bounded).
    """
    c2s = bytes(c2s or b"")
    s2c = bytes(s2c or b"")
    requests, responses, anomalies = [], [], []
    pos = 0
    while pos + 45 <= len(c2s) and len(requests) < MAX_MESSAGES:
        if not _UUID.match(c2s, pos):
            anomalies.append(_anomaly("bad-request", "c2s", pos, "no StringValue UUID here"))
            break
        requests.append({"direction": "c2s", "offset": pos,
                         "version": c2s[pos + 1:pos + 37].decode(),
                         "offset_requested": struct.unpack_from(">q", c2s, pos + 37)[0]})
        pos += 45
    if 0 < len(c2s) - pos < 45 and _UUID.match(c2s, pos) is None and not anomalies:
        anomalies.append(_anomaly("truncated-request", "c2s", pos, f"{len(c2s) - pos} bytes"))

    pos = 0
    while pos + 49 <= len(s2c) and len(responses) < MAX_MESSAGES:
        if not _UUID.match(s2c, pos):
            anomalies.append(_anomaly("bad-response", "s2c", pos, "no StringValue UUID here"))
            break
        checkpointed, count = struct.unpack_from(">qi", s2c, pos + 37)
        response = {"direction": "s2c", "offset": pos, "version": s2c[pos + 1:pos + 37].decode(),
                    "last_checkpointed_offset": checkpointed, "count": count, "rows": []}
        pos += 49
        if count < 0:
            anomalies.append(_anomaly("bad-count", "s2c", pos - 4, f"count {count}"))
            responses.append(response)
            break
        for _ in range(min(count, MAX_ROWS)):
            row = _sized(s2c, pos, len(s2c))
            if row is None:
                response["truncated"] = True
                anomalies.append(_anomaly("truncated-row", "s2c", pos,
                                          "row length beyond the captured bytes"))
                pos = len(s2c)
                break
            response["rows"].append({"offset": pos + 4, "size": len(row[0]),
                                     "strings": readable_strings(row[0], min_len=2)})
            pos = row[1]
        responses.append(response)
    return {"requests": requests, "responses": responses, "anomalies": anomalies}


def detect(c2s: bytes, s2c: bytes) -> dict | None:
    """Recognize queryable state (``[len] 79 A1 B7 10``) or the collect-sink socket.

    Returns None, or {"role": "queryable-state", "evidence", "messages"} /
    {"role": "collect-sink", "evidence", "version", "rows"}. Neither channel can be encrypted
    by Flink, so a match is always plaintext.
    """
    c2s = bytes(c2s or b"")
    s2c = bytes(s2c or b"")
    for stream, side in ((c2s, "client"), (s2c, "server")):
        if len(stream) >= 12 and stream[4:8] == QS_VERSION:
            length = struct.unpack_from(">I", stream, 0)[0]
            kind = struct.unpack_from(">I", stream, 8)[0]
            if 8 <= length <= MAX_FRAME and kind in QS_TYPES:
                decoded = decode_queryable_state(c2s, s2c)
                names = sorted({m["state_name"] for m in decoded["messages"]
                                if m.get("state_name")})
                evidence = (f"queryable-state {QS_TYPES[kind]} frame from the {side} "
                            "(version 79A1B710)")
                if names:
                    evidence += f", state {', '.join(names[:5])}"
                return {"role": "queryable-state", "evidence": evidence,
                        "messages": len(decoded["messages"]), "state_names": names}
    if len(c2s) >= 45 and _UUID.match(c2s) and (not s2c or _UUID.match(s2c)):
        decoded = decode_collect_sink(c2s, s2c)
        rows = sum(len(r["rows"]) for r in decoded["responses"])
        evidence = f"collect-sink request with version UUID {c2s[1:37].decode()}"
        if decoded["responses"]:
            evidence += f"; {rows} result rows returned"
        return {"role": "collect-sink", "evidence": evidence, "version": c2s[1:37].decode(),
                "rows": rows}
    return None
