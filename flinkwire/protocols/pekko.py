"""Akka / Pekko classic remoting, the transport of every Flink RPC (1.15 - 2.3).

Theory of operation. Each direction of a remoting connection is a run of frames,
``uint32 BE length (not counting itself) | protobuf ProtocolMessage``. The first frame of each
side is a control message ASSOCIATE whose HandshakeInfo carries the sender's actor system name
(``flink`` or ``flink-metrics``), its *advertised* host and port, and a uid. Later frames carry an
AckAndEnvelopeContainer whose RemoteEnvelope names the recipient and sender actor paths
(``pekko.tcp://flink@host:port/user/rpc/taskmanager_0``) and holds a SerializedMessage: a
serializer id, a manifest and the message bytes. Flink's RPC messages are Java-serialized; we
never deserialize them, we only read class names out of the class descriptors and the two
``writeUTF`` strings (gateway, method) that ``RemoteRpcInvocation$MethodInvocation`` writes.

The protobuf reader below is our own and deliberately tiny: it understands the four wire types
the schema uses, caps field counts and nesting, and treats anything it cannot read as the end of
the message (recorded as an anomaly), so hostile bytes cost bounded time and never raise.

A stream captured after its connection began is resynchronized on the first payload frame whose
recipient path (``pekko.tcp://flink@...``) can be found within its first 256 KiB.

Limits: a frame cut short by the capture's retention limit yields its header facts only; Artery
(``AKKA`` magic) is reported as an anomaly, not decoded, because Flink never uses it.
"""

from __future__ import annotations

import functools
import logging
import re
import struct

from .varint import read_varint

log = logging.getLogger(__name__)

__all__ = ["detect", "decode", "resync", "FrameList", "read_varint", "protobuf_fields"]

# pekko.framesize / akka.framesize default; a larger length field is not a remoting frame.
MAX_FRAME = 10_485_760
MAX_FIELDS = 256
MAX_SCAN = 1 << 20  # bytes of a message searched for class names and writeUTF pairs

COMMANDS = {
    1: "ASSOCIATE",
    2: "DISASSOCIATE",
    3: "HEARTBEAT",
    4: "DISASSOCIATE_SHUTTING_DOWN",
    5: "DISASSOCIATE_QUARANTINED",
}
FLINK_SYSTEMS = ("flink", "flink-metrics")
SERIALIZERS = {1: "java", 6: "message-container", 16: "misc", 2: "bytes", 5: "protobuf"}

_CLASS_DESC = re.compile(rb"\x72\x00([\x05-\xff])([A-Za-z_$][\w$.\[\];]{4,254})")
_ACTOR_PATH = re.compile(rb"(?:akka|pekko)(?:\.ssl)?\.tcp://[\w.-]{1,64}@[\w.:\[\]-]{1,128}"
                         rb"(?:/[\w$#%.:-]{1,128}){0,16}")
_CLASS_NAME = re.compile(rb"[A-Za-z_$\[][\w$.\[\];]*")
_IDENT = re.compile(rb"[A-Za-z_$][\w$]{0,127}\Z")
_LIBRARY = re.compile(rb"(akka|pekko)(?:\.ssl)?\.tcp://")


class FrameList(list):
    """A list of frame dicts that also carries the `anomalies` met while reading them."""

    def __init__(self, frames=(), anomalies=None):
        super().__init__(frames)
        self.anomalies: list[dict] = list(anomalies or [])


_FIXED64 = struct.Struct("<Q").unpack_from
_FIXED32 = struct.Struct("<I").unpack_from


