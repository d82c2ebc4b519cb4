"""Masking of kept rows shows exactly what the plain masking showed.

The fast paths (a trie-shaped pattern of a flow's values, memos shared across flows
without values, type tests before the chain of isinstance tests) are held here to a
plain copy of the masking they replaced: one alternation of the values, longest
first, a memo per flow, every value walked by `plain_redacted` (header pairs by the
unchanged `_header_value`). Flows run one after another, so a memo that carried one
flow's masking into another would show.
"""

import re

import pytest
from hypothesis import given, settings, strategies as st

from flinkwire.leakage.redact import redact, redact_text
from flinkwire.tables import examine
from flinkwire.tables.examine import Masker, OWN_KEYS, secret_hint


class PlainMasker:
    def __init__(self, values, complete=True):
        source, self.complete = values() if callable(values) else (values, complete)
        self.values = [v for v in source if len(v) >= 4]
        self.shortest = min(map(len, self.values), default=0)
        ordered = sorted(self.values, key=len, reverse=True)
        self.masks = {v: redact(v) for v in ordered}
        self.pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def text(self, text):
        if self.values and len(text) >= self.shortest:
            text = self.pattern.sub(lambda m: self.masks[m.group(0)], text)
        if not self.complete or secret_hint(text):
            text = redact_text(text)
        return text


def plain_shown(row, masker):
    return {key: value if key in OWN_KEYS else plain_redacted(value, masker)
            for key, value in row.items()}


def plain_redacted(value, masker, depth=0):
    if isinstance(value, dict) and depth < 4:
        return {k: examine._header_value(k, v, masker) if isinstance(k, str) and isinstance(v, str)
                else plain_redacted(v, masker, depth + 1) for k, v in value.items()}
    if isinstance(value, str):
        return masker.text(value)
    if isinstance(value, (bytes, bytearray)):
        return masker.text(bytes(value[:4096]).decode("latin-1"))
    if depth < 4 and isinstance(value, (list, tuple)):
        return [plain_redacted(v, masker, depth + 1) for v in value]
    return value


class Tagged(str):
    """A str subclass: must take the isinstance path, not the exact-type one."""


PIECES = st.sampled_from([
    "hunter", "hunter2", "hunter22", "hunter222", "1", "2", "x", " ", "=", "password=",
    "token ", "key:", "carol@example.com", "@", "4111111111111111", "1234567890123",
    "Σ", "\u0130", "ab", "abab", "\x00", "…", "•••", "a.b-c",
])
TEXTS = st.lists(PIECES, max_size=12).map("".join)
VALUES = st.lists(TEXTS, max_size=8)
LEAVES = st.one_of(TEXTS, TEXTS.map(Tagged), TEXTS.map(str.encode),
                   TEXTS.map(lambda t: bytearray(t.encode())), st.integers(), st.none(),
                   st.booleans(), st.floats(allow_nan=False))
NESTED = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(st.one_of(TEXTS, st.integers()), inner, max_size=3)), max_leaves=8)
ROW = st.dictionaries(st.sampled_from(["flow_id", "direction", "fields", "headers", "path",
                                       "body", "offset", "class_names", "sender"]),
                      NESTED, max_size=6)
FLOW = st.tuples(VALUES, st.booleans(), st.booleans(), st.lists(ROW, max_size=4))


@settings(max_examples=400, deadline=None)
@given(st.lists(FLOW, min_size=1, max_size=4))
def test_masked_rows_equal_the_plain_masking(flows):
    for values, lazy, complete, rows in flows:
        # A lazy source says, with the values, whether the flow's scan was complete.
        source = (lambda values=values, c=complete: (set(values), c)) if lazy else set(values)
        masker, plain = Masker(source, complete), PlainMasker(source, complete)
        for row in rows + rows:  # the second time through, from the memos
            assert examine._shown(row, masker) == plain_shown(row, plain)


@settings(max_examples=400, deadline=None)
@given(VALUES, TEXTS)
def test_trie_pattern_matches_what_the_alternation_matches(values, text):
    values = {v for v in values if v}
    if not values:
        return
    flat = re.compile("|".join(map(re.escape, sorted(values, key=len, reverse=True))))
    trie = examine._values_pattern(frozenset(values))
    assert [m.span() for m in trie.finditer(text)] == [m.span() for m in flat.finditer(text)]


def test_a_deep_chain_of_values_falls_back_to_the_alternation():
    chain = ["pw" + "x" * n for n in range(2, 3 * examine.MAX_TRIE_NESTING)]
    assert examine._trie_alternation(chain) is None
    masker, plain = Masker(chain), PlainMasker(chain)
    text = "a " + chain[-1] + " b " + chain[5] + "y"
    assert masker.text(text) == plain.text(text)


def test_a_long_value_builds_without_recursion():
    value = "s3cr3t" * 2000
    assert examine._trie_alternation([value]) == re.escape(value)
    masker = Masker([value, value[:40]])
    assert value not in masker.text("k " + value + " " + value[:40])


@pytest.mark.parametrize("values", [set(), {"hunter2"}])
def test_a_plain_flow_after_a_flow_with_values_shows_the_value_masked_only_there(values):
    text = "user hunter2 logged in"
    assert Masker({"hunter2"}).text(text) == PlainMasker({"hunter2"}).text(text)
    assert Masker(values).text(text) == PlainMasker(values).text(text)
    assert ("hunter2" in Masker(values).text(text)) == (not values)


def test_values_nested_past_the_depth_bound_are_left_as_they_are():
    deep = ["hunter22", ("hunter22", b"hunter22")]
    for _ in range(5):
        deep = [deep, {"k": deep}]
    row = {"flow_id": "Fhunter22", "fields": deep, "headers": {"cookie": "hunter22"}}
    masker, plain = Masker({"hunter22"}), PlainMasker({"hunter22"})
    assert examine._shown(row, masker) == plain_shown(row, plain)
