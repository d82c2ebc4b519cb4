"""One finished flow in, its rows for every table out.

Theory of operation: the flow table hands each flow here as soon as it ends
(or is evicted), with the retained head of each direction. This module decides
who the client is, whether the bytes are TLS, which Flink channel the content
says it is, and what is readable; then the flow's payload is dropped, so memory
follows the number of flows, not the capture. Roles that need other flows
(a TLS flow on a random port, JobManager versus TaskManager RPC) are settled
later by `flink.roles.refine_roles` over all flows' rows.

Redaction happens here, before any face sees a value: unless `reveal` is set,
finding values and snippet text are masked at the moment the row is made.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import hashlib
import ipaddress
import itertools
import logging
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple

try:
    import ahocorasick_rs
except ImportError:  # an environment set up before it was a dependency
    ahocorasick_rs = None

from ..flink import knowledge, roles
from ..leakage.redact import redact, redact_text
from ..leakage.scan import MAX_SPAN, readable_count, readable_runs, scan_secrets
from ..protocols import blob, flinkbin, http, netty, pekko, tls, zookeeper

log = logging.getLogger(__name__)

MAX_SNIPPETS_PER_FLOW = 5_000
MAX_DECODED_PER_FLOW = 2_000     # records, RPC frames, blob operations kept per flow
MAX_HTTP_PER_FLOW = 500
MAX_ROWS_PER_TABLE = 20_000      # default of Limits.max_rows_per_table
MAX_FINDINGS_PER_FLOW = 2000
MIN_SNIPPET = 8
MAX_UNANSWERED_ROWS = 10_000
MAX_UNANSWERED_SERVERS = 1_000  # no secret value the scanners report is longer than this
REQUEST_START = re.compile(
    rb"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|CONNECT|TRACE) |^USER |^EHLO |^HELO |^[A-Za-z0-9]+ (LOGIN|CAPABILITY|STARTTLS)")
SERVER_GREETING = re.compile(rb"^(HTTP/1\.[01] |220[ -]|\+OK|\* OK|SSH-)")
HEADER_END = re.compile(rb"\r?\n\r?\n")
FLINK_VERSION = re.compile(rb'"flink-version"\s*:\s*"([0-9][0-9A-Za-z.\-]{0,20})"')

# Content decoders tried in this order on plaintext flows; the first that
# recognises the bytes names the channel.
DETECTORS = (
    ("netty", netty.detect),
    ("pekko", pekko.detect),
    ("blob", blob.detect),
    ("flinkbin", flinkbin.detect),
    ("zookeeper", zookeeper.detect),
)


@dataclass
class Context:
    """What every flow's examination shares."""

    port_roles: dict
    reveal: bool = False
    min_snippet: int = MIN_SNIPPET
    flink_versions: set = field(default_factory=set)
    # Unanswered SYNs past the first MAX_UNANSWERED_ROWS are counted per server
    # address instead of kept as flows, so a scan of millions stays small.
    unanswered_rows: int = 0
    unanswered: dict = field(default_factory=dict)


