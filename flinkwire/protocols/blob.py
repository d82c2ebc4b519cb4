"""Flink's blob server protocol (job jars, offloaded job/task information, TaskManager logs).

Theory of operation. The client speaks first and may run several operations on one
connection; the server answers each in turn, so requests (client stream) and replies (server
stream) are read in lock step. A PUT is ``00 · context · blobType · [LE int32 n · n bytes]* ·
FF FF FF FF`` and is answered ``00 · BlobKey(37)``; a GET is ``01 · context · BlobKey(37)``
and is answered ``00 · LE int32 size · bytes``, after which the client acknowledges with one
``00`` byte. The context is ``00`` (no job), ``02`` + JobID or (2.3) ``03`` + ApplicationID.
Lengths here are little-endian, unlike the rest of Flink. Error replies are ``01`` + LE length
+ a Java-serialized exception, whose class names we read without deserializing.

Uploaded or downloaded content that is a ZIP (a job jar) is listed with the standard library's
``zipfile`` on an in-memory copy: entry names always, small text entries (manifests,
properties, YAML) read with hard byte limits, and entries whose declared ratio or size make
them a decompression bomb reported instead of read. Nothing is ever written to disk.
"""

from __future__ import annotations

import hashlib
import io
import logging
import struct
import zipfile

from flinkwire.protocols.pekko import FrameList, java_class_names

log = logging.getLogger(__name__)

__all__ = ["detect", "decode", "content_of", "list_zip", "blob_key_text"]

PUT, GET = 0, 1
CONTEXTS = {0: "job-unrelated", 2: "job", 3: "application"}
BLOB_TYPES = {0: "permanent", 1: "transient"}
CHUNK_MAX = 65536
KEY_SIZE = 37
END_OF_PUT = b"\xff\xff\xff\xff"
MAX_OPERATIONS = 1000
MAX_CHUNKS = 1 << 16
MAX_CONTENT = 64 << 20         # bytes of one blob joined for the ZIP listing

ZIP_MAX_ENTRIES = 10_000
ZIP_ENTRY_READ = 1 << 20       # bytes decompressed from one text entry
ZIP_TOTAL_READ = 8 << 20       # bytes decompressed from one archive
ZIP_BOMB_RATIO = 200           # declared size / compressed size above this is a bomb
ZIP_BOMB_SIZE = 1 << 30        # declared total size above this is a bomb
TEXT_SUFFIXES = (".properties", ".yaml", ".yml", ".conf", ".xml", ".json", ".txt", ".sql",
                 ".cfg", ".ini", ".env", "MANIFEST.MF")


def blob_key_text(key: bytes) -> str | None:
    """Return the text form ``p-<sha1>-<random>`` / ``t-…`` of a 37-byte BlobKey, else None."""
    if len(key) != KEY_SIZE or key[20] not in BLOB_TYPES:
        return None
    prefix = "p" if key[20] == 0 else "t"
    return f"{prefix}-{key[:20].hex()}-{key[21:].hex()}"


def _anomaly(kind: str, direction: str, offset: int, detail: str) -> dict:
    return {"kind": kind, "direction": direction, "offset": offset, "detail": detail}


def _context(stream: bytes, pos: int, op: dict) -> int | None:
    """Read the job/application context at `pos`; return the next position or None."""
    if pos >= len(stream) or stream[pos] not in CONTEXTS:
        return None
    op["context"] = CONTEXTS[stream[pos]]
    if stream[pos] == 0:
        return pos + 1
    if pos + 17 > len(stream):
        return None
    op["application_id" if stream[pos] == 3 else "job_id"] = stream[pos + 1:pos + 17].hex()
    return pos + 17


def _read_put(stream: bytes, pos: int, op: dict, anomalies: list) -> int:
    """Read a PUT request body at `pos` (after the context); return where the next op starts."""
    if pos >= len(stream):
        op["truncated"] = True
        return pos
    if stream[pos] not in BLOB_TYPES:
        op["error"] = f"blob type byte {stream[pos]}"
        anomalies.append(_anomaly("bad-blob-type", "c2s", pos, op["error"]))
        return len(stream)
    op["blob_type"] = BLOB_TYPES[stream[pos]]
    pos += 1
    segments: list[tuple[int, int]] = []
    size = 0
    while True:
        if len(segments) >= MAX_CHUNKS:
            anomalies.append(_anomaly("chunk-limit", "c2s", pos, f"over {MAX_CHUNKS} chunks"))
            op["truncated"] = True
            pos = len(stream)
            break
        if pos + 4 > len(stream):
            op["truncated"] = True
            pos = len(stream)
            break
        if stream[pos:pos + 4] == END_OF_PUT:
            pos += 4
            op["complete"] = True
            break
        n = struct.unpack_from("<i", stream, pos)[0]
        if not 0 <= n <= CHUNK_MAX:
            op["error"] = f"chunk length {n} outside 0..{CHUNK_MAX}"
            anomalies.append(_anomaly("bad-chunk-length", "c2s", pos, op["error"]))
            pos = len(stream)
            break
        present = min(n, len(stream) - pos - 4)
        segments.append((pos + 4, present))
        size += present
        if present < n:
            op["truncated"] = True
            pos = len(stream)
            break
        pos += 4 + n
    op["content_segments"] = segments
    op["content_offset"] = segments[0][0] if segments else None
    op["size"] = size
    return pos


