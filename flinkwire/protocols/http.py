"""HTTP/1.x as spoken by Flink's REST API, web UI, history server, SQL Gateway and reporters.

Theory of operation. The client stream is read as a run of requests and the server stream as a
run of responses; responses are paired with requests in order (HTTP/1.1 keeps that order even
when pipelining), which is also how we know that a response to HEAD has no body. A body is
framed by Content-Length, by chunked transfer coding (de-chunked here, with the chunk count
capped), or, for a response with neither, by the end of the stream. Heads are capped at
MAX_HEAD bytes and MAX_HEADERS fields; bodies are returned only up to `max_body` bytes but
their offsets and sizes are always reported, so a later layer can slice the stream itself.

Multipart bodies (Flink's job submission ``POST /jobs`` and jar upload ``POST /jars/upload``)
are split into parts; a part that is a ZIP (a jar) is listed with the blob module's bounded
lister and a part that is a Java serialization stream (the job graph) gets its class names.

Limits: HTTP/2 and WebSocket traffic after an Upgrade are not decoded; compressed bodies
(Content-Encoding) are returned as sent.
"""

from __future__ import annotations

import logging
import re

from flinkwire.protocols.blob import list_zip
from flinkwire.protocols.pekko import FrameList, java_class_names

log = logging.getLogger(__name__)

__all__ = ["detect", "decode", "flink_role", "flink_role_evidence", "is_tls_redirect"]

MAX_HEAD = 64 << 10
MAX_HEADERS = 128
MAX_HEADER_VALUE = 8192
MAX_CHUNKS = 100_000
MAX_PARTS = 64
DEFAULT_MAX_BODY = 8 << 20

METHODS = (b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"HEAD", b"OPTIONS", b"TRACE",
           b"CONNECT")
_REQUEST_LINE = re.compile(rb"([A-Z]{3,7}) (\S{1,8192}) HTTP/(\d)\.(\d)\Z")
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: (.*))?\Z")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


def _anomaly(kind: str, direction: str, offset: int, detail: str) -> dict:
    return {"kind": kind, "direction": direction, "offset": offset, "detail": detail}


def _head_end(stream: bytes, pos: int) -> tuple[int, int] | None:
    """Return (end of head, start of body) for the head starting at `pos`, or None."""
    limit = min(len(stream), pos + MAX_HEAD)
    crlf = stream.find(b"\r\n\r\n", pos, limit)
    # A bare-LF end counts only before the CRLF one: searched no further than that.
    lf = stream.find(b"\n\n", pos, limit if crlf < 0 else crlf + 1)
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        return crlf, crlf + 4
    if lf >= 0:
        return lf, lf + 2
    return None


def _parse_head(raw: bytes, direction: str, offset: int, anomalies: list) -> dict | None:
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    start = lines[0]
    message: dict = {"direction": direction, "offset": offset}
    match = _REQUEST_LINE.match(start) if direction == "c2s" else _STATUS_LINE.match(start)
    if match is None:
        return None
    if direction == "c2s":
        message["type"] = "request"
        message["method"] = match.group(1).decode()
        target = match.group(2).decode("latin-1")
        message["target"] = target
        message["path"] = target.split("?", 1)[0]
        message["query"] = target.split("?", 1)[1] if "?" in target else None
        message["version"] = f"{match.group(3).decode()}.{match.group(4).decode()}"
    else:
        message["type"] = "response"
        message["version"] = f"{match.group(1).decode()}.{match.group(2).decode()}"
        message["status"] = int(match.group(3))
        message["reason"] = (match.group(4) or b"").decode("latin-1").strip()
    headers: dict[str, str] = {}
    for index, line in enumerate(lines[1:]):
        if index >= MAX_HEADERS:
            anomalies.append(_anomaly("header-limit", direction, offset,
                                      f"more than {MAX_HEADERS} header fields"))
            break
        if b":" not in line:
            if line.strip():
                anomalies.append(_anomaly("bad-header", direction, offset,
                                          f"header line without colon: {line[:40]!r}"))
            continue
        name, value = line.split(b":", 1)
        key = name.strip().decode("latin-1").lower()
        if not _TOKEN.match(key or "?"):
            anomalies.append(_anomaly("bad-header", direction, offset,
                                      f"bad header name {name[:40]!r}"))
            continue
        text = value.strip().decode("latin-1")
        if len(text) > MAX_HEADER_VALUE:
            text = text[:MAX_HEADER_VALUE]
            anomalies.append(_anomaly("header-value-limit", direction, offset,
                                      f"{key} value cut at {MAX_HEADER_VALUE} chars"))
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    message["headers"] = headers
    content_type = headers.get("content-type")
    message["content_type"] = content_type.split(";", 1)[0].strip().lower() if content_type \
        else None
    return message


