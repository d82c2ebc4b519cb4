"""What an eavesdropper reads in a plaintext stream: readable runs and secrets.

Theory of operation. The input is the reassembled head of one direction of a
plaintext flow, as bytes. It is decoded as Latin-1, which maps every byte to
exactly one character, so a character index is a byte offset and every offset
reported here is exact in the caller's `data`. Each scanner looks for one way a
secret travels (a config key and its value, an FTP PASS line, an HTTP
Authorization header, a token with a known prefix, a card number, ...) and
yields `Secret` facts; `find_secrets` merges them, drops duplicates of the same
wire span and returns them in offset order, so the result is deterministic.

Captured bytes are hostile, so every pattern here is linear in the input:
repetitions are bounded and possessive (no backtracking), and each pattern that
scans a run of characters starts with a look-behind that forbids starting
inside such a run, so no run is rescanned from every one of its positions. The
config-key scanner walks by hand and never revisits an identifier. Nothing here
raises on any input; a scanner that fails on an input it was not written for is
logged and skipped.

Fixed words (config keywords, token prefixes, the words a scanner cannot do
without) are found in one pass each by Aho-Corasick automata (ahocorasick_rs)
over a lower-cased bytes copy, a window at a time; without that package the
plain searches run. Both give the same findings (tests/leakage/test_scan_fast_paths.py).

Limits: a secret is found only in forms listed in `find_secrets`; values longer
than the bounds below (512 characters for most values) are cut; a card number is
found only when it stands alone as its own number (and, without group
separators, has at most 16 digits), so cards inside a longer digit sequence are
missed on purpose. Input made of nothing but keywords or digit groups (tens of
thousands of candidates without a finding) stops the scanners concerned early,
with a warning, so a hostile stream cannot buy unbounded Python work.
"""

import base64
import binascii
import functools
import itertools
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from flinkwire.leakage.luhn import luhn_valid
from flinkwire.protocols.varint import MAX_CHAR_BYTES, read_string_value, read_varint

try:
    import ahocorasick_rs
except ImportError:  # an environment set up before it was a dependency
    ahocorasick_rs = None

log = logging.getLogger(__name__)

__all__ = ["Secret", "SecretScan", "find_secrets", "scan_secrets", "readable_runs",
           "readable_count", "DEFAULT_SENSITIVE_KEYS", "MAX_SPAN"]

# The substrings Flink's GlobalConfiguration.isSensitive looks for in a lower-cased
# key (the union over 1.15 - 2.3): Flink masks those keys in REST output only, so
# the same keys on a plaintext wire carry the real value.
DEFAULT_SENSITIVE_KEYS = (
    "password", "secret", "token", "apikey", "api-key", "api_key", "auth-params",
    "service-key", "basic-auth", "jaas.config", "http-headers", "fs.azure.account.key",
)

RUN_SPLIT = 512
MAX_VALUE = 512

# ---------------------------------------------------------------------------
# readable runs


# Readable runs are found in a copy of the data in which every readable byte is
# 01 and every other byte 00: a pattern that opens with `min_len` literal bytes is
# searched for in C at memory speed, where the plain one,
# `(?<![\t\n\r\x20-\x7e])[\t\n\r\x20-\x7e]{8,}+`, was tried at every
# position. readable_count over the 37.7 MB the 100 MB capture counts: 245 ms
# before, 85 ms with the copy.
_READABLE_CLASSES = bytes(1 if code in b"\t\n\r" or 0x20 <= code <= 0x7e else 0
                          for code in range(256))


@functools.lru_cache(maxsize=16)
def _run_pattern(min_len: int) -> re.Pattern[bytes]:
    # A run is taken whole (possessive) and the search goes on from the unreadable
    # byte after it, so no run is found again from inside itself.
    return re.compile(b"\x01" * min_len + b"\x01*+")


_SPLIT_AT = re.compile(r"[\s,;&]")


def readable_runs(data: bytes, min_len: int = 8, max_runs: int = 10_000) -> list[tuple[int, str]]:
    """Runs of printable ASCII (plus tab, CR, LF) of at least `min_len` characters.

    Returns (offset in `data`, text) pairs in offset order, at most `max_runs` of
    them. A run longer than 512 characters is split into pieces of about that
    size (384 to 640 characters), at a whitespace or separator near the end of
    each piece where there is one. Flink writes ASCII strings nearly byte for
    byte (writeUTF, StringValue, JSON), so these runs are what a reader of a
    binary Flink channel sees.
    Returns an empty list for input that is not bytes-like.
    """
    buffer = _as_bytes(data)
    min_len = max(1, int(min_len))
    runs: list[tuple[int, str]] = []
    if max_runs <= 0:
        return runs
    for match in _run_pattern(min_len).finditer(buffer.translate(_READABLE_CLASSES)):
        start, end = match.span()
        text = buffer[start:end].decode("ascii")
        for piece_start, piece in _split_run(text):
            runs.append((start + piece_start, piece))
            if len(runs) >= max_runs:
                return runs
    return runs


def readable_count(data: bytes, min_len: int = 8) -> int:
    """How many bytes of `data` lie in readable runs of at least `min_len` characters
    (all of them: unlike `readable_runs`, nothing is cut off, nothing is decoded)."""
    # findall and map keep the loop over the (many) runs in C.
    classes = _as_bytes(data).translate(_READABLE_CLASSES)
    return sum(map(len, _run_pattern(max(1, int(min_len))).findall(classes)))


def _split_run(text: str) -> Iterator[tuple[int, str]]:
    # A cut at a separator in the last quarter of a piece keeps words and
    # key=value pairs whole in the common case, which keeps snippets legible; a
    # run is cut only when more than a quarter piece would remain, so no piece
    # is a stub.
    position = 0
    while len(text) - position > RUN_SPLIT + RUN_SPLIT // 4:
        cut = position + RUN_SPLIT
        window_start = cut - RUN_SPLIT // 4
        last = None
        for last in _SPLIT_AT.finditer(text, window_start, cut):
            pass
        if last is not None:
            cut = last.end()
        yield position, text[position:cut]
        position = cut
    if position < len(text):
        yield position, text[position:]


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    log.debug("leakage scan given %s, not bytes; nothing to scan", type(data).__name__)
    return b""


# ---------------------------------------------------------------------------
# secrets


@dataclass(frozen=True)
class Secret:
    """One secret readable on the wire.

    `value` is the secret itself (decoded where the wire form is encoded, e.g.
    the password inside `Authorization: Basic`); `offset` and `end` delimit its
    wire form in the scanned data, which is what a redactor must mask: use
    `span`, since the wire form can be longer than the value (base64, %-escapes).
    """

    kind: str
    value: str
    offset: int
    context: str
    username: str | None = None
    end: int = -1

    @property
    def span(self) -> tuple[int, int]:
        """[start, end) of the wire form in the scanned data."""
        end = self.end if self.end >= self.offset else self.offset + len(self.value)
        return self.offset, end


class SecretScan(NamedTuple):
    """What `scan_secrets` found, and how far that is the whole story.

    `secrets`: every secret found, in offset order (each scanner gives at most
    `max_findings`). `complete_to`: every secret the scanners would find in the
    data that starts before this offset is in `secrets`; it is the data's length
    unless a scanner stopped early (a budget against hostile input, its
    `max_findings`, or a bug). A caller that shows text past `complete_to` must
    scan that text again or withhold it.
    """

    secrets: list
    complete_to: int


class _Stopped(Exception):
    """Raised by a scanner that stops at a budget: it found every secret that starts
    before `offset`, and may have missed the later ones."""

    def __init__(self, offset: int):
        super().__init__(offset)
        self.offset = offset


