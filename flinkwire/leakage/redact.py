"""Masking of secret values before any face shows them.

The rule every function here keeps: the output never contains a complete secret.
A few characters stay so that an analyst can tell two findings apart and match
one to a credential they know, which is the whole use of a redacted value.
"""

import logging
import re

from flinkwire.leakage.luhn import luhn_valid
from flinkwire.leakage.scan import find_secrets

log = logging.getLogger(__name__)

__all__ = ["redact", "redact_text"]

MASK = "•••"
_ELLIPSIS = "…"
_SHORT = 6  # values shorter than this are masked whole: a few kept characters would be most of them
_CARD_SEPARATORS = re.compile(r"[ \-]")
_EMAIL = re.compile(r"([^@\s]{1,64})@([A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){1,8})")


def redact(value: str, keep: int = 3) -> str:
    """A masked form of `value` that keeps at most `keep` characters at each end.

    No more than a quarter of the value is kept at each end, and values shorter
    than 6 characters are masked whole (`•••`, which also hides their length),
    so the result never equals or contains the whole value. Card numbers keep
    only their last 4 digits (`•••• 1111`); e-mail addresses keep the first
    character of the local part and the domain (`i***@example.com`). A value
    that is not a string is converted with str() first.
    """
    if not isinstance(value, str):
        value = str(value)
    if not value:
        return ""
    masked = _masked(value, keep)
    # Odd values can survive their own mask ("a***@x.org" keeps its first
    # character and domain, "•••" is the mask): fall back to a mask without them.
    for candidate in (masked, MASK, "[redacted]"):
        if value not in candidate:
            return candidate
    return "[redacted]"


def _masked(value: str, keep: int) -> str:
    digits = _CARD_SEPARATORS.sub("", value)
    if 13 <= len(digits) <= 19 and digits.isdigit() and luhn_valid(digits):
        return f"•••• {digits[-4:]}"

    email = _EMAIL.fullmatch(value)
    if email:
        local, domain = email.groups()
        shown = local[0] if len(local) > 1 else ""
        return f"{shown}***@{domain}"

    if len(value) < _SHORT:
        return MASK
    kept = max(1, min(int(keep), len(value) // 4))
    return f"{value[:kept]}{_ELLIPSIS}{value[-kept:]}"


def redact_text(text: str, secrets: list[tuple[int, int]] | None = None, *,
                rescan: bool = True) -> str:
    """`text` with every given [start, end) span and every secret found in it masked.

    The spans are character offsets into `text` (for a snippet cut from a stream,
    the caller subtracts the snippet's offset from each secret's span). The text
    is also scanned with `find_secrets` itself, so a secret the caller did not
    know about is masked too, and every other copy of a masked value in the
    text is masked as well; overlapping spans are masked as one. Spans outside
    the text are clipped, malformed ones ignored. Limits: a secret cut by the
    start of a snippet is recognised only through the caller's spans.
    """
    if not isinstance(text, str):
        text = str(text)
    if not text:
        return text

    spans = []
    for span in secrets or ():
        try:
            start, end = int(span[0]), int(span[1])
        except (TypeError, ValueError, IndexError):
            log.debug("redact_text ignores malformed span %r", span)
            continue
        start, end = max(0, start), min(len(text), end)
        if start < end:
            spans.append((start, end))

    # One byte per character keeps the scanner's offsets equal to text indices.
    # `rescan=False` is for a caller that already scanned the text's whole stream
    # (with more context than the text has) and passes every span it found.
    values = {text[start:end] for start, end in spans}
    found = find_secrets(text.encode("latin-1", errors="replace")) if rescan else ()
    for secret in found:
        start, end = secret.span
        if start < end:
            spans.append((start, min(end, len(text))))
            values.add(secret.value)
            values.add(text[start:end])

    # The same value elsewhere in the snippet (a password that is also the user
    # name, a token echoed back) would show it whole, so every copy is masked.
    for value in values:
        if len(value) < 4:
            continue
        position = text.find(value)
        while position >= 0:
            spans.append((position, position + len(value)))
            position = text.find(value, position + len(value))

    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])

    shown = _masked_spans(text, merged, redact)
    # The characters a mask keeps can join the text beside it into a whole value
    # again ("rsrs…srs" + "rsrs…" when the value repeats); then no span keeps any.
    if any(value in shown for value in values if len(value) >= 4):
        shown = _masked_spans(text, merged, lambda _: MASK)
    return shown


def _masked_spans(text: str, spans, mask) -> str:
    pieces = []
    position = 0
    for start, end in spans:
        pieces.append(text[position:start])
        pieces.append(mask(text[start:end]))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
