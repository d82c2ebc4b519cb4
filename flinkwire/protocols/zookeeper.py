"""ZooKeeper client protocol, as Flink's Curator client speaks it for high availability.

Every packet is ``int32 BE length (not counting itself) · body``. The client's first packet is a
ConnectRequest (protocolVersion 0, lastZxidSeen, timeout, sessionId, a length-prefixed
password, normally 16 bytes, and an optional readOnly flag); the server's first is a
ConnectResponse. After that a request is ``xid · type · fields`` where most operations start
with the znode path (int32 length + UTF-8), and a reply is ``xid · zxid · err · fields``.
We read the paths (``/flink/default/leader/...``), the operation names, the authentication
schemes the client sends (digest credentials travel in clear), and readable RPC addresses in
the replies (the leader znode holds ``pekko.tcp://flink@host:port/...``).
"""

from __future__ import annotations

import logging
import re
import struct

log = logging.getLogger(__name__)

__all__ = ["detect", "decode"]

MAX_PACKET = 1 << 22   # ZooKeeper's own jute.maxbuffer default is about 1 MiB
MAX_PACKETS = 20_000
MAX_PATHS = 1000

OPS = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData", 5: "setData",
    6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync", 11: "ping", 12: "getChildren2",
    13: "check", 14: "multi", 15: "create2", 16: "reconfig", 17: "checkWatches",
    18: "removeWatches", 19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl", 103: "getEphemerals",
    104: "getAllChildrenNumber", 105: "setWatches2", 106: "addWatch", 107: "whoAmI",
    -10: "createSession", -11: "closeSession", -1: "error",
}
# Operations whose first field is the znode path.
PATH_OPS = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 17, 18, 19, 20, 21, 103, 104, 106})
_RPC_URL = re.compile(rb"(?:akka|pekko)(?:\.ssl)?\.tcp://[\w.-]{1,64}@[\w.:\[\]-]{1,128}"
                      rb"(?:/[\w$#%.:-]{1,128}){0,8}")


def _anomaly(kind: str, direction: str, offset: int, detail: str) -> dict:
    return {"kind": kind, "direction": direction, "offset": offset, "detail": detail}


def _connect_request(stream: bytes) -> dict | None:
    if len(stream) < 4 + 28:
        return None
    length = struct.unpack_from(">i", stream, 0)[0]
    protocol, last_zxid, timeout, session, passwd_len = struct.unpack_from(">iqiqi", stream, 4)
    if protocol != 0 or length not in (44, 45) or passwd_len != 16 or timeout < 0:
        return None
    return {"protocol_version": protocol, "last_zxid": last_zxid, "timeout_ms": timeout,
            "session_id": f"{session & (2**64 - 1):016x}",
            "read_only": bool(stream[48]) if length == 45 and len(stream) > 48 else None}


def _connect_response(stream: bytes) -> dict | None:
    if len(stream) < 4 + 20:
        return None
    length = struct.unpack_from(">i", stream, 0)[0]
    protocol, timeout, session, passwd_len = struct.unpack_from(">iiqi", stream, 4)
    if protocol != 0 or length not in (36, 37) or passwd_len != 16:
        return None
    return {"negotiated_timeout_ms": timeout, "session_id": f"{session & (2**64 - 1):016x}"}


def _string(buf: bytes, pos: int, end: int) -> tuple[str, int] | None:
    if pos + 4 > end:
        return None
    n = struct.unpack_from(">i", buf, pos)[0]
    if n < 0 or n > 1 << 16 or pos + 4 + n > end:
        return None
    return buf[pos + 4:pos + 4 + n].decode("utf-8", "replace"), pos + 4 + n


def decode(c2s: bytes, s2c: bytes) -> dict:
    """Decode a ZooKeeper client connection.

    Returns {"connect", "connect_response", "requests", "paths", "auth", "rpc_addresses",
    "anomalies"}: requests are {"offset", "xid", "op", "path"} dicts (bounded), paths the
    distinct znode paths in request order, auth the {"offset", "scheme", "length"} of auth
    packets (the credential itself is left to the leakage layer), rpc_addresses the actor
    URLs readable in the server's replies.
    """
    c2s = bytes(c2s or b"")
    s2c = bytes(s2c or b"")
    out: dict = {"connect": _connect_request(c2s), "connect_response": _connect_response(s2c),
                 "requests": [], "paths": [], "auth": [], "rpc_addresses": [],
                 "anomalies": []}
    pos = 4 + struct.unpack_from(">i", c2s, 0)[0] if out["connect"] else 0
    count = 0
    while pos + 12 <= len(c2s) and count < MAX_PACKETS:
        length = struct.unpack_from(">i", c2s, pos)[0]
        if not 8 <= length <= MAX_PACKET:
            out["anomalies"].append(_anomaly("bad-packet-length", "c2s", pos,
                                             f"length {length}"))
            break
        end = min(len(c2s), pos + 4 + length)
        xid, op = struct.unpack_from(">ii", c2s, pos + 4)
        request = {"offset": pos, "xid": xid, "op": OPS.get(op, f"unknown({op})")}
        if op in PATH_OPS:
            got = _string(c2s, pos + 12, end)
            if got:
                request["path"] = got[0]
                if got[0] not in out["paths"] and len(out["paths"]) < MAX_PATHS:
                    out["paths"].append(got[0])
        elif op == 100 and pos + 16 <= end:
            scheme = _string(c2s, pos + 16, end)  # after the int32 auth type
            if scheme:
                credential = _string(c2s, scheme[1], end)
                out["auth"].append({"offset": pos, "scheme": scheme[0],
                                    "length": len(credential[0]) if credential else None})
        out["requests"].append(request)
        count += 1
        if pos + 4 + length > len(c2s):
            out["anomalies"].append(_anomaly("truncated-packet", "c2s", pos,
                                             f"packet of {length} bytes cut short"))
            break
        pos += 4 + length
    for match in _RPC_URL.finditer(s2c, 0, min(len(s2c), 1 << 22)):
        text = match.group(0).decode("ascii", "replace")
        if text not in out["rpc_addresses"] and len(out["rpc_addresses"]) < 64:
            out["rpc_addresses"].append(text)
    return out


def detect(c2s: bytes, s2c: bytes) -> dict | None:
    """Recognize a ZooKeeper client connection from its ConnectRequest (or ConnectResponse).

    Returns None, or {"role": "zookeeper", "evidence", "paths", "flink_paths", "auth_schemes",
    "rpc_addresses", "session_id"}.
    """
    c2s = bytes(c2s or b"")
    s2c = bytes(s2c or b"")
    connect = _connect_request(c2s)
    response = _connect_response(s2c)
    if connect is None and not (response and not c2s):
        return None
    decoded = decode(c2s, s2c)
    flink_paths = [p for p in decoded["paths"] if p.startswith("/flink")]
    evidence = "ZooKeeper ConnectRequest (protocol 0, 16-byte password)" if connect else \
        "ZooKeeper ConnectResponse"
    if flink_paths:
        evidence += f"; Flink znodes such as {flink_paths[0]}"
    return {
        "role": "zookeeper",
        "evidence": evidence,
        "session_id": (response or connect or {}).get("session_id"),
        "paths": decoded["paths"][:200],
        "flink_paths": flink_paths[:200],
        "auth_schemes": [a["scheme"] for a in decoded["auth"]],
        "rpc_addresses": decoded["rpc_addresses"],
    }
