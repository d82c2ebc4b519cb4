"""What the plaintext part of a TLS connection tells an eavesdropper.

Theory of operation. The input is the reassembled head of each direction of one TCP flow
(possibly cut at a retention limit). Each direction is walked as a sequence of TLS records;
the record walk is cheap and runs to the end of the head (counting records and the bytes of
application_data), but only the first ``HANDSHAKE_RECORD_LIMIT`` records are kept for
handshake parsing. The handshake fragments of the kept records are concatenated and cut
into handshake messages again, because a message may span records and a record may hold
several messages. Parsing of a direction's handshake stops at its ChangeCipherSpec (what
follows is encrypted) except in TLS 1.3, where ChangeCipherSpec is a middlebox decoy and
every encrypted record already travels as application_data, so all handshake records that
remain in clear are parsed (that is how a second ClientHello after a HelloRetryRequest is
seen). The negotiated version is therefore read from the server's first ServerHello before
the rest is interpreted.

An SSLv2-compatible ClientHello (2-byte header with the high bit set) is read in place of
the first client record; a genuine SSL 2.0 server answer switches both directions to the
SSLv2 record layer.

Nothing here trusts a length field beyond the bytes present: every read is bounded, the
number of kept records, handshake message size and certificate count are capped, and a
malformed input yields partial facts plus anomaly entries instead of an exception.

Anomaly kinds: ``bad-record-header`` (bytes that are not a TLS record where one should
start), ``bad-tls-length`` (a record longer than 2^14 + 2048), ``truncated-record`` (a record
or header running past the end of a complete head), ``malformed-handshake`` (a handshake
message that does not parse or never finishes), ``limit`` (a cap was reached: message size,
kept records, records walked, certificates described).

Limits: TLS 1.3 hides certificates and CertificateRequest (reported as none / None);
DTLS, QUIC and compressed records are not handled; after a bad record header the rest of
that direction is not walked (no resynchronisation). TLS <= 1.2 resumption is inferred from
the server's flight (ChangeCipherSpec right after ServerHello). In an SSL 2.0 session every
record after the hellos counts as application data, CLIENT-MASTER-KEY included.
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass, field

from flinkwire.protocols import tls_names as names

log = logging.getLogger(__name__)

CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA, HEARTBEAT = 20, 21, 22, 23, 24
_CONTENT_TYPES = frozenset((20, 21, 22, 23, 24))

# TLSCiphertext may carry 2^14 + 2048 bytes (RFC 5246 6.2.3); anything longer is not TLS.
MAX_RECORD_LENGTH = 2**14 + 2048
# Records per direction kept for handshake parsing; a real handshake needs a handful.
HANDSHAKE_RECORD_LIMIT = 64
# Records per direction walked at all (counting only); well under a second of work at worst.
MAX_RECORDS_WALKED = 500_000
MAX_CERTIFICATES = 16
MAX_ALERTS = 32
# How far tls_start / the server-side search look for a hello after a plaintext prefix.
DEFAULT_SEARCH_LIMIT = 4096

_TLS13 = 0x0304


def _is_tls13(version: int) -> bool:
    """TLS 1.3 and its pre-RFC variants (drafts 0x7fNN, Facebook Fizz 0xfbNN)."""
    return version == _TLS13 or version >> 8 in (0x7F, 0xFB)

# ServerHello.random of a HelloRetryRequest is SHA-256("HelloRetryRequest") (RFC 8446 4.1.3).
_HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

_EXT_SERVER_NAME = 0
_EXT_SUPPORTED_GROUPS = 10
_EXT_ALPN = 16
_EXT_SESSION_TICKET = 35
_EXT_PRE_SHARED_KEY = 41
_EXT_SUPPORTED_VERSIONS = 43
_EXT_KEY_SHARE = 51
_EXT_ECH = 0xFE0D

_HS_CLIENT_HELLO, _HS_SERVER_HELLO, _HS_NEW_SESSION_TICKET = 1, 2, 4
_HS_CERTIFICATE, _HS_SERVER_KEY_EXCHANGE, _HS_CERTIFICATE_REQUEST = 11, 12, 13
_HS_SERVER_HELLO_DONE = 14

_SSLV2_RECORD_NOTE = "SSL 2.0 record (no version field)"


@dataclass
class TlsFacts:
    """Handshake facts of one TLS connection; names are those of the TLS registries."""

    client_hello_seen: bool = False
    client_hello_format: str | None = None  # "tls" or "sslv2-compatible"
    client_hello_record_version: str | None = None
    client_hello_legacy_version: str | None = None
    versions_offered: list[str] = field(default_factory=list)
    version: str | None = None  # a TLS 1.3 draft / Fizz variant is reported as "TLS 1.3"
    cipher: str | None = None
    cipher_id: str | None = None
    ciphers_offered: list[str] = field(default_factory=list)
    sni: str | None = None
    alpn_offered: list[str] | None = None
    alpn_selected: str | None = None
    key_exchange_group: str | None = None
    groups_offered: list[str] = field(default_factory=list)
    server_certificates: list[dict] = field(default_factory=list)
    client_certificate_requested: bool | None = None
    client_certificates: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    handshake_complete: bool = False
    session_resumed: bool | None = None
    application_data_bytes: dict = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    records: dict = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    anomalies: list[dict] = field(default_factory=list)
    # Beyond the agreed contract: details the shared test cases and reports use.
    server_hello_seen: bool = False
    version_id: str | None = None  # the negotiated version's code point, e.g. "0x0304"
    hello_retry_request: bool = False
    client_hello_records: int | None = None  # records the first ClientHello spanned
    client_hello_bytes: int | None = None  # its handshake message size, header included
    client_hello_offered_max_version: str | None = None
    offered_cipher_specs: list[str] | None = None  # SSLv2-compatible hello: 3-byte specs
    client_extensions: list[int] = field(default_factory=list)
    ech_offered: bool = False
    dh_prime_bits: int | None = None  # finite-field DHE: size of the server's prime
    starts: dict = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    # Where the record walk of each direction stopped: the end of the head, or the first
    # byte that is not a TLS record (e.g. FTP's CCC going back to plaintext).
    ends: dict = field(default_factory=lambda: {"c2s": 0, "s2c": 0})


class _Short(Exception):
    """A length field points past the bytes present (internal; never escapes)."""


class _Reader:
    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else min(end, len(data))

    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise _Short(f"need {n} bytes at {self.pos}, have {self.end - self.pos}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(self.uint(length_bytes))


@dataclass
class _Record:
    index: int  # ordinal of the record in its direction
    offset: int  # of the header in the direction's bytes
    content_type: int
    version: int
    claimed: int  # the header's length field
    fragment: bytes  # the bytes present (shorter than claimed when the head was cut)


@dataclass
class _Message:
    msg_type: int
    body: bytes  # empty when the message was over the size cap and skipped
    offset: int
    records_spanned: int
    skipped: bool = False


@dataclass
class _Walk:
    """One direction's record walk."""

    kept: list[_Record] = field(default_factory=list)
    alert_records: list[_Record] = field(default_factory=list)
    records: int = 0
    app_records: int = 0
    app_bytes: int = 0
    ccs_index: int | None = None  # ordinal of the first ChangeCipherSpec record
    handshake_records_beyond_limit: int = 0
    end: int = 0  # where the walk stopped


