"""Tests of redaction: no output of redact/redact_text holds a complete secret."""

import json
import pathlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from flinkwire.leakage.redact import redact, redact_text
from flinkwire.leakage.scan import find_secrets, readable_runs

DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "leakage"


def test_password_keeps_a_few_characters():
    masked = redact("hunter2")
    assert "hunter2" not in masked
    assert masked.startswith("h") and masked.endswith("2") and "…" in masked
    assert redact("correct-horse-battery") == "cor…ery"
    assert redact("correct-horse-battery", keep=1) == "c…y"


def test_keep_is_bounded_by_a_quarter_of_the_value():
    assert redact("abcdefgh", keep=10) == "ab…gh"


def test_short_values_are_masked_whole():
    for value in ("a", "ab", "abc", "abcd", "abcde"):
        assert redact(value) == "•••"


def test_card_numbers_keep_the_last_four():
    assert redact("4111111111111111") == "•••• 1111"
    assert redact("4111 1111 1111 1111") == "•••• 1111"
    assert redact("3782-822463-10005") == "•••• 0005"


def test_emails_keep_first_character_and_domain():
    assert redact("ivan@example.com") == "i***@example.com"
    assert redact("fiona.ops@example.net") == "f***@example.net"
    assert redact("x@example.org") == "***@example.org"


def test_values_that_survive_their_own_mask_fall_back():
    assert "a***@x.org" not in redact("a***@x.org")
    assert redact("•••") == "[redacted]"
    assert redact("") == ""
    assert redact(12345678) == "12…78"  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=4, max_size=80), st.integers(min_value=-2, max_value=20))
def test_redact_never_returns_the_value(value, keep):
    masked = redact(value, keep=keep)
    assert value not in masked


def test_redact_text_masks_given_spans():
    text = "user=ops otp=493817 end"
    masked = redact_text(text, [(13, 19)])
    assert "493817" not in masked
    assert masked.startswith("user=ops otp=") and masked.endswith(" end")


def test_redact_text_finds_secrets_itself():
    text = ("GET /?password=hunter2&api_key=tok_abcdefgh12 HTTP/1.1 "
            "from ivan@example.com card 4111111111111111")
    masked = redact_text(text)
    for secret in ("hunter2", "tok_abcdefgh12", "ivan@example.com", "4111111111111111"):
        assert secret not in masked
    assert masked == ("GET /?password=h…2&api_key=tok…h12 HTTP/1.1 "
                      "from i***@example.com card •••• 1111")


def test_redact_text_masks_basic_auth_wire_form():
    text = "Authorization: Basic dGVzdDpmYWlsMg==\r\n"
    masked = redact_text(text)
    assert "dGVzdDpmYWlsMg==" not in masked
    assert masked.startswith("Authorization: Basic ")


def test_redact_text_merges_overlaps_and_ignores_bad_spans():
    text = "0123456789abcdef"
    masked = redact_text(text, [(2, 8), (5, 12), (-5, 1), (14, 99), (9, 3), ("x", 2), (1,)])
    # [0,1) and [14,16) are clipped, [2,12) merged into one; junk spans are ignored
    assert masked == "•••" + "1" + "23…ab" + "cd" + "•••"


def test_redact_text_masks_every_occurrence_of_a_found_value():
    # the password is also the user name, which no scanner reports by itself
    text = 'username: "logoff-user",\n password: "logoff-user",'
    assert "logoff-user" not in redact_text(text)
    assert "given-span" not in redact_text("x given-span y given-span", [(2, 12)])


def test_redact_text_on_odd_input():
    assert redact_text("") == ""
    assert redact_text("nothing secret here") == "nothing secret here"
    assert "hunter2" not in redact_text("pässwörd password=hunter2 ✓")


def test_snippet_cut_mid_secret_is_masked_by_the_callers_span():
    # the snippet starts inside the value, so the re-scan cannot see the key
    data = b"password=averyveryverylongsecret&x=1"
    secret = find_secrets(data)[0]
    snippet_start = secret.offset + 4
    snippet = data[snippet_start:].decode()
    start, end = secret.span
    masked = redact_text(snippet, [(start - snippet_start, end - snippet_start)])
    assert "veryverylongsecret" not in masked


CASE_FILES = sorted(DATA.glob("*.flow*.bin")) + sorted(
    p for p in DATA.glob("*.bin") if ".flow" not in p.name)


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.name)
def test_no_snippet_of_the_corpus_shows_a_secret(path):
    data = path.read_bytes()
    secrets = find_secrets(data)
    for offset, text in readable_runs(data):
        spans = [(s.span[0] - offset, s.span[1] - offset) for s in secrets
                 if s.span[0] < offset + len(text) and s.span[1] > offset]
        masked = redact_text(text, spans)
        for secret in secrets:
            if len(secret.value) >= 4:
                assert secret.value not in masked, (path.name, secret)


def test_corpus_must_find_values_never_survive_redaction():
    for expect_path in sorted(DATA.glob("*.expect.json")):
        expect = json.loads(expect_path.read_text())
        case = expect["case"]
        for wanted in expect["secrets"].get("must_find", []):
            data = (DATA / f"{case}.flow{wanted['flow']}.{wanted['direction']}.bin").read_bytes()
            masked = redact_text(data.decode("latin-1"))
            assert wanted["value"] not in masked, (case, wanted["value"])
            if "wire_form" in wanted:
                assert wanted["wire_form"] not in masked


FORMS = ["password={}", "api_key={}", '"secret": "{}"', "Authorization: Bearer {}",
         "db.password: {}", "--password {}", "PASS {}"]
PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126)


@settings(max_examples=400, deadline=None)
@given(st.text(PRINTABLE, max_size=40), st.sampled_from(FORMS),
       st.text("abcdefghijkmnopqrstuvwyzABCDEFGHIJKLMNOPQRSTUVWYZ0123456789_-", min_size=6,
               max_size=30),
       st.text(PRINTABLE, max_size=40))
def test_redact_text_hides_an_embedded_secret(prefix, form, secret, suffix):
    # an option value starting with "-" reads as the next option, not as a value
    assume(not secret.startswith("-"))
    # placeholder words are by design not secrets
    assume(secret.lower() not in {"undefined", "redacted", "hidden"})
    # the forms need a line start (PASS, Authorization) or a word start before them
    text = prefix + "\n" + form.format(secret) + "\r\n" + suffix
    assert secret not in redact_text(text)