def protobuf_fields(buf: bytes, start: int = 0, end: int | None = None):
    """Split a protobuf message into fields.

    Returns (fields, error): fields is a list of (number, wire_type, value) where value is an int
    for wire types 0/1/5 and a (start, end) slice pair for wire type 2; error is None or a short
    text saying where reading stopped. Never reads past `end` nor returns more than MAX_FIELDS.
    """
    # Tags, lengths and values under 128 (nearly all of Pekko's) are read inline, not by
    # read_varint: 237,000 calls for the 100 MB benchmark capture's RPC flows, where this
    # function cost 0.37 s under cProfile before, 0.2 s after.
    end = len(buf) if end is None else min(end, len(buf))
    fields = []
    pos = start
    while pos < end:
        if len(fields) >= MAX_FIELDS:
            return fields, f"more than {MAX_FIELDS} fields"
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            tag = read_varint(buf, pos, end)
            if tag is None:
                return fields, f"bad tag varint at {pos}"
            key, pos = tag
        number, wire = key >> 3, key & 7
        if number == 0:
            return fields, f"field number 0 at {pos}"
        if wire == 0 or wire == 2:
            if pos < end and buf[pos] < 0x80:
                value = buf[pos]
                pos += 1
            else:
                got = read_varint(buf, pos, end)
                if got is None:
                    return fields, f"bad {'length ' if wire else ''}varint at {pos}"
                value, pos = got
            if wire == 2:
                if pos + value > end:
                    return fields, f"field {number} length {value} exceeds the bytes present"
                value, pos = (pos, pos + value), pos + value
        elif wire == 1:
            if pos + 8 > end:
                return fields, f"fixed64 cut at {pos}"
            value = _FIXED64(buf, pos)[0]
            pos += 8
        elif wire == 5:
            if pos + 4 > end:
                return fields, f"fixed32 cut at {pos}"
            value = _FIXED32(buf, pos)[0]
            pos += 4
        else:
            return fields, f"unsupported wire type {wire} at {pos}"
        fields.append((number, wire, value))
    return fields, None


def _first(fields, number, wire):
    for num, w, value in fields:
        if num == number and w == wire:
            return value
    return None


def _text(buf: bytes, span) -> str | None:
    if span is None:
        return None
    return buf[span[0]:span[1]].decode("utf-8", "replace")


def _address(buf: bytes, span) -> dict:
    fields, _ = protobuf_fields(buf, *span)
    return {
        "system": _text(buf, _first(fields, 1, 2)),
        "host": _text(buf, _first(fields, 2, 2)),
        "port": _first(fields, 3, 0),
        "protocol": _text(buf, _first(fields, 4, 2)),
    }


def _control(buf: bytes, span, frame: dict) -> None:
    fields, error = protobuf_fields(buf, *span)
    command = _first(fields, 1, 0)
    frame["command"] = COMMANDS.get(command, f"unknown({command})")
    if command == 1:
        frame["kind"] = "associate"
    elif command == 3:
        frame["kind"] = "heartbeat"
    elif command in (2, 4, 5):
        frame["kind"] = "disassociate"
    else:
        frame["kind"] = "control"
    handshake = _first(fields, 2, 2)
    if handshake is not None:
        hs_fields, hs_error = protobuf_fields(buf, *handshake)
        error = error or hs_error
        origin = _first(hs_fields, 1, 2)
        if origin is not None:
            address = _address(buf, origin)
            frame["system"] = address["system"]
            frame["advertised_host"] = address["host"]
            frame["advertised_port"] = address["port"]
            frame["transport"] = address["protocol"]
        uid = _first(hs_fields, 2, 1)
        if uid is not None:
            frame["uid"] = f"{uid:016x}"
    if error:
        frame["error"] = error


def _actor_path(buf: bytes, span) -> str | None:
    if span is None:
        return None
    if span[1] - span[0] > MAX_REMEMBERED_REF:
        return _path_of.__wrapped__(buf[span[0]:span[1]])
    return _path_of(buf[span[0]:span[1]])


MAX_REMEMBERED_REF = 1024  # bytes of one remembered actor ref: 1 MiB for the 1024 of them