def _u16(data: bytes, i: int) -> int:
    return (data[i] << 8) | data[i + 1]


def _anomaly(kind: str, direction: str, offset: int, detail: str) -> dict:
    return {"kind": kind, "direction": direction, "offset": offset, "detail": detail}


def _decode_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# --- recognisers -------------------------------------------------------------------------


def _record_header_ok(data: bytes, i: int) -> bool:
    """A complete, plausible 5-byte TLS record header at ``i``."""
    if len(data) - i < 5:
        return False
    return (data[i] in _CONTENT_TYPES and data[i + 1] == 3 and data[i + 2] <= 4
            and _u16(data, i + 3) <= MAX_RECORD_LENGTH)


def _tls_hello_at(data: bytes, i: int, msg_type: int, short_ok: bool) -> bool:
    """A handshake record header at ``i`` whose first message is of ``msg_type``.

    With ``short_ok`` a stream that ends early passes on the (at least 3) bytes it has;
    otherwise the record header, the handshake header and the hello's version byte must all
    be there, as far as they fall inside this record.
    """
    head = data[i:i + 10]
    if len(head) < 3 or head[0] != HANDSHAKE or head[1] != 3 or head[2] > 4:
        return False
    if len(head) < 5:
        return short_ok
    length = (head[3] << 8) | head[4]
    if not 1 <= length <= MAX_RECORD_LENGTH:
        return False
    if len(head) < 6:
        return short_ok
    if head[5] != msg_type:
        return False
    # A hello's 24-bit length is far below 2^24 and the hello begins with a 03 xx version;
    # only bytes inside this record can be checked (a hello may be fragmented).
    for position, want in ((6, 0), (9, 3)):
        if length <= position - 5:
            return True
        if len(head) <= position:
            return short_ok
        if head[position] != want:
            return False
    return True


def _sslv2_client_hello_length(data: bytes, i: int) -> int | None:
    """Body length of an SSLv2-format CLIENT-HELLO starting at ``i``, or None."""
    if len(data) - i < 11 or not data[i] & 0x80 or data[i + 2] != 1:
        return None
    length = ((data[i] & 0x7F) << 8) | data[i + 1]
    version = _u16(data, i + 3)
    if version != 0x0002 and not 0x0300 <= version <= 0x0304:
        return None
    specs, session_id, challenge = _u16(data, i + 5), _u16(data, i + 7), _u16(data, i + 9)
    if specs == 0 or specs % 3 or session_id not in (0, 16) or not 16 <= challenge <= 32:
        return None
    if 9 + specs + session_id + challenge != length:
        return None
    return length


def _sslv2_server_hello_length(data: bytes, i: int) -> int | None:
    """Body length of an SSL 2.0 SERVER-HELLO starting at ``i``, or None."""
    if len(data) - i < 13 or not data[i] & 0x80 or data[i + 2] != 4:
        return None
    length = ((data[i] & 0x7F) << 8) | data[i + 1]
    if data[i + 3] > 1 or _u16(data, i + 5) != 0x0002:
        return None
    cert, specs, connection_id = _u16(data, i + 7), _u16(data, i + 9), _u16(data, i + 11)
    if specs % 3 or not 16 <= connection_id <= 32 or 11 + cert + specs + connection_id != length:
        return None
    return length


def tls_start(c2s: bytes, limit: int = DEFAULT_SEARCH_LIMIT) -> int | None:
    """Offset in the client->server head where a TLS ClientHello begins, or None.

    0 when the stream is TLS from its first byte (a head too short to hold the whole hello
    header passes on the bytes it has); a positive offset when a plaintext exchange
    (STARTTLS, PostgreSQL SSLRequest, ...) precedes the hello, searched below ``limit``; the
    hello is a TLS handshake record of type client_hello or an SSLv2-compatible hello.
    """
    if not c2s:
        return None
    if _tls_hello_at(c2s, 0, _HS_CLIENT_HELLO, short_ok=True):
        return 0
    if _sslv2_client_hello_length(c2s, 0) is not None:
        return 0
    stop = min(limit, len(c2s))
    found: int | None = None
    pos = c2s.find(b"\x16\x03", 1, stop + 1)
    while pos != -1 and pos < stop:
        if _tls_hello_at(c2s, pos, _HS_CLIENT_HELLO, short_ok=False):
            found = pos
            break
        pos = c2s.find(b"\x16\x03", pos + 1, stop + 1)
    end = found if found is not None else stop
    # Only where the first bytes of an SSLv2 CLIENT-HELLO fit (a length with the high bit,
    # message type 1, version 0002 or 03xx) is the whole header checked: a byte-by-byte
    # walk over a binary head cost a Python step per byte. The candidate may start just
    # before `end` and run past it, so the search reaches a few bytes further.
    for match in _SSLV2_CLIENT_HELLO_START.finditer(c2s, 1, min(len(c2s), end + 4)):
        if match.start() >= end:
            break
        if _sslv2_client_hello_length(c2s, match.start()) is not None:
            return match.start()
    return found