def _dechunk(stream: bytes, pos: int, message: dict, max_body: int, anomalies: list) -> int:
    """Read a chunked body at `pos`; fill body fields and return where the next message starts."""
    direction = message["direction"]
    segments: list[tuple[int, int]] = []
    size = 0
    for _ in range(MAX_CHUNKS):
        line_end = stream.find(b"\n", pos, min(len(stream), pos + 1024))
        if line_end < 0:
            message["truncated"] = True
            pos = len(stream)
            break
        size_text = stream[pos:line_end].split(b";", 1)[0].strip()
        try:
            chunk = int(size_text, 16)
        except ValueError:
            anomalies.append(_anomaly("bad-chunk-size", direction, pos,
                                      f"chunk size line {size_text[:20]!r}"))
            message["truncated"] = True
            pos = len(stream)
            break
        pos = line_end + 1
        if chunk == 0:
            # The last chunk is followed by optional trailer fields and an empty line.
            if stream[pos:pos + 2] == b"\r\n":
                pos += 2
            elif stream[pos:pos + 1] == b"\n":
                pos += 1
            else:
                end = _head_end(stream, pos)
                pos = end[1] if end else len(stream)
            message["complete"] = True
            break
        present = max(0, min(chunk, len(stream) - pos))
        segments.append((pos, present))
        size += present
        if present < chunk:
            message["truncated"] = True
            pos = len(stream)
            break
        pos += chunk
        if stream[pos:pos + 2] == b"\r\n":
            pos += 2
        elif stream[pos:pos + 1] == b"\n":
            pos += 1
    else:
        anomalies.append(_anomaly("chunk-limit", direction, pos, f"over {MAX_CHUNKS} chunks"))
        message["truncated"] = True
        pos = len(stream)
    message["chunked"] = True
    message["body_segments"] = segments
    message["body_offset"] = segments[0][0] if segments else pos
    message["body_size"] = size
    body = bytearray()
    for start, length in segments:
        if len(body) >= max_body:
            break
        body += stream[start:start + min(length, max_body - len(body))]
    message["body"] = bytes(body)
    return pos


def _body(stream: bytes, pos: int, message: dict, request: dict | None, max_body: int,
          anomalies: list) -> int:
    headers = message["headers"]
    direction = message["direction"]
    status = message.get("status")
    no_body = direction == "s2c" and (
        (status is not None and (100 <= status < 200 or status in (204, 304)))
        or (request is not None and request.get("method") == "HEAD"))
    message["chunked"] = False
    if no_body:
        message.update(body_offset=pos, body_size=0, body=b"", body_segments=[])
        return pos
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _dechunk(stream, pos, message, max_body, anomalies)
    length_text = headers.get("content-length")
    if length_text is not None:
        try:
            length = int(length_text.split(",")[0].strip())
            if length < 0:
                raise ValueError
        except ValueError:
            anomalies.append(_anomaly("bad-content-length", direction, message["offset"],
                                      f"Content-Length {length_text[:40]!r}"))
            length = len(stream) - pos
    elif direction == "s2c":
        length = len(stream) - pos  # the body runs until the connection closes
        message["until_close"] = True
    else:
        length = 0
    present = max(0, min(length, len(stream) - pos))
    if present < length:
        message["truncated"] = True
    message["body_offset"] = pos
    message["body_size"] = length
    message["body_segments"] = [(pos, present)] if present else []
    message["body"] = stream[pos:pos + min(present, max_body)]
    return pos + length


def _multipart(message: dict, anomalies: list) -> None:
    content_type = message["headers"].get("content-type", "")
    match = re.search(r'boundary="?([^";]{1,200})"?', content_type, re.I)
    if not match:
        return
    delimiter = b"--" + match.group(1).encode("latin-1")
    body = message["body"]
    parts = []
    pos = body.find(delimiter)
    while pos >= 0 and len(parts) < MAX_PARTS:
        start = pos + len(delimiter)
        if body[start:start + 2] == b"--":
            break
        head = _head_end(body, start)
        if head is None:
            break
        nxt = body.find(b"\r\n" + delimiter, head[1])
        data_end = nxt if nxt >= 0 else len(body)
        part: dict = {"offset_in_body": head[1], "size": data_end - head[1],
                      "complete": nxt >= 0}
        for line in body[start:head[0]].split(b"\n"):
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            text = value.strip().decode("latin-1")[:MAX_HEADER_VALUE]
            if key == b"content-disposition":
                field = re.search(r'\bname="([^"]*)"', text)
                filename = re.search(r'\bfilename="([^"]*)"', text)
                part["name"] = field.group(1) if field else None
                part["filename"] = filename.group(1) if filename else None
            elif key == b"content-type":
                part["content_type"] = text
        data = body[head[1]:data_end]
        if data.startswith(b"PK\x03\x04"):
            part["content_kind"] = "zip"
            facts, zip_anomalies = list_zip(data, message["direction"],
                                            message["body_offset"] + head[1])
            part["zip"] = facts
            anomalies.extend(zip_anomalies)
        elif data.startswith(b"\xac\xed\x00\x05"):
            part["content_kind"] = "java-serialized"
            part["class_names"] = java_class_names(data)
        elif data[:1] in (b"{", b"["):
            part["content_kind"] = "json"
        parts.append(part)
        if nxt < 0:
            break
        pos = nxt + 2
    message["parts"] = parts