def find_secrets(
    data: bytes,
    *,
    sensitive_keys: tuple[str, ...] = DEFAULT_SENSITIVE_KEYS,
    max_findings: int = 10_000,
) -> list[Secret]:
    """Secrets readable in `data`, in offset order, at most `max_findings`.

    Found: `key=value`, `key: value`, JSON `"key": "value"`, Flink's REST
    `{"key": ..., "value": ...}` and program arguments (`--key value`, also as
    the strings of a REST programArgsList) for any key whose lower-cased name
    contains one of `sensitive_keys`, a password synonym (passwd, pwd, pass) or an
    access/private key or credential word, also when key and value are
    Java-serialized, writeUTF or StringValue strings; FTP/POP3
    USER+PASS, IMAP LOGIN, AUTH PLAIN / AUTH LOGIN; `scheme://user:password@host`
    URLs and ZooKeeper digest auth packets; HTTP Authorization (Basic is
    decoded to user and password, split at the first colon), Cookie and
    Set-Cookie values; tokens with well-known prefixes, AWS access key ids, JWTs,
    PEM private keys, e-mail addresses and Luhn-valid card numbers that stand
    alone. Flink's mask `******` and other placeholders are not secrets.

    Refuses nothing: input that is not bytes-like gives an empty list. The list
    can miss secrets past a point where a scanner stopped early; `scan_secrets`
    says where that is.
    """
    return scan_secrets(data, sensitive_keys=sensitive_keys,
                        max_findings=max_findings).secrets[:max(0, max_findings)]


def scan_secrets(
    data: bytes,
    *,
    sensitive_keys: tuple[str, ...] = DEFAULT_SENSITIVE_KEYS,
    max_findings: int = 10_000,
) -> SecretScan:
    """The secrets of `find_secrets`, not cut to `max_findings` in all (each scanner
    still stops at `max_findings`), with the offset up to which they are complete."""
    buffer = _as_bytes(data)
    if not buffer or max_findings <= 0:
        return SecretScan([], 0)
    text = buffer.decode("latin-1")
    # Latin-1 lower-casing keeps every index (no character of U+0000-U+00FF
    # lower-cases to more than one), so offsets found in it are offsets in `text`.
    # It is done on the bytes, with a table equal to str.lower(): 29 ms where
    # text.lower() took 88 ms on the 27.5 MB the 100 MB capture scans.
    lowered = buffer.translate(_LATIN1_LOWER)
    keys = _normalise_keys(sensitive_keys)

    found: dict[tuple[int, int, str], Secret] = {}
    complete_to = len(text)
    present = _gate_words_in(lowered)
    for scanner in _SCANNERS:
        gate = _GATES.get(scanner)
        if gate is not None and present.isdisjoint(gate):
            continue
        try:
            count = 0
            for secret in scanner(text, lowered, keys):
                slot = (*secret.span, secret.value)
                # The same value on the same wire span keeps the finding of the
                # scanner listed first: carriers (key=, FTP PASS, Authorization)
                # say more about it than shapes (a token prefix) do.
                if slot not in found:
                    found[slot] = secret
                    count += 1
                if count >= max_findings:
                    # A scanner that yields in offset order has found every secret
                    # up to this one; of the others nothing later can be vouched for.
                    stop = secret.offset + 1 if scanner in _IN_OFFSET_ORDER else 0
                    complete_to = min(complete_to, stop)
                    break
        except _Stopped as stopped:
            complete_to = min(complete_to, stopped.offset)
        except Exception:  # a scanner bug must not cost the other scanners' findings
            log.exception("secret scanner %s failed; its later findings are lost",
                          scanner.__name__)
            complete_to = 0

    ordered = sorted(found.values(), key=lambda s: (s.offset, s.span[1], s.kind, s.value))
    return SecretScan(ordered, max(0, complete_to))


def _normalise_keys(sensitive_keys: object) -> tuple[str, ...]:
    if sensitive_keys is DEFAULT_SENSITIVE_KEYS:
        return _DEFAULT_KEYS
    if isinstance(sensitive_keys, str):
        sensitive_keys = (sensitive_keys,)
    try:
        keys = tuple(sorted({str(k).lower() for k in sensitive_keys if str(k)}))
    except TypeError:
        keys = DEFAULT_SENSITIVE_KEYS
    return keys


_DEFAULT_KEYS = tuple(sorted({k.lower() for k in DEFAULT_SENSITIVE_KEYS}))
_LATIN1_LOWER = bytes(ord(chr(code).lower()) for code in range(256))


# --- shape of a value --------------------------------------------------------

_TOKEN_PREFIX = re.compile(
    r"(?:tok|key_(?:test|live)|sk_(?:test|live)|rk_(?:test|live)|gh[pousr]|github_pat"
    r"|glpat|xox[abprs]|npm|hf)[_-][A-Za-z0-9_\-]{6,}"
)
_TOKEN_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9_\-])"
    r"(?:tok_|key_(?:test|live)_|sk_(?:test|live)_|rk_(?:test|live)_|gh[pousr]_|github_pat_"
    r"|glpat-|xox[abprs]-|npm_|hf_)"
    r"[A-Za-z0-9_\-]{6,256}+(?![A-Za-z0-9_\-])"
)
# The prefixes above spelt out, for a cheap test before the pattern runs (a pattern
# that opens with a look-behind is tried at every position of the text), grouped by
# the separator each holds, which most texts lack.
_TOKEN_PREFIXES = {
    "_": ("tok_", "key_test_", "key_live_", "sk_test_", "sk_live_", "rk_test_", "rk_live_",
          "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "npm_", "hf_"),
    "-": ("glpat-", "xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-"),
}
_AWS_KEY = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])")
_JWT = re.compile(
    r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{5,4096}+\.eyJ[A-Za-z0-9_\-]{2,16384}+"
    r"\.[A-Za-z0-9_\-]{0,4096}+(?![A-Za-z0-9_\-])"
)


def _shape_kind(value: str, default: str) -> str:
    """The kind a value's own shape tells, else `default`."""
    if _JWT.fullmatch(value):
        return "jwt"
    if _AWS_KEY.fullmatch(value):
        return "aws-access-key"
    if _TOKEN_PREFIX.fullmatch(value):
        return "token"
    return default


# Values that say "no secret here": Flink's mask, empty settings, references to
# an environment variable or another setting.
_PLACEHOLDERS = {"", "null", "none", "nil", "true", "false", "undefined", "<hidden>",
                 "<redacted>", "[redacted]", "redacted", "hidden"}


_MASK_CHARS = frozenset("*xX•")


def _is_placeholder(value: str) -> bool:
    stripped = value.strip()
    if stripped.lower() in _PLACEHOLDERS:
        return True
    # The first character settles most values without a set of all of them.
    if stripped[:1] in _MASK_CHARS and set(stripped) <= _MASK_CHARS and len(stripped) >= 3:
        return True
    return stripped.startswith("${") or stripped.startswith("{{")


# --- config keys and their values ---------------------------------------------

_IDENT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_IDENT_RUN = re.compile(r"[A-Za-z0-9_.\-]*")
_MAX_KEY = 128
_PASSWORD_WORDS = ("password", "passwd", "passphrase")
_PASSWORD_PARTS = {"pass", "pwd", "pw", "passwd", "password"}
# Credentials Flink does not mask but that are half of one (s3.access-key,
# fs.s3a.access.key) or a whole one under another name.
_EXTRA_KEY_WORDS = ("access-key", "access_key", "accesskey", "access.key", "private-key",
                    "private_key", "privatekey", "credential")