def ip_text(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def flow_id(proto: str, client: str, cport: int, server: str, sport: int, first_ts: int) -> str:
    """Stable id: the same flow in the same capture always gets the same id."""
    text = f"{proto}|{client}|{cport}|{server}|{sport}|{first_ts}".encode()
    return "F" + hashlib.blake2s(text, digest_size=6).hexdigest()


def _client_side(flow, port_roles) -> tuple[int, str]:
    """Which endpoint of the key opened the flow, and why we think so."""
    if flow.client is not None:
        return flow.client, "SYN" if flow.syn_seen else "SYN-ACK"
    heads = (flow.halves[0].head()[:4096], flow.halves[1].head()[:4096])
    for side in (0, 1):
        data = heads[side]
        if data and (tls.tls_start(data, limit=1) == 0 or REQUEST_START.match(data)):
            return side, "sends the request"
    for side in (0, 1):
        if heads[side] and SERVER_GREETING.match(heads[side]):
            return 1 - side, "peer sends a server greeting"
    ports = (flow.key[1], flow.key[3])
    for side in (0, 1):
        other = ports[1 - side]
        if other in port_roles or other in knowledge.DEFAULT_PORTS:
            return side, f"peer port {other} is a known listening port"
    if ports[0] != ports[1]:
        return (0 if ports[0] > ports[1] else 1), "higher port (no handshake seen)"
    return 0, "first packet"


MIDSTREAM_SEARCH = 16384


def _midstream_tls(data: bytes):
    """Offset where a stream caught mid-connection becomes a run of TLS records, or None.

    Without a handshake there is no hello to find; a chain of at least three
    consistent record headers (or two that end the stream) is the signature.
    """
    head = data[:MIDSTREAM_SEARCH + 4096]
    pos = 0
    for _ in range(64):
        if tls.looks_like_tls_records(head[pos:], min_records=3):
            return pos
        pos = min((i for i in (head.find(b"\x17\x03", pos + 1), head.find(b"\x16\x03", pos + 1),
                               head.find(b"\x15\x03", pos + 1)) if i != -1), default=-1)
        if pos == -1 or pos > MIDSTREAM_SEARCH:
            return None
    return None


# A stream caught mid-connection may begin inside a record: at most one record's body
# and header come before the first header seen.
RECORD_TAIL = tls.MAX_RECORD_LENGTH + 5
# Random bytes hold a run of this many printable ASCII characters about once in 20 GB;
# text holds many. (`readable_count` also reads UTF-8, which random bytes make often.)
PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{24}")
# Records both sides of a hello walked this far are a TLS session, even where they stop
# later: FTP's CCC goes back to clear commands (a stop the record walk reports).
SESSION_RECORDS = 4


def _ciphertext_like(data: bytes) -> bool:
    """Bytes that may be the unseen start of a record: short, with no printable run a
    cipher would not make, and no secret."""
    return (len(data) <= RECORD_TAIL and PRINTABLE_RUN.search(data) is None
            and not scan_secrets(data).secrets)


def _tls_doubt(c2s, s2c, start, midstream, facts, closed, complete, tunnel):
    """Why the TLS found in a flow is only TLS-shaped bytes, as (direction, offset,
    reason), or None when it is a TLS stream.

    A ClientHello shape (at offset 0 or, STARTTLS-like, further in) or a record
    chain in a stream caught mid-connection is a pattern in the bytes, and a
    plaintext stream can hold it: an uploaded jar, a job's records that carry
    network traffic, a byte[] argument. Calling such a flow TLS would hide its
    plaintext from the scans and let `check` pass a plaintext cluster, so the claim
    must hold up, direction by direction, on the records themselves
    (`tls.record_chain`): they run on to the end of what was kept (a last record
    may be cut where the stream is: still open, or a hole or the retention bound
    ends what was kept), or, after a hello, for a whole handshake's worth of
    records. A hello is one: it parses as a ClientHello (`facts`), and the server's
    answer parses as a ServerHello, from the reply's first byte, after a plaintext
    reply where the hello itself came after plaintext (STARTTLS), or, the reply's
    first bytes damaged, from a chain no further in than one record behind bytes a
    cipher could have made; or the server answers with an alert. Both hellos parsed
    at the streams' first bytes leave no chance pattern to fear. In a stream caught
    mid-connection each direction runs as such a chain of at least three records
    (two and a cut one, or any that end it exactly) whose application data holds no
    printable run, or, too short for one, could be ciphertext. A tunnel that HTTP
    CONNECT opened was declared, not guessed: only text in it (a record shape followed
    by a request) undoes it.
    """
    def chain(data, pos, direction, session_ok):
        """Whole records from `pos`, how their run ends, and the doubt about them."""
        records, stop, how = tls.record_chain(data, pos)
        if how in ("end", "enough") or (how == "cut" and not (closed and complete[direction])):
            return records, how, None
        if session_ok and records >= SESSION_RECORDS:
            return records, how, None
        why = ("the last record runs past the end of the closed stream" if how == "cut"
               else f"they stop at offset {stop}")
        return records, how, (direction, pos, f"TLS records from offset {pos} in {direction}, "
                              f"but {why}: read as plaintext")

    if midstream != (None, None):
        for direction, head, offset in (("c2s", c2s, midstream[0]), ("s2c", s2c, midstream[1])):
            if not head:
                continue
            if offset is None:
                # A whole direction taken for ciphertext must look random: Kryo, UTF-16
                # and NUL-separated text hide from the scanners, not from a zero count.
                if _ciphertext_like(head) and head.count(0) <= len(head) // 64 + 4:
                    continue
                return (direction, 0, f"TLS records in a stream caught mid-connection, but "
                        f"none in {direction}, whose {len(head)} bytes are not a record's "
                        "tail: read as plaintext")
            # A capture that begins during the handshake begins inside a handshake
            # record: its tail is a certificate's names and dates, public and
            # printable, and the chain goes on with handshake or ChangeCipherSpec.
            handshake_tail = (head[offset] in (tls.HANDSHAKE, tls.CHANGE_CIPHER_SPEC)
                              and offset <= RECORD_TAIL and not scan_secrets(head[:offset]).secrets)
            if not handshake_tail and not _ciphertext_like(head[:offset]):
                return (direction, 0, f"TLS records from offset {offset} in {direction}, "
                        f"caught mid-connection, but the {offset} bytes before them are not "
                        "a record's tail: read as plaintext")
            records, how, doubt = chain(head, offset, direction, False)
            # Three whole records, two and a cut one, or any that end the stream
            # exactly: a lone header whose length runs past the end proves nothing.
            enough = records >= 3 or (how == "end" and records) or (how == "cut" and records >= 2)
            if doubt is None and not enough:
                doubt = (direction, offset, f"only {records} whole TLS records from offset "
                         f"{offset} in {direction}, caught mid-connection: read as plaintext")
            if doubt is None and (text := _text_in_records(head, offset)) is not None:
                doubt = (direction, text, f"TLS records from offset {offset} in {direction}, "
                         f"caught mid-connection, but the one at offset {text} carries "
                         "text: read as plaintext")
            if doubt is not None:
                return doubt
        return None

    if tunnel:
        return _tunnel_doubt(c2s, s2c, start)
    malformed = {a["direction"] for a in facts.anomalies if a["kind"] == "malformed-handshake"}
    client_hello = (facts.client_hello_seen and "c2s" not in malformed) or _hello_sized(c2s, start, 1)
    server_hello = (facts.server_hello_seen and "s2c" not in malformed) or _hello_sized(s2c, 0, 2)
    if not start and client_hello and server_hello and tls.tls_server_start(s2c) == 0:
        return None
    if not c2s:
        # The server's records, nothing from the client: whole ones, the first a
        # handshake or an alert.
        records, _, doubt = chain(s2c, 0, "s2c", False)
        if doubt is None and not (records and (server_hello or _opens_handshake(s2c))):
            doubt = ("s2c", 0, "TLS record shapes from the server, the first neither a "
                     "handshake nor an alert, and nothing from the client: read as plaintext")
        return doubt
    doubt = chain(c2s, start, "c2s", client_hello)[2]
    if doubt is not None:
        return doubt
    if not s2c:
        if client_hello:
            return None
        return ("c2s", start, f"a TLS ClientHello shape at offset {start} that does not parse "
                "as a ClientHello, and no reply: read as plaintext")
    if start:
        found = tls.tls_server_start(s2c)
        if found is None:
            return ("s2c", 0, f"a TLS ClientHello shape at offset {start}, but the server "
                    "sent no ServerHello: read as plaintext")
        return chain(s2c, found, "s2c", client_hello)[2]
    doubt = chain(s2c, 0, "s2c", client_hello)[2]
    if doubt is None and not (server_hello or _opens_handshake(s2c)):
        doubt = ("s2c", 0, "TLS records from the server, but the first is neither a "
                 "handshake nor an alert: read as plaintext")
    if doubt is not None:
        # A damaged first copy of the reply's start (a conflicting retransmission)
        # must not make a TLS server plaintext: a chain close behind bytes a cipher
        # could have made will do.
        found = _midstream_tls(s2c)
        if found and found <= RECORD_TAIL and _ciphertext_like(s2c[:found]):
            doubt = chain(s2c, found, "s2c", client_hello)[2]
    return doubt


# The smallest hello body: version, random, session id length, one cipher suite (a
# ClientHello's list length too) and a compression method.
MIN_HELLO = 38


def _hello_sized(data: bytes, pos: int, msg_type: int) -> bool:
    """A hello the parser could not read (damaged further on, as test suites' broken
    handshakes are) still has a hello's header: a handshake record whose first
    message is `msg_type`, of a hello's size, opening with a 03 xx version. A shape
    of ten bytes does not."""
    head = data[pos:pos + 10]
    return (len(head) == 10 and head[0] == tls.HANDSHAKE and head[5] == msg_type
            and int.from_bytes(head[6:9], "big") >= MIN_HELLO and head[9] == 3)


def _opens_handshake(s2c: bytes) -> bool:
    """The reply's first record is an alert, or a handshake record without the
    printable run a ServerHello never holds (one the parser could not read)."""
    if s2c[0] == tls.ALERT:
        return True
    walked, end, _ = tls.record_chain(s2c, 0, enough=1)
    return (s2c[0] == tls.HANDSHAKE
            and PRINTABLE_RUN.search(s2c, 5, end if walked else RECORD_TAIL) is None)


def _text_in_records(data: bytes, pos: int, records: int = 8):
    """Offset of the first of the next `records` application-data records from `pos`
    whose body holds a printable run a cipher would not make, or None."""
    for _ in range(records):
        walked, end, _ = tls.record_chain(data, pos, enough=1)
        if not walked:
            return None
        if data[pos] == tls.APPLICATION_DATA and PRINTABLE_RUN.search(data, pos + 5, end):
            return pos
        pos = end
    return None


def _tunnel_doubt(c2s, s2c, start):
    """The doubt about a tunnel HTTP CONNECT opened with a record header: none unless
    text follows, where records (or a cipher's bytes) should, in either direction."""
    _, stop, how = tls.record_chain(c2s, start)
    if how == "bad" and not _ciphertext_like(c2s[start:start + RECORD_TAIL]):
        return ("c2s", start, f"an HTTP CONNECT tunnel from offset {start}, but its records "
                f"stop at offset {stop} and text follows: read as plaintext")
    match = HEADER_END.search(s2c, 0, 8192)
    reply = match.end() if match else 0
    if (len(s2c) > reply and tls.record_chain(s2c, reply)[2] == "bad"
            and not _ciphertext_like(s2c[reply:reply + RECORD_TAIL])):
        return ("s2c", reply, f"an HTTP CONNECT tunnel, but the server sends text from offset "
                f"{reply}: read as plaintext")
    return None


def _after_connect(c2s: bytes):
    """Where the tunnel starts after an HTTP CONNECT, if it opens with a TLS record header."""
    match = HEADER_END.search(c2s, 0, 8192)
    if match is None:
        return None
    pos = match.end()
    while pos < len(c2s) and c2s[pos] in b"\r\n":
        pos += 1  # stray line ends some clients send after the headers
    head = c2s[pos:pos + 3]
    if len(head) == 3 and head[0] == 0x16 and head[1] == 3 and head[2] <= 4:
        return pos
    return None


def is_unanswered(flow) -> bool:
    """A SYN that got no SYN-ACK and no byte either way."""
    return (flow.proto == 6 and flow.syn_seen and not flow.synack_seen
            and not (flow.halves[0].unique_bytes or flow.halves[1].unique_bytes))


def unanswered_server(flow) -> str:
    return ip_text(flow.endpoint(1 - flow.client)[0]) if flow.client is not None else "?"


OTHER_SERVERS = "other addresses"


def count_unanswered(counts: dict, server: str, count: int = 1) -> None:
    """Add to `counts` (server -> SYNs), naming at most MAX_UNANSWERED_SERVERS servers."""
    if server not in counts and len(counts) >= MAX_UNANSWERED_SERVERS:
        server = OTHER_SERVERS
    counts[server] = counts.get(server, 0) + count


def _count_unanswered(flow, ctx: Context) -> bool:
    """True when the flow is an unanswered SYN beyond those kept as rows (and count it)."""
    if not is_unanswered(flow):
        return False
    if ctx.unanswered_rows < MAX_UNANSWERED_ROWS:
        ctx.unanswered_rows += 1
        return False
    count_unanswered(ctx.unanswered, unanswered_server(flow))
    return True


def examiner(ctx: Context, out):
    """The flow table's callback: examine each finished flow into `out`, never raising."""

    def on_flow(flow):
        try:
            examine(flow, ctx, out)
        except Exception:  # one flow's bug must not lose the others
            log.exception("examining a flow failed")
            out.anomaly(None, None, None, "internal-error",
                        "a flow could not be examined; see the log", source="flinkwire")
        out.flow_done()

    return on_flow


def examine(flow, ctx: Context, out) -> None:
    """Append this flow's rows to the lists of `out` (a `Rows`)."""
    if _count_unanswered(flow, ctx):
        return
    transport = "tcp" if flow.proto == 6 else "udp"
    cside, orientation = _client_side(flow, ctx.port_roles) if transport == "tcp" else (
        (0 if flow.key[1] > flow.key[3] else 1), "higher port")
    chalf, shalf = flow.halves[cside], flow.halves[1 - cside]
    cip, cport = flow.endpoint(cside)
    sip, sport = flow.endpoint(1 - cside)
    cip, sip = out.shared(ip_text(cip)), out.shared(ip_text(sip))
    fid = flow_id(transport, cip, cport, sip, sport, flow.first_ts)
    c2s, s2c = chalf.head(), shalf.head()

    row = {
        "flow_id": fid, "first_ts": flow.first_ts, "last_ts": flow.last_ts,
        "transport": transport, "client_ip": cip, "client_port": cport,
        "server_ip": sip, "server_port": sport,
        "role": "unknown", "role_evidence": "", "verdict": "no-payload",
        "tls_version": None, "sni": None, "cipher": None,
        "packets_c2s": chalf.frames, "packets_s2c": shalf.frames,
        "bytes_c2s": chalf.unique_bytes, "bytes_s2c": shalf.unique_bytes,
        "gap_bytes_c2s": chalf.gap_bytes, "gap_bytes_s2c": shalf.gap_bytes,
        "retransmitted_bytes": chalf.dup_bytes + shalf.dup_bytes,
        "handshake_seen": flow.syn_seen, "established": flow.syn_seen and flow.synack_seen,
        "closed": flow.closed,
        "client_decided_by": out.shared(orientation),
        "vlan": out.shared(",".join(map(str, flow.vlan)) or None),
        "capture_duplicates": chalf.capture_duplicates + shalf.capture_duplicates,
        "readable_bytes": 0, "starttls_offset": None, "index": flow.index,
    }
    _reassembly_anomalies(fid, "c2s", chalf, out)
    _reassembly_anomalies(fid, "s2c", shalf, out)

    plain_c2s, plain_s2c = len(c2s), len(s2c)
    facts = None
    start = tls.tls_start(c2s) if c2s else None
    if start is None and not c2s and s2c and tls.looks_like_tls_records(s2c[:4096]):
        start = 0
    tunnel = False
    if start is None and c2s.startswith(b"CONNECT "):
        start = _after_connect(c2s)
        tunnel = start is not None
    midstream = (None, None)
    if start is None and not flow.syn_seen:
        midstream = (_midstream_tls(c2s), _midstream_tls(s2c))
        if midstream != (None, None):
            start = midstream[0] if midstream[0] is not None else len(c2s)
    if start is not None:
        if midstream != (None, None):
            s2c_start = midstream[1] if midstream[1] is not None else len(s2c)
        else:
            s2c_start = tls.tls_server_start(s2c) if start else 0
        complete = {"c2s": chalf.head_complete(), "s2c": shalf.head_complete()}
        facts = tls.parse_tls(c2s, s2c, start_c2s=start, start_s2c=s2c_start or 0,
                              complete_c2s=complete["c2s"], complete_s2c=complete["s2c"])
        doubt = _tls_doubt(c2s, s2c, start, midstream, facts, flow.closed, complete, tunnel)
        if doubt is not None:
            out.anomaly(fid, doubt[0], doubt[1], "tls-lookalike", doubt[2], source="tls")
            facts = None
            start = None
    if start is not None:
        row["verdict"] = "tls"
        row["tls_version"] = facts.version
        row["sni"] = out.shared(facts.sni)
        row["cipher"] = facts.cipher
        plain_c2s = start
        plain_s2c = s2c_start if s2c_start is not None else 0
        if midstream != (None, None):
            plain_c2s = plain_s2c = 0  # bytes before the first header end a TLS record
        if start:
            row["starttls_offset"] = start
        out.tls.append(_tls_row(fid, facts, out.shared))
        out.parser_anomalies(fid, facts.anomalies, "tls")

    known = set()
    readable, scanned, complete = _leakage(fid, flow, cside, plain_c2s, plain_s2c, ctx, out,
                                           known)
    if not scanned:
        # The values to mask in decoded rows, found only if a row is kept.
        known = functools.partial(_secret_values, flow, cside, plain_c2s, plain_s2c)
    content = None
    if plain_c2s or plain_s2c:
        marks = {name: len(getattr(out, name)) for name in DECODED_TABLES}
        masker = None if ctx.reveal else Masker(known, complete)
        content = _content(fid, c2s[:plain_c2s], s2c[:plain_s2c], ctx, out, masker)
        _stamp(out, marks, {"c2s": chalf, "s2c": shalf})
    if facts is None and (chalf.unique_bytes or shalf.unique_bytes):
        recognised = content is not None
        scanned = plain_c2s + plain_s2c
        # Random bytes hold a few short printable runs by chance: text is only
        # "readable" when it is a real share of what was kept.
        legible = readable >= MIN_SNIPPET and readable * 10 >= scanned
        row["verdict"] = "plaintext" if recognised or legible else "opaque"
    row["readable_bytes"] = readable

    role, evidence = roles.decide_role(sport, content, row["verdict"] == "tls", ctx.port_roles)
    row["role"] = role
    row["role_evidence"] = out.shared("; ".join(evidence))
    row["_content"] = _kept_content(content, out.shared)
    out.flows.append(FlowRow(row))


class FixedRow(MutableMapping):
    """A table row as a mapping with fixed keys (a subclass's `__slots__`, in order).

    Slotted rather than a dict: a dict of 30 keys costs about 550 bytes more than
    its slots, and a capture keeps one flows row per flow and one tls row per TLS
    flow (on the 1 GB benchmark capture, 19,845 and 10,076 of them: 1.51x the
    100 MB capture's peak memory with dicts, see benchmarks/results.md). Keys
    cannot be added or removed; values can be set.
    """

    __slots__ = ()

    def __init__(self, values):
        for key, value in values.items():
            setattr(self, key, value)

    def __getitem__(self, key):
        if key not in self._keys:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key, default=None):
        return getattr(self, key, default) if key in self._keys else default

    def __setitem__(self, key, value):
        if key not in self._keys:
            raise KeyError(f"{type(self).__name__} has no key {key!r}")
        setattr(self, key, value)

    def __delitem__(self, key):
        raise TypeError(f"{type(self).__name__} has fixed keys")

    def __iter__(self):
        return iter(self.__slots__)

    def __len__(self):
        return len(self.__slots__)

    def __repr__(self):
        return f"{type(self).__name__}({dict(self)!r})"