@functools.lru_cache(maxsize=1024)
def _path_of(ref: bytes) -> str | None:
    # An association sends the same few recipient and sender refs in every frame:
    # looked up by their bytes, not decoded again (20,000 decodes on the 100 MB
    # benchmark capture, 0.07 s under cProfile).
    fields, _ = protobuf_fields(ref)
    return _text(ref, _first(fields, 1, 2))


def java_class_names(blob: bytes, limit: int = 64) -> list[str]:
    """Return class names from Java serialization class descriptors (`72 00 LL name`), in order."""
    names: list[str] = []
    for match in _CLASS_DESC.finditer(blob, 0, min(len(blob), MAX_SCAN)):
        length = match.group(1)[0]
        name = blob[match.start(2):match.start(2) + length]
        if len(name) != length or not _CLASS_NAME.fullmatch(name):
            continue
        text = name.decode("ascii")
        if text not in names:
            names.append(text)
        if len(names) >= limit:
            break
    return names


def _utf(blob: bytes, pos: int, end: int) -> tuple[bytes, int] | None:
    if pos + 2 > end:
        return None
    size = struct.unpack_from(">H", blob, pos)[0]
    if size == 0 or pos + 2 + size > end:
        return None
    return blob[pos + 2:pos + 2 + size], pos + 2 + size


def rpc_methods(blob: bytes, limit: int = 32) -> list[str]:
    """Return "Gateway.method" names written by RemoteRpcInvocation$MethodInvocation.writeObject.

    After each `MethodInvocation` class name, look for a TC_BLOCKDATA (`77 LL`) that starts with
    two writeUTF strings which both look like Java identifiers; the first is the gateway's simple
    name, the second the method name.
    """
    found: list[str] = []
    end = min(len(blob), MAX_SCAN)
    start = 0
    while len(found) < limit:
        at = blob.find(b"MethodInvocation", start, end)
        if at < 0:
            break
        start = at + 16
        window_end = min(end, start + 1024)
        pos = start
        while pos < window_end - 2:
            pos = blob.find(b"\x77", pos, window_end)
            if pos < 0:
                break
            block_end = min(end, pos + 2 + blob[pos + 1])
            gateway = _utf(blob, pos + 2, block_end)
            method = _utf(blob, gateway[1], block_end) if gateway else None
            if gateway and method and _IDENT.match(gateway[0]) and _IDENT.match(method[0]):
                name = f"{gateway[0].decode()}.{method[0].decode()}"
                found.append(name)
                start = method[1]
                break
            pos += 1
    return found


def _payload(buf: bytes, span, frame: dict) -> None:
    frame["kind"] = "payload"
    fields, error = protobuf_fields(buf, *span)
    envelope = _first(fields, 2, 2)
    if envelope is None:
        if _first(fields, 1, 2) is not None:
            frame["kind"] = "ack"
        if error:
            frame["error"] = error
        return
    env_fields, env_error = protobuf_fields(buf, *envelope)
    error = error or env_error
    frame["recipient"] = _actor_path(buf, _first(env_fields, 1, 2))
    frame["sender"] = _actor_path(buf, _first(env_fields, 4, 2))
    seq = _first(env_fields, 5, 1)
    if seq is not None:
        frame["seq"] = seq
    message = _first(env_fields, 2, 2)
    if message is not None:
        msg_fields, msg_error = protobuf_fields(buf, *message)
        error = error or msg_error
        serializer = _first(msg_fields, 2, 0)
        frame["serializer_id"] = serializer
        frame["serializer"] = SERIALIZERS.get(serializer)
        frame["manifest"] = _text(buf, _first(msg_fields, 3, 2))
        body = _first(msg_fields, 1, 2)
        if body is not None:
            content = buf[body[0]:body[1]]
            frame["message_size"] = len(content)
            frame["class_names"] = java_class_names(content)
            frame["rpc_methods"] = rpc_methods(content)
    if error:
        frame["error"] = error


