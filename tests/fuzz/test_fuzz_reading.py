"""Fuzz the capture readers: pcap, pcapng and gzip containers, mutated from real files.

Invariants: opening raises nothing but CaptureError; walking raises nothing;
every record lies inside the mapped file; the number of records is bounded by
the file size and the anomaly rows per kind of damage by MAX_ANOMALIES_PER_KIND;
build_flows over the file raises nothing either.
"""

import gzip
import struct
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builders import pcapng_bytes
from fuzzing import FUZZ, capture_files, mutated, no_swallowed_errors, read_seeds, target
from flinkwire.errors import CaptureError
from flinkwire.reading import open_capture
from flinkwire.reading.capture import MAX_ANOMALIES_PER_KIND
from flinkwire.tcp.build import build_flows

PCAP_SEEDS = [s for s in read_seeds(capture_files()) if s[:4] != b"\x0a\x0d\x0d\x0a"]
SYNTHETIC_PCAPNG = pcapng_bytes([
    [(1, 6, [(1_000_000, b"\x00" * 12 + b"\x08\x00" + b"\x45" + b"\x00" * 40)]),
     (113, 9, [(5, b"\x00" * 14 + b"\x86\xdd" + b"\x60" + b"\x00" * 50)])],
    [(101, 0x83, [(7, b"\x45\x00\x00\x28" + b"\x00" * 36)])],
])
PCAPNG_SEEDS = [s for s in read_seeds(capture_files()) if s[:4] == b"\x0a\x0d\x0d\x0a"]
PCAPNG_SEEDS.append(SYNTHETIC_PCAPNG)
# Blocks of every kind the reader knows, to splice between sections.
_BLOCKS = [struct.pack("<II", kind, 12) + struct.pack("<I", 12) for kind in (1, 2, 3, 5, 6)]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-reading") / "input.cap"


def _walk(path, size):
    try:
        capture = open_capture(path)
    except CaptureError:
        return
    with capture:
        records = 0
        for ts, linktype, buf, off, caplen, origlen in capture:
            records += 1
            assert 0 <= off and off + caplen <= len(buf)
            assert isinstance(ts, int) and isinstance(linktype, int)
        info = capture.info
        assert records == info.records_complete
        assert records <= max(size, len(buf) if records else 0) // 16 + 1
        kinds = Counter(a["kind"] for a in info.anomalies)
        assert all(n <= MAX_ANOMALIES_PER_KIND + 1 for n in kinds.values()), kinds


def _build(path):
    try:
        with no_swallowed_errors():
            build_flows([str(path)], lambda flow: None)
    except CaptureError:
        pass


@FUZZ
@given(data=mutated(PCAP_SEEDS))
@target("reading: pcap")
def test_pcap_reader(scratch, data):
    scratch.write_bytes(data)
    _walk(scratch, len(data))
    _build(scratch)


@FUZZ
@given(data=mutated(PCAPNG_SEEDS), splice=st.lists(st.sampled_from(_BLOCKS), max_size=3))
@target("reading: pcapng")
def test_pcapng_reader(scratch, data, splice):
    if splice:
        cut = (len(data) // 2) & ~3
        data = data[:cut] + b"".join(splice) + data[cut:]
    scratch.write_bytes(data)
    _walk(scratch, len(data))
    _build(scratch)


@FUZZ
@given(data=mutated(PCAP_SEEDS[:8] + PCAPNG_SEEDS[:4]), cut=st.integers(0, 100))
@target("reading: gzip")
def test_gzip_container(scratch, data, cut):
    packed = gzip.compress(data, compresslevel=1)
    # Cut the gzip stream itself sometimes: what was inflated before the cut is read.
    if cut < 50:
        packed = packed[:max(2, len(packed) * cut // 50)]
    scratch.write_bytes(packed)
    _walk(scratch, len(data))