# Overlapping candidates are all tried: the pattern is a look-ahead, so it consumes nothing.
_SSLV2_CLIENT_HELLO_START = re.compile(rb"(?=[\x80-\xff].\x01(?:\x00\x02|\x03[\x00-\x04]))",
                                       re.DOTALL)


def tls_server_start(s2c: bytes, limit: int = DEFAULT_SEARCH_LIMIT) -> int | None:
    """Offset in the server->client head where the ServerHello record begins, or None.

    The server-side counterpart of `tls_start`, for flows where the server's plaintext reply
    (e.g. ``220 Ready to start TLS``) precedes its hello.
    """
    if not s2c:
        return None
    if _tls_hello_at(s2c, 0, _HS_SERVER_HELLO, short_ok=True):
        return 0
    if _sslv2_server_hello_length(s2c, 0) is not None:
        return 0
    stop = min(limit, len(s2c))
    pos = s2c.find(b"\x16\x03", 1, stop + 1)
    while pos != -1 and pos < stop:
        if _tls_hello_at(s2c, pos, _HS_SERVER_HELLO, short_ok=False):
            return pos
        pos = s2c.find(b"\x16\x03", pos + 1, stop + 1)
    return None


def looks_like_tls_records(data: bytes, min_records: int = 1) -> bool:
    """True when ``data`` begins with ``min_records`` consistent TLS records.

    A header is consistent when its content type is 20-24, its version 03 00..03 04 and its
    length at most 2^14 + 2048. When the data ends before ``min_records`` headers could be
    read, one valid header suffices. An SSLv2-format ClientHello or SSL 2.0 ServerHello at
    the start also counts. Empty data is not TLS.
    """
    if not data:
        return False
    if _sslv2_client_hello_length(data, 0) is not None:
        return True
    if _sslv2_server_hello_length(data, 0) is not None:
        return True
    pos, seen = 0, 0
    want = max(1, min_records)
    while seen < want:
        if pos >= len(data):
            return seen >= 1
        if not _record_header_ok(data, pos):
            # A cut header after at least one good record is the short-stream case.
            return seen >= 1 and len(data) - pos < 5
        length = _u16(data, pos + 3)
        if seen == 0 and length == 0 and data[pos] != APPLICATION_DATA:
            return False
        seen += 1
        pos += 5 + length
    return True


def record_chain(data: bytes, pos: int = 0, enough: int = 64) -> tuple[int, int, str]:
    """How far a run of TLS records from ``pos`` holds: (whole records, the offset
    where the run stops, how it ends).

    It ends "end" exactly at the end of ``data``, "cut" where the last record (or its
    header) runs past the end, "bad" at a byte that is no record header, or "enough"
    after ``enough`` whole records (a run that long is no accident, and a hostile
    head of tiny records costs no more than that). An SSLv2-format ClientHello at
    ``pos`` counts as one record (TLS records may follow it); other SSL 2.0 records
    are not walked. For judging whether TLS-shaped bytes are a TLS stream.
    """
    size = len(data)
    records = 0
    sslv2 = _sslv2_client_hello_length(data, pos)
    if sslv2 is not None:
        pos += 2 + sslv2
        if pos > size:
            return 0, pos - 2 - sslv2, "cut"
        records = 1
    while records < enough:
        if pos == size:
            return records, pos, "end"
        if size - pos < 5:
            return records, pos, "cut"
        if not _record_header_ok(data, pos):
            return records, pos, "bad"
        end = pos + 5 + _u16(data, pos + 3)
        if end > size:
            return records, pos, "cut"
        pos = end
        records += 1
    return records, pos, "enough"


# --- record walk -------------------------------------------------------------------------


def _walk_tls(data: bytes, pos: int, direction: str, complete: bool, walk: _Walk,
              anomalies: list[dict]) -> None:
    size = len(data)
    kept, alert_records = walk.kept, walk.alert_records
    while pos < size:
        if walk.records >= HANDSHAKE_RECORD_LIMIT:
            pos = _count_records(data, pos, walk)
            if pos >= size:
                break
        if walk.records >= MAX_RECORDS_WALKED:
            anomalies.append(_anomaly("limit", direction, pos,
                                      f"stopped counting after {MAX_RECORDS_WALKED} records"))
            break
        if size - pos < 5:
            if complete:
                anomalies.append(_anomaly("truncated-record", direction, pos,
                                          f"{size - pos} bytes left, less than a record header"))
            break
        content_type, major, minor = data[pos], data[pos + 1], data[pos + 2]
        length = (data[pos + 3] << 8) | data[pos + 4]
        if content_type not in _CONTENT_TYPES or major != 3 or minor > 4:
            anomalies.append(_anomaly(
                "bad-record-header", direction, pos,
                f"not a TLS record header: {data[pos:pos + 5].hex()}; rest not walked"))
            break
        if length > MAX_RECORD_LENGTH:
            anomalies.append(_anomaly(
                "bad-tls-length", direction, pos,
                f"record length {length} exceeds {MAX_RECORD_LENGTH}; rest not walked"))
            break
        body_end = pos + 5 + length
        if body_end > size and complete:
            anomalies.append(_anomaly(
                "truncated-record", direction, pos,
                f"record claims {length} bytes, {size - pos - 5} present"))
        present = min(body_end, size) - pos - 5
        index = walk.records
        walk.records += 1
        if content_type == APPLICATION_DATA:
            walk.app_records += 1
            walk.app_bytes += present
        elif content_type == CHANGE_CIPHER_SPEC and walk.ccs_index is None:
            walk.ccs_index = index
        if index < HANDSHAKE_RECORD_LIMIT:
            kept.append(_Record(index, pos, content_type, (major << 8) | minor, length,
                                data[pos + 5:pos + 5 + present]))
        else:
            if content_type == ALERT and len(alert_records) < MAX_ALERTS:
                alert_records.append(_Record(index, pos, content_type, (major << 8) | minor,
                                             length, data[pos + 5:pos + 5 + present]))
            elif content_type == HANDSHAKE and walk.ccs_index is None:
                walk.handshake_records_beyond_limit += 1
        pos = body_end
    walk.end = min(pos, size)