def _frames(stream: bytes, direction: str, max_frames: int, frames: list, anomalies: list,
            start: int = 0):
    pos = start
    count = 0
    size = len(stream)
    while pos < size and count < max_frames:
        if pos + 4 > size:
            anomalies.append(_anomaly("truncated-frame-header", direction, pos,
                                      f"{size - pos} bytes left, 4 needed"))
            return
        length = struct.unpack_from(">I", stream, pos)[0]
        if stream[pos:pos + 4] == b"AKKA":
            anomalies.append(_anomaly("artery", direction, pos,
                                      "Artery magic AKKA: not Flink's classic remoting"))
            return
        if length > MAX_FRAME:
            anomalies.append(_anomaly("bad-frame-length", direction, pos,
                                      f"length {length} above the frame size {MAX_FRAME}"))
            return
        if length == 0:
            # An empty ProtocolMessage: both sides of a real Flink 2.3 association end with one.
            frames.append({"direction": direction, "offset": pos, "length": 0,
                           "kind": "empty"})
            count += 1
            pos += 4
            continue
        body_end = pos + 4 + length
        frame = {"direction": direction, "offset": pos, "length": length, "kind": "unknown"}
        if body_end > size:
            frame["truncated"] = True
            anomalies.append(_anomaly("truncated-frame", direction, pos,
                                      f"frame of {length} bytes, {size - pos - 4} present"))
        end = min(body_end, size)
        fields, error = protobuf_fields(stream, pos + 4, end)
        control = _first(fields, 2, 2)
        payload = _first(fields, 1, 2)
        if control is not None:
            _control(stream, control, frame)
        elif payload is not None:
            _payload(stream, payload, frame)
        elif error and not frame.get("truncated"):
            frame["error"] = error
        if frame.get("error") and not frame.get("truncated"):
            anomalies.append(_anomaly("bad-protobuf", direction, pos, frame["error"]))
        frames.append(frame)
        count += 1
        pos = body_end
    if pos < size and count >= max_frames:
        anomalies.append(_anomaly("frame-limit", direction, pos,
                                  f"stopped after {max_frames} frames"))


def _anomaly(kind: str, direction: str, offset: int, detail: str) -> dict:
    return {"kind": kind, "direction": direction, "offset": offset, "detail": detail}


def decode(c2s: bytes, s2c: bytes, max_frames: int = 10_000) -> FrameList:
    """Decode both directions of a remoting connection into frame dicts.

    Returns a FrameList (client frames first, then server frames, each in stream order) of
    dicts with direction, offset, length, kind (associate / disassociate / heartbeat / payload /
    ack / control / empty / unknown) and, where present, command, system, advertised_host,
    advertised_port, uid, recipient, sender, seq, serializer_id, manifest, message_size,
    class_names and rpc_methods ("TaskExecutorGateway.submitTask"). Anomalies are on
    `.anomalies`. Refuses nothing: malformed bytes end that direction with an anomaly.
    """
    frames: list[dict] = []
    anomalies: list[dict] = []
    for direction, stream in (("c2s", c2s or b""), ("s2c", s2c or b"")):
        try:
            stream = bytes(stream)
            start = 0
            if stream and not _clean_start(stream):
                found = resync(stream)
                if found is not None:
                    start = found
                    anomalies.append(_anomaly(
                        "mid-stream", direction, 0,
                        f"stream does not start with a frame; resynchronized at {found}"))
            _frames(stream, direction, max_frames, frames, anomalies, start)
        except Exception as exc:  # a parser bug must not end the analysis
            log.exception("pekko decoder failed")
            anomalies.append(_anomaly("decoder-error", direction, 0, repr(exc)))
    return FrameList(frames, anomalies)


_FLINK_PATH = re.compile(rb"(akka|pekko)(?:\.ssl)?\.tcp://(flink(?:-metrics)?)@")
KNOWN_KINDS = ("associate", "disassociate", "heartbeat", "payload", "ack", "empty")