def fixed_row(name: str, keys: tuple[str, ...]) -> type:
    """A FixedRow class with these keys, in this order (the table's column order)."""
    return type(name, (FixedRow,), {"__slots__": keys, "_keys": frozenset(keys),
                                    "__module__": __name__, "__qualname__": name})


FlowRow = fixed_row("FlowRow", (
    "flow_id", "first_ts", "last_ts", "transport", "client_ip", "client_port", "server_ip",
    "server_port", "role", "role_evidence", "verdict", "tls_version", "sni", "cipher",
    "packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c", "gap_bytes_c2s", "gap_bytes_s2c",
    "retransmitted_bytes", "handshake_seen", "established", "closed", "client_decided_by",
    "vlan", "capture_duplicates", "readable_bytes", "starttls_offset", "index", "_content",
))


# What of a flow's content signature is read once the flow is examined: the role,
# its evidence and the Pekko facts (decide_role again when a rotated file's part
# adopts it, refine_roles, hosts_from), and the data plane's version hint. The rest
# (handshake uids, advertised addresses, frame layouts) was 1.8 MB of the 12.7 MB of
# content kept on a 1 GB capture.
KEPT_CONTENT = ("role", "evidence", "kind", "flink_version_hint", "c2s_endpoints",
                "c2s_methods", "s2c_methods", "client_origin", "server_origin")


def _kept_content(content, share):
    if content is None:
        return None
    return {key: share(content[key]) for key in KEPT_CONTENT if key in content}


DECODED_TABLES = ("http", "rpc", "records", "blobs")
# The tables with a row bound (Limits.max_rows_per_table).
BOUNDED_TABLES = ("snippets", "findings", *DECODED_TABLES)


def _stamp(out, marks, halves) -> None:
    """Give each newly decoded message the capture time of its first byte."""
    for name, start in marks.items():
        for row in getattr(out, name)[start:]:
            half = halves.get(row.get("direction"))
            offset = row.get("offset")
            if half is not None and isinstance(offset, int) and "ts" not in row:
                row["ts"] = half.timestamp_at(offset)