# Keys that name a setting about a secret rather than the secret itself.
_NOT_SECRET_PARTS = {
    "enabled", "enable", "type", "types", "provider", "providers", "timeout", "ttl",
    "expiry", "expires", "expiration", "length", "size", "count", "file", "path",
    "location", "algorithm", "renewal", "renewer", "policy", "mode", "format",
    "name", "names", "prefix", "required", "kind", "interval", "hint", "uri", "url",
}
# Up to 3 blanks around a key's separator.
_SPACES_AFTER_KEY = re.compile(r"[ \t]{0,3}+")


# Per-call budgets for the scanners that do Python work per candidate; only
# input made of nothing but keywords, digit groups or auth headers reaches them
# (a megabyte of `password=`), and stopping there is logged.
_MAX_KEY_HITS = 20_000
_MAX_CARD_TOKENS = 50_000
_MAX_ZK_PACKETS = 10_000


@functools.lru_cache(maxsize=32)
def _key_words(keys: tuple[str, ...]) -> tuple[bytes, ...]:
    """The keywords a key is found by, as Latin-1 bytes, longest first.

    A key with a character outside Latin-1 can never be in Latin-1 text, so it
    is left out; one that lower-cases to another key is kept once."""
    words = set()
    for word in set(keys) | set(_EXTRA_KEY_WORDS) | {"pass", "pwd"}:
        try:
            words.add(word.encode("latin-1"))
        except UnicodeEncodeError:
            continue
    return tuple(sorted(words, key=len, reverse=True))


@functools.lru_cache(maxsize=32)
def _key_hit_pattern(keys: tuple[str, ...]) -> re.Pattern[bytes]:
    # Matched against a lower-cased copy: an IGNORECASE alternation is ~50x slower.
    # At one position the longest keyword wins (the alternation is longest first).
    return re.compile(b"|".join(re.escape(w) for w in _key_words(keys)))


@functools.lru_cache(maxsize=32)
def _key_hit_automaton(keys: tuple[str, ...]):
    words = _key_words(keys)
    # The hits are listed ahead only where every keyword is made of identifier
    # characters (see _key_hit_finder); a caller's own key may not be.
    if ahocorasick_rs is None or not all(_IDENT_BYTES.issuperset(w) for w in words):
        return None
    return ahocorasick_rs.BytesAhoCorasick(
        words, matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST)


_IDENT_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
# The listed hits are made a window at a time, so a stream of nothing but
# keywords holds a window's worth of them, not a stream's.
_HIT_WINDOW = 65536


def _key_hit_finder(lowered: bytes, keys: tuple[str, ...]) -> Callable[[int], tuple[int, int]]:
    """A function giving [start, end) of the first keyword hit at or after a position
    ((-1, -1) when there is none), at one position the longest keyword. The
    positions it is asked for never decrease and never fall inside an identifier
    around a hit it gave.

    Replaces `_key_hit_pattern(keys).search(lowered, position)` (still used where
    ahocorasick_rs is missing): an Aho-Corasick automaton (ahocorasick_rs, in
    Rust) lists the hits in one pass, 19 ms where the searches took 300 ms on the
    27.5 MB the 100 MB capture scans. It lists them leftmost first, each from the
    end of the one before; a keyword is made of identifier characters, so a hit
    that starts before a position at the end of an identifier also ends before
    it, and the first listed hit at or after that position is the one a search
    from there finds.
    """
    automaton = _key_hit_automaton(keys)
    if automaton is None:
        pattern = _key_hit_pattern(keys)

        def search_from(position: int) -> tuple[int, int]:
            hit = pattern.search(lowered, position)
            return (-1, -1) if hit is None else hit.span()

        return search_from

    hits = _listed_hits(automaton, lowered, len(_key_words(keys)[0]))
    hit: tuple[int, int, int] | None = (-1, -1, -1)

    def first_from(position: int) -> tuple[int, int]:
        nonlocal hit
        while hit is not None and hit[1] < position:
            hit = next(hits, None)
        return (-1, -1) if hit is None else hit[1:]

    return first_from


def _listed_hits(automaton, lowered: bytes, longest: int) -> Iterator[tuple[int, int, int]]:
    """(word index, start, end) of the automaton's hits in `lowered`."""
    # A window reaches `longest - 1` bytes past its stop, so a keyword that starts
    # before the stop is whole in it and the hits that start there are the ones a
    # pass over all of `lowered` gives.
    view = memoryview(lowered)
    start = 0
    while start < len(lowered):
        stop = start + _HIT_WINDOW
        following = stop
        for word, hit_start, hit_end in automaton.find_matches_as_indexes(
                view[start:stop + longest - 1]):
            if start + hit_start >= stop:
                break
            yield word, start + hit_start, start + hit_end
            following = max(stop, start + hit_end)
        start = following


_KEY_PARTS = re.compile(r"[._\-]")
# A serialized class descriptor writes a field name and then its type as a
# TC_STRING (`fencingToken` + `Ljava/io/Serializable;`), which reads like a map entry.
_JVM_DESCRIPTOR = re.compile(r"\[{0,255}+(?:[BCDFIJSZ]|L[A-Za-z0-9_$/]{1,256}+;)")


@functools.lru_cache(maxsize=4096)
def _key_qualifies(key: str, keys: tuple[str, ...]) -> bool:
    lowered = key.lower()
    parts = [p for p in _KEY_PARTS.split(lowered) if p]
    if not parts or parts[-1] in _NOT_SECRET_PARTS:
        return False
    if any(k in lowered for k in keys) or any(k in lowered for k in _EXTRA_KEY_WORDS):
        return True
    return any(p in _PASSWORD_PARTS for p in parts)


@functools.lru_cache(maxsize=4096)
def _key_kind(key: str) -> str:
    lowered = key.lower()
    parts = set(_KEY_PARTS.split(lowered))
    if any(w in lowered for w in _PASSWORD_WORDS) or parts & _PASSWORD_PARTS:
        return "password"
    if "." in lowered:
        return "config-secret"
    if any(w in lowered for w in ("apikey", "api-key", "api_key")):
        return "api-key"
    if "token" in lowered:
        return "token"
    return "config-secret"


class _Value(NamedTuple):
    start: int
    end: int
    text: str
    form: str       # "=", ":", "json", "rest", "arg" or "binary": how the key set it
    quoted: bool
    key_end: int