def _messages(stream: bytes, direction: str, requests: list, max_messages: int,
              max_body: int, out: list, anomalies: list) -> None:
    pos = 0
    index = 0
    while pos < len(stream) and index < max_messages:
        if direction == "s2c" or stream[pos:pos + 2] == b"\r\n":
            # Tolerate the stray CRLF some clients send between requests (RFC 9112 2.2).
            while stream[pos:pos + 2] == b"\r\n":
                pos += 2
            if pos >= len(stream):
                break
        bounds = _head_end(stream, pos)
        if bounds is None:
            anomalies.append(_anomaly("truncated-head" if len(stream) - pos < MAX_HEAD
                                      else "head-too-long", direction, pos,
                                      f"no end of head within {min(MAX_HEAD, len(stream) - pos)}"
                                      " bytes"))
            return
        message = _parse_head(stream[pos:bounds[0]], direction, pos, anomalies)
        if message is None:
            anomalies.append(_anomaly("not-http", direction, pos,
                                      f"start line {stream[pos:pos + 40]!r}"))
            return
        request = None
        if direction == "s2c":
            # 1xx responses are interim: they do not use up the request they answer.
            request = requests[index] if index < len(requests) else None
            message["request_index"] = index if request is not None else None
        else:
            message["index"] = index
        pos = _body(stream, bounds[1], message, request, max_body, anomalies)
        if message.get("content_type") == "multipart/form-data":
            _multipart(message, anomalies)
        out.append(message)
        if direction == "c2s" or not 100 <= message.get("status", 0) < 200:
            index += 1
        if message.get("truncated"):
            return
        upgrade = message["headers"].get("upgrade")
        if upgrade and (direction == "c2s" or message.get("status") == 101):
            anomalies.append(_anomaly("upgrade", direction, pos,
                                      f"protocol upgrade to {upgrade[:40]}; not decoded"))
            return
    if pos < len(stream) and index >= max_messages:
        anomalies.append(_anomaly("message-limit", direction, pos,
                                  f"stopped after {max_messages} messages"))


def decode(c2s: bytes, s2c: bytes, max_messages: int = 1000,
           max_body: int = DEFAULT_MAX_BODY) -> FrameList:
    """Decode the requests of the client stream and the responses of the server stream.

    Returns a FrameList (requests first, then responses, each in stream order; anomalies on
    `.anomalies`) of dicts with type ("request"/"response"), direction, offset, method, target,
    path, query (requests), status, reason, request_index (responses), version, headers
    (lower-cased names, duplicates joined by ", ", bounded), content_type, chunked,
    body_offset, body_size, body_segments, body (at most `max_body` bytes, de-chunked),
    truncated/complete and, for multipart bodies, parts.
    """
    requests: list[dict] = []
    responses: list[dict] = []
    anomalies: list[dict] = []
    try:
        _messages(bytes(c2s or b""), "c2s", [], max_messages, max_body, requests, anomalies)
        _messages(bytes(s2c or b""), "s2c", requests, max_messages, max_body, responses,
                  anomalies)
    except Exception as exc:  # a parser bug must not end the analysis
        log.exception("http decoder failed")
        anomalies.append(_anomaly("decoder-error", "c2s", 0, repr(exc)))
    return FrameList(requests + responses, anomalies)


# Paths only Flink's REST API (JobManager WebMonitorEndpoint) serves.
_REST_PATHS = re.compile(
    r"^(?:/v1)?/(?:jars(?:/|$)|taskmanagers(?:/|$)|jobmanager/|cluster$|savepoint-disposal"
    r"|datasets|applications(?:/|$)|jobs$|jobs/[0-9a-f]{32}/(?:rescaling|savepoints|stop"
    r"|coordinators|resource-requirements|jobmanager)|jobs/overview$|overview$|config$"
    r"|jobs/[0-9a-f]{32}(?:/|$))")
# Paths that exist only on Flink's REST API and never on the (static) history server.
_REST_ONLY = re.compile(
    r"^(?:/v1)?/(?:jars(?:/|$)|taskmanagers(?:/|$)|jobmanager/|cluster$|savepoint-disposal"
    r"|datasets|applications(?:/|$)|jobs$|jobs/[0-9a-f]{32}/(?:rescaling|savepoints|stop"
    r"|coordinators|resource-requirements))")