def _read_put_reply(stream: bytes, pos: int, op: dict, anomalies: list) -> int:
    if pos >= len(stream):
        return pos
    status = stream[pos]
    if status == 0:
        key = stream[pos + 1:pos + 1 + KEY_SIZE]
        op["status"] = "ok"
        op["blob_key"] = blob_key_text(key)
        if op["blob_key"] is None:
            anomalies.append(_anomaly("bad-blob-key", "s2c", pos + 1,
                                      f"{len(key)} key bytes, type byte not 0/1"))
        return pos + 1 + KEY_SIZE
    if status == 1:
        return _read_error(stream, pos, op, anomalies)
    anomalies.append(_anomaly("bad-reply", "s2c", pos, f"reply status byte {status}"))
    return len(stream)


def _read_error(stream: bytes, pos: int, op: dict, anomalies: list) -> int:
    op["status"] = "error"
    if pos + 5 > len(stream):
        return len(stream)
    n = struct.unpack_from("<i", stream, pos + 1)[0]
    if n < 0:
        anomalies.append(_anomaly("bad-error-length", "s2c", pos + 1, f"length {n}"))
        return len(stream)
    body = stream[pos + 5:pos + 5 + n]
    op["error_classes"] = java_class_names(body)
    return pos + 5 + n


def _read_get_reply(stream: bytes, pos: int, op: dict, anomalies: list) -> int:
    if pos >= len(stream):
        return pos
    status = stream[pos]
    if status == 1:
        return _read_error(stream, pos, op, anomalies)
    if status != 0:
        anomalies.append(_anomaly("bad-reply", "s2c", pos, f"reply status byte {status}"))
        return len(stream)
    op["status"] = "ok"
    if pos + 5 > len(stream):
        op["truncated"] = True
        return len(stream)
    n = struct.unpack_from("<i", stream, pos + 1)[0]
    if n < 0:
        anomalies.append(_anomaly("bad-blob-size", "s2c", pos + 1, f"size {n}"))
        return len(stream)
    present = min(n, len(stream) - pos - 5)
    op["content_segments"] = [(pos + 5, present)]
    op["content_offset"] = pos + 5
    op["size"] = n
    if present < n:
        op["truncated"] = True
    return pos + 5 + n


def content_of(stream: bytes, op: dict, limit: int = MAX_CONTENT) -> bytes:
    """Join the content bytes of one operation from the stream that carried it (at most `limit`)."""
    parts = []
    total = 0
    for start, length in op.get("content_segments") or ():
        take = min(length, limit - total)
        if take <= 0:
            break
        parts.append(stream[start:start + take])
        total += take
    return b"".join(parts)


def _scan_local_headers(content: bytes, limit: int) -> list[str]:
    """Entry names from local file headers, for a ZIP whose central directory is missing."""
    names = []
    pos = content.find(b"PK\x03\x04")
    while pos >= 0 and len(names) < limit and pos + 30 <= len(content):
        name_len, extra_len = struct.unpack_from("<HH", content, pos + 26)
        name = content[pos + 30:pos + 30 + name_len]
        if len(name) == name_len and name_len:
            names.append(name.decode("utf-8", "replace"))
        pos = content.find(b"PK\x03\x04", pos + 30)
    return names