def _clean_start(stream: bytes) -> bool:
    """True when the stream's first frame parses as a remoting frame."""
    frames: list[dict] = []
    anomalies: list[dict] = []
    _frames(stream, "c2s", 1, frames, anomalies)
    return bool(frames) and frames[0]["kind"] in KNOWN_KINDS and not frames[0].get("error") \
        and not [a for a in anomalies if a["kind"] not in ("truncated-frame", "frame-limit")]


def resync(stream: bytes, limit: int = 1 << 18) -> int | None:
    """Find the first whole payload frame of a stream captured after its connection began.

    Looks just before each ``akka.tcp://flink@`` / ``pekko.tcp://flink@`` string (a recipient
    path sits a few bytes after its frame's start) for an offset from which the frames walk
    cleanly: a payload frame, then another frame or the end of the bytes. Returns that offset,
    or None.
    """
    end = min(len(stream), limit)
    for tries, match in enumerate(_FLINK_PATH.finditer(stream, 0, end)):
        if tries >= 32:
            break
        at = match.start()
        for start in range(max(0, at - 64), at - 8):
            if stream[start + 4] != 0x0A:
                continue
            length = struct.unpack_from(">I", stream, start)[0]
            if not 8 <= length <= MAX_FRAME or start + 4 + length <= at:
                continue
            frames: list[dict] = []
            anomalies: list[dict] = []
            _frames(stream, "c2s", 3, frames, anomalies, start)
            clean = [a for a in anomalies if a["kind"] not in ("truncated-frame", "frame-limit")]
            if frames and frames[0]["kind"] == "payload" and frames[0].get("recipient") \
                    and not clean and not any(f.get("error") for f in frames):
                return start
    return None


def _origin_from_paths(frames: list[dict], direction: str) -> dict | None:
    """The actor system a direction's messages are addressed to, read from recipient paths."""
    for frame in frames:
        if frame["direction"] != direction or not frame.get("recipient"):
            continue
        match = re.match(r"(?:akka|pekko)(?:\.ssl)?\.tcp://([\w-]+)@(\[[^\]]+\]|[^:/]+):(\d+)",
                         frame["recipient"])
        if match and match.group(1) in FLINK_SYSTEMS:
            return {"system": match.group(1), "host": match.group(2).strip("[]"),
                    "port": int(match.group(3)), "uid": None, "transport": None,
                    "from": "actor paths"}
    return None


def _associate(stream: bytes) -> dict | None:
    """Return the origin of a leading ASSOCIATE frame, or None when the stream starts otherwise."""
    if len(stream) < 12:
        return None
    length = struct.unpack_from(">I", stream, 0)[0]
    # 12 LL 08 01 12: ProtocolMessage.instruction, CommandType ASSOCIATE, HandshakeInfo follows.
    if not 8 <= length <= 4096 or stream[4] != 0x12 or stream[6:9] != b"\x08\x01\x12":
        return None
    if stream[5] != length - 2:
        return None
    frames: list[dict] = []
    _frames(stream[:4 + length], "c2s", 1, frames, [])
    if not frames or frames[0].get("kind") != "associate":
        return None
    frame = frames[0]
    system = frame.get("system")
    if system not in FLINK_SYSTEMS:
        return None
    return {
        "system": system,
        "host": frame.get("advertised_host"),
        "port": frame.get("advertised_port"),
        "uid": frame.get("uid"),
        "transport": frame.get("transport"),
    }