_SQL_GATEWAY = re.compile(r"^(?:/v\d)?/(?:sessions(?:/|$)|api_versions$)")
_HISTORY_OVERVIEW = re.compile(r"^/(?:jobs/overview|joboverview)(?:\.json)?$")


def flink_role_evidence(messages: list[dict]) -> tuple[str | None, str | None]:
    """Return (role, evidence) for an HTTP flow from its decoded messages, or (None, None).

    Roles: "sql-gateway" (``/sessions`` routes), "metrics-reporter" (a Prometheus text body
    with ``flink_`` metric names), "history-server" (a /config answer with
    ``"web-history":true``, or history-overview routes without any route only the REST API
    has), "rest" (JobManager REST routes, the Flink web dashboard page, or a 301 to https://
    answering plain HTTP, which is what Flink REST does when its TLS is on).
    """
    requests = [m for m in messages if m.get("type") == "request"]
    responses = [m for m in messages if m.get("type") == "response"]
    paths = [m.get("path") or "" for m in requests]

    for path in paths:
        if _SQL_GATEWAY.match(path):
            return "sql-gateway", f"SQL Gateway route {path}"

    for response in responses:
        body = response.get("body") or b""
        if b"# HELP flink_" in body or b"# TYPE flink_" in body:
            return "metrics-reporter", "Prometheus text exposition with flink_ metrics"

    for response in responses:
        body = response.get("body") or b""
        if b'"refresh-interval"' in body and re.search(rb'"web-history"\s*:\s*true', body):
            return "history-server", 'dashboard /config with "web-history":true'

    rest_only = [p for p in paths if _REST_ONLY.match(p)]
    if rest_only:
        return "rest", f"Flink REST route {rest_only[0]}"
    if any(_HISTORY_OVERVIEW.match(p) for p in paths) and any(
            p == "/config" for p in paths):
        for response in responses:
            if b'"refresh-interval"' in (response.get("body") or b""):
                return "rest", ('dashboard routes /jobs/overview and /config with '
                                '"refresh-interval" (REST API or history server)')
    for path in paths:
        if _REST_PATHS.match(path):
            return "rest", f"Flink REST route {path}"
    for response in responses:
        body = response.get("body") or b""
        if b"Apache Flink Web Dashboard" in body:
            return "rest", "Apache Flink Web Dashboard page"
    for response in responses:
        if is_tls_redirect(response):
            return "rest", ("plain HTTP answered with 301 to https:// (what Flink REST does "
                            "when security.ssl.rest.enabled is on)")
    return None, None


def flink_role(messages: list[dict]) -> str | None:
    """Return the Flink role of an HTTP flow (see flink_role_evidence), or None."""
    return flink_role_evidence(messages)[0]


def is_tls_redirect(response: dict) -> bool:
    """True for a ``301`` response whose Location is an https:// URL."""
    return (response.get("status") == 301
            and (response.get("headers") or {}).get("location", "").lower().startswith(
                "https://"))


def _looks_like_request(c2s: bytes) -> bool:
    head = c2s[:16]
    return any(head.startswith(method + b" /") or head.startswith(method + b" http")
               for method in METHODS)


def detect(c2s: bytes, s2c: bytes) -> dict | None:
    """Recognize HTTP/1.x from the start of either direction.

    Returns None unless the client stream starts with ``<METHOD> /`` or the server stream with
    ``HTTP/1.``. Otherwise {"role", "evidence", "tls_redirect", "requests", "paths"} where role
    is the Flink role from flink_role_evidence, or "http" when nothing Flink-specific was seen.
    """
    c2s = bytes(c2s or b"")
    s2c = bytes(s2c or b"")
    if not _looks_like_request(c2s) and not s2c.startswith(b"HTTP/1."):
        return None
    messages = decode(c2s[:4 << 20], s2c[:4 << 20], max_messages=200, max_body=1 << 20)
    requests = [m for m in messages if m["type"] == "request"]
    responses = [m for m in messages if m["type"] == "response"]
    if not requests and not responses:
        return None
    role, evidence = flink_role_evidence(messages)
    redirect = any(is_tls_redirect(r) for r in responses)
    if role is None:
        role = "http"
        first = requests[0] if requests else None
        evidence = (f"HTTP/1.x {first['method']} {first['path']}" if first
                    else f"HTTP/1.x response {responses[0]['status']}")
        evidence += "; no Flink-specific route"
    return {
        "role": role,
        "evidence": evidence,
        "tls_redirect": redirect,
        "requests": len(requests),
        "responses": len(responses),
        "paths": [m["path"] for m in requests[:50]],
    }