def _scan_config_keys(text: str, lowered: bytes, keys: tuple[str, ...]) -> Iterator[Secret]:
    first_hit_from = _key_hit_finder(lowered, keys)
    length = len(text)
    position = 0
    # Only hits that give nothing use up the budget: findings are bounded by the
    # caller's max_findings already, and real Flink streams give few empty hits.
    budget = _MAX_KEY_HITS
    # Hits inside a value just read are over-capture of that value
    # (`pwd=pwd=pwd=...`), not keys of their own, and skipping them saves work.
    skip_until = 0
    while position < length:
        if budget <= 0:
            log.warning("config-key scan stopped after %d keyword hits without a value",
                        _MAX_KEY_HITS)
            raise _Stopped(position)
        hit_start, hit_end = first_hit_from(position)
        if hit_start < 0:
            return
        budget -= 1
        start = hit_start
        while start > 0 and text[start - 1] in _IDENT_CHARS and hit_start - start < _MAX_KEY:
            start -= 1
        end = _IDENT_RUN.match(text, hit_end).end()
        position = end
        if hit_start < skip_until:
            continue
        # One test settles the hits after no StringValue key (38,000 on the 100 MB capture).
        inside = (_string_value_pair(text, start, hit_end, end)
                  if start > 0 and hit_end < start + ord(text[start - 1]) <= end + 1 else None)
        value = None
        if inside is not None:
            end = inside.key_end
        # Otherwise an identifier too long to be a key; `position` already skips all of it.
        if inside is not None or not ((start > 0 and text[start - 1] in _IDENT_CHARS)
                                      or end - start > _MAX_KEY):
            key = _clean_key(text, start, end)
            if key and _key_qualifies(key, keys):
                value = inside or _value_after_key(text, start, end)
        if value is None and end - start > _SHORTEST_RUN_WITH_PREFIX:
            framed = _key_framed_in_run(text, start, hit_start, hit_end, end)
            if framed is not None:
                start, value = framed
                end = value.key_end
                key = _clean_key(text, start, end)
                if not key or not _key_qualifies(key, keys):
                    value = None
        if value is None:
            continue
        if value.form in ("=", "arg", "json", "binary"):
            # Such a value is one word or one string: a keyword inside it (the
            # value of db.password may well contain "pass") is no key of its own.
            # A quoted or line value may hold settings of its own (a JAAS line's
            # password="..."), so keys inside those are still read.
            skip_until = value.end
        if _is_placeholder(value.text):
            continue
        if value.form == "binary" and _JVM_DESCRIPTOR.fullmatch(value.text):
            continue
        if value.key_end != end:
            key = _clean_key(text, start, value.key_end)
        budget += 1
        yield Secret(
            kind=_shape_kind(value.text, _key_kind(key)),
            value=value.text,
            offset=value.start,
            context=_key_context(key, value.form),
            end=value.end,
        )


def _clean_key(text: str, start: int, end: int) -> str:
    """The key proper: without the dashes of an option and the -D of a JVM property."""
    key_start = start
    while key_start < end and text[key_start] == "-":
        key_start += 1
    if key_start > start and text[key_start:key_start + 1] == "D" and "." in text[key_start:end]:
        key_start += 1
    while end > key_start and text[end - 1] in ".-":
        end -= 1
    return text[key_start:end]


def _key_context(key: str, form: str) -> str:
    if form in ("binary", "rest") or "." in key:
        return f"key {key}"
    if form == "arg":
        return f"--{key}"
    if form == "json":
        return f'"{key}":'
    return f"{key}{form}"


_REST_VALUE = re.compile(r',[ \t]{0,3}"value"[ \t]{0,3}:[ \t]{0,3}"')
_NEXT_STRING = re.compile(r',[ \t]{0,3}"')
# Where an unquoted value ends, per notation; bounded, so a scan costs at most
# MAX_VALUE characters, in C.
_UNQUOTED = {
    "=": re.compile(r"[^ \t\r\n&;,\"'<>|\x00]{0,512}+"),
    "json": re.compile(r"[^ \t\r\n,}\]\"\x00]{0,512}+"),
    "arg": re.compile(r"[^ \t\r\n\"'\x00]{0,512}+"),
    ":": re.compile(r"[^\r\n\x00]{0,512}+"),
}


def _value_after_key(text: str, start: int, end: int) -> _Value | None:
    """The value that the key at [start, end) sets, in whichever notation follows it."""
    length = len(text)
    quote = text[start - 1] if start > 0 and text[start - 1] in "\"'" else ""
    position = end
    if quote and position < length and text[position] == quote:
        position += 1
    position = _SPACES_AFTER_KEY.match(text, position).end()
    if position >= length:
        return None
    separator = text[position]
    # A program argument (`--db.password s3cr3t`) sets the next word, and in the
    # REST run request the next string of programArgsList.
    dashed = text[start] == "-"

    if quote == '"' and separator == ",":
        # Flink's REST config listing: {"key":"<name>","value":"<value>"}
        rest = _REST_VALUE.match(text, position)
        if rest is not None:
            quoted = _quoted(text, rest.end() - 1)
            return None if quoted is None else _Value(*quoted, "rest", True, end)
        argument = _NEXT_STRING.match(text, position) if dashed else None
        if argument is not None:
            quoted = _quoted(text, argument.end() - 1)
            if quoted is not None and not quoted[2].startswith("-"):
                return _Value(*quoted, "arg", True, end)
        return None

    if dashed and not quote and separator not in "=:\"'" and position > end:
        value_end = _UNQUOTED["arg"].match(text, position).end()
        value = text[position:value_end]
        if value and not value.startswith("-"):
            return _Value(position, value_end, value, "arg", False, end)
        return None

    if separator not in "=:":
        return _binary_value(text, start, end)

    position += 1
    if separator == ":" and position < length and text[position] == "=":
        position += 1
    position = _SPACES_AFTER_KEY.match(text, position).end()
    if position >= length:
        return None
    form = "json" if quote == '"' and separator == ":" else separator
    if text[position] in "\"'":
        quoted = _quoted(text, position)
        if quoted is None:
            return None
        return _Value(*quoted, form, True, end)
    if text[position] in "[{":  # a JSON/YAML structure, not a value
        return None

    value_end = _UNQUOTED[form].match(text, position).end()
    wire = text[position:value_end]
    if form != ":":
        value = _url_decoded(wire) if form == "=" else wire
    else:
        # `key: value` runs to the end of the line (YAML, properties, headers)
        if " #" in wire:  # a YAML comment after the value
            wire = wire[:wire.index(" #")]
        wire = wire.rstrip(" \t")
        value_end = position + len(wire)
        value = wire
    if not value:
        return None
    return _Value(position, value_end, value, form, False, end)


def _binary_value(text: str, start: int, end: int) -> _Value | None:
    """The value string that follows a length-prefixed key string, if there is one.

    Java serialization writes a String as `74 <u16 length> bytes` (TC_STRING),
    DataOutput.writeUTF as `<u16 length> bytes`, Flink's StringValue as a varint
    of length + 1, and Flink's Configuration.write puts a type byte (0 = String)
    between a key and its StringValue value. A key counts only when its own
    length prefix matches it exactly, which keeps prose ("password\nis wrong")
    out and tells where the key ends: the `t` of the value's TC_STRING is a
    letter, so it reads as part of the key.
    """
    for key_length, notation in _declared_lengths(text, start):
        key_end = start + key_length
        if key_end > end or text[key_end:end] not in ("", "t"):
            continue
        value = _prefixed_string(text, key_end, notation)
        if value is not None:
            return _Value(*value, "binary", True, key_end)
    return None


def _string_value_pair(text: str, start: int, hit_end: int, end: int) -> _Value | None:
    """The StringValue after a StringValue key, read before any text notation is tried.

    The value's length byte can be anything: a letter, digit, `-`, `.` or `_` (values of
    44-57, 64-89, 94 or 96-121 chars) carries the key's identifier run on into the value,
    `=` or `:` (60 or 57 chars) reads as a text separator, a blank (31 or 8) is skipped as
    one. The key's own length prefix says where the key ends; it must not cut the keyword.
    """
    key_end = start + ord(text[start - 1]) - 1 if start > 0 else -1
    if not (hit_end <= key_end <= end and 1 <= key_end - start <= 0x7E):
        return None
    value = _prefixed_string(text, key_end, "varint")
    return None if value is None else _Value(*value, "binary", True, key_end)


# A length byte that is an identifier character (`-` = 45 and up) frames a key of 44+
# chars, so a shorter run holds no such byte.
_SHORTEST_RUN_WITH_PREFIX = 44
# Candidate key starts read per hit: each costs a value read, and a hostile run can hold
# one at every position.
_MAX_PREFIX_TRIES = 4