def _count_records(data: bytes, pos: int, walk: _Walk) -> int:
    """Count a run of whole records past the kept ones quickly; returns where it ends.

    A hostile head may be a million tiny records, so this loop does the least per record.
    A bad or cut header ends the run and is left to `_walk_tls`, which reports it.
    """
    size = len(data)
    records, app_records, app_bytes = walk.records, walk.app_records, walk.app_bytes
    handshake_late, ccs_index = walk.handshake_records_beyond_limit, walk.ccs_index
    alerts = walk.alert_records
    stop = MAX_RECORDS_WALKED
    while records < stop and pos + 5 <= size:
        content_type = data[pos]
        if content_type not in _CONTENT_TYPES or data[pos + 1] != 3 or data[pos + 2] > 4:
            break
        length = (data[pos + 3] << 8) | data[pos + 4]
        end = pos + 5 + length
        if length > MAX_RECORD_LENGTH or end > size:
            break
        if content_type == APPLICATION_DATA:
            app_records += 1
            app_bytes += length
        elif content_type == HANDSHAKE:
            if ccs_index is None:
                handshake_late += 1
        elif content_type == CHANGE_CIPHER_SPEC:
            if ccs_index is None:
                ccs_index = records
        elif content_type == ALERT and len(alerts) < MAX_ALERTS:
            alerts.append(_Record(records, pos, ALERT, (data[pos + 1] << 8) | data[pos + 2],
                                  length, data[pos + 5:end]))
        records += 1
        pos = end
    walk.records, walk.app_records, walk.app_bytes = records, app_records, app_bytes
    walk.handshake_records_beyond_limit, walk.ccs_index = handshake_late, ccs_index
    return pos


def _walk_sslv2(data: bytes, pos: int, direction: str, complete: bool, walk: _Walk,
                anomalies: list[dict]) -> None:
    """Count SSL 2.0 records (2- or 3-byte headers); their contents are encrypted."""
    size = len(data)
    while pos < size and walk.records < MAX_RECORDS_WALKED:
        # A set high bit means a 2-byte header; otherwise 3 bytes, the third being padding.
        header = 2 if data[pos] & 0x80 else 3
        if size - pos < header:
            if complete:
                anomalies.append(_anomaly("truncated-record", direction, pos,
                                          "cut SSL 2.0 record header"))
            break
        length = ((data[pos] & (0x7F if header == 2 else 0x3F)) << 8) | data[pos + 1]
        end = pos + header + length
        if end > size and complete:
            anomalies.append(_anomaly("truncated-record", direction, pos,
                                      f"SSL 2.0 record claims {length} bytes"))
        present = min(end, size) - pos - header
        if walk.records < HANDSHAKE_RECORD_LIMIT:
            walk.kept.append(_Record(walk.records, pos, 0, 0x0002, length,
                                     data[pos + header:pos + header + present]))
        walk.records += 1
        walk.app_records += 1
        walk.app_bytes += present
        pos = end
    walk.end = min(pos, size)


# --- handshake reassembly ----------------------------------------------------------------