def _reassembly_anomalies(fid, direction, half, out) -> None:
    for anomaly in half.anomalies:
        out.anomaly(fid, direction, anomaly["offset"], anomaly["kind"], anomaly["detail"],
                    ts=anomaly.get("ts"), length=anomaly.get("length"), source="tcp")
    if half.out_of_order:
        out.anomaly(fid, direction, None, "out-of-order",
                    f"{half.out_of_order} segments arrived ahead of the stream and were "
                    "put back in order", source="tcp")
    if half.before_start:
        out.anomaly(fid, direction, 0, "before-stream-start",
                    f"{half.before_start} bytes precede the first byte seen", source="tcp")
    if half.retain_cut:
        out.anomaly(fid, direction, half.kept, "limit",
                    f"retention limit reached after {half.kept} bytes: later bytes are "
                    "counted but not scanned", source="limits")


def _content(fid, c2s: bytes, s2c: bytes, ctx: Context, out, masker):
    """The content signature of a plaintext stream, with the decoded messages."""
    messages = None
    if REQUEST_START.match(c2s[:64]) or s2c.startswith(b"HTTP/1."):
        decoded = http.decode(c2s, s2c, max_messages=MAX_HTTP_PER_FLOW)
        out.parser_anomalies(fid, getattr(decoded, "anomalies", ()), "http")
        messages = [m for m in decoded if m.get("type") in ("request", "response")]
    if messages:
        role = http.flink_role(messages)
        out.decoded_rows("http", fid, messages, masker)
        _note_version(s2c, ctx)
        return {"role": role or "http", "evidence": _http_evidence(messages, role, masker),
                "kind": "http"}
    for name, detect in DETECTORS:
        try:
            found = detect(c2s, s2c)
        except Exception:  # a decoder bug must not end the analysis
            log.exception("%s detector failed on flow %s", name, fid)
            out.anomaly(fid, None, None, "decoder-error", f"{name} detector failed",
                        source=name)
            continue
        if found:
            found = dict(found)
            found["kind"] = name
            _decode_more(name, fid, c2s, s2c, found, out, masker)
            return _masked_signature(found, masker)
    return None


def _http_evidence(messages, role, masker) -> str:
    # The paths are captured text: shown as the http table shows them.
    paths = [m.get("path") for m in messages if m.get("path")][:3]
    if masker is not None:
        paths = [masker.evidence(path) for path in paths]
    text = "HTTP requests " + ", ".join(paths) if paths else "HTTP messages"
    return text + (f" (Flink {role} paths)" if role else "")


# What of a detector's signature is captured text that reaches role_evidence: its
# evidence (actor system names and hosts, znode paths, state names, blob keys), the
# RPC methods that decide_role and refine_roles quote, and the advertised origins
# whose hosts refine_roles quotes.
SIGNATURE_TEXT_LISTS = ("c2s_methods", "s2c_methods")
SIGNATURE_ORIGINS = ("client_origin", "server_origin")


def _masked_signature(found: dict, masker) -> dict:
    """`found` with its captured text masked like the flow's decoded rows (unless
    revealing: masker None), so role_evidence shows no more than those rows do."""
    if masker is None:
        return found
    text = masker.evidence
    if isinstance(found.get("evidence"), str):
        found["evidence"] = text(found["evidence"])
    for key in SIGNATURE_TEXT_LISTS:
        if isinstance(found.get(key), (list, tuple)):
            found[key] = [text(item) if isinstance(item, str) else item
                          for item in found[key]]
    for key in SIGNATURE_ORIGINS:
        origin = found.get(key)
        if isinstance(origin, dict) and isinstance(origin.get("host"), str):
            found[key] = {**origin, "host": text(origin["host"])}
    return found


def _note_version(s2c: bytes, ctx: Context) -> None:
    match = FLINK_VERSION.search(s2c[:1 << 20])
    if match:
        ctx.flink_versions.add(match.group(1).decode())


# Words and shapes without which a decoded field holds no secret the scanners know; a
# field showing none is not scanned again. (Substring tests on a lower-cased copy
# measured 3x faster than one case-insensitive alternation.)
HINT_WORDS = ("pass", "secret", "token", "key", "auth", "cred", "pwd", "session", "cookie", "@")
LONG_NUMBER = re.compile(r"\d{13}")


def secret_hint(text: str) -> bool:
    """True when `text` shows a word or shape that a secret travels with."""
    lowered = text.lower()
    for word in HINT_WORDS:
        if word in lowered:
            return True
    return len(text) >= 13 and LONG_NUMBER.search(text) is not None


SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie",
                               "x-api-key", "x-auth-token", "x-amz-security-token"})


class Masker:
    """Masks, in decoded messages, the secret values the stream scan found.

    Decoded fields are cut from the same bytes the scanners read with full
    context, so replacing each found value is enough and costs a substring
    test per field instead of a scan. Header values are the exception: a
    scanner needs the header name to know a value is secret.

    What a field shows is `_plain_shown` (the rescan of a hinted field) of the
    field with the flow's values replaced. That first step is the identity for a
    flow without values, so such a flow's fields share one memo across flows
    (`_PLAIN_TEXTS`); a flow with values keeps its own.

    A flow whose stream scan stopped early (`complete` false) may hold values no scan
    found: every field of its rows is then scanned again, hint word or not, within the
    same bounds (`_rescanned` for a field up to MAX_MEMO_TEXT, one scan with the
    scanners' budgets past it), and the flow keeps its own memo.
    """

    def __init__(self, values, complete: bool = True):
        """`values`: the secret values, or a function that finds them when first needed
        and returns them with whether the scan was complete (`_secret_values`)."""
        self._source = values
        self._complete = complete
        self._values = None
        self.shortest = 0
        self._pattern = None
        self._memo: dict | None = None
        self._headers: dict | None = None

    @property
    def values(self) -> list[str]:
        if self._values is None:
            source = self._source
            if callable(source):
                source, self._complete = source()
            self._values = [v for v in source if len(v) >= 4]
            self.shortest = min(map(len, self._values), default=0)
        return self._values

    @property
    def pattern(self) -> re.Pattern | None:
        """Matches the longest value at the leftmost place one starts, so a value
        inside a longer one is not cut (`_values_pattern`). Compiled on first use: a
        flow with hundreds of values costs milliseconds to compile, and most flows of
        a large capture add no row that needs it once the tables are full."""
        if self._pattern is None and self.values:
            self.masks = {v: redact(v) for v in self.values}
            self._pattern = _values_pattern(frozenset(self.values))
        return self._pattern

    def _memos(self) -> dict:
        # A flow repeats its strings (a channel's receiver id on every record, the
        # same actor paths and class names in every frame) and a cluster repeats them
        # across flows: the 41,000 decoded rows of the 100 MB capture hold 194,000
        # strings, 33,600 distinct per flow and 8,600 distinct in all.
        if self.values or not self.complete:
            self._memo, self._headers = {}, {}
        else:
            self._memo, self._headers = _PLAIN_TEXTS, _PLAIN_HEADERS
        return self._memo

    def evidence(self, text: str) -> str:
        """A short text of the flow quoted in role evidence, masked as `text` masks
        a field when the flow's values are known. When they are still to be found
        (the tables were full, so the stream scan was put off until a kept row needs
        it), the text itself is scanned instead: finding the values would scan the
        whole stream for the sake of one line (the 1 GB benchmark capture: 21.2 s of
        CPU so, 20.1 s this way).
        Limits: there, a value the stream shows only beside its key and the evidence
        quotes bare is not masked."""
        if self._values is None and callable(self._source):
            return _plain_shown(text, complete=False)
        return self.text(text)

    def text(self, text: str) -> str:
        memo = self._memo if self._memo is not None else self._memos()
        if memo is _PLAIN_TEXTS:
            return _plain_text(text)
        shown = memo.get(text)
        if shown is None:
            shown = self._masked(text)
            if len(text) <= MAX_MEMO_TEXT:
                _remember(memo, text, shown)
        return shown

    def header(self, name: str, value: str) -> str:
        """`_header_value` of the pair, remembered like `text`."""
        if self._headers is None:
            self._memos()
        key = (name, value)
        shown = self._headers.get(key)
        if shown is None:
            shown = _header_value(name, value, self)
            if len(name) + len(value) <= MAX_MEMO_TEXT:
                _remember(self._headers, key, shown)
        return shown

    @property
    def complete(self) -> bool:
        """False when the flow's stream scan stopped early (see the class)."""
        if self._values is None:
            self.values
        return self._complete

    def _masked(self, text: str) -> str:
        if self.values and len(text) >= self.shortest:
            masked = self.pattern.sub(lambda m: self.masks[m.group(0)], text)
            if masked != text:
                return _plain_shown(masked, self._complete)
        if not self._complete:
            return _plain_shown(text, False)
        return _plain_text(text)


