"""Fuzz the packet decoder: random frames per link type, and frames built layer by layer.

Invariants: `decode` raises nothing, returns None or a 13-field tuple whose
payload span lies inside the frame, with addresses of 4 or 16 bytes.
"""

import struct

from hypothesis import given
from hypothesis import strategies as st

from fuzzing import FUZZ, target
from flinkwire.packets.decode import LINKTYPE_NAMES, Decoder

LINKTYPES = sorted(LINKTYPE_NAMES) + [2, 147, 0xFFFF]


def _check(decoder, linktype, frame, pad):
    buf = b"\xee" * pad + frame + b"\xee" * 7
    seg = decoder.decode(linktype, buf, pad, len(frame))
    if seg is None:
        return
    assert len(seg) == 13
    proto, src, sport, dst, dport, seq, ack, flags, start, end = seg[:10]
    assert proto in (6, 17)
    assert len(src) == len(dst) and len(src) in (4, 16)
    assert 0 <= sport <= 0xFFFF and 0 <= dport <= 0xFFFF
    assert pad <= start <= end <= pad + len(frame), (start, end, pad, len(frame))


@FUZZ
@given(linktype=st.sampled_from(LINKTYPES), frame=st.binary(max_size=256),
       pad=st.integers(0, 3))
@target("packets: random frames")
def test_random_frames(linktype, frame, pad):
    _check(Decoder(), linktype, frame, pad)


@st.composite
def _layers(draw):
    """A frame built from plausible headers with fuzzed fields, so decoding goes deep."""
    payload = draw(st.binary(max_size=64))
    proto = draw(st.sampled_from((6, 17, 4, 41, 47, 0, 43, 44, 51, 60, 1, 255)))
    transport = draw(st.binary(min_size=0, max_size=40))
    if proto == 6:
        doff = draw(st.integers(0, 15))
        transport = struct.pack("!HHIIBBHH", draw(st.integers(0, 65535)),
                                draw(st.integers(0, 65535)), draw(st.integers(0, 2**32 - 1)),
                                0, doff << 4, draw(st.integers(0, 255)), 0, 0) + transport
    elif proto == 17:
        port = draw(st.sampled_from((4789, 2152, 53, 9999)))
        transport = struct.pack("!HHHH", 1234, port, draw(st.integers(0, 65535)), 0) + transport
    body = transport + payload
    if draw(st.booleans()):
        ihl = draw(st.integers(0, 15))
        total = draw(st.sampled_from((0, 20 + len(body), 65535, draw(st.integers(0, 65535)))))
        frag = draw(st.sampled_from((0, 0x4000, 0x2000, 1)))
        ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, frag, 64, proto, 0,
                         b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02")
        ip += draw(st.binary(max_size=40))[:max(0, ihl * 4 - 20)]
        etype = 0x0800
    else:
        plen = draw(st.sampled_from((0, len(body), 65535)))
        ip = struct.pack("!IHBB16s16s", 0x60000000, plen, proto, 64, b"\x20" * 16, b"\x21" * 16)
        etype = 0x86DD
    packet = ip + body
    linktype = draw(st.sampled_from((1, 113, 276, 101, 0, 108)))
    if linktype == 1:
        tags = b"".join(struct.pack("!HH", draw(st.sampled_from((0x8100, 0x88A8))), 5)
                        for _ in range(draw(st.integers(0, 3))))
        head = b"\x02" * 12 + tags + struct.pack("!H", etype)
    elif linktype == 113:
        head = b"\x00" * 14 + struct.pack("!H", etype)
    elif linktype == 276:
        head = struct.pack("!H", etype) + b"\x00" * 18
    elif linktype in (0, 108):
        fam = 2 if etype == 0x0800 else 24
        head = struct.pack("<I" if linktype == 0 else ">I", fam)
    else:
        head = b""
    frame = head + packet
    cut = draw(st.integers(0, len(frame)))
    if draw(st.booleans()):
        frame = frame[:cut]
    return linktype, frame


@FUZZ
@given(built=_layers(), pad=st.integers(0, 3))
@target("packets: layered frames")
def test_layered_frames(built, pad):
    linktype, frame = built
    _check(Decoder(), linktype, frame, pad)
