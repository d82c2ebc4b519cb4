"""The scanners' fast paths find exactly what the plain patterns find.

Each fast path replaces a pattern's scan of every position with a search in C for
an anchor (or a cheaper candidate pattern); these tests hold them to the plain
scan on texts built to sit at their edges: runs longer than the bound, runs that
begin inside an earlier match, separators next to each other.
"""

import re

import pytest

from hypothesis import given, settings, strategies as st

from flinkwire.leakage import scan

EMAIL_PIECES = st.sampled_from(["a", "b.", "@", "_", "%", "+", "-", "x1", " ", "\x00",
                                ".com", "@@", "..", "A" * 70])
URL_PIECES = st.sampled_from(["://", "a", "b:", "@", "x.y", "1", "+", "/", " ", "pekko.tcp",
                              "u:p@h", "s" * 40, "flink@h", ":", "p" * 130])
NUMBER_PIECES = st.sampled_from(["0", "4111", "1111", " ", "-", "a", ".", "12", "9" * 13,
                                 "4111 1111 1111 1111", "  ", "1733350000000", "4111111111111111",
                                 "4111-1111-1111-1111", " " * 13, "-" * 7, "\xb2",
                                 "4222222222222"])


def texts(pieces):
    return st.lists(pieces, max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(texts(EMAIL_PIECES))
def test_email_matches_equal_the_plain_scan(text):
    fast = [m.span() for m in scan._anchored(scan._EMAIL, text, "@", scan._LOCAL_CHARS, 64)]
    assert fast == [m.span() for m in scan._EMAIL.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(texts(URL_PIECES))
def test_url_matches_equal_the_plain_scan(text):
    fast = [m.span() for m in scan._anchored(scan._URL_USERINFO, text, "://", scan._SCHEME_CHARS,
                                             31, scan._USERINFO_AFTER_SCHEME)]
    assert fast == [m.span() for m in scan._URL_USERINFO.finditer(text)]


def plain_cards(text):
    budget = [scan._MAX_CARD_TOKENS]
    for phrase in scan._NUMBER_PHRASE.finditer(text):
        start, end = phrase.span()
        if end - start >= 13 and scan._stands_alone(text, start, end):
            yield from scan._cards_in_phrase(phrase.group(), start, budget)


@settings(max_examples=400, deadline=None)
@given(texts(NUMBER_PIECES), st.sampled_from([1, 2, 3, 5, scan._MAX_CARD_TOKENS]))
def test_card_scan_reads_the_phrases_a_scan_of_every_number_reads(text, budget):
    lowered = text.encode("latin-1").translate(scan._LATIN1_LOWER)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan, "_MAX_CARD_TOKENS", budget)
        fast = []
        try:  # a scan stopped at its budget says so, after the cards it read
            for s in scan._scan_cards(text, lowered, ()):
                fast.append((s.offset, s.span[1], s.value))
        except scan._Stopped:
            pass
        assert fast == [(s.offset, s.span[1], s.value) for s in plain_cards(text)]


def test_cards_after_short_numbers_and_separators_are_found():
    text = "12 -4111111111111111 7 4111 1111 1111 1111-x"
    found = [s.value for s in scan.find_secrets(text.encode())]
    assert found == ["4111111111111111", "4111111111111111"]


def test_a_card_inside_a_phrase_glued_to_a_word_is_not_taken_out_of_it():
    # The phrase "0 4111 ..." is glued to "a", so none of it stands alone; a scan that
    # started at the card's own first digit would see a standalone card.
    assert scan.find_secrets(b"a0 4111 1111 1111 1111") == []
    assert [s.value for s in scan.find_secrets(b"+0 4111 1111 1111 1111")] == \
        ["4111111111111111"]


def test_local_part_bound_is_64_characters():
    assert [s.value for s in scan.find_secrets(("x" * 64 + "@example.com").encode())] == \
        ["x" * 64 + "@example.com"]
    assert scan.find_secrets((" " + "x" * 65 + "@example.com").encode()) == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=12))
def test_readable_count_is_the_length_of_all_readable_runs(data, min_len):
    runs = [m for m in re.finditer(rb"[\t\n\r\x20-\x7e]+", data) if len(m.group()) >= min_len]
    assert scan.readable_count(data, min_len) == sum(len(m.group()) for m in runs)
    assert scan.readable_count(data, min_len) == sum(
        len(text) for _, text in scan.readable_runs(data, min_len, max_runs=10**6))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["tok", "_", "-", "xoxb", "gh", "p", "key", "test", "a",
                                 "glpat", "_" * 5000]), max_size=12).map("".join))
