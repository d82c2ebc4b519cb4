"""The base-128 varint both Flink's StringValue and protobuf use: low 7 bits first,
the high bit saying more bytes follow."""


def read_varint(buf: bytes, pos: int, end: int, max_bytes: int = 10):
    """(value, next position) of the varint at `pos`, or None when it is cut or longer
    than `max_bytes` (5 for Flink's 32-bit lengths, 10 for protobuf's 64-bit fields)."""
    value = 0
    shift = 0
    for i in range(pos, min(end, pos + max_bytes)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    return None


# Flink's StringValue, as writeString/readString in Apache Flink's
# flink-core/src/main/java/org/apache/flink/types/StringValue.java lay it out: a varint of
# length + 1 (0 is the null string), then each UTF-16 char as a varint of its own. A char is
# at most 0xFFFF, so it takes at most 3 bytes; a length fits an int, so at most 5.
MAX_CHAR_BYTES = 3


def _printable(code: int) -> bool:
    if code in (0x09, 0x0A, 0x0D):
        return True
    if code < 0x20 or code == 0x7F:
        return False
    return code < 0x80 or chr(code).isprintable()


def read_string_value(buf: bytes, pos: int = 0, end: int | None = None,
                      max_chars: int = 1 << 20) -> tuple[str | None, int] | None:
    """Read one Flink StringValue at `pos`.

    Returns (text, next pos), (None, next pos) for the null string, or None when the bytes
    there are not a complete StringValue of printable characters: cut short, a length past
    `end` or above `max_chars`, an overlong varint, a control character or a surrogate not
    in a pair (a pair is read as the one character it stands for).
    """
    end = len(buf) if end is None else min(end, len(buf))
    got = read_varint(buf, pos, end, max_bytes=5)
    if got is None:
        return None
    length, pos = got
    if length == 0:
        return None, pos
    length -= 1
    # Every char takes a byte at least: a length past the bytes left is refused before
    # any char is read, so a hostile length costs nothing.
    if length > max_chars or length > end - pos:
        return None
    chars = []
    high = 0  # a high surrogate waiting for its low half
    for _ in range(length):
        if pos >= end:
            return None
        byte = buf[pos]
        if byte < 0x80:
            code, pos = byte, pos + 1
        else:
            got = read_varint(buf, pos, end, max_bytes=MAX_CHAR_BYTES)
            if got is None or got[0] > 0xFFFF:
                return None
            code, pos = got
        if high:
            if not 0xDC00 <= code <= 0xDFFF:
                return None
            code = 0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00)
            high = 0
        elif 0xD800 <= code <= 0xDBFF:
            high = code
            continue
        elif 0xDC00 <= code <= 0xDFFF:
            return None
        if not _printable(code):
            return None
        chars.append(chr(code))
    if high:
        return None
    return "".join(chars), pos