def _reassemble(walk: _Walk, direction: str, stop_at_ccs: bool, max_message: int,
                complete: bool, anomalies: list[dict]) -> list[_Message]:
    """Cut the kept handshake fragments of one direction into handshake messages."""
    buffer = bytearray()
    starts: list[int] = []  # buffer position where each fragment begins
    origins: list[int] = []  # stream offset of each fragment's first byte
    messages: list[_Message] = []
    pos = 0  # start of the next unparsed message in the buffer
    cut_by_ccs = False
    skip = 0  # bytes of an oversized message still to be passed over unbuffered

    for record in walk.kept:
        if record.content_type == CHANGE_CIPHER_SPEC and stop_at_ccs:
            cut_by_ccs = True
            break
        if record.content_type != HANDSHAKE or not record.fragment:
            continue
        fragment = record.fragment
        if skip:
            passed = min(skip, len(fragment))
            skip -= passed
            fragment = fragment[passed:]
            if not fragment:
                continue
            # Later messages begin where the skipped one ended.
            starts, origins, buffer, pos = [], [], bytearray(), 0
            starts.append(0)
            origins.append(record.offset + 5 + passed)
        else:
            starts.append(len(buffer))
            origins.append(record.offset + 5)
        buffer += fragment

        while len(buffer) - pos >= 4:
            msg_type = buffer[pos]
            length = int.from_bytes(buffer[pos + 1:pos + 4], "big")
            offset = _buffer_origin(starts, origins, pos)
            if length > max_message:
                # Pass over the message without keeping it; what follows still parses.
                anomalies.append(_anomaly(
                    "limit", direction, offset,
                    f"handshake message type {msg_type} of {length} bytes exceeds "
                    f"{max_message}; skipped"))
                messages.append(_Message(msg_type, b"", offset, 0, skipped=True))
                available = len(buffer) - pos - 4
                if available >= length:
                    pos += 4 + length
                    continue
                skip = length - available
                buffer, starts, origins, pos = bytearray(), [], [], 0
                break
            if len(buffer) - pos < 4 + length:
                break
            first = bisect.bisect_right(starts, pos) - 1
            last = bisect.bisect_right(starts, pos + 3 + length) - 1
            messages.append(_Message(msg_type, bytes(buffer[pos + 4:pos + 4 + length]),
                                     offset, last - first + 1))
            pos += 4 + length
        if pos > 65536:
            # Keep the buffer small: drop what has been parsed.
            del buffer[:pos]
            starts = [s - pos for s in starts]
            pos = 0

    # An unfinished message is normal when the head was cut (by retention, by the record
    # cap, or inside a record, which the walk already reported); otherwise the peer sent
    # half a message before closing or before switching to encryption.
    head_cut = ((not cut_by_ccs and walk.records > len(walk.kept))
                or any(len(r.fragment) < r.claimed for r in walk.kept))
    if (complete or cut_by_ccs) and not head_cut:
        where = " before ChangeCipherSpec" if cut_by_ccs else " at the end of the stream"
        if skip:
            anomalies.append(_anomaly(
                "malformed-handshake", direction, walk.kept[-1].offset if walk.kept else 0,
                f"{skip} bytes of a skipped oversized handshake message missing{where}"))
        elif len(buffer) > pos:
            anomalies.append(_anomaly(
                "malformed-handshake", direction, _buffer_origin(starts, origins, pos),
                f"{len(buffer) - pos} bytes of an unfinished handshake message{where}"))
    if walk.handshake_records_beyond_limit:
        anomalies.append(_anomaly(
            "limit", direction, walk.kept[-1].offset if walk.kept else 0,
            f"{walk.handshake_records_beyond_limit} handshake records after the first "
            f"{HANDSHAKE_RECORD_LIMIT} records not parsed"))
    return messages


def _buffer_origin(starts: list[int], origins: list[int], pos: int) -> int:
    index = bisect.bisect_right(starts, pos) - 1
    if index < 0:
        return origins[0] if origins else 0
    return origins[index] + (pos - starts[index])


# --- handshake messages ------------------------------------------------------------------


def _parse_extensions(reader: _Reader) -> tuple[list[tuple[int, bytes]], str | None]:
    """The extensions that parse, and what stopped the walk (None when all did).

    A damaged extension block still yields the extensions before the damage, so
    a hello whose ALPN is corrupt keeps its SNI.
    """
    if reader.remaining() == 0:
        return [], None  # extensions are optional before TLS 1.2
    try:
        block = _Reader(reader.vector(2))
        error = None
    except _Short as exc:
        # The block claims more than the message holds: walk what is there.
        block = _Reader(reader.take(reader.remaining()))
        error = f"extension block: {exc}"
    extensions = []
    while block.remaining() > 0:
        try:
            ext_type = block.uint(2)
            extensions.append((ext_type, block.vector(2)))
        except _Short as exc:
            return extensions, f"extension {len(extensions)}: {exc}"
    return extensions, error


def _parse_client_hello(body: bytes, facts: TlsFacts) -> None:
    reader = _Reader(body)
    legacy = reader.uint(2)
    facts.client_hello_legacy_version = names.version_name(legacy)
    facts.versions_offered = [facts.client_hello_legacy_version]
    reader.take(32)  # random
    reader.vector(1)  # session id
    suites = reader.vector(2)
    facts.ciphers_offered = [names.cipher_suite_name(_u16(suites, i))
                             for i in range(0, len(suites) - 1, 2)]
    reader.vector(1)  # compression methods
    extensions, error = _parse_extensions(reader)
    facts.client_extensions = [ext_type for ext_type, _ in extensions]

    for ext_type, ext in extensions:
        try:
            _client_extension(ext_type, ext, facts)
        except _Short as exc:
            error = error or f"extension {ext_type}: {exc}"
    if error:
        raise _Short(error)


def _client_extension(ext_type: int, ext: bytes, facts: TlsFacts) -> None:
    if ext_type == _EXT_SERVER_NAME:
        names_list = _Reader(_Reader(ext).vector(2))
        while names_list.remaining() > 0:
            name_type = names_list.uint(1)
            host = names_list.vector(2)
            if name_type == 0 and facts.sni is None:
                facts.sni = _decode_text(host[:255])
    elif ext_type == _EXT_ALPN:
        protocols = _Reader(_Reader(ext).vector(2))
        offered = []
        while protocols.remaining() > 0:
            offered.append(_decode_text(protocols.vector(1)))
        facts.alpn_offered = offered
    elif ext_type == _EXT_SUPPORTED_VERSIONS:
        versions = _Reader(ext).vector(1)
        facts.versions_offered = [names.version_name(_u16(versions, i))
                                  for i in range(0, len(versions) - 1, 2)]
    elif ext_type == _EXT_SUPPORTED_GROUPS:
        groups = _Reader(ext).vector(2)
        facts.groups_offered = [names.group_name(_u16(groups, i))
                                for i in range(0, len(groups) - 1, 2)]
    elif ext_type == _EXT_ECH:
        facts.ech_offered = True


@dataclass
class _ServerHello:
    version: int
    legacy_version: int
    session_id: bytes
    cipher: int
    is_retry: bool
    extensions: dict[int, bytes]