def test_prefix_test_agrees_with_a_search_per_prefix(text):
    for separator, prefixes in scan._TOKEN_PREFIXES.items():
        assert scan._holds_prefix(text, separator, prefixes) == any(p in text for p in prefixes)


KEY_PIECES = st.sampled_from(["pass", "password", "pwd", "token", "api", "key", "_", "-", ".",
                              "=", ":", " ", "x", '"', "\x00\x05", "s3cr3t", "PASS", "Pwd",
                              "private", "access", "apikey", "\n", "\xc4", "basic-auth",
                              "-params"])


def searched_hits(lowered, keys):
    pattern = scan._key_hit_pattern(keys)

    def search_from(position):
        hit = pattern.search(lowered, position)
        return (-1, -1) if hit is None else hit.span()

    return search_from


def config_findings(text, keys):
    data = text.encode("latin-1")
    return [(s.kind, s.value, s.offset, s.span[1], s.context)
            for s in scan._scan_config_keys(text, data.translate(scan._LATIN1_LOWER), keys)]


@settings(max_examples=400, deadline=None)
@given(texts(KEY_PIECES), st.sampled_from([1, 3, 8, 65536]),
       st.sampled_from([scan._DEFAULT_KEYS, ("pw", "key"), ("pässword",), ("a b", "token")]))
def test_listed_key_hits_are_the_hits_a_search_from_each_position_finds(text, window, keys):
    if scan._key_hit_automaton(scan._DEFAULT_KEYS) is None:
        pytest.skip("ahocorasick_rs is not installed: the search runs as it is")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan, "_HIT_WINDOW", window)
        listed = config_findings(text, keys)
        patch.setattr(scan, "_key_hit_finder", searched_hits)
        assert listed == config_findings(text, keys)


def test_keywords_are_found_in_latin1_text_lower_cased_as_python_does():
    assert scan._LATIN1_LOWER == bytes(range(256)).decode("latin-1").lower().encode("latin-1")
    found = scan.find_secrets("PÄSSWORD=hunter22".encode("latin-1"), sensitive_keys=("pässword",))
    assert [s.value for s in found] == ["hunter22"]


@settings(max_examples=300, deadline=None)
# "basic-auth-params" holds two keywords that overlap.
@given(st.lists(st.sampled_from(["pass", "password", "apikey", "key", "fs.azure.account.key",
                                 "api", "word", "x", "-", "basic-auth", "-params", "auth"]),
                max_size=30).map("".join),
       st.sampled_from([1, 2, 5, 19, 65536]))
def test_hits_listed_a_window_at_a_time_are_the_hits_of_one_pass(text, window):
    automaton = scan._key_hit_automaton(scan._DEFAULT_KEYS)
    if automaton is None:
        pytest.skip("ahocorasick_rs is not installed")
    lowered = text.encode()
    longest = max(map(len, scan._key_words(scan._DEFAULT_KEYS)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan, "_HIT_WINDOW", window)
        listed = [(start, end) for _, start, end in scan._listed_hits(automaton, lowered, longest)]
    assert listed == [m.span() for m in scan._key_hit_pattern(scan._DEFAULT_KEYS).finditer(lowered)]


TOKEN_PIECES = st.sampled_from(["tok_", "TOK_", "ghp_", "Ghp_", "xoxb-", "glpat-", "hf_", "npm",
                                "_", "-", "a", "Z9", "abcdef", "sk_test_", "github_pat_", " ",
                                "x" * 250, "="])


@settings(max_examples=400, deadline=None)
@given(texts(TOKEN_PIECES), st.sampled_from([1, 4, 65536]))
def test_token_matches_equal_the_plain_scan(text, window):
    if scan._shape_automaton() is None:
        pytest.skip("ahocorasick_rs is not installed: the plain scan runs")
    lowered = text.encode("latin-1").translate(scan._LATIN1_LOWER)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan, "_HIT_WINDOW", window)
        fast = [m.span() for m in scan._token_matches(text, lowered, set())]
    assert fast == [m.span() for m in scan._TOKEN_IN_TEXT.finditer(text)]