def list_zip(content: bytes, direction: str = "c2s", offset: int = 0) -> tuple[dict, list]:
    """List a ZIP held in memory, within hard limits.

    Returns (facts, anomalies). facts has entries (names, at most ZIP_MAX_ENTRIES),
    entry_count, declared_size, text_entries ({name: text} of small text files, read with
    ZIP_ENTRY_READ / ZIP_TOTAL_READ limits), and source ("central-directory" or
    "local-headers" when the archive is cut short). Entries that look like decompression bombs
    are not read and are reported as "zip-bomb" anomalies.
    """
    anomalies: list[dict] = []
    facts: dict = {"entries": [], "entry_count": 0, "declared_size": 0, "text_entries": {}}
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except Exception as exc:
        facts["source"] = "local-headers"
        facts["entries"] = _scan_local_headers(content, ZIP_MAX_ENTRIES)
        facts["entry_count"] = len(facts["entries"])
        anomalies.append(_anomaly("zip-unreadable", direction, offset,
                                  f"no central directory ({exc.__class__.__name__}); "
                                  "names taken from local headers"))
        return facts, anomalies
    facts["source"] = "central-directory"
    with archive:
        infos = archive.infolist()
        facts["entry_count"] = len(infos)
        if len(infos) > ZIP_MAX_ENTRIES:
            anomalies.append(_anomaly("zip-entry-limit", direction, offset,
                                      f"{len(infos)} entries, listed {ZIP_MAX_ENTRIES}"))
        read_total = 0
        bomb = False
        for info in infos[:ZIP_MAX_ENTRIES]:
            facts["entries"].append(info.filename)
            facts["declared_size"] += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > ZIP_BOMB_RATIO and info.file_size > ZIP_ENTRY_READ:
                bomb = True
                anomalies.append(_anomaly(
                    "zip-bomb", direction, offset,
                    f"entry {info.filename!r} declares {info.file_size} bytes from "
                    f"{info.compress_size} (ratio {ratio:.0f}); not decompressed"))
                continue
            if not info.filename.endswith(TEXT_SUFFIXES) or info.is_dir():
                continue
            budget = min(ZIP_ENTRY_READ, ZIP_TOTAL_READ - read_total)
            if budget <= 0:
                anomalies.append(_anomaly("zip-read-limit", direction, offset,
                                          f"stopped decompressing after {read_total} bytes"))
                break
            try:
                with archive.open(info) as member:
                    text = member.read(budget + 1)
            except Exception as exc:  # encrypted, unsupported method, corrupt data
                anomalies.append(_anomaly("zip-entry-unreadable", direction, offset,
                                          f"{info.filename!r}: {exc.__class__.__name__}"))
                continue
            if len(text) > budget:
                text = text[:budget]
                anomalies.append(_anomaly("zip-entry-limit", direction, offset,
                                          f"{info.filename!r} cut at {budget} bytes"))
            read_total += len(text)
            facts["text_entries"][info.filename] = text.decode("utf-8", "replace")
        if facts["declared_size"] > ZIP_BOMB_SIZE and not bomb:
            anomalies.append(_anomaly("zip-bomb", direction, offset,
                                      f"entries declare {facts['declared_size']} bytes in all"))
    return facts, anomalies


def _inspect_content(stream: bytes, op: dict, direction: str, anomalies: list) -> None:
    content = content_of(stream, op)
    # A BlobKey starts with the SHA-1 of the content: a match proves we read the whole blob.
    whole = op.get("complete") if op.get("op") == "PUT" else (
        op.get("status") == "ok" and not op.get("truncated"))
    if whole and op.get("blob_key") and len(content) == op.get("size"):
        op["sha1_matches_key"] = hashlib.sha1(content).hexdigest() == op["blob_key"][2:42]
    if content.startswith(b"PK\x03\x04"):
        op["content_kind"] = "zip"
        facts, zip_anomalies = list_zip(content, direction, op.get("content_offset") or 0)
        op["zip"] = facts
        anomalies.extend(zip_anomalies)
    elif content.startswith(b"\xac\xed\x00\x05"):
        op["content_kind"] = "java-serialized"
        op["class_names"] = java_class_names(content)
    elif content:
        op["content_kind"] = "other"


