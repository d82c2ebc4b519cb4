"""The packet loop's own paths give what the plain readers give.

`tcp.build.read_packets` reads the common frame shape itself and calls
`FlowTable.add_tcp`; every other frame goes through the decoder. Both ways must
leave the flow table in the same state, whatever the header bytes say. It also
walks a classic pcap's records itself instead of through `Capture`'s generator:
the same records, counters and anomalies, whatever the damage.
"""

import dataclasses
import random
import struct

import pytest

from builders import conversation, pcap_bytes, tcp_packet
from flinkwire.packets.decode import Decoder
from flinkwire.reading.capture import open_capture
from flinkwire.tcp.build import build_flows
from flinkwire.tcp.flows import Flow, FlowTable, Half


def _state(flow):
    halves = []
    for half in flow.halves:
        fields = {name: getattr(half, name) for name in Half.__slots__ if name != "chunks"}
        fields["chunks"] = [(chunk.start, chunk.data()) for chunk in half.chunks]
        halves.append(fields)
    fields = {name: getattr(flow, name) for name in Flow.__slots__ if name != "halves"}
    return fields, halves


def _info(info):
    return {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}


def _through_decoder(path):
    """What the loop did before it had paths of its own: every record from the capture's
    generator, every frame decoded, then added."""
    flows = []
    table = FlowTable(lambda flow: flows.append(_state(flow)))
    decoder = Decoder()
    with open_capture(path) as capture:
        for ts, linktype, buf, off, caplen, _ in capture:
            seg = decoder.decode(linktype, buf, off, caplen)
            if seg is not None:
                table.add(seg, ts, buf)
        table.finish_all()
        info = _info(capture.info)
    return flows, dict(decoder.skipped), info


def _through_loop(path):
    flows = []
    stats = build_flows([path], lambda flow: flows.append(_state(flow)))
    return flows, stats.skipped, _info(stats.files[0])


def _frames():
    base = bytes(tcp_packet("192.0.2.1", 40000, "198.51.100.2", 8081, 1001, 5001, "PA",
                            b"payload bytes"))
    frames = [bytes(p) for p in conversation(c2s=[b"GET / HTTP/1.1\r\n\r\n"] * 3,
                                             s2c=[b"HTTP/1.1 200 OK\r\n\r\n"] * 2)]

    def patched(frame, offset, fmt, value):
        frame = bytearray(frame)
        struct.pack_into(fmt, frame, offset, value)
        return bytes(frame)

    frames += [
        patched(base, 16, "!H", 0),             # IP total length 0 (TSO): the frame bounds it
        patched(base, 16, "!H", 10),            # shorter than an IPv4 header
        patched(base, 16, "!H", 2000),          # longer than the frame
        patched(base, 16, "!H", 45),            # shorter than the TCP payload (padding)
        patched(base, 20, "!H", 0x2000),        # more fragments
        patched(base, 20, "!H", 0x0001),        # a fragment offset
        patched(base, 20, "!H", 0x4000),        # don't fragment: still a whole packet
        patched(base, 14, "!B", 0x46),          # IPv4 options
        patched(base, 14, "!B", 0x65),          # not version 4
        patched(base, 12, "!H", 0x86DD),        # says IPv6
        patched(base, 23, "!B", 17),            # says UDP
        patched(base, 46, "!B", 0x40),          # TCP data offset below 5 words
        patched(base, 46, "!B", 0xF0),          # TCP options past the end
        base[:54], base[:53],                   # the shortest frame of the path, and one less
        patched(base[:54] + b"\0\0", 16, "!H", 42),  # bare ACK with two padding bytes
        patched(base[:54], 47, "!B", 0x02),     # a SYN on a known flow
        patched(base[:54], 47, "!B", 0x04),     # RST
        base, base,                             # recorded twice
    ]
    vlan = base[:12] + b"\x81\x00\x00\x07" + base[12:]
    frames.append(vlan)

    # Random bytes in the IPv4 and TCP headers, from frames of the path's shape.
    rng = random.Random(7)
    for _ in range(400):
        frame = bytearray(rng.choice(frames[:10] + [base]))
        for _ in range(rng.randint(1, 3)):
            frame[rng.randrange(12, min(len(frame), 54))] = rng.randrange(256)
        frames.append(bytes(frame[:rng.choice((len(frame), len(frame), 54, 60))]))
    return frames


def test_the_loop_path_and_the_decoder_leave_the_same_flows(tmp_path):
    path = tmp_path / "mixed.pcap"
    path.write_bytes(pcap_bytes(_frames()))
    assert _through_loop(path) == _through_decoder(path)


def _damaged_pcaps():
    frames = [bytes(p) for p in conversation(c2s=[b"GET / HTTP/1.1\r\n\r\n"] * 3,
                                             s2c=[b"HTTP/1.1 200 OK\r\n\r\n"] * 2)]
    whole = pcap_bytes(frames)
    second = 24 + 16 + len(frames[0])  # file offset of the second record
    bad_frac = bytearray(whole)
    struct.pack_into("<I", bad_frac, second + 4, 1_000_000)
    too_long = bytearray(whole)
    struct.pack_into("<I", too_long, second + 8, 1 << 30)
    return {
        "whole": whole,
        "big-endian, ns": pcap_bytes(frames, nanos=True, big=True),
        "no records": whole[:24],
        # A file cut inside its file header is refused by open_capture, before either
        # walk (tests/robustness/test_input_messages.py).
        "record header cut": whole[:second + 9],
        "record body cut": whole[:second + 30],
        "sub-second of a second or more": bytes(bad_frac),
        "... and then cut": bytes(bad_frac[:-5]),
        "record length past the limit": bytes(too_long),
    }


@pytest.mark.parametrize("name", list(_damaged_pcaps()))
def test_the_loop_walks_a_pcap_as_the_capture_generator_does(tmp_path, name):
    path = tmp_path / "damaged.pcap"
    path.write_bytes(_damaged_pcaps()[name])
    assert _through_loop(path) == _through_decoder(path)
