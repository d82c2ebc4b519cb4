"""Fuzz the secret scanners and redaction.

Inputs are the leakage test streams mutated, and text assembled from the
pieces the scanners look for (keys, carriers, prefixes, separators), so the
near-misses that stress the regular expressions come up often. Invariants:
nothing raises or is swallowed, every span lies inside the data, results are
bounded, and no redacted output holds a whole value of four or more characters.
"""

from hypothesis import given
from hypothesis import strategies as st

from fuzzing import FUZZ, DATA, mutated, no_swallowed_errors, read_seeds, target
from flinkwire.leakage.redact import redact, redact_text
from flinkwire.leakage.scan import find_secrets, readable_runs

STREAMS = [s[:16384] for s in read_seeds(sorted((DATA / "leakage").glob("*.bin")))]
PIECES = [
    "password", "passwd=", "pwd:", "secret", "token", "=", ": ", '"', "'", "\\", "%", "%3D",
    "Authorization: Basic ", "Authorization: Bearer ", "Cookie: ", "Set-Cookie: ",
    "dXNlcjpwYXNz", "user:pw@", "://", "jdbc:postgresql://", "AKIA", "ASIA", "eyJhbGciOi",
    "eyJ", ".", "-----BEGIN PRIVATE KEY-----", "-----END", "ghp_", "xoxb-", "sk_live_",
    "@example.com", "@", "4111 1111 1111 1111", "4111-1111-1111-1111", "4", "1", " ",
    "\r\n", "\n", "\t", "USER bob\r\n", "PASS ", "a1 LOGIN ", "AUTH PLAIN ", "AUTH LOGIN\r\n",
    "--", "s3.access-key", "fs.s3a.secret.key", "{\"key\":", "\"value\":", "\x00", "\x05",
    "\xac\xed\x00\x05t\x00", "******", "\xff", "é", "é", "A" * 40, "0123456789abcdef",
]
TEXT = st.lists(st.sampled_from(PIECES) | st.text(max_size=12), max_size=60).map("".join)


def _as_latin1(text: str) -> bytes:
    return text.encode("latin-1", errors="replace")


def _check_secrets(data: bytes):
    with no_swallowed_errors():
        secrets = find_secrets(data)
    assert len(secrets) <= 10_000
    for secret in secrets:
        start, end = secret.span
        assert 0 <= start <= end <= len(data), secret
        assert secret.value
    return secrets


@FUZZ
@given(data=st.one_of(mutated(STREAMS), TEXT.map(_as_latin1), st.binary(max_size=2048)))
@target("leakage: find_secrets")
def test_find_secrets(data):
    _check_secrets(data)


@FUZZ
@given(data=st.one_of(mutated(STREAMS), TEXT.map(_as_latin1)),
       min_len=st.integers(0, 40), max_runs=st.integers(-1, 50))
@target("leakage: readable_runs")
def test_readable_runs(data, min_len, max_runs):
    runs = readable_runs(data, min_len=min_len, max_runs=max_runs)
    assert len(runs) <= max(0, max_runs)
    for offset, text in runs:
        assert data[offset:offset + len(text)] == text.encode("ascii")


@FUZZ
@given(value=st.one_of(st.text(min_size=1, max_size=80), TEXT),
       keep=st.integers(-2, 40))
@target("leakage: redact")
def test_redact_never_returns_the_value(value, keep):
    shown = redact(value, keep=keep)
    if len(value) >= 4:
        assert value not in shown, (value, shown)
    assert len(shown) <= len(value) + 16


@FUZZ
@given(text=st.one_of(TEXT, mutated(STREAMS, max_mutations=3).map(lambda b: b.decode(
    "latin-1"))), spans=st.lists(st.tuples(st.integers(-5, 200), st.integers(-5, 200)),
                                 max_size=4))
@target("leakage: redact_text")
def test_redact_text_hides_what_it_finds(text, spans):
    with no_swallowed_errors():
        out = redact_text(text, spans)
    for secret in find_secrets(_as_latin1(text)):
        start, end = secret.span
        wire = text[start:end]
        if len(wire) >= 4:
            assert wire not in out, (secret, out)
    for start, end in spans:
        start, end = max(0, start), min(len(text), end)
        if end - start >= 4:
            assert text[start:end] not in out