def _walk(c2s: bytes, s2c: bytes, max_operations: int, ops: list, anomalies: list) -> None:
    cpos = spos = 0
    while cpos < len(c2s) and len(ops) < max_operations:
        start = cpos
        code = c2s[cpos]
        if code not in (PUT, GET):
            anomalies.append(_anomaly("bad-operation", "c2s", cpos, f"operation byte {code}"))
            return
        op = {"op": "PUT" if code == PUT else "GET", "offset": cpos, "direction": "c2s"}
        cpos = _context(c2s, cpos + 1, op)
        if cpos is None:
            anomalies.append(_anomaly("bad-context", "c2s", start + 1,
                                      "context byte not 00/02/03 or JobID cut short"))
            op["truncated"] = True
            ops.append(op)
            return
        if code == PUT:
            cpos = _read_put(c2s, cpos, op, anomalies)
            op["reply_offset"] = spos if spos < len(s2c) else None
            spos = _read_put_reply(s2c, spos, op, anomalies)
            op["content_direction"] = "c2s"
            _inspect_content(c2s, op, "c2s", anomalies)
        else:
            key = c2s[cpos:cpos + KEY_SIZE]
            op["blob_key"] = blob_key_text(key)
            if len(key) < KEY_SIZE:
                op["truncated"] = True
            elif op["blob_key"] is None:
                anomalies.append(_anomaly("bad-blob-key", "c2s", cpos, "type byte not 0/1"))
            cpos += KEY_SIZE
            op["reply_offset"] = spos if spos < len(s2c) else None
            spos = _read_get_reply(s2c, spos, op, anomalies)
            if op.get("status") == "ok" and cpos < len(c2s) and c2s[cpos] == 0:
                cpos += 1  # the client's one-byte acknowledgement of the download
                op["acknowledged"] = True
            op["content_direction"] = "s2c"
            _inspect_content(s2c, op, "s2c", anomalies)
        ops.append(op)
        if op.get("error") or op.get("truncated"):
            return
    if cpos < len(c2s):
        anomalies.append(_anomaly("operation-limit", "c2s", cpos,
                                  f"stopped after {max_operations} operations"))


def decode(c2s: bytes, s2c: bytes, max_operations: int = MAX_OPERATIONS) -> FrameList:
    """Decode the operations of a blob connection.

    Returns a list (FrameList; anomalies on `.anomalies`) of dicts: op ("PUT"/"GET"), offset
    (of the request in the client stream), context, job_id or application_id (hex), blob_type,
    blob_key (text form), status ("ok"/"error"), size, content_offset and content_segments
    (offset, length pairs in the stream named by content_direction: "c2s" for PUT, "s2c" for
    GET), complete/truncated, sha1_matches_key, content_kind and, for ZIPs, zip (list_zip facts).
    """
    ops: list[dict] = []
    anomalies: list[dict] = []
    try:
        _walk(bytes(c2s or b""), bytes(s2c or b""), max_operations, ops, anomalies)
    except Exception as exc:  # a parser bug must not end the analysis
        log.exception("blob decoder failed")
        anomalies.append(_anomaly("decoder-error", "c2s", 0, repr(exc)))
    return FrameList(ops, anomalies)


def _plausible_start(c2s: bytes) -> bool:
    if len(c2s) < 3 or c2s[0] not in (PUT, GET) or c2s[1] not in CONTEXTS:
        return False
    pos = 2 if c2s[1] == 0 else 18
    if c2s[0] == GET:
        # A GET is the context then a 37-byte key whose byte 20 is the blob type 0/1.
        return len(c2s) >= pos + KEY_SIZE and c2s[pos + 20] in BLOB_TYPES
    if len(c2s) < pos + 5 or c2s[pos] not in BLOB_TYPES:
        return False
    head = c2s[pos + 1:pos + 5]
    return head == END_OF_PUT or 0 <= struct.unpack("<i", head)[0] <= CHUNK_MAX


def detect(c2s: bytes, s2c: bytes) -> dict | None:
    """Recognize a blob connection from the client's first operation.

    Returns None unless the client stream starts with a well-formed PUT or GET (operation byte,
    context, blob type and a first LE chunk length <= 65536, or a key with a valid type byte)
    whose reading ends cleanly or at the end of the captured bytes. Otherwise
    {"role": "blob", "evidence", "operations": [summary dicts]}.
    """
    c2s = bytes(c2s or b"")
    s2c = bytes(s2c or b"")
    if not _plausible_start(c2s):
        return None
    ops = decode(c2s, s2c, max_operations=64)
    if not ops or ops[0].get("error"):
        return None
    if s2c and s2c[0] not in (0, 1):
        return None
    summary = []
    for op in ops:
        row = {k: op.get(k) for k in ("op", "context", "job_id", "blob_key", "size", "status")}
        if op.get("zip"):
            row["zip_entries"] = op["zip"]["entry_count"]
        summary.append(row)
    first = ops[0]
    evidence = f"blob {first['op']} ({first['context']}"
    if first.get("job_id") or first.get("application_id"):
        evidence += f" {first.get('job_id') or first.get('application_id')}"
    evidence += ")"
    if first["op"] == "PUT" and first.get("complete"):
        evidence += f", {first['size']} bytes ending FF FF FF FF"
    if first.get("blob_key"):
        evidence += f", key {first['blob_key']}"
    if len(ops) > 1:
        evidence += f", {len(ops)} operations"
    return {"role": "blob", "evidence": evidence, "operations": summary}
