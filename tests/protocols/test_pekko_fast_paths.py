"""Pekko's protobuf reader with its inline one-byte varints reads what the plain reader
read, and a remembered actor ref reads as a decoded one.

`plain_fields` is the reader as it was, every tag, length and value through
read_varint; both run on messages built from fields at the one/two-byte varint edge
(127, 128) and on damaged bytes: cut varints, overlong ones, lengths past the end.
"""

import struct

from hypothesis import given, settings, strategies as st

from flinkwire.protocols import pekko
from flinkwire.protocols.varint import read_varint


def plain_fields(buf, start=0, end=None):
    end = len(buf) if end is None else min(end, len(buf))
    fields = []
    pos = start
    while pos < end:
        if len(fields) >= pekko.MAX_FIELDS:
            return fields, f"more than {pekko.MAX_FIELDS} fields"
        tag = read_varint(buf, pos, end)
        if tag is None:
            return fields, f"bad tag varint at {pos}"
        key, pos = tag
        number, wire = key >> 3, key & 7
        if number == 0:
            return fields, f"field number 0 at {pos}"
        if wire == 0:
            got = read_varint(buf, pos, end)
            if got is None:
                return fields, f"bad varint at {pos}"
            value, pos = got
        elif wire == 1:
            if pos + 8 > end:
                return fields, f"fixed64 cut at {pos}"
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 5:
            if pos + 4 > end:
                return fields, f"fixed32 cut at {pos}"
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        elif wire == 2:
            got = read_varint(buf, pos, end)
            if got is None:
                return fields, f"bad length varint at {pos}"
            size, pos = got
            if pos + size > end:
                return fields, f"field {number} length {size} exceeds the bytes present"
            value = (pos, pos + size)
            pos += size
        else:
            return fields, f"unsupported wire type {wire} at {pos}"
        fields.append((number, wire, value))
    return fields, None


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


EDGE_INTS = st.sampled_from([0, 1, 127, 128, 129, 300, 16383, 16384, 2 ** 32, 2 ** 63])
PIECES = st.one_of(
    st.tuples(st.integers(1, 20), EDGE_INTS).map(lambda f: varint(f[0] << 3) + varint(f[1])),
    st.tuples(st.integers(1, 20), st.binary(max_size=200)).map(
        lambda f: varint(f[0] << 3 | 2) + varint(len(f[1])) + f[1]),
    st.integers(1, 20).map(lambda n: varint(n << 3 | 1) + bytes(8)),
    st.integers(1, 20).map(lambda n: varint(n << 3 | 5) + bytes(4)),
    st.sampled_from([b"\x80", b"\xff" * 11, b"\x00", b"\x0f", b"\x0a\x05ab", b"\x0a\x80",
                     b"\x08\xff", b"\x80\x80\x01"]),
    st.binary(max_size=8))


@settings(max_examples=500, deadline=None)
@given(pieces=st.lists(PIECES, max_size=12), cut=st.integers(0, 4096),
       start=st.integers(0, 3))
def test_protobuf_fields_equal_the_plain_reader(pieces, cut, start):
    data = b"".join(pieces)
    end = min(cut, len(data))
    assert pekko.protobuf_fields(data, start, end) == plain_fields(data, start, end)
    assert pekko.protobuf_fields(data) == plain_fields(data)


def test_many_fields_stop_at_the_bound_as_before():
    data = b"\x08\x01" * (pekko.MAX_FIELDS + 5)
    assert pekko.protobuf_fields(data) == plain_fields(data)


@given(path=st.text(max_size=40), pad=st.binary(max_size=4),
       long=st.booleans())
def test_remembered_actor_refs_read_as_decoded_ones(path, pad, long):
    text = path.encode() + (b"x" * pekko.MAX_REMEMBERED_REF if long else b"")
    ref = b"\x0a" + varint(len(text)) + text + pad
    buf = b"??" + ref + b"!"
    span = (2, 2 + len(ref))
    fields, _ = plain_fields(buf, *span)
    first = next((v for n, w, v in fields if (n, w) == (1, 2)), None)
    expected = None if first is None else buf[first[0]:first[1]].decode("utf-8", "replace")
    assert pekko._actor_path(buf, span) == expected
    assert pekko._actor_path(buf, span) == expected  # the second time, remembered