def _parse_server_hello(body: bytes) -> _ServerHello:
    reader = _Reader(body)
    legacy = reader.uint(2)
    random = reader.take(32)
    session_id = reader.vector(1)
    cipher = reader.uint(2)
    reader.uint(1)  # compression method
    extensions: dict[int, bytes] = {}
    parsed, error = _parse_extensions(reader)
    if error:
        raise _Short(error)
    for ext_type, ext in parsed:
        extensions.setdefault(ext_type, ext)
    version = legacy
    selected = extensions.get(_EXT_SUPPORTED_VERSIONS)
    if selected is not None and len(selected) >= 2:
        version = _u16(selected, 0)
    return _ServerHello(version, legacy, session_id, cipher, random == _HRR_RANDOM,
                        extensions)


def _parse_certificate_list(body: bytes, tls13: bool) -> tuple[list[bytes], int]:
    """DER certificates of a Certificate message, and how many were left out by the cap."""
    reader = _Reader(body)
    if tls13:
        reader.vector(1)  # certificate_request_context
    chain = _Reader(reader.vector(3))
    certificates: list[bytes] = []
    skipped = 0
    while chain.remaining() > 0:
        der = chain.vector(3)
        if tls13:
            chain.vector(2)  # per-certificate extensions
        if len(certificates) < MAX_CERTIFICATES:
            certificates.append(der)
        else:
            skipped += 1
    return certificates, skipped


def _parse_server_key_exchange(body: bytes, cipher_name: str | None, facts: TlsFacts) -> None:
    reader = _Reader(body)
    kx = (cipher_name or "").split("_WITH_")[0]
    if "PSK" in kx and "DH" in kx:
        reader.vector(2)  # psk_identity_hint precedes the DH parameters
    if "ECDH" in kx or (cipher_name is None and body[:1] == b"\x03"):
        curve_type = reader.uint(1)
        if curve_type == 3:  # named_curve
            facts.key_exchange_group = names.group_name(reader.uint(2))
        else:
            facts.key_exchange_group = {1: "explicit_prime", 2: "explicit_char2"}.get(
                curve_type, f"curve type {curve_type}")
    elif "DH" in kx:
        facts.dh_prime_bits = int.from_bytes(reader.vector(2), "big").bit_length()


def _describe_chain(chain: list[bytes]) -> list[dict]:
    # x509 loads cryptography (0.18 G instructions, about 40 ms of start-up): a capture
    # without a certificate never pays it.
    from flinkwire.protocols.x509 import describe_certificate
    return [describe_certificate(der) for der in chain]


# --- SSLv2 -------------------------------------------------------------------------------


def _parse_sslv2_client_hello(data: bytes, pos: int, facts: TlsFacts) -> None:
    """Facts from an SSLv2-format CLIENT-HELLO at ``pos`` (validated by the recogniser)."""
    version = _u16(data, pos + 3)
    specs_length, session_length = _u16(data, pos + 5), _u16(data, pos + 7)
    specs = data[pos + 11:pos + 11 + specs_length]
    values = [int.from_bytes(specs[i:i + 3], "big") for i in range(0, len(specs) - 2, 3)]
    facts.client_hello_seen = True
    facts.client_hello_format = "sslv2-compatible"
    facts.client_hello_record_version = _SSLV2_RECORD_NOTE
    facts.client_hello_legacy_version = names.version_name(version)
    facts.client_hello_offered_max_version = facts.client_hello_legacy_version
    facts.versions_offered = [facts.client_hello_legacy_version]
    facts.offered_cipher_specs = [f"0x{value:06x}" for value in values]
    facts.ciphers_offered = [names.sslv2_cipher_name(value) for value in values]
    facts.client_hello_records = 1
    facts.client_hello_bytes = 9 + specs_length + session_length + _u16(data, pos + 9)


def _parse_sslv2_server_hello(data: bytes, pos: int, facts: TlsFacts) -> None:
    facts.server_hello_seen = True
    facts.version = names.version_name(0x0002)
    facts.version_id = "0x0002"
    cert_length = _u16(data, pos + 7)
    certificate = data[pos + 13:pos + 13 + cert_length]
    if len(certificate) == cert_length and data[pos + 4] == 1 and certificate:
        facts.server_certificates = _describe_chain([certificate])
    facts.session_resumed = bool(data[pos + 3])


# --- the whole connection ----------------------------------------------------------------


def parse_tls(c2s: bytes, s2c: bytes, *, start_c2s: int = 0, start_s2c: int = 0,
              max_handshake_message: int = 256 * 1024, complete_c2s: bool = True,
              complete_s2c: bool = True) -> TlsFacts:
    """Handshake facts, record counts and anomalies of one TLS connection.

    ``c2s``/``s2c`` are the stream heads of each direction; TLS starts at ``start_c2s`` /
    ``start_s2c`` (see `tls_start`). When the server head does not begin with a TLS record
    at ``start_s2c``, its ServerHello is searched for (as `tls_server_start` does) so that a
    STARTTLS server's plaintext reply is skipped; ``starts`` reports the offsets used.
    ``complete_*=False`` says the head was cut, so a record or message running past its end
    is not an anomaly. Never raises on any input bytes.
    """
    facts = TlsFacts()
    c2s = bytes(c2s or b"")
    s2c = bytes(s2c or b"")
    start_c2s = max(0, min(int(start_c2s or 0), len(c2s)))
    start_s2c = max(0, min(int(start_s2c or 0), len(s2c)))
    max_handshake_message = max(0, int(max_handshake_message))
    try:
        _parse(c2s, s2c, start_c2s, start_s2c, max_handshake_message, complete_c2s,
               complete_s2c, facts)
    except Exception as exc:  # a parser bug must cost facts, not the run
        log.exception("TLS parser failed")
        facts.anomalies.append(_anomaly("malformed-handshake", "", 0,
                                        f"parser error: {type(exc).__name__}: {exc}"[:200]))
    return facts