MAX_TRIE_NESTING = 32
MAX_SHARED_PATTERN = 16_384  # characters of values, for a pattern kept across flows


def _values_pattern(values: frozenset) -> re.Pattern:
    # Flows of one job share their value sets (78 distinct sets among the 223 flows
    # with values of the 100 MB capture): building the trie of each again took longer
    # than the searches it saves. At most 128 sets of 16 KiB are remembered.
    if sum(map(len, values)) > MAX_SHARED_PATTERN:
        return _compiled_values(values)
    return _shared_values_pattern(values)


def _compiled_values(values: frozenset):
    pattern = _trie_alternation(values)
    if pattern is not None:
        return re.compile(pattern)
    if ahocorasick_rs is not None:
        return _ValuesAutomaton(values)
    # Without ahocorasick_rs (an environment set up before it was a dependency) the
    # flat alternation is tried value by value at every position: its cost grows
    # with the number of values.
    return re.compile("|".join(map(re.escape, sorted(values, key=len, reverse=True))))


class _ValuesAutomaton:
    """`search` and `sub` of the flat alternation of `values` (longest first), for a set
    whose trie nests too deep for `re`: an Aho-Corasick automaton (ahocorasick_rs)
    with leftmost-longest matching finds the same matches, the longest value at the
    leftmost place one starts, then on from its end. Its cost is linear in the text
    whatever the values; the flat alternation it replaces tried every value at every
    position (a flow of 32,000 values with a chain of 40 prefixes took 36 s to mask,
    1.6 s without the chain)."""

    def __init__(self, values):
        self._values = sorted(values)
        self._automaton = ahocorasick_rs.AhoCorasick(
            self._values, matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST)

    def search(self, text: str):
        return self._automaton.find_matches_as_indexes(text)[:1] or None

    def sub(self, replace, text: str) -> str:
        pieces = []
        position = 0
        for _, start, end in self._automaton.find_matches_as_indexes(text):
            pieces.append(text[position:start])
            pieces.append(replace(_Found(text[start:end])))
            position = end
        if not pieces:
            return text
        pieces.append(text[position:])
        return "".join(pieces)


class _Found(NamedTuple):
    """The part of an `re.Match` a replacement function of `Masker` reads."""

    text: str

    def group(self, index: int = 0) -> str:
        return self.text


_shared_values_pattern = functools.lru_cache(maxsize=128)(_compiled_values)


def _trie_alternation(values) -> str | None:
    """The values as a trie-shaped regex: `hunter(?:1|2(?:3|))` for hunter1, hunter2 and
    hunter23. It matches what the flat alternation of the values, longest first, matches:
    the longest value that starts at the leftmost position where one does (a node tries
    its longer continuations before it ends). The flat form tries every value at every
    position that starts one; on the 100 MB capture's flows with values (73 on average)
    it took 2.8x as long to search. None when the groups would nest deeper than
    MAX_TRIE_NESTING (a chain of values each a prefix of the next): the parser of `re`
    recurses per group, and so does this."""
    try:
        return _trie_of(sorted(values), 0)
    except _TooDeep:
        return None


class _TooDeep(Exception):
    pass


def _trie_of(group: list[str], depth: int) -> str:
    # `group`: sorted, distinct; only the first may be empty (a value ends here).
    first, last = group[0], group[-1]
    if len(group) == 1:
        return re.escape(first)
    shared = 0
    while shared < len(first) and first[shared] == last[shared]:
        shared += 1
    if shared:
        return re.escape(first[:shared]) + _trie_of([v[shared:] for v in group], depth)
    if depth >= MAX_TRIE_NESTING:
        raise _TooDeep
    ends = first == ""
    branches = [_trie_of(list(same), depth + 1)
                for _, same in itertools.groupby(group[ends:], key=lambda v: v[0])]
    return "(?:" + "|".join(branches) + ("|)" if ends else ")")


MAX_MEMO_TEXT = 1024
MAX_MEMO_TEXTS = 4096
_PLAIN_TEXTS: dict[str, str] = {}
_PLAIN_HEADERS: dict[tuple[str, str], str] = {}


def _remember(memo: dict, key, shown) -> None:
    # At most 4096 texts of up to 1 KiB per memo; the shared ones start over when
    # full, so a long session follows the capture at hand.
    if len(memo) >= MAX_MEMO_TEXTS:
        if memo is not _PLAIN_TEXTS and memo is not _PLAIN_HEADERS:
            return
        memo.clear()
    memo[key] = shown


def _plain_text(text: str) -> str:
    shown = _PLAIN_TEXTS.get(text)
    if shown is None:
        shown = _plain_shown(text)
        if len(text) <= MAX_MEMO_TEXT:
            _remember(_PLAIN_TEXTS, text, shown)
    return shown


def _plain_shown(text: str, complete: bool = True) -> str:
    if not complete or secret_hint(text):
        # A decoded field can end where the stream scan's value did not (a
        # string cut by its length prefix): scan the field itself too.
        return _rescanned(text) if len(text) <= MAX_MEMO_TEXT else redact_text(text)
    return text


@functools.lru_cache(maxsize=4096)
def _rescanned(text: str) -> str:
    # Decoded fields repeat (a job's records share their shape, an RPC peer sends
    # the same actor paths again and again), and a rescan is a full scanner pass;
    # at most 4096 texts of 1 KiB are remembered.
    return redact_text(text)


def _shown(row: dict, masker) -> dict:
    """The row as faces may see it: captured strings masked unless revealing (masker None)."""
    if masker is None:
        return row
    # Strings and numbers are most of a row's values: tested by exact type, they skip
    # `_redacted`'s chain of isinstance tests, which every value went through (masking
    # the 41,157 kept rows of the 100 MB capture took 0.76 s with it, 0.64 s so).
    text = masker.text
    shown = {}
    for key, value in row.items():
        kind = type(value)
        if kind is str:
            shown[key] = value if key in OWN_KEYS else text(value)
        elif kind is int or value is None:
            shown[key] = value
        else:
            shown[key] = value if key in OWN_KEYS else _redacted(value, masker)
    return shown


# Columns whose values flinkwire writes itself, never captured text.
OWN_KEYS = frozenset({"flow_id", "direction"})


def _redacted(value, masker, depth: int = 0):
    kind = type(value)
    if kind is str:
        return masker.text(value)
    if kind is list and depth < 4:
        text = masker.text
        return [text(item) if type(item) is str else _redacted(item, masker, depth + 1)
                for item in value]
    if isinstance(value, dict) and depth < 4:
        return {k: masker.header(k, v) if isinstance(k, str) and isinstance(v, str)
                else _redacted(v, masker, depth + 1) for k, v in value.items()}
    if isinstance(value, str):
        return masker.text(value)
    if isinstance(value, (bytes, bytearray)):
        return masker.text(bytes(value[:4096]).decode("latin-1"))
    if depth < 4 and isinstance(value, (list, tuple)):
        return [_redacted(v, masker, depth + 1) for v in value]
    return value


def _header_value(name: str, value: str, masker) -> str:
    """A `name: value` pair redacted with its name in view, as a scanner reads headers."""
    if name.lower() in SENSITIVE_HEADERS:
        return redact(value)
    value = masker.text(value)
    if len(value) > 512 or (masker.complete and not (secret_hint(name) or secret_hint(value))):
        return value
    line = _rescanned(f"{name}: {value}")
    return line[len(name) + 2:] if line.startswith(f"{name}: ") else redact_text(value)


def _decode_more(name, fid, c2s, s2c, found, out, masker) -> None:
    """Keep what the channel's decoder reads, for the Flink-aware tables."""
    if name == "netty":
        # Reading records into strings (and masking them) is the costly part of a data
        # plane stream: only the records the table can still keep are read so; every
        # frame is walked all the same, so the anomalies do not depend on the table.
        # Past those, one record is made (the table's refusal of it is noted), the rest
        # only counted: 131,000 of the 151,000 records on the 100 MB benchmark capture.
        space = out.space("records", fid)
        decoded = netty.decode(c2s, s2c, version_hint=found.get("flink_version_hint"),
                               fields_for=space, max_records=space + 1,
                               messages_wanted=False)
        out.decoded_rows("records", fid, decoded["records"], masker)
        out.parser_anomalies(fid, decoded["anomalies"], "netty")
    elif name == "pekko":
        # detect() decoded the same frames already (it returns them; drop them from
        # the content kept with the flow row).
        frames = found.pop("frames", None)
        if frames is None:
            frames = pekko.decode(c2s, s2c, max_frames=MAX_DECODED_PER_FLOW)
        out.parser_anomalies(fid, getattr(frames, "anomalies", ()), "pekko")
        out.decoded_rows("rpc", fid, frames, masker)
    elif name == "blob":
        operations = blob.decode(c2s, s2c)
        out.parser_anomalies(fid, getattr(operations, "anomalies", ()), "blob")
        out.decoded_rows("blobs", fid, operations, masker)