def _key_framed_in_run(text: str, start: int, hit_start: int, hit_end: int,
                       end: int) -> tuple[int, _Value] | None:
    """(key start, value) of a length-prefixed key whose length byte the walk back from
    the keyword took into the key's run: a StringValue length or the low byte of a u16
    (writeUTF, TC_STRING) that is a letter, digit, `-`, `.` or `_` frames a key of 44-122
    chars, and the tail of the string before it (`1024m`) joins the run too. A byte counts
    only when the length it declares ends at the key's end; the nearest to the keyword
    whose value reads is taken: a digit in the string before (`1024m`) frames the same
    key end more often than a char of the key itself does."""
    tries = _MAX_PREFIX_TRIES
    for key_start in range(hit_start, start, -1):
        declared = ord(text[key_start - 1])
        if hit_end <= key_start + declared - 1 <= end:  # StringValue: length + 1
            tries -= 1
            value = _string_value_pair(text, key_start, hit_end, end)
            if value is not None:
                return key_start, value
        if (key_start >= 2 and text[key_start - 2] == "\x00"
                and end - 1 <= key_start + declared <= end):
            tries -= 1
            value = _binary_value(text, key_start, end)
            if value is not None:
                return key_start, value
        if tries <= 0:
            break
    return None


def _declared_lengths(text: str, start: int) -> list[tuple[int, str]]:
    """(length, notation) pairs the bytes before `start` could be a prefix of."""
    lengths = []
    if start >= 2:
        lengths.append(((ord(text[start - 2]) << 8) | ord(text[start - 1]), "u16"))
    if start >= 1 and 2 <= ord(text[start - 1]) < 0x80:
        lengths.append((ord(text[start - 1]) - 1, "varint"))  # StringValue: length + 1
    return [(n, notation) for n, notation in lengths if 1 <= n <= _MAX_KEY]


def _prefixed_string(text: str, position: int, notation: str) -> tuple[int, int, str] | None:
    """(start, end, value) of the string at `position`, prefixed the way the key was.

    [start, end) is the wire form a redactor must mask, which for a StringValue with
    characters past ASCII is longer than the value. A writer uses one notation for a key
    and its value, and asking for the key's notation settles bytes that read both ways
    (`00 09` is a u16 length of 9 and also a type byte plus a StringValue length of 8).
    """
    length = len(text)
    if notation == "varint":
        # Configuration.write: type byte 0 (String), then the StringValue. Read from
        # the 0 itself, a StringValue would be the null string, so that is no second try.
        return _string_value(text, position + (text[position:position + 1] == "\x00"))
    candidates = []
    if position + 3 <= length and text[position] == "t":
        candidates.append((position + 3,
                           (ord(text[position + 1]) << 8) | ord(text[position + 2])))
    if position + 2 <= length:
        candidates.append((position + 2, (ord(text[position]) << 8) | ord(text[position + 1])))
    for value_start, value_length in candidates:
        value_end = value_start + value_length
        if 1 <= value_length <= MAX_VALUE and value_end <= length:
            value = _modified_utf8(text[value_start:value_end])
            if value is not None:
                return value_start, value_end, value
    return None


def _modified_utf8(wire: str) -> str | None:
    """The string writeUTF framed as `wire` (Latin-1, a char a byte), or None when it is
    no printable string. Read as UTF-8, so chars whose bytes include 0x80-0x9F (ł = C5 82,
    € = E2 82 AC) and tabs or line breaks (framed by the length, so no prose) are kept; a
    surrogate pair, as Java writes a char past U+FFFF, is joined. Bytes that are no UTF-8
    are kept as Latin-1 when printable, as before."""
    try:
        value = (wire.encode("latin-1").decode("utf-8", "surrogatepass")
                 .encode("utf-16-le", "surrogatepass").decode("utf-16-le"))
    except UnicodeError:
        return wire if _is_printable(wire) else None
    if all(c in "\t\n\r" or c.isprintable() for c in value):
        return value
    return wire if _is_printable(wire) else None


# The most bytes a StringValue of MAX_VALUE chars takes: a length varint, 3 bytes a char.
_STRING_VALUE_WINDOW = 5 + MAX_CHAR_BYTES * MAX_VALUE


def _string_value(text: str, position: int) -> tuple[int, int, str] | None:
    """(start, end, value) of the Flink StringValue at `position`: its length is a varint
    of any width and a char past ASCII takes 2-3 bytes, so the value is decoded (at most
    MAX_VALUE chars) and [start, end) covers all its bytes. A tab or line break in it is
    kept: the key's length and the value's frame it, which prose does not."""
    window = text[position:position + _STRING_VALUE_WINDOW].encode("latin-1")
    got = read_string_value(window, 0, len(window), max_chars=MAX_VALUE)
    if got is None or not got[0]:
        return None
    value, end = got
    start = read_varint(window, 0, len(window), max_bytes=5)[1]
    return position + start, position + end, value


def _is_printable(value: str) -> bool:
    return all(" " <= c <= "~" or c >= "\xa0" for c in value)


_QUOTED = {
    '"': re.compile(r'"((?:[^"\\\r\n]|\\[^\r\n]){1,512}+)"'),
    "'": re.compile(r"'((?:[^'\\\r\n]|\\[^\r\n]){1,512}+)'"),
}


def _quoted(text: str, position: int) -> tuple[int, int, str] | None:
    """(start, end, unescaped value) of the quoted string whose quote is at `position`."""
    match = _QUOTED[text[position]].match(text, position)
    if match is None:
        return None
    raw = match.group(1)
    value = raw
    if "\\" in raw:
        value = raw.replace('\\"', '"').replace("\\'", "'").replace("\\\\", "\\")
    return match.start(1), match.end(1), value