def assert_no_overlaps(words):
    # What lets an automaton's hits, each listed from the end of the one before,
    # be every place each word is.
    for first in words:
        for second in words:
            for shift in range(0 if first != second else 1, len(first)):
                tail = first[shift:]
                assert not (second.startswith(tail) or tail.startswith(second)), (first, second)


def test_no_token_prefix_or_gate_word_overlaps_another_or_itself():
    assert_no_overlaps(sorted(scan._ALL_TOKEN_PREFIXES) + [w.decode() for w in scan._SHAPE_WORDS])
    assert_no_overlaps(scan._GATE_WORDS)


GATE_PIECES = st.sampled_from(["pass", " ", "login", "LOGIN", "au", "th", "auth", "cookie", ":",
                               "Cookie:", "x", "\n", "authorization:", "pas", "s "])


@settings(max_examples=300, deadline=None)
@given(texts(GATE_PIECES), st.sampled_from([1, 3, 65536]))
def test_gate_words_are_the_words_a_substring_test_finds(text, window):
    lowered = text.encode("latin-1").translate(scan._LATIN1_LOWER)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan, "_HIT_WINDOW", window)
        present = scan._gate_words_in(lowered)
    assert present == {word for word in scan._GATE_WORDS if word in lowered}


def test_each_gate_holds_the_words_its_scanner_tests_for():
    # A scanner is skipped when none of its gate words is there: each of the
    # substrings it tests for itself must hold one of them.
    import inspect
    for scanner, gate in scan._GATES.items():
        tested = re.findall(r'b"([^"]+)" in lowered', inspect.getsource(scanner))
        assert tested
        for needle in tested:
            assert any(word.decode() in needle for word in gate), (scanner.__name__, needle)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"\x00", b"\x7f", b"\x1f", b"\xff", b"a", b" ", b"\t", b"\r\n",
                                 b"~", b"x" * 9, b"y" * 700]), max_size=40).map(b"".join),
       st.integers(min_value=1, max_value=12))
def test_readable_runs_are_the_runs_of_the_plain_pattern(data, min_len):
    plain = re.compile(rb"(?<![\t\n\r\x20-\x7e])[\t\n\r\x20-\x7e]{%d,}+" % min_len)
    expected = [(m.start() + offset, piece) for m in plain.finditer(data)
                for offset, piece in scan._split_run(m.group().decode("ascii"))]
    assert scan.readable_runs(data, min_len, max_runs=10**6) == expected
    assert scan.readable_count(data, min_len) == sum(len(m.group()) for m in plain.finditer(data))


SHAPE_PIECES = st.sampled_from(["AKIAABCDEFGHIJKLMNOP", "ASIAABCDEFGHIJKLMNOP", "akia", "AKIA",
                                "eyJhbGciOi.eyJzdWIi.c2ln", "EYJ", "eyJ", ".",
                                "-----BEGIN RSA PRIVATE KEY-----", "-----begin private key-----",
                                "-----END PRIVATE KEY-----", "PRIVATE ", "tok_abcdef12", " ", "-"])


def plain_shapes(text):
    yield from scan._shape(scan._TOKEN_IN_TEXT, text, "token", "token prefix")
    yield from scan._shape(scan._AWS_KEY, text, "aws-access-key", "AWS access key id")
    yield from scan._shape(scan._JWT, text, "jwt", "JWT")
    end = 0
    while (begin := scan._PEM_BEGIN.search(text, end)) is not None:
        close = scan._PEM_END.search(text, begin.end(), begin.end() + scan._PEM_MAX)
        end = close.end() if close else min(len(text), begin.end() + scan._PEM_MAX)
        yield scan.Secret("private-key", text[begin.start():end], begin.start(), begin.group(),
                          end=end)


@settings(max_examples=400, deadline=None)
@given(texts(SHAPE_PIECES), st.sampled_from([2, 65536]))
def test_shape_scan_with_its_words_gated_finds_what_the_plain_scan_finds(text, window):
    lowered = text.encode("latin-1").translate(scan._LATIN1_LOWER)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan, "_HIT_WINDOW", window)
        gated = list(scan._scan_shapes(text, lowered, scan._DEFAULT_KEYS))
    assert gated == list(plain_shapes(text))