def _plain_regions(flow, cside, plain_c2s, plain_s2c):
    """(direction, half, start offset, bytes) of each retained run of plaintext."""
    for direction, half, plain in (("c2s", flow.halves[cside], plain_c2s),
                                   ("s2c", flow.halves[1 - cside], plain_s2c)):
        for start, data in half.regions():
            if start >= plain:
                break
            yield direction, half, start, bytes(data[:plain - start])


def _secret_values(flow, cside, plain_c2s, plain_s2c) -> tuple[set, bool]:
    """Every value the flow's stream scans find, and whether every scan was complete
    (a Masker then scans each decoded field again, as after `_leakage`)."""
    values, complete = set(), True
    for _, _, _, data in _plain_regions(flow, cside, plain_c2s, plain_s2c):
        scan = scan_secrets(data)
        values.update(secret.value for secret in scan.secrets)
        complete = complete and scan.complete_to >= len(data)
    return values, complete


def _leakage(fid, flow, cside, plain_c2s, plain_s2c, ctx, out,
             known: set) -> tuple[int, bool, bool]:
    """Snippets and secrets from the plaintext part of each direction.

    Returns the readable byte count, whether the secret scan ran, and whether each
    stream's scan was complete; it adds every secret value found to `known`, so
    decoded messages can mask them. Once the findings and the snippets tables have
    both refused a row (and that is noted), the scan is skipped: rows are per flow,
    so this flow can have no finding row whose count a scan would raise, and nothing
    it found would be kept.

    A flow whose scan of some stream stopped early is masked by a conservative rule:
    a value found anywhere in it (either stream, the main scan or any window past
    the stop) may recur anywhere in it, before the stop or in another window, so
    its snippets are masked only once every window is scanned, each with the union
    of all those values; and its decoded fields are all scanned again (`Masker`).
    A flow whose scans all completed masks each stream's snippets with that
    stream's values, as it always did.
    """
    readable = 0
    if out.refused("findings") and out.refused("snippets"):
        for _, _, _, data in _plain_regions(flow, cside, plain_c2s, plain_s2c):
            readable += readable_count(data, ctx.min_snippet)
        return readable, False, True
    findings = {"c2s": 0, "s2c": 0}
    snippets = {"c2s": 0, "s2c": 0}
    complete = True
    # (row, text, the spans found over it, its stream's Masker or None past a stop):
    # masked once the flow's scans are all done.
    pending = []
    for direction, half, start, data in _plain_regions(flow, cside, plain_c2s, plain_s2c):
        scan = scan_secrets(data)
        spans = []
        values = set()
        for secret in scan.secrets:
            span = getattr(secret, "span", None) or (
                secret.offset, secret.offset + len(secret.value.encode("latin-1", "replace")))
            spans.append(span)
            if len(secret.value) >= 4:
                values.add(secret.value)
                known.add(secret.value)
            if findings[direction] < MAX_FINDINGS_PER_FLOW:
                out.secret(fid, direction, start + secret.offset, half, secret, ctx.reveal)
                findings[direction] += 1
        found = _SecretSpans(spans)
        masker = Masker(values)
        readable += readable_count(data, ctx.min_snippet)
        tail = None
        if scan.complete_to < len(data):
            complete = False
            out.anomaly(fid, direction, start + scan.complete_to, "limit",
                        "the secret scan stopped early here (a bound against hostile input): "
                        "later snippets are scanned again a window at a time, or withheld",
                        source="leakage")

            def note(secret, direction=direction, half=half, start=start):
                if findings[direction] < MAX_FINDINGS_PER_FLOW:
                    out.secret(fid, direction, start + secret.offset, half, secret, ctx.reveal)
                    findings[direction] += 1

            tail = _TailScan(data, scan.complete_to, known, note)
        # Cutting and masking runs costs most of this loop: only while the table
        # takes snippets.
        if snippets[direction] >= MAX_SNIPPETS_PER_FLOW or not out.room("snippets", fid):
            continue
        for offset, text in readable_runs(data, min_len=ctx.min_snippet):
            if snippets[direction] >= MAX_SNIPPETS_PER_FLOW or not out.room("snippets", fid):
                break
            row = {
                "flow_id": fid, "direction": direction, "offset": start + offset,
                "ts": half.timestamp_at(start + offset), "text": text,
            }
            if ctx.reveal:
                pass
            elif tail is not None and offset + len(text) > scan.complete_to:
                local = tail.spans(text, offset, found)
                if local is None:
                    row["text"] = WITHHELD.format(len(text))
                else:
                    pending.append((row, text, local, None))
            else:
                pending.append((row, text, found.within(offset, offset + len(text)), masker))
            out.snippets.append(row)
            snippets[direction] += 1
    union = None if complete else Masker(known)
    for row, text, local, masker in pending:
        if masker is None:
            row["text"] = union.text(redact_text(text, local, rescan=False))
        else:
            row["text"] = _masked_snippet(text, local, union or masker)
    return readable, True, complete


# A span longer than this is kept apart, so the search for the spans a snippet
# overlaps looks back this far among the many short ones and over only the few
# long ones (PEM keys, JWTs, long cookies) beyond.
SHORT_SPAN = 4096


class _SecretSpans:
    """The [start, end) spans of a stream's secrets, searched by the snippets they overlap."""

    def __init__(self, spans):
        spans = sorted(spans)
        self.short = [span for span in spans if span[1] - span[0] <= SHORT_SPAN]
        self.short_starts = [a for a, _ in self.short]
        self.long = [span for span in spans if span[1] - span[0] > SHORT_SPAN]
        self.long_starts = [a for a, _ in self.long]
        # The furthest end among the long spans up to each one: the search back stops
        # where no earlier span reaches the snippet, however long the spans run.
        self.long_reach = list(itertools.accumulate((b for _, b in self.long), max))

    def within(self, offset: int, end: int) -> list:
        """The spans that overlap [offset, end), relative to `offset`, cut at its start."""
        local = []
        i = bisect.bisect_left(self.short_starts, end) - 1
        while i >= 0 and self.short_starts[i] > offset - SHORT_SPAN:
            a, b = self.short[i]
            if b > offset:
                local.append((max(a - offset, 0), b - offset))
            i -= 1
        i = bisect.bisect_left(self.long_starts, end) - 1
        while i >= 0 and self.long_reach[i] > offset:
            a, b = self.long[i]
            if b > offset:
                local.append((max(a - offset, 0), b - offset))
            i -= 1
        return local


def _masked_snippet(text, local: list, known) -> str:
    """The snippet with the secrets found in its stream masked.

    The stream was scanned whole, with more context than a snippet has, so a
    snippet that overlaps no secret span and holds no copy of a found value is
    shown as it is; the others go through `redact_text` with their spans (`local`,
    from `_SecretSpans.within`). Only for the part of a stream whose scan was
    complete (see `_TailScan`).
    """
    if not local and (known.pattern is None or not known.pattern.search(text)):
        return text
    return known.text(redact_text(text, local, rescan=False))


# Past the point where a stream's scan stopped early, the snippets are scanned again
# in windows: each reaches back TAIL_LOOKBACK before the snippet (the longest span and
# the context a scanner reads before it: a cookie line, a key) and TAIL_AHEAD past it
# (to the closing quote of a value), plus TAIL_STEP for the snippets that follow. A
# window is scanned with the scanners' own budgets, and at most MAX_TAIL_WINDOWS are
# per stream, so a hostile stream costs at most that many scans of about 150 KiB
# more; snippets no window vouches for are withheld.
TAIL_LOOKBACK = MAX_SPAN + 9 * 1024
TAIL_AHEAD = 4096
TAIL_STEP = 65536
MAX_TAIL_WINDOWS = 4
WITHHELD = "[{} characters withheld: the secret scan of this stream stopped early]"