def _url_decoded(value: str) -> str:
    if "%" not in value and "+" not in value:
        return value
    try:
        return urllib.parse.unquote_plus(value, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        return value


# --- line protocols: FTP / POP3, IMAP, SASL ------------------------------------

_USER_PASS = re.compile(r"(?im)^(USER|PASS)[ ]([^\r\n]{1,256}+)")
_POP3_ONLY = re.compile(r"(?im)^(?:CAPA|UIDL|STAT|APOP|STLS|TOP [0-9])")
_IMAP_ATOM = r"(?:\"(?:[^\"\\\r\n]|\\.){0,256}+\"|[^\s\"(){]{1,256}+)"
_IMAP_LOGIN = re.compile(
    r"(?im)^[A-Za-z0-9.]{1,32}+[ ]LOGIN[ ](" + _IMAP_ATOM + r")[ ](" + _IMAP_ATOM + r")"
)
_SASL = re.compile(
    r"(?im)^(?:[A-Za-z0-9.]{1,32}+[ ])?(?:AUTH|AUTHENTICATE)[ ](PLAIN|LOGIN)"
    r"(?:[ ]([A-Za-z0-9+/=]{4,1024}+))?[ \t]{0,8}+\r?\n"
)
_B64_LINE = re.compile(r"([A-Za-z0-9+/=]{4,1024}+)[ \t]{0,8}+\r?\n")


def _scan_line_logins(text: str, lowered: bytes, keys: tuple[str, ...]) -> Iterator[Secret]:
    # A cheap substring test first: most streams hold none of these protocols.
    has_pass = b"pass " in lowered
    # USER/PASS is FTP's and POP3's; commands only POP3 has tell the two apart.
    context = "POP3 PASS" if has_pass and _POP3_ONLY.search(text) else "FTP PASS"
    username = None
    for match in _USER_PASS.finditer(text) if has_pass else ():
        command, argument = match.group(1).upper(), match.group(2)
        if command == "USER":
            username = argument.strip() or None
            continue
        if argument.strip():
            yield Secret("password", argument, match.start(2), context, username,
                         end=match.end(2))
        username = None

    for match in _IMAP_LOGIN.finditer(text) if b" login " in lowered else ():
        user, password = _imap_unquote(match.group(1)), _imap_unquote(match.group(2))
        if password:
            yield Secret("password", password, match.start(2), "IMAP LOGIN", user or None,
                         end=match.end(2))

    for match in _SASL.finditer(text) if b"auth" in lowered else ():
        mechanism = match.group(1).upper()
        if mechanism == "PLAIN":
            start, end, blob = _initial_or_next_line(text, match)
            if blob is None:
                continue
            parts = blob.split(b"\x00")
            if len(parts) == 3 and parts[2]:
                yield Secret("password", parts[2].decode("latin-1"), start, "AUTH PLAIN",
                             parts[1].decode("latin-1") or None, end=end)
        else:
            yield from _sasl_login(text, match)


def _imap_unquote(atom: str) -> str:
    if len(atom) >= 2 and atom[0] == '"' and atom[-1] == '"':
        return re.sub(r"\\(.)", r"\1", atom[1:-1])
    return atom


def _initial_or_next_line(text: str, match: re.Match[str]) -> tuple[int, int, bytes | None]:
    if match.group(2):
        return match.start(2), match.end(2), _b64(match.group(2))
    line = _B64_LINE.match(text, match.end())
    if line is None:
        return -1, -1, None
    return line.start(1), line.end(1), _b64(line.group(1))


def _sasl_login(text: str, match: re.Match[str]) -> Iterator[Secret]:
    # AUTH LOGIN: the client then sends the user name and the password, each as
    # a base64 line (the server's 334 prompts travel in the other direction).
    position = match.end()
    lines = []
    if match.group(2):
        lines.append((match.start(2), match.end(2), _b64(match.group(2))))
    while len(lines) < 2:
        line = _B64_LINE.match(text, position)
        if line is None:
            return
        lines.append((line.start(1), line.end(1), _b64(line.group(1))))
        position = line.end()
    (_, _, user), (start, end, password) = lines
    if user is not None and password:
        yield Secret("password", password.decode("latin-1"), start, "AUTH LOGIN",
                     user.decode("latin-1") or None, end=end)


def _b64(blob: str) -> bytes | None:
    try:
        return base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


# --- HTTP ----------------------------------------------------------------------

_AUTHORIZATION = re.compile(
    r"(?im)^((?:Proxy-)?Authorization):[ \t]{0,16}+([A-Za-z][A-Za-z0-9_\-]{0,31}+)"
    r"[ \t]{1,16}+([^\s]{1,4096}+)"
)
_COOKIE = re.compile(r"(?im)^Cookie:[ \t]{0,16}+([^\r\n]{1,8192}+)")
_SET_COOKIE = re.compile(r"(?im)^Set-Cookie:[ \t]{0,16}+([^=;\r\n]{1,256}+)=([^;\r\n]{1,4096}+)")
_COOKIE_PAIR = re.compile(r"[ \t]{0,8}+([^=;\r\n]{1,256}+)=([^;\r\n]{0,4096}+)")
# Analytics cookies identify a browser, not a session; they are noise in a list
# of what an eavesdropper could reuse.
_ANALYTICS_COOKIES = ("__utm", "_ga", "_gid", "_gat", "_fbp", "_hj")


def _scan_http(text: str, lowered: bytes, keys: tuple[str, ...]) -> Iterator[Secret]:
    for match in _AUTHORIZATION.finditer(text) if b"authorization:" in lowered else ():
        header, scheme, credentials = match.group(1), match.group(2), match.group(3)
        start, end = match.span(3)
        scheme_name = scheme.lower()
        context = f"{header}: {scheme}"
        if scheme_name == "basic":
            decoded = _b64(credentials)
            if decoded is not None and b":" in decoded:
                user, _, password = decoded.decode("latin-1").partition(":")
                yield Secret("basic-auth", password, start, context, user or None, end=end)
            else:
                yield Secret("basic-auth", credentials, start, context, end=end)
        elif scheme_name == "bearer":
            yield Secret(_shape_kind(credentials, "bearer-token"), credentials, start, context,
                         end=end)
        elif scheme_name not in ("digest", "negotiate", "ntlm", "mutual", "hoba", "vapid"):
            yield Secret(_shape_kind(credentials, "token"), credentials, start, context, end=end)

    has_cookie = b"cookie:" in lowered
    for match in _COOKIE.finditer(text) if has_cookie else ():
        line_start = match.start(1)
        for pair in _COOKIE_PAIR.finditer(match.group(1)):
            name, value = pair.group(1).strip(), pair.group(2).strip()
            if not value or name.startswith(_ANALYTICS_COOKIES):
                continue
            raw = pair.group(2)
            value_start = line_start + pair.start(2) + len(raw) - len(raw.lstrip())
            yield Secret(_shape_kind(value, "cookie"), value, value_start, f"Cookie: {name}",
                         end=value_start + len(value))

    for match in _SET_COOKIE.finditer(text) if has_cookie else ():
        name, value = match.group(1).strip(), match.group(2).rstrip()
        if not value or _is_placeholder(value) or name.startswith(_ANALYTICS_COOKIES):
            continue
        yield Secret(_shape_kind(value, "cookie"), value, match.start(2), f"Set-Cookie: {name}",
                     end=match.start(2) + len(value))


# --- credentials inside URLs and ZooKeeper auth packets ------------------------

_USERINFO = r"([^\s:/@?#\"'<>]{1,128}+):([^\s/@?#\"'<>]{1,256}+)@(?=[A-Za-z0-9\[])"
_URL_USERINFO = re.compile(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]{0,30}+)://" + _USERINFO)
_USERINFO_AFTER_SCHEME = re.compile(_USERINFO)
# ZooKeeper AuthPacket (xid -4, type 100): scheme "digest", then the buffer "user:password"
_ZK_DIGEST = "\x00\x00\x00\x06digest"


_SCHEME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-")


def _anchored(pattern: re.Pattern[str], text: str, anchor: str, run_chars: frozenset,
              longest: int, follows: re.Pattern[str] | None = None) -> Iterator[re.Match]:
    """What `pattern.finditer(text)` gives, for a pattern that opens with a look-behind
    and then a run of `run_chars` (1 to `longest` of them, possessive) followed by
    `anchor` and then what `follows` matches: each `anchor` is found with a search
    in C, and the pattern is tried only where the run before it starts, instead of
    at every position."""
    position = 0
    mark = text.find(anchor)
    while mark >= 0:
        if follows is not None and follows.match(text, mark + len(anchor)) is None:
            # Most anchors are not followed by what the pattern needs after them
            # (pekko.tcp://flink@host has no password): one test in C settles them.
            mark = text.find(anchor, mark + 1)
            continue
        start = mark
        while start > 0 and text[start - 1] in run_chars and mark - start <= longest:
            start -= 1
        # The look-behind lets the pattern start only where the run starts, and
        # finditer only at or after the end of the last match.
        if start >= position and 0 < mark - start <= longest:
            match = pattern.match(text, start)
            if match is not None:
                yield match
                position = match.end()
                mark = text.find(anchor, position)
                continue
        mark = text.find(anchor, mark + 1)