def detect(c2s: bytes, s2c: bytes) -> dict | None:
    """Recognize a Flink Akka/Pekko association from the ASSOCIATE frame of either side.

    Returns None unless a direction starts with an ASSOCIATE of actor system ``flink`` or
    ``flink-metrics``, or (a capture that began after the association) frames can be
    resynchronized on a ``pekko.tcp://flink@`` recipient path; then `mid_stream` is True and
    the origins are read from recipient paths (uid None). Otherwise a dict with role ("rpc",
    or "metrics-rpc" for flink-metrics: whether the server is a JobManager or a TaskManager is not in the handshake), evidence,
    system, advertised_host/advertised_port/uid (the server's origin when it answered, else the
    client's; `advertised_side` says which), client_origin, server_origin, rpc_library ("akka",
    "pekko" or None, from actor-path URLs later in the stream), and the actor endpoints and RPC
    methods addressed in each direction (`c2s_endpoints`, `s2c_endpoints`, `c2s_methods`, ...).
    """
    c2s = bytes(c2s or b"")
    s2c = bytes(s2c or b"")
    client = _associate(c2s)
    server = _associate(s2c)
    frames = None
    mid_stream = client is None and server is None
    if mid_stream:
        # Captured after the association began: recipients of the client's messages live on
        # the server, and the other way round.
        if resync(c2s) is None and resync(s2c) is None:
            return None
        frames = decode(c2s, s2c, max_frames=2000)
        server = _origin_from_paths(frames, "c2s")
        client = _origin_from_paths(frames, "s2c")
        if client is None and server is None:
            return None
    origin, side = (server, "server") if server else (client, "client")
    system = origin["system"]
    role = "metrics-rpc" if system == "flink-metrics" else "rpc"

    library = None
    for stream in (c2s, s2c):
        match = _LIBRARY.search(stream, 0, min(len(stream), MAX_SCAN))
        if match:
            library = match.group(1).decode()
            break

    seen = []
    what = "messages to" if mid_stream else "ASSOCIATE"
    if client:
        seen.append(f"client {what} {client['system']}@{client['host']}:{client['port']}")
    if server:
        seen.append(f"server {what} {server['system']}@{server['host']}:{server['port']}")
    evidence = "Akka/Pekko classic remoting: " + ", ".join(seen)
    if mid_stream:
        evidence += " (no handshake captured; frames resynchronized mid-stream)"
    if library:
        evidence += f"; {library}.tcp:// actor paths"

    result = {
        "role": role,
        "evidence": evidence,
        "system": system,
        "advertised_host": origin["host"],
        "advertised_port": origin["port"],
        "advertised_side": side,
        "uid": origin["uid"],
        "client_origin": client,
        "server_origin": server,
        "rpc_library": library,
        "mid_stream": mid_stream,
    }
    if frames is None:
        frames = decode(c2s, s2c, max_frames=2000)
    for direction in ("c2s", "s2c"):
        endpoints: list[str] = []
        methods: list[str] = []
        for frame in frames:
            if frame["direction"] != direction:
                continue
            endpoint = rpc_endpoint(frame.get("recipient"))
            if endpoint and endpoint not in endpoints and len(endpoints) < 64:
                endpoints.append(endpoint)
            for method in frame.get("rpc_methods") or ():
                if method not in methods and len(methods) < 256:
                    methods.append(method)
        result[f"{direction}_endpoints"] = endpoints
        result[f"{direction}_methods"] = methods
    # The decoded frames, so a caller that wants them need not decode again.
    result["frames"] = frames
    return result


_ENDPOINT = re.compile(r"/user/rpc/([A-Za-z_]+?)(?:_\d+)?(?:[#/]|$)")


def rpc_endpoint(path: str | None) -> str | None:
    """Return the Flink RPC endpoint kind of an actor path ("taskmanager", "dispatcher", ...)."""
    if not path:
        return None
    match = _ENDPOINT.search(path)
    return match.group(1) if match else None


def actor_paths(stream: bytes, limit: int = 256) -> list[str]:
    """Return distinct akka/pekko actor path URLs readable anywhere in `stream`."""
    found: list[str] = []
    for match in _ACTOR_PATH.finditer(stream, 0, min(len(stream), MAX_SCAN)):
        text = match.group(0).decode("ascii", "replace")
        if text not in found:
            found.append(text)
            if len(found) >= limit:
                break
    return found