class _TailScan:
    """The secret spans over the snippets of a stream that lie past `complete_to`,
    where its scan stopped early, from scans of windows around them; each value a
    window finds is added to `known` (the flow's values, which mask its snippets
    once all windows are scanned)."""

    def __init__(self, data: bytes, complete_to: int, known: set, note):
        self.data = data
        self.complete_to = complete_to
        # Each secret a window finds past the stop is noted once, as a finding.
        self.note = note
        self.noted_to = complete_to
        self.known = known
        self.windows = 0
        self.start = self.end = self.vouched = -1
        self.found = None

    def spans(self, text: str, offset: int, found: _SecretSpans) -> list | None:
        """The spans over the snippet (of the main scan, `found`, and of its window),
        or None when no window vouches for it: it is withheld."""
        end = offset + len(text)
        need = max(0, self.complete_to - 1024, offset - TAIL_LOOKBACK)
        served = end + TAIL_AHEAD <= self.end or self.end == len(self.data)
        if not (self.start <= need and served):
            if self.windows >= MAX_TAIL_WINDOWS:
                return None
            self._scan(need, min(len(self.data), end + TAIL_AHEAD + TAIL_STEP))
        if end > self.vouched:
            return None
        return found.within(offset, end) + self.found.within(offset, end)

    def _scan(self, start: int, end: int) -> None:
        self.windows += 1
        scan = scan_secrets(self.data[start:end])
        spans = []
        vouched = end if scan.complete_to >= end - start else start + scan.complete_to
        for secret in scan.secrets:
            a, b = secret.span
            spans.append((start + a, start + b))
            if self.noted_to <= start + a < vouched:
                self.note(dataclasses.replace(secret, offset=start + a, end=start + b))
            if len(secret.value) >= 4:
                self.known.add(secret.value)
        self.start, self.end = start, end
        # A window whose own scan stopped early vouches only for what it read.
        self.vouched = vouched
        self.noted_to = max(self.noted_to, vouched)
        self.found = _SecretSpans(spans)


_CERTS: dict = {}
MAX_SHARED_CERTS = 4096


def _shared_cert(cert: dict) -> dict:
    """One description object per distinct certificate: a cluster shows the same few
    certificates on thousands of flows, and each description is a few KB."""
    key = cert.get("sha256")
    if not key:
        return cert
    shared = _CERTS.get(key)
    if shared is None:
        if len(_CERTS) >= MAX_SHARED_CERTS:
            return cert
        _CERTS[key] = shared = cert
    return shared


def _cert_list(certs, share) -> list:
    certs = [_shared_cert(c) for c in certs or ()]
    if any(_CERTS.get(c.get("sha256")) is not c for c in certs):
        return certs
    # Known by their fingerprints: no need to compare whole descriptions.
    return share(certs, key=("certificates",) + tuple(c["sha256"] for c in certs))


def _tls_row(fid, facts, share=lambda value, key=None: value) -> "TlsRow":
    """The flow's `tls` row. `share` (`Rows.shared`) keeps one copy of what the
    clients of a cluster repeat: on a 1 GB capture 10,076 rows held one cipher list,
    one group list and two alert lists between them (7 MB as copies)."""
    row = {"flow_id": fid}
    for name in _TLS_FACTS:
        row[name] = share(getattr(facts, name, None))
    row["versions_offered"] = share(list(facts.versions_offered or ()))
    row["ciphers_offered"] = share(list(facts.ciphers_offered or ()))
    row["alpn_offered"] = share(list(facts.alpn_offered)) if facts.alpn_offered else None
    row["groups_offered"] = share(list(facts.groups_offered or ()))
    row["server_certificates"] = _cert_list(facts.server_certificates, share)
    row["client_certificates"] = _cert_list(facts.client_certificates, share)
    row["alerts"] = share(list(facts.alerts or ()))
    row["application_data_bytes_c2s"] = (facts.application_data_bytes or {}).get("c2s", 0)
    row["application_data_bytes_s2c"] = (facts.application_data_bytes or {}).get("s2c", 0)
    leaf = row["server_certificates"][0] if row["server_certificates"] else {}
    row["server_cert_subject"] = leaf.get("subject")
    row["server_cert_issuer"] = leaf.get("issuer")
    row["server_cert_self_signed"] = leaf.get("self_signed")
    row["server_cert_expired"] = leaf.get("expired")
    row["server_cert_key"] = share(f"{leaf.get('key_type')} {leaf.get('key_bits')}"
                                   if leaf.get("key_type") else None)
    row["client_cert_sent"] = bool(row["client_certificates"])
    return TlsRow(row)


_TLS_FACTS = ("client_hello_seen", "client_hello_format", "client_hello_record_version",
              "client_hello_legacy_version", "version", "cipher", "cipher_id", "sni",
              "alpn_selected", "key_exchange_group", "client_certificate_requested",
              "handshake_complete", "session_resumed")
TlsRow = fixed_row("TlsRow", (
    "flow_id", *_TLS_FACTS, "versions_offered", "ciphers_offered", "alpn_offered",
    "groups_offered", "server_certificates", "client_certificates", "alerts",
    "application_data_bytes_c2s", "application_data_bytes_s2c", "server_cert_subject",
    "server_cert_issuer", "server_cert_self_signed", "server_cert_expired", "server_cert_key",
    "client_cert_sent",
))


# Places in the share memo. What a cluster repeats comes early (its addresses, its
# clients' cipher lists); later places fill with values seen once, which the memo then
# keeps alive after their rows are refused. On the 1 GB benchmark capture 65,536
# places peaked 15 MiB above 16,384; 2,048 lost more sharing than they saved.
MAX_SHARED_VALUES = 16_384