def _scan_urls_and_zookeeper(text: str, lowered: bytes, keys: tuple[str, ...]) -> Iterator[Secret]:
    for match in _anchored(_URL_USERINFO, text, "://", _SCHEME_CHARS, 31,
                           _USERINFO_AFTER_SCHEME):
        scheme, user, password = match.groups()
        value = _url_decoded(password)
        if _is_placeholder(value):
            continue
        yield Secret("password", value, match.start(3), f"{scheme.lower()}:// user:password",
                     _url_decoded(user), end=match.end(3))

    position = text.find(_ZK_DIGEST)
    budget = _MAX_ZK_PACKETS
    while position >= 0 and budget > 0:
        budget -= 1
        length_at = position + len(_ZK_DIGEST)
        auth = text[length_at:length_at + 4]
        if len(auth) == 4:
            length = int.from_bytes(auth.encode("latin-1"), "big")
            start = length_at + 4
            blob = text[start:start + length] if 3 <= length <= 1024 else ""
            if len(blob) == length and ":" in blob and _is_printable(blob):
                user, _, password = blob.partition(":")
                if password:
                    yield Secret("password", password, start + len(user) + 1,
                                 "ZooKeeper digest auth", user or None, end=start + length)
        position = text.find(_ZK_DIGEST, length_at)
    if position >= 0:
        log.warning("ZooKeeper auth scan stopped after %d packets", _MAX_ZK_PACKETS)
        raise _Stopped(position)


# --- shapes: tokens, AWS keys, JWTs, private keys --------------------------------

_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]{1,16}+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]{1,16}+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
_PEM_MAX = 65536


def _declared_end(text: str, start: int, end: int) -> int:
    """`end`, or the shorter end that a string length prefix right before `start` declares.

    In Java serialization the next item's type code (`t` for TC_STRING, `q`, `x`,
    ...) is a letter, so a pattern runs on past the end of the string it is in;
    a prefix is believed only in binary surroundings (a NUL high byte, or a
    control character that is not tab or line end).
    """
    if start >= 2 and text[start - 2] == "\x00":
        declared = ord(text[start - 1])
        if 0 < declared < end - start:
            return start + declared
    if start >= 1:
        prefix = ord(text[start - 1])
        if 2 <= prefix < 0x20 and prefix not in (9, 10, 13) and 0 < prefix - 1 < end - start:
            return start + prefix - 1
    return end


def _shape(pattern: re.Pattern[str], text: str, kind: str, context: str,
           matches: Iterator[re.Match] | None = None) -> Iterator[Secret]:
    for match in pattern.finditer(text) if matches is None else matches:
        start = match.start()
        end = _declared_end(text, start, match.end())
        value = text[start:end]
        if end == match.end() or pattern.fullmatch(text, start, end):
            yield Secret(kind, value, start, context, end=end)


def _holds_prefix(text: str, separator: str, prefixes: tuple[str, ...]) -> bool:
    """True when one of `prefixes` (each ending in `separator`) is in `text`.

    One C test per separator in the text, where a search per prefix reads the whole
    text 15 times; a text full of separators gets the searches instead.
    """
    if text.count(separator) > 4096:
        return any(prefix in text for prefix in prefixes)
    longest = max(map(len, prefixes))
    position = text.find(separator)
    while position >= 0:
        if text.endswith(prefixes, max(0, position + 1 - longest), position + 1):
            return True
        position = text.find(separator, position + 1)
    return False


# Lower-cased words that a JWT, an AWS key id and a PEM key each hold: where the
# pass that finds the token prefixes finds none of them, their substring tests
# and the PEM search (60 ms over the 27.5 MB the 100 MB capture scans) are skipped.
_SHAPE_WORDS = (b"aki", b"asi", b"eyj", b"private ")


@functools.cache
def _shape_automaton():
    if ahocorasick_rs is None:
        return None
    words = [prefix.encode() for group in _TOKEN_PREFIXES.values() for prefix in group]
    words += _SHAPE_WORDS
    automaton = ahocorasick_rs.BytesAhoCorasick(
        words, matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST)
    return automaton, max(map(len, words)), words


_ALL_TOKEN_PREFIXES = frozenset(p for group in _TOKEN_PREFIXES.values() for p in group)


def _token_matches(text: str, lowered: bytes, seen: set[bytes]) -> Iterator[re.Match]:
    """What `_TOKEN_IN_TEXT.finditer(text)` gives, tried only where a prefix is;
    adds to `seen` each of `_SHAPE_WORDS` found on the way.

    Replaces a test per separator in Python (_holds_prefix, 137 ms on the 31 MB
    the 100 MB capture scans, none of it holding a prefix) and then the pattern
    tried at every position: the prefixes are found by an Aho-Corasick automaton
    over the lower-cased copy (6 ms). No prefix or shape word overlaps another or
    itself (a test holds that), so the automaton, which lists hits each from the
    end of the one before, lists them all. The pattern itself then rejects a
    prefix in another case, and one inside a token already found (its look-behind).
    """
    automaton, longest, words = _shape_automaton()
    for word, start, _ in _listed_hits(automaton, lowered, longest):
        if words[word] in _SHAPE_WORDS:
            seen.add(words[word])
            continue
        match = _TOKEN_IN_TEXT.match(text, start)
        if match is not None:
            yield match


def _scan_shapes(text: str, lowered: bytes, keys: tuple[str, ...]) -> Iterator[Secret]:
    if _shape_automaton() is not None:
        seen: set[bytes] = set()
        yield from _shape(_TOKEN_IN_TEXT, text, "token", "token prefix",
                          _token_matches(text, lowered, seen))
    else:
        seen = set(_SHAPE_WORDS)
        if any(_holds_prefix(text, separator, prefixes)
               for separator, prefixes in _TOKEN_PREFIXES.items()):
            yield from _shape(_TOKEN_IN_TEXT, text, "token", "token prefix")
    if (b"aki" in seen or b"asi" in seen) and ("AKIA" in text or "ASIA" in text):
        yield from _shape(_AWS_KEY, text, "aws-access-key", "AWS access key id")
    if b"eyj" in seen and "eyJ" in text:
        yield from _shape(_JWT, text, "jwt", "JWT")
    position = 0
    while b"private " in seen:
        begin = _PEM_BEGIN.search(text, position)
        if begin is None:
            break
        close = _PEM_END.search(text, begin.end(), begin.end() + _PEM_MAX)
        # A key cut by the end of the captured head is still a leaked key.
        end = close.end() if close else min(len(text), begin.end() + _PEM_MAX)
        yield Secret("private-key", text[begin.start():end], begin.start(), begin.group(),
                     end=end)
        position = end


# --- e-mail addresses ------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])([A-Za-z0-9._%+\-]{1,64}+)@"
    r"([A-Za-z0-9\-]{1,63}+(?:\.[A-Za-z0-9\-]{1,63}+){1,8}+)(?![A-Za-z0-9\-])"
)


_LOCAL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")


def _scan_emails(text: str, lowered: bytes, keys: tuple[str, ...]) -> Iterator[Secret]:
    for match in _anchored(_EMAIL, text, "@", _LOCAL_CHARS, 64):
        start = match.start()
        # scheme://user@host is a URL's authority, e.g. pekko.tcp://flink@host:6123
        if text[max(0, start - 2):start] == "//":
            continue
        end = _declared_end(text, start, match.end())
        if end != match.end():
            match = _EMAIL.fullmatch(text, start, end)
            if match is None:
                continue
        if _plausible_address(match.group(1), match.group(2)):
            yield Secret("email", match.group(), start, "e-mail address", end=match.end())


@functools.lru_cache(maxsize=4096)
def _plausible_address(local: str, domain: str) -> bool:
    # Remembered: a stream repeats its addresses (the 100 MB capture has 20,000
    # e-mail findings), and this is most of the Python work per address.
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    labels = domain.split(".")
    tld = labels[-1]
    # A real top-level domain is letters in one case; "w@7.RjH" is noise
    # (found in TLS ciphertext, for one).
    if not (2 <= len(tld) <= 24 and tld.isalpha() and (tld.islower() or tld.isupper())):
        return False
    return not any(not label or label[0] == "-" or label[-1] == "-" for label in labels)