def _parse(c2s: bytes, s2c: bytes, start_c2s: int, start_s2c: int, max_message: int,
           complete_c2s: bool, complete_s2c: bool, facts: TlsFacts) -> None:
    anomalies = facts.anomalies
    if (s2c and not _record_header_ok(s2c, start_s2c)
            and _sslv2_server_hello_length(s2c, start_s2c) is None):
        found = tls_server_start(s2c[start_s2c:start_s2c + DEFAULT_SEARCH_LIMIT + 16])
        if found:
            start_s2c += found
    if (c2s and not _record_header_ok(c2s, start_c2s)
            and _sslv2_client_hello_length(c2s, start_c2s) is None):
        found = tls_start(c2s[start_c2s:start_c2s + DEFAULT_SEARCH_LIMIT + 16])
        if found:
            start_c2s += found
    facts.starts = {"c2s": start_c2s, "s2c": start_s2c}

    client, server = _Walk(), _Walk()
    sslv2_session = False
    pos_s2c = start_s2c
    server_v2_length = _sslv2_server_hello_length(s2c, start_s2c)
    if server_v2_length is not None:
        sslv2_session = True
        _parse_sslv2_server_hello(s2c, start_s2c, facts)
        server.records = 1
        pos_s2c = start_s2c + 2 + server_v2_length
        if pos_s2c > len(s2c) and complete_s2c:
            anomalies.append(_anomaly("truncated-record", "s2c", start_s2c,
                                      "SSL 2.0 ServerHello cut"))

    pos_c2s = start_c2s
    client_v2_length = _sslv2_client_hello_length(c2s, start_c2s)
    if client_v2_length is not None:
        _parse_sslv2_client_hello(c2s, start_c2s, facts)
        client.records = 1
        pos_c2s = start_c2s + 2 + client_v2_length
        if pos_c2s > len(c2s) and complete_c2s:
            anomalies.append(_anomaly("truncated-record", "c2s", start_c2s,
                                      "SSLv2-format ClientHello cut"))

    if sslv2_session:
        _walk_sslv2(c2s, pos_c2s, "c2s", complete_c2s, client, anomalies)
        _walk_sslv2(s2c, pos_s2c, "s2c", complete_s2c, server, anomalies)
        _finish_sslv2(client, server, facts)
        return

    _walk_tls(c2s, pos_c2s, "c2s", complete_c2s, client, anomalies)
    _walk_tls(s2c, pos_s2c, "s2c", complete_s2c, server, anomalies)
    facts.records = {"c2s": client.records, "s2c": server.records}
    facts.application_data_bytes = {"c2s": client.app_bytes, "s2c": server.app_bytes}
    facts.ends = {"c2s": client.end, "s2c": server.end}

    # The version decides whether ChangeCipherSpec ends the plaintext; find it first.
    probe: list[dict] = []
    server_messages = _reassemble(server, "s2c", True, max_message, complete_s2c, probe)
    first_hello = _first_server_hello(server_messages)
    tls13 = first_hello is not None and _is_tls13(first_hello.version)
    if tls13:
        server_messages = _reassemble(server, "s2c", False, max_message, complete_s2c,
                                      anomalies)
    else:
        anomalies.extend(probe)
    client_messages = _reassemble(client, "c2s", not tls13, max_message, complete_c2s,
                                  anomalies)

    first_record = client.kept[0] if client.kept else None
    if facts.client_hello_format is None:
        _interpret_client(client_messages, first_record, tls13, facts)
    else:
        _interpret_client(client_messages, None, tls13, facts, hello_done=True)
    _interpret_server(server_messages, server, tls13, facts)
    _collect_alerts(client, "c2s", tls13, facts)
    _collect_alerts(server, "s2c", tls13, facts)

    if tls13:
        facts.handshake_complete = client.app_records > 0 and server.app_records > 0
    else:
        facts.handshake_complete = ((client.ccs_index is not None
                                     and server.ccs_index is not None)
                                    or (client.app_records > 0 and server.app_records > 0))


def _first_server_hello(messages: list[_Message]) -> _ServerHello | None:
    for message in messages:
        if message.msg_type == _HS_SERVER_HELLO:
            try:
                return _parse_server_hello(message.body)
            except _Short:
                return None
    return None


def _interpret_client(messages: list[_Message], first_record: _Record | None, tls13: bool,
                      facts: TlsFacts, hello_done: bool = False) -> None:
    anomalies = facts.anomalies
    for message in messages:
        if message.skipped:
            continue  # over the size cap: nothing to read (a limit anomaly says so)
        if message.msg_type == _HS_CLIENT_HELLO and not hello_done:
            hello_done = True
            facts.client_hello_seen = True
            facts.client_hello_format = "tls"
            if first_record is not None:
                facts.client_hello_record_version = names.version_name(first_record.version)
            facts.client_hello_records = message.records_spanned
            facts.client_hello_bytes = 4 + len(message.body)
            try:
                _parse_client_hello(message.body, facts)
            except _Short as exc:
                anomalies.append(_anomaly("malformed-handshake", "c2s", message.offset,
                                          f"ClientHello: {exc}"))
        elif message.msg_type == _HS_CERTIFICATE and not tls13 and not facts.client_certificates:
            try:
                chain, skipped = _parse_certificate_list(message.body, tls13=False)
            except _Short as exc:
                anomalies.append(_anomaly("malformed-handshake", "c2s", message.offset,
                                          f"client Certificate: {exc}"))
                continue
            facts.client_certificates = _describe_chain(chain)
            if skipped:
                anomalies.append(_anomaly("limit", "c2s", message.offset,
                                          f"{skipped} client certificates beyond "
                                          f"{MAX_CERTIFICATES} not described"))