def _frozen(value):
    """A hashable image of `value` that tells apart what == does not (1, 1.0, True)
    and keeps dict key order, so only exact look-alikes share one object. A string
    is its own image: nothing but an equal string equals it."""
    if type(value) is str:
        return value
    if isinstance(value, dict):
        return (dict, tuple((_frozen(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_frozen(v) for v in value))
    return (type(value), value)


class RowList:
    """A table's rows as `Rows` keeps them: to whoever reads it, a list of dicts; held
    as one tuple of values per row, beside the row's keys (one tuple per key order),
    once its flow's examination is over (`settle`).

    A dict per row was most of what the examination kept: on the 1 GB benchmark
    capture the HTTP and RPC tables fill to 20,000 rows each of some twenty keys,
    about 1 KiB of dict per row against 0.2 KiB of tuple. Rows of the flow being
    examined stay dicts, changed in place (a finding's count, a message's time);
    reading a settled row gives a new dict with the same keys, in the same order.
    """

    __slots__ = ("_keys", "_values", "_open", "_shapes", "frame", "_frozen", "_kept")

    def __init__(self, rows=()):
        self._keys: list[tuple] = []      # per settled row: its keys, shared by rows alike
        self._values: list[tuple] = []    # per settled row: its values, in that order
        self._open: list[dict] = []       # rows not settled yet, as dicts
        self._shapes: dict = {}           # key order -> the one tuple kept for it
        self.frame = None                 # the table's frame, once made early (`freeze`)
        self._frozen = 0                  # how many rows the frame holds
        self._kept: list[dict] = []       # the rows `rows_with` gives once frozen
        self.extend(rows)

    def freeze(self, build, keep: str | None = None) -> None:
        """Make the table's frame now, `build(self)`, and let the rows go: for a table
        that is full, to which no row will be added. Memory Python frees is mostly
        kept for Python's next objects, so rows let go at the end, while the frames
        are built, only swelled the process; let go during the read, their room
        takes the rows of the flows still to come (the 1 GB benchmark capture, whose
        HTTP, RPC, records and snippets tables fill up: peak 234 MiB without, 215
        with). The rows holding `keep` are kept, for `rows_with`."""
        self.settle()
        self._kept = self.rows_with(keep) if keep is not None else []
        self.frame = build(self)
        self._frozen = len(self)
        self._keys, self._values, self._shapes = [], [], {}

    def rows_with(self, key) -> list[dict]:
        """The rows whose `key` holds a true value (of a frozen table: as kept)."""
        if self.frame is not None:
            return self._kept
        return [row for row in self if row.get(key)]

    def settle(self) -> None:
        """Hold the rows made so far as tuples (no one changes them any more)."""
        if not self._open:
            return
        shapes = self._shapes
        for row in self._open:
            keys = tuple(row)
            self._keys.append(shapes.setdefault(keys, keys))
            self._values.append(tuple(row.values()))
        self._open = []

    def append(self, row) -> None:
        if self.frame is not None:
            raise ValueError("a frozen table takes no rows")
        self._open.append(row)

    def extend(self, rows) -> None:
        # Rows of our own still open come before any taken settled: those are read
        # into dicts then, to keep the order.
        if isinstance(rows, RowList) and not self._open:
            # Settled rows are taken as they are held: the tuples are shared, not copied.
            shapes = self._shapes
            self._keys.extend(shapes.setdefault(keys, keys) for keys in rows._keys)
            self._values.extend(rows._values)
            rows = rows._open
        self._open.extend(rows)

    def __len__(self) -> int:
        return self._frozen + len(self._values) + len(self._open)

    def __iter__(self):
        if self.frame is not None:
            raise ValueError("a frozen table's rows are in its frame")
        for keys, values in zip(self._keys, self._values):
            yield dict(zip(keys, values))
        yield from self._open

    def __getitem__(self, index):
        settled = len(self._values)
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if self.frame is not None and start >= self._frozen:
                return RowList()  # nothing after the frozen rows (as _stamp asks)
            if self.frame is not None:
                raise ValueError("a frozen table's rows are in its frame")
            if step != 1:
                return list(self)[index]
            part = RowList()
            part._keys = self._keys[start:stop]
            part._values = self._values[start:stop]
            part._open = self._open[max(start - settled, 0):max(stop - settled, 0)]
            return part
        if index < 0:
            index += len(self)
        if self.frame is not None:
            raise ValueError("a frozen table's rows are in its frame")
        if 0 <= index < settled:
            return dict(zip(self._keys[index], self._values[index]))
        if index < 0:
            raise IndexError("row index out of range")
        return self._open[index - settled]

    def __eq__(self, other):
        if isinstance(other, (RowList, list)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"RowList({list(self)!r})"

    def columns(self, missing) -> dict:
        """{key: the values of every row, `missing` where a row lacks the key}: the columns
        of `pd.DataFrame(list(self))`, keys in order of first appearance, without making
        a dict per row."""
        keys_of = self._keys + [tuple(row) for row in self._open]
        values = self._values + [tuple(row.values()) for row in self._open]
        # Each distinct key order once (by identity: rows alike share one tuple).
        shapes = list({id(keys): keys for keys in keys_of}.values())
        names = dict.fromkeys(name for keys in shapes for name in keys)
        rows_of = {}
        for number, keys in enumerate(keys_of):
            rows_of.setdefault(id(keys), []).append(number)
        out = {}
        for name in names:
            places = {keys.index(name) if name in keys else None for keys in shapes}
            if len(places) == 1 and None not in places:
                out[name] = list(map(itemgetter(places.pop()), values))
                continue
            column = [missing] * len(values)
            for keys in shapes:
                if name in keys:
                    place = keys.index(name)
                    for number in rows_of[id(keys)]:
                        column[number] = values[number][place]
            out[name] = column
        return out


SETTLED_TABLES = ("snippets", "findings", "anomalies", *DECODED_TABLES)


class Rows:
    """The growing lists of rows, one per table."""

    def __init__(self, max_rows: int = MAX_ROWS_PER_TABLE):
        self.max_rows = max_rows
        self.flows: list[dict] = []
        self.snippets = RowList()
        self.findings = RowList()
        self.anomalies = RowList()
        self.tls: list[dict] = []
        self.http = RowList()
        self.rpc = RowList()
        self.records = RowList()
        self.blobs = RowList()
        self._secret_rows: dict = {}
        self._per_flow: dict = {}
        self._full: set = set()
        self._refusals: list = []
        self._shared: dict = {}
        # table -> (frame builder, key of rows kept): tables made into frames as soon
        # as they are full (`RowList.freeze`). Only where the Analysis is the rows'
        # one reader (analyze, one process): a merge reads the rows themselves.
        self.early_frames: dict = {}

    def __getstate__(self):
        # The share memo only serves examination: a worker's rows travel without it.
        return {**self.__dict__, "_shared": {}}

    def shared(self, value, key=None):
        """`value`, or the equal object this analysis kept first. Rows repeat what a
        cluster repeats (its few addresses, one cipher list per client kind, an RPC
        peer's method names): on a 1 GB capture of 19,845 flows the copies of 22
        addresses were 2.3 MB, those of the TLS rows' lists 7 MB. Lists and dicts are
        shared too: a row's values are read, never changed in place. `key`, when
        given, stands for the value's identity."""
        if key is None:
            if isinstance(value, list):
                value = [self.shared(item) for item in value]
            elif isinstance(value, dict):
                value = {name: self.shared(item) for name, item in value.items()}
        try:
            key = _frozen(value) if key is None else key
            kept = self._shared.get(key)
        except TypeError:  # an unhashable leaf (a set): not shared
            return value
        if kept is not None:
            return kept
        if len(self._shared) < MAX_SHARED_VALUES:
            self._shared[key] = value
        return value

    def room(self, table: str, fid) -> bool:
        """True while `table` may take another row; the first refusal is an anomaly."""
        if len(getattr(self, table)) < self.max_rows:
            return True
        if table not in self._full:
            self._full.add(table)
            # Noted after the flow's other anomalies (see `flush_refusals`), so where it
            # stands does not depend on which of the flow's rows came first.
            self._refusals.append((fid, table))
        return False

    def flow_done(self) -> None:
        """After a flow's examination: note its refusals, forget its per-flow counters
        (its finding rows and decoded-row counts are looked up only while it is
        examined; kept, they grew with the number of flows)."""
        self.flush_refusals()
        self._per_flow.clear()
        self._secret_rows.clear()
        for name in SETTLED_TABLES:
            getattr(self, name).settle()
        for name, (build, keep) in self.early_frames.items():
            table = getattr(self, name)
            if table.frame is None and len(table) >= self.max_rows:
                table.freeze(build, keep)

    def flush_refusals(self) -> None:
        """Note each table that refused a row of the flow just examined, in the order
        of BOUNDED_TABLES (not the order of refusal, which a merge of shards cannot
        know)."""
        self._refusals.sort(key=lambda refusal: BOUNDED_TABLES.index(refusal[1]))
        for fid, table in self._refusals:
            self.anomaly(fid, None, None, "limit",
                         f"{table} table full at {self.max_rows} rows: later rows are "
                         "not kept", source="limits")
        self._refusals = []

    def refused(self, table: str) -> bool:
        """True once `table` has refused a row (its refusal is noted)."""
        return table in self._full

    def space(self, table: str, fid) -> int:
        """How many more decoded rows of `table` this flow may still add."""
        left = min(MAX_DECODED_PER_FLOW - self._per_flow.get(table, {}).get(fid, 0),
                   self.max_rows - len(getattr(self, table)))
        return max(left, 0)

    def decoded(self, table: str, fid, row, masker) -> bool:
        """Keep a decoded message row, within the per-flow and per-table bounds, masked
        by `masker` (None when revealing). Masking costs most of a row, so a row the
        bounds refuse is never masked."""
        counts = self._per_flow.setdefault(table, {})
        count = counts.get(fid, 0)
        if count >= MAX_DECODED_PER_FLOW or not self.room(table, fid):
            if count == MAX_DECODED_PER_FLOW:
                self.anomaly(fid, None, None, "limit",
                             f"more than {MAX_DECODED_PER_FLOW} {table} rows in one flow: "
                             "later ones are not kept", source="limits")
                counts[fid] = count + 1
            return False
        counts[fid] = count + 1
        getattr(self, table).append(_shown(row, masker))
        return True

    def decoded_rows(self, table: str, fid, items, masker) -> None:
        """Keep a decoder's messages as rows of `table`, until the bounds refuse one."""
        for item in items:
            if not self.decoded(table, fid, {"flow_id": fid, **item}, masker):
                return

    def parser_anomalies(self, fid, found, source: str) -> None:
        """A parser's anomaly dicts (direction, offset, kind, detail) as rows."""
        for anomaly in found:
            self.anomaly(fid, anomaly.get("direction"), anomaly.get("offset"),
                         anomaly.get("kind"), anomaly.get("detail"), source=source)

    def anomaly(self, fid, direction, offset, kind, detail, *, ts=None, length=None,
                source="") -> None:
        self.anomalies.append({
            "flow_id": fid, "direction": direction, "offset": offset, "ts": ts,
            "kind": kind, "length": length, "source": source, "detail": detail,
        })

    def secret(self, fid, direction, offset, half, secret, reveal: bool) -> None:
        """One finding per value per flow and direction; repeats are counted. `half`
        (the stream's `Half`) dates a new finding by the segment that carried it."""
        key = (fid, direction, secret.kind, secret.value)
        row = self._secret_rows.get(key)
        if row is not None:
            row["count"] += 1
            return
        if not self.room("findings", fid):
            return
        value = secret.value if reveal else redact(secret.value)
        row = {
            "flow_id": fid, "direction": direction, "offset": offset,
            "ts": half.timestamp_at(offset), "kind": secret.kind, "value": value,
            "username": secret.username if reveal or not secret.username
            else redact(secret.username),
            # The context is the scanner's label (a key name, "FTP PASS"); mask the
            # value in it should a label ever quote it.
            "context": secret.context if reveal or secret.value not in secret.context
            else secret.context.replace(secret.value, redact(secret.value)),
            "count": 1,
        }
        self._secret_rows[key] = row
        self.findings.append(row)