# --- payment card numbers ---------------------------------------------------------

# A phrase: digit groups joined by single spaces or dashes, as long as it goes.
_NUMBER_PHRASE = re.compile(r"[0-9]++(?:[ \-][0-9]++)*+")
# Where a phrase of 13 characters or more can start: a digit, then 12 more phrase
# characters. Such a run is looked for with bytes.find over a copy in which every
# phrase character is "0" (it skips 13 bytes a step where nothing matches), and
# only its first digit is then found with a pattern: the pattern searched for
# from every position took 187 ms over the 27.5 MB the 100 MB capture scans, the
# copy and the finds take 35 ms.
_PHRASE_CLASSES = bytes(0x30 if chr(code) in "0123456789 -" else 0x78 for code in range(256))
_LONG_PHRASE_RUN = b"0" * 13
_PHRASE_RUN = re.compile(r"[0-9 \-]*+")
_DIGIT = re.compile(r"[0-9]")
_CARD_GROUPS = {
    (4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 4, 4, 4, 2), (4, 4, 4, 4, 1), (4, 4, 4, 1),
    (4, 4, 4, 2), (4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 5, 6), (5, 5, 5, 4),
}
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_CARD_FIRST_DIGITS = "23456"


def _scan_cards(text: str, lowered: bytes, keys: tuple[str, ...]) -> Iterator[Secret]:
    budget = [_MAX_CARD_TOKENS]
    classes = lowered.translate(_PHRASE_CLASSES)
    position = 0
    while True:
        # The leftmost candidate at or after the end of the last phrase is always the
        # first digit of a phrase: had the phrase begun earlier, the candidate would
        # have matched there, since all of the phrase is made of the candidate's
        # characters. So the phrases read are the ones a scan of every number gives.
        run_start = classes.find(_LONG_PHRASE_RUN, position)
        if run_start < 0:
            return
        # A candidate is a digit with 12 more phrase characters after it: in this
        # run, any digit up to 13 characters before its end.
        run_end = _PHRASE_RUN.match(text, run_start).end()
        candidate = _DIGIT.search(text, run_start, run_end - 12)
        if candidate is None:
            position = run_end
            continue
        phrase = _NUMBER_PHRASE.match(text, candidate.start())
        start, end = phrase.span()
        position = end
        if end - start < 13:
            continue
        if not _stands_alone(text, start, end):
            continue
        number = phrase.group()
        if number[0] not in _CARD_FIRST_DIGITS and " " not in number:
            # One token that cannot open a card (most are 13-digit epoch milliseconds):
            # what _cards_in_phrase would do with it, without its Python work.
            budget[0] -= 1
        else:
            yield from _cards_in_phrase(number, start, budget)
        if budget[0] <= 0:
            log.warning("card scan stopped after %d digit groups", _MAX_CARD_TOKENS)
            # Cards of this phrase past the budget were not read.
            raise _Stopped(start)


def _stands_alone(text: str, start: int, end: int) -> bool:
    """Not glued to letters, digits or a decimal/ID continuation on either side."""
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if before in _ID_CHARS or after in _ID_CHARS:
        return False
    if before in ".,-:/" and start >= 2 and text[start - 2].isdigit():
        return False
    if after in ".,-:/" and end + 1 < len(text) and text[end + 1].isdigit():
        return False
    return True


_TOKEN = re.compile(r"[^ ]++")


def _cards_in_phrase(phrase: str, base: int, budget: list[int]) -> Iterator[Secret]:
    # Spaces separate numbers as well as the groups of one number, so a
    # space-separated phrase is tried window by window. A dash joins one token
    # (a grouped card, an ID, a date), so a dash token is taken whole or not at all.
    if " " not in phrase:
        tokens = [(0, phrase)]
    else:
        tokens = [(m.start(), m.group())
                  for m in itertools.islice(_TOKEN.finditer(phrase), max(0, budget[0]))]
    sizes = [len(token) if "-" not in token else -1 for _, token in tokens]
    index = 0
    count = len(tokens)
    while index < count:
        budget[0] -= 1
        if budget[0] <= 0:
            return
        width = _card_window(tokens, sizes, index)
        if width:
            first, last = tokens[index], tokens[index + width - 1]
            digits = "".join(token for _, token in tokens[index:index + width]).replace("-", "")
            yield Secret("card-number", digits, base + first[0], "card number",
                         end=base + last[0] + len(last[1]))
            index += width
        else:
            index += 1


def _card_window(tokens: list[tuple[int, str]], sizes: list[int], index: int) -> int:
    """How many tokens from `index` on form a card number (0: none starts here)."""
    token = tokens[index][1]
    if token[0] not in _CARD_FIRST_DIGITS:
        return 0
    if sizes[index] < 0:
        groups = tuple(len(g) for g in token.split("-"))
        if groups in _CARD_GROUPS and luhn_valid(token.replace("-", "")):
            return 1
        return 0
    if 13 <= sizes[index] <= 16:
        # Ungrouped 17-19 digit numbers are far more often Java longs (ids,
        # sequence numbers near 2**62) than the rare 19-digit cards.
        return 1 if luhn_valid(token) else 0
    for width in (5, 4, 3):
        groups = tuple(sizes[index:index + width])
        if len(groups) == width and groups in _CARD_GROUPS:
            digits = "".join(t for _, t in tokens[index:index + width])
            if luhn_valid(digits):
                return width
    return 0


_SCANNERS: tuple[Callable[[str, bytes, tuple[str, ...]], Iterator[Secret]], ...] = (
    _scan_line_logins,
    _scan_http,
    _scan_urls_and_zookeeper,
    _scan_config_keys,
    _scan_shapes,
    _scan_emails,
    _scan_cards,
)

# Scanners whose secrets come in offset order (one pass, left to right), so one cut
# at `max_findings` has missed only secrets that start later.
_IN_OFFSET_ORDER = frozenset({_scan_emails, _scan_cards})

# The longest span a scanner returns: a PEM key (its BEGIN line, at most 84
# characters, then up to _PEM_MAX to the end of its END line). A JWT is at most
# 24,584 characters, an Authorization or Cookie value 8,192, a config value 1,024.
MAX_SPAN = 84 + _PEM_MAX

# Words without one of which a scanner can find nothing; it still tests for the
# longer words it needs ("authorization:", " login "). The scanners that test for
# them most often find none: one automaton pass over the 27.5 MB the 100 MB capture
# scans takes 3 ms, the five substring tests took 68 ms. No word overlaps another
# or itself (a test holds that), so the automaton, which lists each hit from the
# end of the one before, finds every word that is there.
_GATE_WORDS = (b"pass ", b"login ", b"auth", b"cookie:")
_GATES = {
    _scan_line_logins: frozenset({b"pass ", b"login ", b"auth"}),
    _scan_http: frozenset({b"auth", b"cookie:"}),
}


@functools.cache
def _gate_automaton():
    if ahocorasick_rs is None:
        return None
    return ahocorasick_rs.BytesAhoCorasick(
        _GATE_WORDS, matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST)


def _gate_words_in(lowered: bytes) -> set[bytes]:
    """Which of `_GATE_WORDS` are in `lowered`."""
    automaton = _gate_automaton()
    if automaton is None:
        return {word for word in _GATE_WORDS if word in lowered}
    present = set()
    for word, _, _ in _listed_hits(automaton, lowered, max(map(len, _GATE_WORDS))):
        present.add(_GATE_WORDS[word])
        if len(present) == len(_GATE_WORDS):
            break
    return present