def _interpret_server(messages: list[_Message], walk: _Walk, tls13: bool,
                      facts: TlsFacts) -> None:
    anomalies = facts.anomalies
    hello: _ServerHello | None = None
    retry_group: str | None = None
    saw_full_handshake = False  # Certificate / ServerKeyExchange / ServerHelloDone
    saw_hello_done = False
    for message in messages:
        kind = message.msg_type
        if kind == _HS_SERVER_HELLO:
            if message.skipped or (hello is not None and not hello.is_retry):
                continue  # a second real ServerHello would be renegotiation: ignore
            try:
                parsed = _parse_server_hello(message.body)
            except _Short as exc:
                anomalies.append(_anomaly("malformed-handshake", "s2c", message.offset,
                                          f"ServerHello: {exc}"))
                continue
            if parsed.is_retry:
                facts.hello_retry_request = True
                share = parsed.extensions.get(_EXT_KEY_SHARE, b"")
                if len(share) >= 2:
                    retry_group = names.group_name(_u16(share, 0))
            hello = parsed
            _apply_server_hello(parsed, facts)
        elif hello is None or tls13:
            continue
        elif kind == _HS_CERTIFICATE:
            saw_full_handshake = True
            if facts.server_certificates or message.skipped:
                continue
            try:
                chain, skipped = _parse_certificate_list(message.body, tls13=False)
            except _Short as exc:
                anomalies.append(_anomaly("malformed-handshake", "s2c", message.offset,
                                          f"server Certificate: {exc}"))
                continue
            facts.server_certificates = _describe_chain(chain)
            if skipped:
                anomalies.append(_anomaly("limit", "s2c", message.offset,
                                          f"{skipped} server certificates beyond "
                                          f"{MAX_CERTIFICATES} not described"))
        elif kind == _HS_SERVER_KEY_EXCHANGE:
            saw_full_handshake = True
            if message.skipped:
                continue
            try:
                _parse_server_key_exchange(message.body, facts.cipher, facts)
            except _Short as exc:
                anomalies.append(_anomaly("malformed-handshake", "s2c", message.offset,
                                          f"ServerKeyExchange: {exc}"))
        elif kind == _HS_CERTIFICATE_REQUEST:
            facts.client_certificate_requested = True
        elif kind == _HS_SERVER_HELLO_DONE:
            saw_full_handshake = saw_hello_done = True

    if hello is None:
        return
    if facts.key_exchange_group is None and retry_group is not None:
        facts.key_exchange_group = retry_group
    if _is_tls13(hello.version):
        facts.client_certificate_requested = None
        if not hello.is_retry:
            facts.session_resumed = _EXT_PRE_SHARED_KEY in hello.extensions
        return

    if facts.client_certificate_requested is None and saw_hello_done:
        facts.client_certificate_requested = False
    if saw_full_handshake:
        facts.session_resumed = False
    elif walk.ccs_index is not None:
        # Abbreviated handshake: the server's ChangeCipherSpec follows its hello directly.
        facts.session_resumed = True
        if facts.client_certificate_requested is None:
            facts.client_certificate_requested = False


def _apply_server_hello(hello: _ServerHello, facts: TlsFacts) -> None:
    facts.server_hello_seen = True
    facts.version = "TLS 1.3" if _is_tls13(hello.version) else names.version_name(hello.version)
    facts.version_id = f"0x{hello.version:04x}"
    facts.cipher_id = f"0x{hello.cipher:04x}"
    facts.cipher = names.cipher_suite_name(hello.cipher)
    alpn = hello.extensions.get(_EXT_ALPN)
    if alpn:
        try:
            protocols = _Reader(_Reader(alpn).vector(2))
            facts.alpn_selected = _decode_text(protocols.vector(1))
        except _Short:
            facts.anomalies.append(_anomaly("malformed-handshake", "s2c", 0,
                                            "ServerHello ALPN extension cut"))
    share = hello.extensions.get(_EXT_KEY_SHARE)
    if share and len(share) >= 2 and _is_tls13(hello.version):
        facts.key_exchange_group = names.group_name(_u16(share, 0))


def _collect_alerts(walk: _Walk, direction: str, tls13: bool, facts: TlsFacts) -> None:
    for record in walk.kept + walk.alert_records:
        if record.content_type != ALERT or len(facts.alerts) >= MAX_ALERTS:
            continue
        after_ccs = walk.ccs_index is not None and record.index > walk.ccs_index
        fragment = record.fragment
        if (after_ccs and not tls13) or len(fragment) % 2 or not fragment:
            facts.alerts.append({"direction": direction, "level": None,
                                 "description": "encrypted"})
            continue
        for i in range(0, min(len(fragment), 8), 2):
            facts.alerts.append({"direction": direction,
                                 "level": names.alert_level_name(fragment[i]),
                                 "description": names.alert_description_name(fragment[i + 1])})


def _finish_sslv2(client: _Walk, server: _Walk, facts: TlsFacts) -> None:
    facts.records = {"c2s": client.records, "s2c": server.records}
    facts.ends = {"c2s": client.end, "s2c": server.end}
    facts.application_data_bytes = {"c2s": client.app_bytes, "s2c": server.app_bytes}
    # CLIENT-MASTER-KEY (the first client record after the hello) names the chosen cipher
    # in clear: msg type 2, then the 3-byte cipher kind.
    if client.kept and len(client.kept[0].fragment) >= 4 and client.kept[0].fragment[0] == 2:
        kind = int.from_bytes(client.kept[0].fragment[1:4], "big")
        facts.cipher_id = f"0x{kind:06x}"
        facts.cipher = names.sslv2_cipher_name(kind)
    facts.handshake_complete = client.records >= 3 and server.records >= 3
